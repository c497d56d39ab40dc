"""Fault injection at the Runtime API (scripts/runtime_emulator.py): for each fault, the runtime's reaction
(continue, answer with an error, or exit non-zero with a message), and the run's ledger: no event
answered twice, none delivered and left unanswered unless the runtime exited by design.

The decisions tested (bootstrap.py, README "Differences", contract "Our decisions" #2):
- a failure while connecting to or reading /next (refused, reset) is retried after 0.05, 0.2 and 0.5 s; a
  fourth failure: exit 2 with "cannot reach the Runtime API"; an event whose body is lost after its head
  (reset, truncated) is answered with Runtime.LambdaRuntimeClientError, then the loop goes on;
- any non-200 on /next, 500 on a post, a post whose reply is lost: exit 2 with the status or failure;
- 400/403/410 on a post: logged, the loop goes on; 413 on /response: an /error naming size and limit;
- an event without Lambda-Runtime-Aws-Request-Id: exit 2; a non-numeric deadline: deadline 0;
- bad client-context / cognito JSON: Runtime.LambdaContextUnmarshalError for that event, the loop goes on.

Tests that take a ``flavor`` also run under the frozen binary (marked build + slow).
"""

from __future__ import annotations

import json
import time

import pytest
from launch_helpers import assert_ledger, call, serve_ok
from runtime_emulator import Fault, RuntimeEmulator

NEXT_PATH = "/2018-06-01/runtime/invocation/next"


# -- connecting -------------------------------------------------------------


def test_refused_at_start_then_served(tmp_path, launch):
    """The port refuses connections for the first 0.4 s: the retries of /next (0.05/0.2/0.5 s) bridge it."""
    api = RuntimeEmulator()
    rt = launch("hostile.dispatch", api.address)
    api.start(listen_after=0.4)
    try:
        key = api.push_event(call("echo", {"v": 1}))
        answer = api.wait_answer(key, 15, alive=rt.alive)
        assert json.loads(answer.body) == {"v": 1}
        assert rt.alive()
        assert_ledger(api, rt)
    finally:
        api.stop()


def test_unreachable_exits_2_with_message(launch, flavor):
    """Nothing ever listens: after the bounded retries the runtime exits 2 and says why."""
    api = RuntimeEmulator()  # bound, never listening: connection refused
    try:
        started = time.monotonic()
        rt = launch("hostile.dispatch", api.address, flavor)
        rc = rt.run_until_exit(20)
        elapsed = time.monotonic() - started
        assert rc == 2, rt.diag()
        assert "cannot reach the Runtime API at %s" % api.address in rt.stdout, rt.diag()
        assert "refused" in rt.stdout.lower(), rt.diag()
        assert elapsed >= 0.75  # the three retry delays were waited
    finally:
        api.stop()


# -- reading /next ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["reset", "reset_mid_headers", "reset_after_headers", "truncate"])
def test_next_broken_then_retried(api, launch, kind):
    """A /next whose response breaks before its head is complete is asked again (no event was handed out).
    An event whose head arrived and whose body was lost has a known request id: it is answered with an error
    on a new connection, then the next event is served."""
    lost = api.push_event(call("echo", {"v": "lost"}))
    api.script_next(Fault(kind))
    rt = launch("hostile.dispatch", api.address)
    if kind in ("reset", "reset_mid_headers"):  # no event was handed out: the queued one is served next
        answer = api.wait_answer(lost, 15, alive=rt.alive)
        assert json.loads(answer.body) == {"v": "lost"}
    else:
        serve_ok(api, rt)
        assert api.invocation(lost).delivered == "partial"
        (answer,) = api.answers_for(lost)
        body = json.loads(answer.body)
        assert (answer.kind, answer.status, body["errorType"]) == (
            "error",
            202,
            "Runtime.LambdaRuntimeClientError",
        ), rt.diag()
        assert body["errorMessage"].startswith("the event body could not be read: "), body
        assert answer.headers["lambda-runtime-function-error-type"] == "Runtime.LambdaRuntimeClientError"
        assert "the event body could not be read" in rt.stdout, rt.diag()
    assert api.next_calls >= 2
    assert rt.alive()
    assert_ledger(api, rt)


