"""Tests of the Runtime API emulator (scripts/runtime_emulator.py) itself, so that an emulator bug is not
mistaken for a runtime bug. Plain http.client first; then the caller side with a real runtime."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
from runtime_emulator import (
    INIT_ERROR_PATH,
    INVOCATION_PREFIX,
    NEXT_PATH,
    PAYLOAD_LIMIT,
    STATUS_BODIES,
    RuntimeEmulator,
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
    assert a.body == b'"ok"' and a.reply_status == 202
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


def test_wait_for_times_out_with_description(fake_api):
    with pytest.raises(TimeoutError, match="an answer for request nope"):
        fake_api.wait_answer("nope", 0.2)
    with pytest.raises(TimeoutError, match="runtime exited"):
        fake_api.wait_for(1, 5, alive=lambda: False)
