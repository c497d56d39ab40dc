"""Integration tests: how the runtime reacts when the Runtime API answers with an
error (contract §3g, §6 and Our decisions #2), and to SIGTERM."""

from __future__ import annotations

import signal

import pytest
from runtime_emulator import PAYLOAD_LIMIT as RAPID_PAYLOAD_LIMIT

OVERSIZE = RAPID_PAYLOAD_LIMIT + 10_000  # characters of the returned string


@pytest.mark.parametrize("error_status", [202, 403])
def test_oversized_response_413_then_continue_ours(fake_api, runtime, ours, error_status):
    """Ours only (Our decisions #2): a /response answered 413 is logged; ours then posts
    an /error for that request naming the size and the limit (the fake answers it
    202 or 403), and goes on to the next event in the same process."""
    fake_api.after_413_error_status = error_status
    big = fake_api.push_event({"fn": "big_response", "event": {"n": OVERSIZE}})
    nxt = fake_api.push_event({"fn": "echo", "event": {"after": "413"}})
    rt = runtime("app.dispatch", ours)
    nxt_answer = fake_api.wait_answer(nxt, 30, alive=rt.alive)
    assert nxt_answer.kind == "response" and nxt_answer.json() == {"after": "413"}, rt.diag()

    posts = fake_api.answers_for(big)
    assert [p.kind for p in posts] == ["response", "error"], posts
    resp, err = posts
    assert resp.status == 413
    size = len(resp.body)
    assert size > RAPID_PAYLOAD_LIMIT
    body = err.json()
    assert body["requestId"] == big
    assert str(size) in body["errorMessage"], body
    assert str(RAPID_PAYLOAD_LIMIT) in body["errorMessage"], body
    assert err.status == error_status
    assert "413" in rt.output, rt.diag()
    assert rt.alive()


def test_oversized_response_413_ric_crashes(fake_api, runtime, ric):
    """Reference behaviour (documented difference): awslambdaric exits when /response
    is answered 413, so the next invocation is never served by this process."""
    big = fake_api.push_event({"fn": "big_response", "event": {"n": OVERSIZE}})
    nxt = fake_api.push_event({"fn": "echo", "event": {}})
    rt = runtime("app.dispatch", ric)
    rc = rt.run_until_exit(30)
    assert rc != 0
    assert [p.status for p in fake_api.answers_for(big)] == [413]
    assert fake_api.answers_for(nxt) == []
    assert "413" in rt.output


def test_next_500_exits_nonzero(fake_api, runtime, both):
    """A 500 on /next ends the process non-zero with a message naming the status."""
    ok = fake_api.push_event({"fn": "echo", "event": {}})
    rt = runtime("app.dispatch", both)
    fake_api.wait_answer(ok, alive=rt.alive)
    fake_api.script_next(500)
    rc = rt.run_until_exit(15)
    assert rc != 0, rt.diag()
    assert "500" in rt.output, rt.diag()


def test_response_500_exits_nonzero(fake_api, runtime, both):
    """A 500 on /response means "container error, exit promptly": non-zero exit."""
    rid = fake_api.push_event({"fn": "echo", "event": {}})
    fake_api.script_post("response", 500, request_id=rid)
    rt = runtime("app.dispatch", both)
    rc = rt.run_until_exit(15)
    assert rc != 0, rt.diag()
    assert "500" in rt.output, rt.diag()


def test_error_500_exits_nonzero_ours(fake_api, runtime, ours):
    """Ours: a 500 on /error also ends the process non-zero (Our decisions #2)."""
    rid = fake_api.push_event({"fn": "raises", "event": {}})
    fake_api.script_post("error", 500, request_id=rid)
    rt = runtime("app.dispatch", ours)
    rc = rt.run_until_exit(15)
    assert rc != 0, rt.diag()
    assert "500" in rt.output


def test_init_error_answered_403_still_exits_1(fake_api, runtime, both):
    """However /init/error is answered, an init failure ends in a non-zero exit."""
    fake_api.script_post("init_error", 403, request_id=None)
    rt = runtime("app.nope", both)
    rc = rt.run_until_exit(15)
    assert rc != 0
    assert len(fake_api.init_errors) == 1