@pytest.mark.parametrize("failures, survives", [(3, True), (4, False)])
def test_next_retry_limit(api, launch, flavor, failures, survives):
    """Three broken /next in a row are retried; a fourth ends the process with exit 2 and a message."""
    first = api.push_event(call("echo", {"v": "first"}))
    rt = launch("hostile.dispatch", api.address, flavor)
    api.wait_answer(first, 20, alive=rt.alive)
    api.script_next(*[Fault("reset") for _ in range(failures)])
    if survives:
        serve_ok(api, rt)
        assert rt.alive()
        assert_ledger(api, rt)
    else:
        assert rt.run_until_exit(15) == 2, rt.diag()
        assert "cannot reach the Runtime API" in rt.stdout, rt.diag()
        assert "ConnectionResetError" in rt.stdout or "closed the connection" in rt.stdout, rt.diag()
        assert_ledger(api, rt, exited=True)


@pytest.mark.parametrize("kind", ["stall", "stall_body"])
def test_next_stalls_then_answers(api, launch, kind):
    """/next may take seconds (the sandbox is frozen between events): the runtime waits, no timeout, no
    second /next, and answers the event."""
    api.script_next(Fault(kind, seconds=2.5))
    key = api.push_event(call("echo", {"v": "slow"}))
    rt = launch("hostile.dispatch", api.address)
    started = time.monotonic()
    answer = api.wait_answer(key, 20, alive=rt.alive)
    assert time.monotonic() - started >= 2.4
    assert json.loads(answer.body) == {"v": "slow"}
    assert api.invocation(key).delivered == "full"
    serve_ok(api, rt)
    api.wait_idle(10, alive=rt.alive)
    assert api.next_calls == 3  # the stalled one, the one for "after", the one now waiting: no extra retry
    assert_ledger(api, rt)


@pytest.mark.parametrize("status", [500, 403, 404])
def test_next_error_status_exits_2(api, launch, flavor, status):
    """A non-200 /next cannot be answered and must not be retried forever: exit 2, status in the log."""
    first = api.push_event(call("echo", {"v": "first"}))
    rt = launch("hostile.dispatch", api.address, flavor)
    api.wait_answer(first, 20, alive=rt.alive)
    api.script_next(Fault("status", status=status))
    assert rt.run_until_exit(15) == 2, rt.diag()
    assert "GET %s answered %d" % (NEXT_PATH, status) in rt.stdout, rt.diag()
    assert "LAMBDA_RUNTIME" in rt.stdout and "exiting" in rt.stdout
    assert_ledger(api, rt, exited=True)


# -- posting answers ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["response", "error"])
@pytest.mark.parametrize("status", [400, 403, 410])
def test_post_refused_4xx_logged_and_continues(api, launch, kind, status):
    """The invoke is already settled (unknown id, answered, timed out): log it, go on, post nothing more."""
    fn = "ok" if kind == "response" else "raise_message"
    api.script_post(kind, Fault("status", status=status))
    key = api.push_event(call(fn, {"message": "boom"}))
    rt = launch("hostile.dispatch", api.address)
    serve_ok(api, rt)
    assert [(a.kind, a.status) for a in api.answers_for(key)] == [(kind, status)]
    line = "the Runtime API refused the %s for %s with %d" % (kind, key, status)
    assert line in rt.stdout, rt.diag()
    assert rt.alive()
    assert_ledger(api, rt)


def test_response_413_then_error_naming_size_and_limit(api, launch):
    """413 on /response: an /error for that request says the size and the limit, then the loop goes on."""
    api.script_post("response", Fault("status", status=413))
    key = api.push_event(call("ok"))
    rt = launch("hostile.dispatch", api.address)
    serve_ok(api, rt)
    response, error = api.answers_for(key)
    assert (response.kind, response.status, error.kind) == ("response", 413, "error")
    body = json.loads(error.body)
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert body["requestId"] == key
    size = len(response.body)
    assert "(%d bytes)" % size in body["errorMessage"] and "(6291556 bytes)" in body["errorMessage"]
    assert error.headers["lambda-runtime-function-error-type"] == "Function.ResponseSizeTooLarge"
    assert "response of %d bytes refused (413)" % size in rt.stdout, rt.diag()
    assert_ledger(api, rt)


