"""End-to-end: the runtime under AWS's Runtime Interface Emulator (RIE), on loopback.

Runs against every runtime in ``frozen.runtime_commands(in_roots=True)``: bootstrap.py as a script, and
the frozen runtime at /opt in a Lambda-like root (no system libraries; and Debian 11's glibc 2.31 with
Lambda's LD_LIBRARY_PATH), with these tests' handlers as source at /var/task.
"""

from __future__ import annotations

import json
import os
import re

import pytest
import rie
from conftest import rie_argv_of, rie_params

pytestmark = [pytest.mark.rie, pytest.mark.slow]

EXAMPLE = rie.REPO / "example"
FIXTURES = rie.REPO / "tests" / "rie_handlers"


@pytest.fixture(params=rie_params(ours_only=False, in_roots=True))
def rie_runtime(request):
    """The bootstrap argv of the runtime under test."""
    return rie_argv_of(request.param)


@pytest.fixture
def start_rie(rie_runtime, rie_launcher):
    """``start_rie(handler, task_root=EXAMPLE, **kw)`` -> a running RieProcess, closed after the test."""
    return lambda handler, task_root=EXAMPLE, **kw: rie_launcher(rie_runtime, handler, task_root, **kw)


def _json(body, logs):
    try:
        return json.loads(body)
    except ValueError:
        pytest.fail(f"response is not JSON: {body[:500]!r}\n--- RIE output ---\n{logs}")


def _check_error(body: dict, error_type: str, message_re: str, logs: str) -> None:
    assert isinstance(body, dict), f"not an error object: {body!r}\n{logs}"
    assert body.get("errorType") == error_type, f"{body!r}\n--- RIE output ---\n{logs}"
    assert re.fullmatch(message_re, body.get("errorMessage", "")), f"{body!r}\n--- RIE output ---\n{logs}"
    assert isinstance(body.get("stackTrace", []), list), body


def test_echo(start_rie):
    r = start_rie("app.handler")
    event = {"n": 1, "text": "grüße ☃", "nested": {"list": [1, 2.5, None, True]}}
    status, body, _ = r.invoke(json.dumps(event).encode(), timeout=60)
    logs = r.logs()
    assert status == 200, f"HTTP {status} {body[:500]!r}\n--- RIE output ---\n{logs}"
    out = _json(body, logs)
    assert out.get("ok") is True, f"{out!r}\n{logs}"
    assert out["event"] == event
    # The request id the handler saw is the one the RIE generated for this invoke.
    assert re.search(rf"^START RequestId: {re.escape(out['request_id'])} ", logs, re.MULTILINE), logs
    assert r.report_line(out["request_id"]) is not None, logs
    assert out["function_name"] == "test_function"  # the RIE's default AWS_LAMBDA_FUNCTION_NAME
    assert 0 < out["remaining_ms"] <= 300_000  # the RIE's default 300 s timeout
    assert len(r.init_reports_ms()) == 1, logs


def test_handler_error(start_rie):
    r = start_rie("app.handler")
    status, body, _ = r.invoke(b'{"fail": "went wrong"}', timeout=60)
    logs = r.logs()
    # The RIE answers a function error with HTTP 200 and the error JSON the runtime posted.
    assert status == 200, f"HTTP {status} {body[:500]!r}\n{logs}"
    out = _json(body, logs)
    _check_error(out, "ValueError", "went wrong", logs)
    assert any("app.py" in frame for frame in out.get("stackTrace", [])), out
    # It starts in user code: the runtime's own frames (bootstrap.py, lambda_bootstrap/) are left out, frozen too.
    assert "app.py" in out["stackTrace"][0], out
    assert not any("bootstrap" in frame for frame in out["stackTrace"]), out
    # The runtime survives a handler error: the next invoke in the same runtime succeeds.
    status, body, _ = r.invoke(b'{"n": 2}', timeout=60)
    assert status == 200 and _json(body, r.logs()).get("ok") is True, (status, body, r.logs())
    assert len(r.init_reports_ms()) == 1, r.logs()


def test_handler_error_custom_class(start_rie):
    r = start_rie("funcs.boom", FIXTURES)
    status, body, _ = r.invoke(b'{"msg": "x"}', timeout=60)
    logs = r.logs()
    assert status == 200, f"HTTP {status} {body[:500]!r}\n{logs}"
    _check_error(_json(body, logs), "CustomError", "boom: x", logs)