def test_posts_answered_4xx_are_logged_and_loop_continues_ours(fake_api, runtime, ours):
    """Ours only (Our decisions #2): /response answered 400 or 410 and /error answered 403
    are logged and the loop goes on to the next event (awslambdaric exits)."""
    r400 = fake_api.push_event({"fn": "echo", "event": {"n": 1}})
    r403 = fake_api.push_event({"fn": "raises", "event": {}})
    r410 = fake_api.push_event({"fn": "echo", "event": {"n": 3}})
    ok = fake_api.push_event({"fn": "echo", "event": {"n": 4}})
    fake_api.script_post("response", 400, request_id=r400)
    fake_api.script_post("error", 403, request_id=r403)
    fake_api.script_post("response", 410, request_id=r410)
    rt = runtime("app.dispatch", ours)
    final = fake_api.wait_answer(ok, 15, alive=rt.alive)
    assert final.kind == "response" and final.json() == {"n": 4}
    assert final.status == 202
    for rid, kind, status in ((r400, "response", 400), (r403, "error", 403), (r410, "response", 410)):
        posts = fake_api.answers_for(rid)
        assert [(p.kind, p.status) for p in posts] == [(kind, status)], posts
    out = rt.output
    for status in ("400", "403", "410"):
        assert status in out, rt.diag()
    assert rt.alive()


def test_posts_answered_4xx_ric_exits(fake_api, runtime, ric):
    """Reference behaviour (documented difference): awslambdaric exits on a 400."""
    r400 = fake_api.push_event({"fn": "echo", "event": {}})
    ok = fake_api.push_event({"fn": "echo", "event": {}})
    fake_api.script_post("response", 400, request_id=r400)
    rt = runtime("app.dispatch", ric)
    assert rt.run_until_exit(15) != 0
    assert fake_api.answers_for(ok) == []


def test_sigterm_while_idle_exits_0_ours(fake_api, runtime, ours):
    """Ours only: SIGTERM while blocked in /next (idle, between invocations) exits 0."""
    rid = fake_api.push_event({"fn": "echo", "event": {}})
    rt = runtime("app.dispatch", ours)
    fake_api.wait_answer(rid, alive=rt.alive)
    fake_api.wait_idle(10, alive=rt.alive)
    rt.send_signal(signal.SIGTERM)
    rc = rt.run_until_exit(10)
    assert rc == 0, rt.diag()


def test_sigterm_before_first_event_exits_0_ours(fake_api, runtime, ours):
    """Ours only: SIGTERM while waiting for the very first event also exits 0."""
    rt = runtime("app.dispatch", ours)
    fake_api.wait_idle(10, alive=rt.alive)
    rt.send_signal(signal.SIGTERM)
    assert rt.run_until_exit(10) == 0, rt.diag()


@pytest.mark.parametrize("code", [0, 3])
def test_sys_exit_in_handler_exit_code(fake_api, runtime, both, code):
    """sys.exit(n) in the handler ends the process with code n (the platform then
    reports Runtime.ExitError), as in awslambdaric (contract §3f)."""
    fake_api.push_event({"fn": "exits", "event": {"code": code}})
    rt = runtime("app.dispatch", both)
    assert rt.run_until_exit(15) == code, rt.diag()
    assert fake_api.init_errors == []


def test_sys_exit_in_handler_posts_nothing_in_awslambdaric(fake_api, runtime, ric):
    """awslambdaric does not catch SystemExit: nothing is posted for the invocation (contract §3f)."""
    rid = fake_api.push_event({"fn": "exits", "event": {"code": 3}})
    rt = runtime("app.dispatch", ric)
    assert rt.run_until_exit(15) == 3, rt.diag()
    assert fake_api.answers_for(rid) == []


def test_sys_exit_in_handler_is_answered_then_exits_ours(fake_api, runtime, ours):
    """Ours goes further: the event taken from /next is answered (error type SystemExit, header
    Runtime.ExitError) before the process exits with the code the handler asked for."""
    rid = fake_api.push_event({"fn": "exits", "event": {"code": 3}})
    rt = runtime("app.dispatch", ours)
    assert rt.run_until_exit(15) == 3, rt.diag()
    (answer,) = fake_api.answers_for(rid)
    assert answer.kind == "error"
    assert answer.json()["errorType"] == "SystemExit"
    assert answer.json()["errorMessage"] == "3"
    assert answer.headers.get("Lambda-Runtime-Function-Error-Type") == "Runtime.ExitError"