def test_real_oversized_response_413(api, launch):
    """A response really over 6291556 bytes: RAPID's 413, then the /error (refused 403 as RAPID does)."""
    key = api.push_event(call("ret_big_int", {"digits": 10}))  # warm-up
    rt = launch("hostile.dispatch", api.address)
    api.wait_answer(key, 15, alive=rt.alive)
    big = api.push_event(call("echo", {"s": "x" * (6 * 1024 * 1024 + 200)}))
    serve_ok(api, rt)
    assert [(a.kind, a.status) for a in api.answers_for(big)] == [("response", 413), ("error", 403)]
    assert "Response payload size" in json.loads(api.answers_for(big)[1].body)["errorMessage"]
    assert_ledger(api, rt)


def test_error_413_logged_and_continues(api, launch):
    api.script_post("error", Fault("status", status=413))
    key = api.push_event(call("raise_message", {"message": "boom"}))
    rt = launch("hostile.dispatch", api.address)
    serve_ok(api, rt)
    assert [(a.kind, a.status) for a in api.answers_for(key)] == [("error", 413)]
    assert "refused the error for %s with 413" % key in rt.stdout, rt.diag()
    assert_ledger(api, rt)


@pytest.mark.parametrize("kind", ["response", "error"])
def test_post_500_exits_2(api, launch, flavor, kind):
    fn = "ok" if kind == "response" else "raise_message"
    api.script_post(kind, Fault("status", status=500))
    key = api.push_event(call(fn, {"message": "boom"}))
    after = api.push_event(call("ok"))
    rt = launch("hostile.dispatch", api.address, flavor)
    assert rt.run_until_exit(15) == 2, rt.diag()
    assert "POST /invocation/%s/%s answered 500" % (key, kind) in rt.stdout, rt.diag()
    assert [(a.kind, a.status) for a in api.answers_for(key)] == [(kind, 500)]
    assert api.invocation(after).delivered == ""  # never taken
    assert_ledger(api, rt, exited=True)


@pytest.mark.parametrize("fault", ["reset", "truncate"])
@pytest.mark.parametrize("kind", ["response", "error"])
def test_post_reply_lost_exits_2_without_posting_again(api, launch, kind, fault):
    """The post may have arrived: sending it again could answer twice. Exit 2 with the failure instead."""
    fn = "ok" if kind == "response" else "raise_message"
    api.script_post(kind, Fault(fault))
    key = api.push_event(call(fn, {"message": "boom"}))
    rt = launch("hostile.dispatch", api.address)
    assert rt.run_until_exit(15) == 2, rt.diag()
    assert "POST /invocation/%s/%s failed" % (key, kind) in rt.stdout, rt.diag()
    assert len(api.answers_for(key)) == 1
    assert_ledger(api, rt, exited=True)


# -- /next headers ---------------------------------------------------------------


def test_missing_request_id_exits_2(api, launch, flavor):
    key = api.push_event(call("ok"), request_id=None)
    after = api.push_event(call("ok"))
    rt = launch("hostile.dispatch", api.address, flavor)
    assert rt.run_until_exit(15) == 2, rt.diag()
    assert "without Lambda-Runtime-Aws-Request-Id" in rt.stdout, rt.diag()
    assert api.answers_for(key) == [] and api.invocation(after).delivered == ""
    assert_ledger(api, rt, exited=True)


@pytest.mark.parametrize("deadline", ["soon", "", "1.5e12", "-", "12 34", None])
def test_non_numeric_deadline_is_zero(api, launch, deadline):
    """A deadline that is not an integer (or none at all) counts as 0: the context says 0 ms remain."""
    headers = [] if deadline is None else [("Lambda-Runtime-Deadline-Ms", deadline)]
    key = api.push_event(call("info"), deadline_ms=None, extra_headers=headers)
    rt = launch("hostile.dispatch", api.address)
    info = json.loads(api.wait_answer(key, 15, alive=rt.alive).body)
    assert (info["deadline"], info["remaining"]) == (0, 0)
    serve_ok(api, rt)
    assert_ledger(api, rt)


