"""Differential: the same invokes through the emulator (scripts/runtime_emulator.py) and through AWS's RIE,
with the same runtime on both sides (bootstrap.py; and AWS's awslambdaric where it can serve the scenario),
wherever the RIE can answer (it buffers streams and drops their trailers). Compared: what the caller gets
(the RIE's HTTP status class and the body, byte for byte with request ids masked), and what the runtime
sees (its context, through a handler that reports it).

Known differences, left out of the comparison on purpose: the RIE's fixed function settings (name, memory,
log group and stream), a trace id (the RIE sends none; Lambda, and the emulator, always do), and the
timeout's wording (the RIE answers plain text, Lambda and the emulator a Sandbox.Timedout document with the
same sentence).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys

import pytest
import rie
from conftest import BASE_ENV, BOOTSTRAP, HANDLERS_DIR
from frozen import AWSLAMBDARIC_WRAPPER
from launch_helpers import HOSTILE_DIR, call
from runtime_emulator import RuntimeEmulator, subprocess_launcher

pytestmark = [pytest.mark.rie, pytest.mark.slow]

FUNCTION_TIMEOUT = 1
# The RIE's Invoke API: 200 for what the function answered (errors too), 502 when init or the process failed.
RIE_STATUS = {"response": 200, "error": 200, "timeout": 200, "init_error": 502, "exited": 502}
TIMED_OUT = re.compile(rb"Task timed out after [0-9.]+ seconds")
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# (id, handler, task root, invokes): each invoke is (payload, client context or None).
SCENARIOS = [
    ("json", "app.echo", HANDLERS_DIR, [({"a": [1, "é"]}, None)]),
    ("bytes", "app.ret_bytes", HANDLERS_DIR, [({}, None)]),
    ("function-error", "app.raises", HANDLERS_DIR, [({}, None)]),
    ("chained-error", "app.raises_chained", HANDLERS_DIR, [({}, None)]),
    ("streamed", "streaming.pieces", HANDLERS_DIR, [({"chunks": ["a", "bc", "d"]}, None)]),
    ("streamed-error", "streaming.fails_midstream", HANDLERS_DIR, [({"after": 1}, None)]),
    ("too-large", "app.big_response", HANDLERS_DIR, [({"n": 7_000_000}, None), ({"n": 2}, None)]),
    ("init-error", "import_err.handler", HANDLERS_DIR, [({}, None), ({}, None)]),
    ("exit", "hostile.dispatch", HOSTILE_DIR, [(call("os_exit", {"code": 3}), None), (call("echo"), None)]),
    ("timeout", "app.sleeps", HANDLERS_DIR, [({"seconds": 5}, None), ({"seconds": 0}, None)]),
    ("context", "app.context_dump", HANDLERS_DIR, [({}, {"custom": {"k": "v"}, "env": {"e": "1"}})]),
]


def _comparable(status, body):
    """(status class, body bytes) with request ids masked; of a timeout, only its sentence."""
    timed_out = TIMED_OUT.search(body)
    return status, timed_out.group(0) if timed_out else UUID.sub(b"<request id>", body)


def _context_shape(doc):
    """What the runtime saw, minus the settings that differ by design (see the module docstring)."""
    settings = ("aws_request_id", "log_group_name", "log_stream_name", "function_name", "memory_limit_in_mb",
                "invoked_function_arn", "remaining_ms")  # fmt: skip
    shape = {k: v for k, v in doc.items() if k not in settings}
    shape["types"] = {k: type(v).__name__ for k, v in doc.items()}
    shape["remaining_in_timeout"] = 0 < doc["remaining_ms"] <= FUNCTION_TIMEOUT * 1000
    return shape


RUNTIMES = {
    "ours": [sys.executable, str(BOOTSTRAP)],
    "awslambdaric": ["/bin/sh", str(AWSLAMBDARIC_WRAPPER), sys.executable],
}
# Where awslambdaric cannot serve a scenario (it crashes on a 413, streams nothing, and its chained error
# and exit differ by design), or cannot be installed (Python 3.9), only ours runs it.
RIC_SCENARIOS = ("json", "bytes", "function-error", "init-error", "timeout", "context")
HAS_RIC = importlib.util.find_spec("awslambdaric") is not None
CASES = [
    pytest.param(runtime, *scenario, id="%s-%s" % (runtime, scenario[0]))
    for runtime in RUNTIMES
    for scenario in SCENARIOS
    if runtime == "ours" or (HAS_RIC and scenario[0] in RIC_SCENARIOS)
]


def through_rie(argv, handler, task_root, invokes, tmp_path):
    env = {"_HANDLER": handler, "LAMBDA_TASK_ROOT": str(task_root)}
    seen = []
    with rie.RieProcess(argv, env=env, function_timeout=FUNCTION_TIMEOUT, log_dir=str(tmp_path)) as r:
        for payload, client_context in invokes:
            headers = {}
            if client_context is not None:
                headers["X-Amz-Client-Context"] = base64.b64encode(
                    json.dumps(client_context).encode()
                ).decode()
            status, body, _ = r.invoke(json.dumps(payload).encode(), timeout=30, headers=headers)
            seen.append(_comparable(status, body))
    return seen


def through_emulator(argv, handler, task_root, invokes, tmp_path):
    settings = {**BASE_ENV, "_HANDLER": handler, "LAMBDA_TASK_ROOT": str(task_root)}
    seen = []
    with open(tmp_path / "emulator-runtime.log", "wb") as log:
        launch = subprocess_launcher(argv, settings, str(task_root), log, log)
        with RuntimeEmulator(launcher=launch, timeout=FUNCTION_TIMEOUT) as emu:
            for payload, client_context in invokes:
                inv = emu.invoke(payload, client_context=client_context).wait(30)
                seen.append(_comparable(RIE_STATUS[inv.outcome], inv.body))
    return seen


@pytest.mark.parametrize("runtime,name,handler,task_root,invokes", CASES)
def test_the_caller_and_the_runtime_see_what_they_see_under_the_rie(
    runtime, name, handler, task_root, invokes, tmp_path
):
    expected = through_rie(RUNTIMES[runtime], handler, task_root, invokes, tmp_path)
    got = through_emulator(RUNTIMES[runtime], handler, task_root, invokes, tmp_path)
    if name == "context":
        expected = [(s, _context_shape(json.loads(doc))) for s, doc in expected]
        got = [(s, _context_shape(json.loads(doc))) for s, doc in got]
    assert got == expected
