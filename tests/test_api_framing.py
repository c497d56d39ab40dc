"""How the runtime frames the Runtime API's answers (bootstrap.KeepAliveConnection), against the raw-socket
emulator (scripts/runtime_emulator.py): what a well-formed but unusual answer must still give (interim 1xx
answers, `Connection: close`, a chunked `/next` body), what a malformed one must give (a clear message and
exit 2, never a hang), and what becomes of an event whose body is lost after its head arrived (it is answered
with an error, since its request id is known)."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import proc_status_kib
from launch_helpers import assert_ledger, call, serve_ok
from runtime_emulator import Fault

NEXT_PATH = "/2018-06-01/runtime/invocation/next"


# -- well-formed answers the runtime must read --------------------------------------------------------------


def test_interim_1xx_answers_are_skipped(api, launch):
    """`100 Continue` and `102 Processing` (with a header) come before the real answer: skipped, not taken
    for it (a runtime that took the 100 as /next's status would exit 2)."""
    api.script_next(Fault("interim"))
    key = api.push_event(call("echo", {"v": "after interim"}))
    rt = launch("hostile.dispatch", api.address)
    answer = api.wait_answer(key, 15, alive=rt.alive)
    assert (answer.kind, json.loads(answer.body)) == ("response", {"v": "after interim"}), rt.diag()
    serve_ok(api, rt)
    assert_ledger(api, rt)


def test_connection_close_from_the_api_is_honoured(api, launch):
    """/next answers with `Connection: close` and closes: the /response must go on a new connection. Posting
    on the closed one would fail, and a failed post ends the process (it is never sent twice)."""
    api.script_next(Fault("close"))
    key = api.push_event(call("echo", {"v": "closed after"}))
    rt = launch("hostile.dispatch", api.address)
    answer = api.wait_answer(key, 15, alive=rt.alive)
    assert (answer.kind, answer.status) == ("response", 202), rt.diag()
    serve_ok(api, rt)
    assert rt.alive()
    assert_ledger(api, rt)


@pytest.mark.parametrize("size", [10, 100_000])
def test_chunked_next_body(api, launch, size):
    """The RIE sends large events chunked: chunks with extensions and a trailer make up the whole body."""
    api.script_next(Fault("chunked"))
    text = "".join(chr(0x41 + i % 26) for i in range(size))
    key = api.push_event(call("echo", {"text": text}))
    rt = launch("hostile.dispatch", api.address)
    answer = api.wait_answer(key, 15, alive=rt.alive)
    assert (answer.kind, json.loads(answer.body)) == ("response", {"text": text}), rt.diag()
    serve_ok(api, rt)
    assert_ledger(api, rt)


# -- malformed answers: a clear message, exit 2 --------------------------------------------------------------

EVENT_HEAD = (
    b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: rid-bad\r\nContent-Type: application/json\r\n"
)

MALFORMED = {
    "negative length": (EVENT_HEAD + b"Content-Length: -1\r\n\r\n{}", "Content-Length"),
    "signed length": (EVENT_HEAD + b"Content-Length: +2\r\n\r\n{}", "Content-Length"),
    "underscored length": (EVENT_HEAD + b"Content-Length: 0_2\r\n\r\n{}", "Content-Length"),
    "duplicate length": (EVENT_HEAD + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", "Content-Length"),
    "no length nor chunking": (EVENT_HEAD + b"\r\n{}", "neither Content-Length nor chunked"),
    "folded header": (EVENT_HEAD + b"X-Long: a\r\n  folded\r\nContent-Length: 2\r\n\r\n{}", "folded"),
    "colon-less header": (EVENT_HEAD + b"NoColonHere\r\nContent-Length: 2\r\n\r\n{}", "no colon"),
    "status line": (b"HTTP/1.1 OK\r\nContent-Length: 2\r\n\r\n{}", "status line"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_next_answer_exits_2_with_a_message(api, launch, name):
    """The connection stays open after the answer (30 s): a runtime that waits for more never exits."""
    raw, detail = MALFORMED[name]
    api.script_next(Fault("raw", body=raw, seconds=30))
    rt = launch("hostile.dispatch", api.address)
    assert rt.run_until_exit(10) == 2, rt.diag()
    assert "GET %s: the Runtime API's answer cannot be read" % NEXT_PATH in rt.stdout, rt.diag()
    assert detail in rt.stdout, rt.diag()
    assert api.next_calls == 1, "a malformed answer is not a connection error: not asked again"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_a_huge_content_length_reserves_nothing_and_the_event_is_answered(api, launch):
    """A Content-Length of 1 GiB, half a small body, then nothing for 2 s: the runtime must not reserve the
    announced size before the bytes arrive; when the body ends early, the event is answered with an error."""
    rt = launch("hostile.dispatch", api.address)
    serve_ok(api, rt, "warm")
    before = proc_status_kib(rt.pid, "VmSize")
    api.script_next(Fault("huge_length", seconds=2.0))
    key = api.push_event(call("echo", {"v": "x" * 1000}))
    api.wait_for(lambda: api.invocation(key).delivered, 10, "the head to be sent", rt.alive)
    time.sleep(0.5)
    grown_mib = (proc_status_kib(rt.pid, "VmSize") - before) / 1024
    assert grown_mib < 64, "the runtime reserved %.0f MiB for a body that has not arrived" % grown_mib
    answer = api.wait_answer(key, 15, alive=rt.alive)
    assert answer.kind == "error", rt.diag()
    body = json.loads(answer.body)
    assert body["errorType"] == "Runtime.LambdaRuntimeClientError"
    assert body["errorMessage"].startswith("the event body could not be read: "), body
    serve_ok(api, rt)
    assert_ledger(api, rt)