def test_non_ascii_header_values(api, launch):
    """UTF-8 header values arrive as text; bytes that are not UTF-8 as latin-1."""
    context = {"custom": {"name": "Zoë ☃ 日本"}}
    key = api.push_event(
        call("info"),
        extra_headers=[
            ("Lambda-Runtime-Client-Context", json.dumps(context, ensure_ascii=False)),
            ("Lambda-Runtime-Aws-Tenant-Id", "tenant-ü-☃"),
            ("Lambda-Runtime-Cognito-Identity", b'{"cognitoIdentityId": "id-\xe9"}'),  # latin-1 é
        ],
    )
    rt = launch("hostile.dispatch", api.address)
    info = json.loads(api.wait_answer(key, 15, alive=rt.alive).body)
    assert info["custom"] == {"name": "Zoë ☃ 日本"}
    assert info["tenant"] == "tenant-ü-☃"
    assert info["cognito"] == "id-é"
    serve_ok(api, rt)
    assert_ledger(api, rt)


@pytest.mark.parametrize(
    "header, what",
    [
        ("Lambda-Runtime-Client-Context", "Client Context"),
        ("Lambda-Runtime-Cognito-Identity", "Cognito Identity"),
    ],
)
@pytest.mark.parametrize("value", ["{not json", "", "\u00ff\u00fe", '{"a": 1'])
def test_invalid_json_context_headers(api, launch, header, what, value):
    """An unparsable client context or cognito identity fails that invocation, not the runtime. (An empty
    value means "none".)"""
    key = api.push_event(call("info"), extra_headers=[(header, value)])
    rt = launch("hostile.dispatch", api.address)
    answer = api.wait_answer(key, 15, alive=rt.alive)
    if value == "":
        assert answer.kind == "response"
    else:
        body = json.loads(answer.body)
        assert answer.kind == "error", body
        assert body["errorType"] == "Runtime.LambdaContextUnmarshalError"
        assert body["errorMessage"].startswith("Unable to parse %s JSON: " % what)
        assert answer.headers["lambda-runtime-function-error-type"] == "Runtime.LambdaContextUnmarshalError"
        assert "Unable to parse %s JSON" % what in rt.stdout
    serve_ok(api, rt)
    assert_ledger(api, rt)


# -- everything that continues, in one process ----------------------------------------


def test_gauntlet_one_process(api, launch):
    """Every fault the runtime survives, one after another in one process; then the whole ledger."""
    rt = launch("hostile.dispatch", api.address)
    expected = {}

    def run(fn, event=None, **push):
        key = api.push_event(call(fn, event), **push)
        expected[key] = api.wait_answers(key, 1, 20, alive=rt.alive)
        return key

    run("echo", {"v": 0})
    for kind in ("reset", "reset_mid_headers", "reset_after_headers", "truncate"):
        if kind in ("reset_after_headers", "truncate"):
            api.push_event(call("echo", {"lost": kind}))
        api.script_next(Fault(kind))
        run("echo", {"v": kind})
    api.script_next(Fault("reset"), Fault("reset"), Fault("reset"))
    run("echo", {"v": "three resets"})
    api.script_next(Fault("stall_body", seconds=0.5))
    run("echo", {"v": "stalled"})
    for kind, fn in (("response", "ok"), ("error", "raise_message")):
        for status in (400, 403, 410, 413):
            api.script_post(kind, Fault("status", status=status))
            run(fn, {"message": "m"})
    run("info", deadline_ms="soon")
    run("info", extra_headers=[("Lambda-Runtime-Client-Context", "{bad")])
    run("info", extra_headers=[("Lambda-Runtime-Cognito-Identity", "{bad")])
    run("info", extra_headers=[("Lambda-Runtime-Aws-Tenant-Id", "ü")])
    last = serve_ok(api, rt, "end")
    api.wait_idle(10, alive=rt.alive)
    assert rt.alive()
    assert_ledger(api, rt)
    # every event handed out was answered; the two whose body was lost, with an error
    partial = [e for e in api.ledger.values() if e.delivered == "partial"]
    assert len(partial) == 2 and all([a.kind for a in e.answers] == ["error"] for e in partial)
    assert api.invocation(last).answers[0].status == 202