@pytest.mark.parametrize(
    ("handler", "error_type", "message_re"),
    [
        (
            "nomod.handler",
            "Runtime.ImportModuleError",
            r"Unable to import module 'nomod': No module named 'nomod'",
        ),
        ("funcs.nope", "Runtime.HandlerNotFound", r"Handler 'nope' missing on module 'funcs'"),
        ("funcsnodot", "Runtime.MalformedHandlerName", r"Bad handler 'funcsnodot': .*"),
        ("badsyntax.handler", "Runtime.UserCodeSyntaxError", r"Syntax error in module 'badsyntax': .*"),
    ],
)
def test_init_error(start_rie, tmp_path, handler, error_type, message_re):
    task_root = tmp_path / "task"
    task_root.mkdir()
    (task_root / "funcs.py").write_text((FIXTURES / "funcs.py").read_text())
    (task_root / "badsyntax.py").write_text("def handler(event, context)\n    return 1\n")
    r = start_rie(handler, task_root)
    for _ in range(2):  # the RIE restarts the runtime for the next invoke; same answer again
        status, body, _ = r.invoke(b"{}", timeout=60)
        logs = r.logs()
        # An init error posted to /runtime/init/error reaches the caller as HTTP 502 + that JSON.
        assert status == 502, f"HTTP {status} {body[:500]!r}\n{logs}"
        _check_error(_json(body, logs), error_type, message_re, logs)
    assert r.report_line(timeout=0) is None, logs  # failed inits produce no REPORT line
    # The runtime exited after reporting it (the RIE logs the exit of each failed runtime).
    r.wait_for_log(r"Process runtime-\d+ exited", count=2)


def test_warm_invocations_one_process(start_rie):
    r = start_rie("funcs.pid", FIXTURES)
    pids, counts, ids = set(), [], set()
    for i in range(20):
        status, body, _ = r.invoke(json.dumps({"i": i}).encode(), timeout=60)
        out = _json(body, r.logs())
        assert status == 200, (status, out, r.logs())
        pids.add(out["pid"])
        counts.append(out["count"])
        ids.add(out["request_id"])
    logs = r.logs()
    assert len(pids) == 1, f"handler ran in {len(pids)} processes\n{logs}"
    assert counts == list(range(1, 21)), f"module state not kept between invokes: {counts}\n{logs}"
    assert len(ids) == 20, "request ids repeat"
    assert len(r.init_reports_ms()) == 1, f"runtime initialised more than once\n{logs}"
    r.wait_for_log(r"^REPORT RequestId: ", count=20)
    # The pid the handler reports belongs to a process the RIE started (and is still alive).
    live = r.runtime_pids()
    assert live and all(os.path.exists(f"/proc/{p}") for p in live)


def test_payload_5mb_in_and_out(start_rie):
    r = start_rie("app.handler")
    data = "x" * (5 * 1024 * 1024)
    payload = json.dumps({"data": data}).encode()
    status, body, _ = r.invoke(payload, timeout=120)
    logs = r.logs()
    assert status == 200, f"HTTP {status} {body[:500]!r}\n{logs[-5000:]}"
    assert len(body) > 5 * 1024 * 1024, len(body)
    out = _json(body, logs[-5000:])
    assert out.get("ok") is True, str(out)[:500]
    assert out["event"]["data"] == data


def test_deadline_and_timeout(start_rie):
    r = start_rie("funcs.remaining", FIXTURES, function_timeout=3)
    status, body, _ = r.invoke(b"{}", timeout=60)
    out = _json(body, r.logs())
    assert status == 200, (status, out, r.logs())
    # The deadline comes from Lambda-Runtime-Deadline-Ms, which the RIE derives from the timeout.
    assert 1000 < out["remaining_ms"] <= 3000, out

    r2 = start_rie("funcs.sleep", FIXTURES, function_timeout=1)
    status, body, _ = r2.invoke(b'{"seconds": 5}', timeout=30)
    assert status == 200 and body == b"Task timed out after 1.00 seconds", (status, body, r2.logs())
    # The RIE killed the runtime; the next invoke starts a new one, which must work.
    status, body, _ = r2.invoke(b'{"seconds": 0}', timeout=30)
    assert status == 200 and _json(body, r2.logs()).get("slept") == 0, (status, body, r2.logs())
    assert len(r2.init_reports_ms()) == 2, r2.logs()


def test_harness_leaves_no_process(rie_runtime, tmp_path):
    env = {"_HANDLER": "funcs.pid", "LAMBDA_TASK_ROOT": str(FIXTURES)}
    with rie.RieProcess(rie_runtime, env=env, log_dir=str(tmp_path)) as r:
        status, body, _ = r.invoke(b"{}", timeout=60)
        assert status == 200, (status, body, r.logs())
        pid = json.loads(body)["pid"]
        rie_pid = r.proc.pid
        assert pid in r.runtime_pids_inside()
        host_pids = r.runtime_pids()
    for p in (*host_pids, rie_pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone
        assert state == "Z", f"process {p} still running (state {state})"
