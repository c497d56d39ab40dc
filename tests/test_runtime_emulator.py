"""Tests of the Runtime API emulator (scripts/runtime_emulator.py) itself, so that an emulator bug is not
mistaken for a runtime bug. Plain http.client first; then the caller side with a real runtime."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import lambda_root
import pytest
from conftest import BASE_ENV, BOOTSTRAP, HANDLERS_DIR
from launch_helpers import HOSTILE_DIR, call
from runtime_emulator import (
    INIT_ERROR_PATH,
    INVOCATION_PREFIX,
    NEXT_PATH,
    PAYLOAD_LIMIT,
    STATUS_BODIES,
    RuntimeEmulator,
    subprocess_launcher,
)


def _conn(api):
    return http.client.HTTPConnection("127.0.0.1", api.port, timeout=5)


def test_next_serves_scripted_headers(fake_api):
    rid = fake_api.push_event(
        b'{"a": 1}',
        request_id="req-1",
        deadline_ms=1234,
        trace_id="Root=1",
        client_context={"custom": {}},
        cognito_identity="{}",
        tenant_id="",
        invocation_id="inv-1",
        content_type="text/plain",
    )
    c = _conn(fake_api)
    c.request("GET", NEXT_PATH)
    r = c.getresponse()
    assert r.status == 200 and r.read() == b'{"a": 1}'
    assert rid == "req-1"
    assert r.getheader("Lambda-Runtime-Aws-Request-Id") == "req-1"
    assert r.getheader("Lambda-Runtime-Deadline-Ms") == "1234"
    assert r.getheader("Lambda-Runtime-Trace-Id") == "Root=1"
    assert json.loads(r.getheader("Lambda-Runtime-Client-Context")) == {"custom": {}}
    assert r.getheader("Lambda-Runtime-Aws-Tenant-Id") == ""
    assert r.getheader("Lambda-Runtime-Invocation-Id") == "inv-1"
    assert r.getheader("Content-Type") == "text/plain"
    # keep-alive: the answer comes on the same connection
    c.request("POST", INVOCATION_PREFIX + "req-1/response", body=b'"ok"')
    r = c.getresponse()
    assert r.status == 202 and r.read() == b'{"status":"OK"}'
    a = fake_api.wait_answer("req-1", 2)
    assert a.body == b'"ok"' and a.status == 202
    assert {x.conn for x in fake_api.snapshot()} == {a.conn}


def test_chunked_body_and_trailers_recorded(fake_api):
    fake_api.push_event({}, request_id="req-c")
    c = _conn(fake_api)
    c.request("GET", NEXT_PATH)
    c.getresponse().read()
    c.putrequest("POST", INVOCATION_PREFIX + "req-c/response")
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("Trailer", "Lambda-Runtime-Function-Error-Type")
    c.endheaders()
    c.send(
        b"5\r\nhello\r\n6\r\n world\r\n0\r\nLambda-Runtime-Function-Error-Type: Runtime.StreamError\r\n\r\n"
    )
    r = c.getresponse()
    assert r.status == 202
    a = fake_api.wait_answer("req-c", 2)
    assert a.chunked and a.body == b"hello world"
    assert a.trailers is not None
    assert a.trailers.get("lambda-runtime-function-error-type") == "Runtime.StreamError"


def _status(c):
    r = c.getresponse()
    r.read()
    return r.status


def test_rapid_like_status_codes(fake_api):
    fake_api.push_event({}, request_id="r1")
    c = _conn(fake_api)
    c.request("GET", NEXT_PATH)
    c.getresponse().read()
    c.request("POST", INVOCATION_PREFIX + "other/response", body=b"1")
    assert _status(c) == 400  # not the current invocation
    c.request("POST", INVOCATION_PREFIX + "r1/response", body=b"x" * (PAYLOAD_LIMIT + 1))
    r = c.getresponse()
    assert (r.status, r.read()) == (413, STATUS_BODIES[413])
    c.request("POST", INVOCATION_PREFIX + "r1/error", body=b"{}")
    assert _status(c) == 403  # after_413_error_status default, as RAPID
    c.request("POST", INVOCATION_PREFIX + "r1/response", body=b"1")
    assert _status(c) == 403  # already answered
    c.request("POST", INIT_ERROR_PATH, body=b"{}")
    assert _status(c) == 202
    fake_api.script_next(500)
    c.request("GET", NEXT_PATH)
    assert _status(c) == 500


def test_next_blocks_then_serves_and_stop_does_not_hang():
    api = RuntimeEmulator().start()
    got = {}

    def poll():
        c = _conn(api)
        c.request("GET", NEXT_PATH)
        got["status"] = c.getresponse().status

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    api.wait_for(lambda: api.waiting_next == 1, 2, "a blocked /next")
    assert "status" not in got
    api.push_event({})
    t.join(5)
    assert got["status"] == 200
    # a second /next blocks until stop(), which must return promptly
    t2 = threading.Thread(target=lambda: _safe_next(api), daemon=True)
    t2.start()
    api.wait_for(lambda: api.waiting_next == 1, 2, "a blocked /next")
    start = time.monotonic()
    api.stop()
    t2.join(5)
    assert time.monotonic() - start < 5 and not t2.is_alive()


def _safe_next(api):
    try:
        c = _conn(api)
        c.request("GET", NEXT_PATH)
        c.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass


def test_a_next_whose_connection_is_gone_takes_no_event(fake_api):
    """A runtime stopped (or dead) while parked in /next leaves its request behind: the event goes to the
    runtime that asks next, not into the closed connection, and the dead /next no longer counts as waiting."""
    dead = socket.create_connection(("127.0.0.1", fake_api.port), 5)
    dead.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % NEXT_PATH.encode())
    fake_api.wait_for(lambda: fake_api.waiting_next == 1, 5, "the /next parked")
    dead.close()
    key = fake_api.push_event(b'{"n": 1}')
    live = _conn(fake_api)
    live.request("GET", NEXT_PATH)
    r = live.getresponse()  # the connection's 5 s timeout bounds it: OSError if the event went astray
    assert (r.status, r.getheader("Lambda-Runtime-Aws-Request-Id"), r.read()) == (200, key, b'{"n": 1}')
    assert fake_api.invocation(key).delivered == "full"
    fake_api.wait_for(lambda: fake_api.waiting_next == 0, 5, "the dead /next to leave")
    live.close()


def test_restart_runtime_while_idle_loses_no_event(emulator):
    """restart_runtime() while the runtime waits in /next (the dev endpoint's reload): the stopped runtime's
    /next is parked at that moment; every invoke after the restart is answered by the new runtime."""
    emu = emulator("app.echo")
    assert emu.invoke({"n": 0}).wait(15).outcome == "response"
    for n in range(1, 6):
        emu.wait_for(lambda: emu.waiting_next > 0, 10, "the runtime in /next")
        emu.restart_runtime()
        assert emu.wait_init(15) == "ready"
        inv = emu.invoke({"n": n}).wait(15)
        assert (inv.outcome, inv.json()) == ("response", {"n": n}), inv
    assert emu.check_ledger() == []


def test_restart_runtime_with_an_invocation_in_flight_ends_it_as_an_exit(emulator):
    """The stopped runtime will never answer what it held: its caller gets Runtime.ExitError at once, not a
    timeout later (the event may have left just as the runtime was stopped)."""
    emu = emulator("app.sleeps", timeout=60.0)
    slow = emu.invoke({"seconds": 30})
    emu.wait_for(lambda: emu.in_flight(), 15, "the event in the runtime")
    emu.restart_runtime()
    slow.wait(5)
    assert (slow.outcome, slow.error_type) == ("exited", "Runtime.ExitError")
    assert "signal: killed" in slow.json()["errorMessage"]
    assert emu.invoke({"seconds": 0}).wait(15).body == b'"slept"'


def test_wait_for_times_out_with_description(fake_api):
    with pytest.raises(TimeoutError, match="an answer for request nope"):
        fake_api.wait_answer("nope", 0.2)
    with pytest.raises(TimeoutError, match="runtime exited"):
        fake_api.wait_for(1, 5, alive=lambda: False)


# -- the caller side, with bootstrap.py as the runtime -----------------------------------------------------


@pytest.fixture
def emulator(tmp_path):
    """``emulator(handler, task_root=HANDLERS_DIR, env=None, **options)``: a started RuntimeEmulator whose
    launcher runs bootstrap.py (output in tmp_path); stopped, with its runtime, at teardown."""
    started = []

    def start(handler, task_root=HANDLERS_DIR, env=None, **options):
        out = open(tmp_path / ("runtime-%d.log" % len(started)), "wb")  # noqa: SIM115 (closed at teardown)
        settings = {**BASE_ENV, "_HANDLER": handler, "LAMBDA_TASK_ROOT": str(task_root), **(env or {})}
        launch = subprocess_launcher([sys.executable, str(BOOTSTRAP)], settings, str(tmp_path), out, out)
        emu = RuntimeEmulator(launcher=launch, **options).start()
        started.append((emu, out))
        return emu

    yield start
    for emu, out in started:
        emu.stop()
        out.close()


def test_invoke_streams_each_chunk_to_the_caller_as_it_comes(emulator, tmp_path):
    """The handler waits for a gate file after its first chunk: the caller sees "first" before the gate is
    opened, so the emulator hands chunks on as they arrive rather than when the stream ends."""
    emu = emulator("streaming.gated")
    gate = tmp_path / "gate"
    inv = emu.invoke({"gate": str(gate)})
    chunks = inv.chunks(timeout=15)
    assert next(chunks) == b"first"
    assert not inv.done
    gate.touch()
    assert list(chunks) == [b"second"]
    inv.wait(5)
    assert (inv.outcome, inv.streamed, inv.body, inv.error_type) == ("response", True, b"firstsecond", None)
    assert inv.init_duration_ms is not None and inv.init_duration_ms > 0


def test_invoke_buffered_answer_error_and_context_headers(emulator):
    emu = emulator("app.context_dump")
    inv = emu.invoke({}, client_context={"custom": {"k": "v"}}, cognito_identity={"cognitoIdentityId": "id-1"},
                     tenant_id="blue").wait(15)  # fmt: skip
    assert (inv.outcome, inv.streamed, inv.content_type) == ("response", False, "application/json")
    context = inv.json()
    assert context["aws_request_id"] == inv.request_id
    assert (context["custom"], context["cognito_identity_id"], context["tenant_id"]) == (
        {"k": "v"},
        "id-1",
        "blue",
    )
    assert context["invoked_function_arn"] == emu.function_arn
    assert 0 < context["remaining_ms"] <= emu.timeout * 1000
    assert inv.init_duration_ms is not None
    again = emu.invoke({}).wait(15)
    assert again.init_duration_ms is None  # warm: no init before it
    failed = emulator("app.raises").invoke({}).wait(15)
    assert (failed.outcome, failed.error_type, failed.json()["errorMessage"]) == (
        "error",
        "Function.ValueError",
        "boom",
    )


def test_midstream_error_reaches_the_caller_from_the_trailers(emulator):
    inv = emulator("streaming.fails_midstream").invoke({"after": 2}).wait(15)
    assert (inv.outcome, inv.body, inv.error_type) == ("error", b"c0c1", "Function.ValueError")
    assert json.loads(inv.error_body)["errorMessage"] == "mid-stream failure"
    assert inv.trailers["lambda-runtime-function-error-type"] == "Function.ValueError"


def test_oversized_response_is_refused_413_and_the_caller_gets_the_size_error(emulator):
    emu = emulator("app.big_response")
    inv = emu.invoke({"n": PAYLOAD_LIMIT}).wait(30)
    assert (inv.outcome, inv.error_type) == ("error", "Function.ResponseSizeTooLarge")
    assert "(6291556 bytes)" in inv.json()["errorMessage"]
    # ours then posts an /error that says the size (README), which RAPID refuses: the event was answered
    answers = emu.wait_answers(inv.request_id, 2, 15)
    assert [(a.kind, a.status) for a in answers] == [("response", 413), ("error", 403)]
    assert emu.invoke({"n": 3}).wait(15).body == b'"yyy"'  # the runtime went on


def test_a_stream_over_its_limit_reaches_the_caller_up_to_the_limit_then_fails(emulator):
    emu = emulator("streaming.pieces", stream_limit=10)
    inv = emu.invoke({"chunks": ["aaaa", "bbbb", "cccc", "dddd"]})
    pieces = list(inv.chunks(timeout=15))
    assert pieces == [b"aaaa", b"bbbb", inv.body]  # what fits, then the error
    assert (inv.outcome, inv.error_type) == ("error", "Function.ResponseSizeTooLarge")
    assert b"(10 bytes)" in inv.body
    assert (inv.answers[0].kind, inv.answers[0].status) == ("response", 413)


def test_timeout_answers_the_caller_then_the_runtime_is_stopped_and_started_again(emulator):
    emu = emulator("app.sleeps", timeout=1.0)
    slow = emu.invoke({"seconds": 30})
    first = emu.wait_for(lambda: emu.runtime, 10, "a runtime")
    slow.wait(10)
    assert (slow.outcome, slow.error_type) == ("timeout", "Sandbox.Timedout")
    assert (
        slow.json()["errorMessage"]
        == "RequestId: %s Error: Task timed out after 1.00 seconds" % slow.request_id
    )
    fast = emu.invoke({"seconds": 0}).wait(15)
    assert (fast.outcome, fast.body) == ("response", b'"slept"')
    assert fast.init_duration_ms is not None, "the answer came from a new init"
    assert first.poll() is not None and emu.runtime is not first
    assert emu.check_ledger() == []


def test_a_stream_that_runs_past_the_timeout_is_cut_off(emulator):
    emu = emulator("streaming.pieces", timeout=1.0)
    inv = emu.invoke({"chunks": ["a", "b", "c", "d", "e"], "sleep": 0.4})
    assert next(inv.chunks(timeout=10)) == b"a"
    inv.wait(10)
    assert (inv.outcome, inv.error_type) == ("timeout", "Sandbox.Timedout")
    assert emu.invoke({"chunks": ["z"]}).wait(15).body == b"z"  # from a runtime started again


def test_init_error_is_the_answer_and_each_invoke_inits_again(emulator):
    emu = emulator("import_err.handler")
    inv = emu.invoke({}).wait(15)
    assert (inv.outcome, inv.error_type) == ("init_error", "Runtime.ImportModuleError")
    assert (
        inv.json()["errorMessage"]
        == "Unable to import module 'import_err': No module named 'requests_not_here'"
    )
    assert emu.wait_init(5) == "init_error" and emu.init_error["errorType"] == "Runtime.ImportModuleError"
    emu.wait_for(lambda: emu.runtime is None, 10, "the failed runtime to exit")
    again = emu.invoke({}).wait(15)
    assert again.outcome == "init_error"
    assert len(emu.init_errors) == 2, "the second invoke started a second runtime"


def test_a_runtime_that_exits_without_answering_gives_runtime_exit_error(emulator):
    emu = emulator("hostile.dispatch", task_root=HOSTILE_DIR)
    inv = emu.invoke(call("os_exit", {"code": 3}))
    queued = emu.invoke(call("echo", {"v": 0}))  # waits behind it: a new runtime must take it
    inv.wait(15)
    assert queued.wait(15).json() == {"v": 0}
    assert (inv.outcome, inv.error_type) == ("exited", "Runtime.ExitError")
    assert (
        inv.json()["errorMessage"]
        == "RequestId: %s Error: Runtime exited with error: exit status 3" % inv.request_id
    )
    assert emu.invoke(call("echo", {"v": 1})).wait(15).json() == {"v": 1}


def test_managed_instances_serve_invokes_at_once(emulator):
    emu = emulator("lmi.work", concurrency=3)
    assert emu.runtime_env()["AWS_LAMBDA_MAX_CONCURRENCY"] == "3"
    emu.invoke({}).wait(20)  # the workers are up
    invs = [emu.invoke({"sleep": 1}) for _ in range(4)]
    pids = {inv.wait(15).json()["pid"] for inv in invs}
    assert len(pids) == 3  # three workers served them
    assert emu.max_in_flight == 3  # three at once, never the fourth beside them


def test_managed_instances_time_out_without_a_restart_and_refuse_the_late_answer_with_410(emulator):
    emu = emulator("lmi.work", concurrency=2, timeout=1.0)
    slow = emu.invoke({"sleep": 2}).wait(15)
    assert (slow.outcome, slow.error_type) == ("timeout", "Sandbox.Timedout")
    late = emu.wait_answer(slow.request_id, 10)
    assert late.status == 410  # InvokeTimeout
    handle = emu.runtime
    assert emu.invoke({}).wait(15).outcome == "response"
    assert emu.runtime is handle and handle.poll() is None  # the same workers serve on


@pytest.mark.parametrize("graceful", [True, False])
def test_shutdown_sigterms_a_runtime_with_an_extension_and_kills_one_without(emulator, graceful):
    """Lambda sends SIGTERM only when an extension is registered (ours registers one when opted in)."""
    emu = emulator("app.echo", env={"LAMBDA_GRACEFUL_SHUTDOWN": "1" if graceful else "0"})
    emu.invoke({}).wait(15)
    handle = emu.runtime
    emu.stop_runtime()
    assert handle.popen.returncode == (0 if graceful else -signal.SIGKILL)
    assert bool(emu.extensions) == graceful


def test_prefix_and_204_when_no_event_comes():
    """cargo-lambda's style: AWS_LAMBDA_RUNTIME_API with a scheme and a path prefix; /next answered 204 after
    a while without an event."""
    with RuntimeEmulator(prefix="/.rt", answer_204_after=0.2) as emu:
        assert emu.runtime_api == "http://%s/.rt" % emu.address
        c = _conn(emu)
        c.request("GET", NEXT_PATH)
        assert _status(c) == 404  # the prefix is required
        c.request("GET", "/.rt" + NEXT_PATH)
        assert _status(c) == 204
        rid = emu.push_event({"k": 1})
        c.request("GET", "/.rt" + NEXT_PATH)
        r = c.getresponse()
        assert (r.status, r.getheader("Lambda-Runtime-Aws-Request-Id"), r.read()) == (200, rid, b'{"k": 1}')
        c.request("POST", "/.rt" + INVOCATION_PREFIX + rid + "/response", body=b"1")
        assert _status(c) == 202


class _HostRoot:
    """Stands in for a LambdaRoot: runs bootstrap.py on this machine with exactly the given environment."""

    bootstrap = str(BOOTSTRAP)

    def start(self, loopback, argv, env, scratch, **popen):
        # In the check's own network namespace, where its emulator listens, as the real root is.
        command = ["env", "-i", *("%s=%s" % kv for kv in {**BASE_ENV, **env}.items()), sys.executable, *argv]
        return loopback.run(subprocess.Popen, command, start_new_session=True, **popen)


@pytest.mark.parametrize(
    "handler,state,error_type",
    [("app.echo", "ready", None), ("import_err.handler", "init-error", "Runtime.ImportModuleError"),
     ("nodot", "init-error", "Runtime.MalformedHandlerName")],
)  # fmt: skip
def test_the_build_check_reads_how_init_ended_from_the_emulator(handler, state, error_type):
    """scripts/lambda_root.py's check: ready at the first /next, or the init error the runtime posted."""
    outcome = lambda_root.check_init(
        _HostRoot(), handler, {"LAMBDA_TASK_ROOT": str(HANDLERS_DIR)}, timeout=20
    )
    assert (outcome.state, (outcome.error or {}).get("errorType")) == (state, error_type), outcome.output
    assert outcome.packaging_fault == (state != "ready")
