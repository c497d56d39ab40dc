"""Response streaming (beyond awslambdaric): a handler that returns a generator, an async generator or a
bootstrap.StreamingResponse / HttpStreamingResponse has its output posted as it is produced, chunked, with
mid-stream failures in HTTP trailers. Against the recording fake Runtime API, then under the RIE."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import sys
import threading
import time

import pytest
from conftest import HANDLERS_DIR, proc_status_kib

sys.path.insert(0, str(HANDLERS_DIR))
MIB = 1024 * 1024
TRAILER_NAMES = {"lambda-runtime-function-error-type", "lambda-runtime-function-error-body"}


def _stream(fake_api, proc, event, timeout=15.0, **push):
    rid = fake_api.push_event(event, **push)
    answer = fake_api.wait_answer(rid, timeout, alive=proc.alive)
    return rid, answer


def _declared_trailers(req):
    return {name.strip().lower() for name in (req.headers.get("Trailer") or "").split(",") if name.strip()}


def test_generator_is_streamed_with_the_documented_headers(fake_api, runtime, ours):
    proc = runtime("streaming.pieces", ours)
    rid, a = _stream(fake_api, proc, {"chunks": ["hello ", "wörld", "!"]}, invocation_id="inv-7")
    assert a.kind == "response" and a.status == 202, fake_api.describe()
    assert a.chunked, "a streamed response must be chunked"
    assert a.headers.get("Lambda-Runtime-Function-Response-Mode") == "streaming"
    assert a.headers.get("Transfer-Encoding", "").lower() == "chunked"
    assert "Content-Length" not in a.headers
    assert a.headers.get("Content-Type") == "application/octet-stream"
    assert _declared_trailers(a) == TRAILER_NAMES  # declared up front, as the platform requires
    assert a.headers.get("Lambda-Runtime-Invocation-Id") == "inv-7"
    assert a.body == "hello wörld!".encode()
    assert [c.size for c in a.chunks] == [6, 6, 1]  # one HTTP chunk per yielded piece
    assert a.trailers is not None and len(a.trailers.items) == 0  # success: no error trailers
    assert len(fake_api.answers_for(rid)) == 1


def test_bytes_chunks_and_the_loop_goes_on(fake_api, runtime, ours):
    proc = runtime("streaming.pieces", ours)
    _, a = _stream(fake_api, proc, {"chunks": ["\x00\x01", "\xff"], "as": "bytes"})
    assert a.body == "\x00\x01\xff".encode()
    # The connection that carried the stream is closed; the next /next comes on a new one.
    _, b = _stream(fake_api, proc, {"chunks": ["again"]})
    assert b.body == b"again"
    later_next = [r for r in fake_api.of_kind("next") if r.seq > a.seq]
    assert later_next and later_next[0].conn != a.conn, fake_api.describe()


def test_chunks_reach_the_api_as_they_are_yielded(fake_api, runtime, ours):
    """Recorded arrival times show the handler's sleeps between chunks."""
    proc = runtime("streaming.pieces", ours)
    _, a = _stream(fake_api, proc, {"chunks": ["a", "b", "c", "d"], "sleep": 0.3})
    assert a.body == b"abcd" and len(a.chunks) == 4, a
    gaps = [later.at - earlier.at for earlier, later in zip(a.chunks, a.chunks[1:])]
    assert all(g >= 0.25 for g in gaps), gaps
    assert a.chunks[0].at - a.started_at < 0.25, "the first chunk went out with the head"


def test_first_chunk_arrives_before_the_handler_produces_the_second(fake_api, runtime, ours, tmp_path):
    """The handler waits for a file that the test creates only once the fake holds the first chunk: a runtime
    that buffered the stream would deadlock here until the handler gives up."""
    gate = tmp_path / "gate"
    proc = runtime("streaming.gated", ours)
    rid = fake_api.push_event({"gate": str(gate)})
    partial = fake_api.wait_chunks(rid, 1, timeout=10, alive=proc.alive)
    assert not partial.complete, "the stream ended before the gate opened"
    assert partial.body == b"" and partial.size == 5  # "first", while the body is still open
    gate.touch()
    a = fake_api.wait_answer(rid, 10, alive=proc.alive)
    assert a.body == b"firstsecond", a


def test_async_generator_is_streamed(fake_api, runtime, ours):
    proc = runtime("streaming.async_pieces", ours)
    _, a = _stream(fake_api, proc, {"chunks": ["x", "y", "z"], "sleep": 0.2})
    assert a.body == b"xyz" and a.status == 202
    gaps = [later.at - earlier.at for earlier, later in zip(a.chunks, a.chunks[1:])]
    assert len(gaps) == 2 and all(g >= 0.15 for g in gaps), gaps


def test_async_handler_returning_async_generator(fake_api, runtime, ours):
    proc = runtime("streaming.async_handler_returning_generator", ours)
    _, a = _stream(fake_api, proc, {"chunks": ["1", "2"]})
    assert a.chunked and a.body == b"12"


def test_midstream_failure_goes_in_trailers_not_in_the_body(fake_api, runtime, ours):
    proc = runtime("streaming.fails_midstream", ours)
    rid, a = _stream(fake_api, proc, {"after": 2})
    assert a.kind == "response" and a.chunked
    assert a.body == b"c0c1", "nothing of the error may be written into the body: %r" % a.body
    assert _declared_trailers(a) == TRAILER_NAMES
    assert a.trailers is not None
    assert a.trailers.get("Lambda-Runtime-Function-Error-Type") == "Function.ValueError"
    error = json.loads(base64.b64decode(a.trailers["Lambda-Runtime-Function-Error-Body"], validate=True))
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "mid-stream failure"
    assert error["requestId"] == rid
    assert any("fails_midstream" in line or "streaming.py" in line for line in error["stackTrace"]), error
    # the runtime's own frames (bootstrap.py, lambda_bootstrap/streaming.py) are not the user's
    assert not any("bootstrap.py" in line or "lambda_bootstrap" in line for line in error["stackTrace"]), (
        error
    )
    assert fake_api.answers_for(rid) == [a], "no /error may follow a stream that has begun"
    # logged like any invocation error, and the runtime takes the next event
    proc.wait_output("mid-stream failure", 5)
    _, b = _stream(fake_api, proc, {"after": 1})
    assert b.body == b"c0" and b.trailers.get("Lambda-Runtime-Function-Error-Type") == "Function.ValueError"
    # failing before the first chunk: nothing was sent yet, so it is an ordinary /error
    _, c = _stream(fake_api, proc, {"after": 0})
    assert c.kind == "error" and c.headers.get("Lambda-Runtime-Function-Error-Type") == "Function.ValueError"


def _trailer_section_bytes(a):
    """What the trailers take on the wire: each `name: value` line, then the blank line."""
    return sum(len(("%s: %s\r\n" % pair).encode()) for pair in a.trailers.items) + 2


@pytest.mark.parametrize(
    "depth, size, whole",
    [(3, 1000, True), (200, 5000, False), (3, 100_000, False)],
    ids=["fits", "deep-and-long", "very-long-message"],
)
def test_a_midstream_error_always_fits_the_trailers(fake_api, runtime, ours, depth, size, whole):
    """RAPID reads trailers through a 4 KiB buffer and resets the connection beyond it (the fake does the
    same). The error in the trailers is cut to fit, the stack trace first, then the message; the log keeps all
    of it; the runtime goes on."""
    proc = runtime("streaming.fails_midstream_at_depth", ours)
    rid, a = _stream(fake_api, proc, {"depth": depth, "message_size": size})
    assert not a.trailer_refused and a.status == 202, (_trailer_section_bytes(a), proc.diag())
    assert _trailer_section_bytes(a) <= 4096
    assert a.trailers.get("Lambda-Runtime-Function-Error-Type") == "Function.ValueError"
    error = json.loads(base64.b64decode(a.trailers["Lambda-Runtime-Function-Error-Body"], validate=True))
    assert (error["errorType"], error["requestId"]) == ("ValueError", rid)
    full = ("m0123456789" * (size // 11 + 1))[:size]
    if whole:
        assert error["errorMessage"] == full
        assert len(error["stackTrace"]) >= depth
    else:
        assert full.startswith(error["errorMessage"]) and len(error["errorMessage"]) < size
        assert len(error["stackTrace"]) <= 1, "the stack trace is cut before the message"
    proc.wait_output(full, 5)  # the log has the whole message
    _, b = _stream(fake_api, proc, {"depth": 1, "message_size": 5})  # the runtime lives on
    assert b.status == 202 and b.body == b"c0"


def test_a_failure_after_the_last_chunk_does_not_end_the_process(fake_api, runtime, ours):
    """The whole stream was written; then the API refuses the trailers and closes the connection without an
    answer. Nothing can be posted again for that event: log it, reconnect, take the next event."""
    fake_api.trailer_limit = 10  # refuses any error trailers
    proc = runtime("streaming.fails_midstream", ours)
    rid, a = _stream(fake_api, proc, {"after": 1})
    assert a.trailer_refused and a.body == b"c0"
    proc.wait_output("the streamed response for %s was sent" % rid, 5)
    _, b = _stream(fake_api, proc, {"after": 0})  # an ordinary error, on a new connection
    assert b.kind == "error" and b.conn != a.conn, fake_api.describe()
    assert proc.alive() and len(fake_api.answers_for(rid)) == 1


@pytest.mark.parametrize(
    "how, code, error_type",
    [
        ("exit", 3, "SystemExit"),
        ("interrupt", None, "KeyboardInterrupt"),
        ("generator_exit", None, "GeneratorExit"),
    ],
)
def test_leaving_inside_a_streamed_body_ends_the_stream_then_the_process(
    fake_api, runtime, ours, how, code, error_type
):
    """SystemExit, KeyboardInterrupt or GeneratorExit after the first chunk: the stream still ends properly (last
    chunk, error trailers with header type Runtime.ExitError, as for a handler that exits), then the process
    ends as asked."""
    proc = runtime("streaming.exits_midstream", ours)
    rid, a = _stream(fake_api, proc, {"how": how, "code": code})
    assert a.complete and a.body == b"c0", proc.diag()
    assert a.trailers.get("Lambda-Runtime-Function-Error-Type") == "Runtime.ExitError"
    error = json.loads(base64.b64decode(a.trailers["Lambda-Runtime-Function-Error-Body"]))
    assert (error["errorType"], error["requestId"]) == (error_type, rid)
    rc = proc.run_until_exit(10)
    assert rc == code if code is not None else rc != 0, proc.diag()
    assert fake_api.answers_for(rid) == [a]


def test_a_content_type_that_would_forge_a_header_is_an_error(fake_api, runtime, ours):
    proc = runtime("streaming.bad_content_type", ours)
    _, a = _stream(fake_api, proc, {})
    assert a.kind == "error" and a.json()["errorType"] == "ValueError", fake_api.describe()
    assert "X-Injected" not in a.headers
    _, b = _stream(fake_api, proc, {})
    assert b.kind == "error"


def test_failure_before_the_first_chunk_is_an_ordinary_error(fake_api, runtime, ours):
    proc = runtime("streaming.fails_at_once", ours)
    rid, a = _stream(fake_api, proc, {})
    assert a.kind == "error", fake_api.describe()
    assert a.headers.get("Lambda-Runtime-Function-Error-Type") == "Function.KeyError"
    assert a.json()["errorType"] == "KeyError"
    assert fake_api.answers_for(rid) == [a]


def _marshal_error_for_chunk(position):
    return (
        "Unable to marshal response: streamed chunk %d (counting from 1) is of type int, not bytes or str"
        % (position)
    )


def test_a_chunk_that_is_not_bytes_or_str_ends_the_stream_with_a_marshal_error(fake_api, runtime, ours):
    """After the first chunk: the trailers carry Runtime.MarshalError, naming the type and the chunk's
    position, with no stack trace (the runtime's own frames say nothing about the handler)."""
    proc = runtime("streaming.bad_chunk", ours)
    rid, a = _stream(fake_api, proc, {"good": 2})
    assert a.body == b"okok"
    assert a.trailers is not None
    assert a.trailers.get("Lambda-Runtime-Function-Error-Type") == "Runtime.MarshalError"
    error = json.loads(base64.b64decode(a.trailers["Lambda-Runtime-Function-Error-Body"]))
    assert error == {
        "errorMessage": _marshal_error_for_chunk(3),
        "errorType": "Runtime.MarshalError",
        "requestId": rid,
        "stackTrace": [],
    }
    assert fake_api.answers_for(rid) == [a]
    proc.wait_output("[ERROR] Runtime.MarshalError: " + _marshal_error_for_chunk(3), 5, "stdout")
    assert "bootstrap.py" not in proc.stdout, proc.stdout


def test_a_first_chunk_that_is_not_bytes_or_str_is_a_marshal_error(fake_api, runtime, ours):
    """Before the first chunk nothing was sent: an ordinary /error, Runtime.MarshalError, as for a result that
    cannot be encoded; then the runtime takes the next event."""
    proc = runtime("streaming.bad_chunk", ours)
    rid, a = _stream(fake_api, proc, {"good": 0})
    assert a.kind == "error", fake_api.describe()
    assert a.headers.get("Lambda-Runtime-Function-Error-Type") == "Runtime.MarshalError"
    assert a.json() == {
        "errorMessage": _marshal_error_for_chunk(1),
        "errorType": "Runtime.MarshalError",
        "requestId": rid,
        "stackTrace": [],
    }
    cause = json.loads(a.headers["Lambda-Runtime-Function-XRay-Error-Cause"])
    assert cause["exceptions"] == [
        {"message": _marshal_error_for_chunk(1), "type": "LambdaValidationError", "stack": []}
    ]
    assert cause["paths"] == []
    assert fake_api.answers_for(rid) == [a]
    proc.wait_output("[ERROR] Runtime.MarshalError: " + _marshal_error_for_chunk(1), 5, "stdout")
    assert "bootstrap.py" not in proc.stdout, proc.stdout
    _, b = _stream(fake_api, proc, {"good": 1})
    assert b.kind == "response" and b.body == b"ok"


def test_empty_chunks_do_not_end_the_body(fake_api, runtime, ours):
    proc = runtime("streaming.with_empty_chunks", ours)
    _, a = _stream(fake_api, proc, {})
    assert a.body == b"ab" and a.status == 202


def test_empty_generator_is_an_empty_stream(fake_api, runtime, ours):
    proc = runtime("streaming.empty_generator", ours)
    _, a = _stream(fake_api, proc, {})
    assert a.chunked and a.body == b"" and a.status == 202


def test_streaming_response_sets_the_content_type(fake_api, runtime, ours):
    proc = runtime("streaming.custom_type", ours)
    _, a = _stream(fake_api, proc, {})
    assert a.headers.get("Content-Type") == "text/csv"
    assert a.headers.get("Lambda-Runtime-Function-Response-Mode") == "streaming"
    assert a.body == b"x,y\n1,2\n"


def test_the_prelude_and_its_nuls_are_http_chunks_of_their_own_before_the_body():
    """The exact bytes of a streamed /response: the prelude's JSON, then the eight NULs, each one HTTP
    chunk, then one chunk per body piece. A server here records them and answers 202."""
    import bootstrap
    from lambda_bootstrap.runtime_api import Invocation

    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def record():
        conn, _ = server.accept()
        with conn:
            while not received.endswith(b"\r\n0\r\n\r\n"):
                data = conn.recv(65536)
                if not data:
                    return
                received.extend(data)
            conn.sendall(b'HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\n\r\n{"status":"OK"}')

    thread = threading.Thread(target=record, daemon=True)
    thread.start()
    response = bootstrap.HttpStreamingResponse(iter([b"one", "two!"]), 201, {"x": "y"}, ["c=1"])
    stream = bootstrap.OutgoingStream(response, "rid-1")
    client = bootstrap.RuntimeApiClient("127.0.0.1:%d" % server.getsockname()[1])
    status, _ = client.post_stream(Invocation({"lambda-runtime-aws-request-id": "rid-1"}, b""), stream)
    thread.join(10)
    server.close()
    assert status == 202
    prelude = b'{"statusCode": 201, "headers": {"x": "y"}, "cookies": ["c=1"]}'
    body = bytes(received).split(b"\r\n\r\n", 1)[1]
    assert body == b"%X\r\n%s\r\n8\r\n%s\r\n3\r\none\r\n4\r\ntwo!\r\n0\r\n\r\n" % (
        len(prelude),
        prelude,
        b"\0" * 8,
    )


def test_http_integration_prelude(fake_api, runtime, ours):
    proc = runtime("streaming.http_response", ours)
    _, a = _stream(fake_api, proc, {})
    assert a.headers.get("Content-Type") == "application/vnd.awslambda.http-integration-response"
    prelude, sep, payload = a.body.partition(b"\0" * 8)
    assert sep, "the prelude must end with 8 NUL bytes: %r" % a.body
    assert json.loads(prelude) == {
        "statusCode": 201,
        "headers": {"content-type": "text/html", "x-custom": "yes"},
        "cookies": ["a=1; Path=/", "b=2"],
    }
    assert payload == b"<html></html>"
    # the prelude and its NULs travel before the first chunk, each an HTTP chunk of its own (cargo-lambda
    # needs that; Lambda reads the bytes), not held back until the end
    assert [c.size for c in a.chunks] == [len(prelude), 8, len(b"<html>"), len(b"</html>")]


def test_stream_over_6_mb_is_not_refused(fake_api, runtime, ours):
    fake_api.keep_body_bytes = 64
    proc = runtime("streaming.big", ours)
    _, a = _stream(fake_api, proc, {"mib": 8}, timeout=30)
    assert a.status == 202 and a.size == 8 * MIB, a


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_100_mb_stream_in_flat_memory(fake_api, runtime, ours):
    """The runtime's peak memory after streaming 100 MiB is within 20 MiB of its peak after 1 MiB."""
    import streaming  # the handler module, for the expected bytes

    fake_api.keep_body_bytes = 4096  # the fake keeps sizes and a hash, not 100 MiB
    proc = runtime("streaming.big", ours)
    _, small = _stream(fake_api, proc, {"mib": 1}, timeout=30)
    assert small.status == 202 and small.size == MIB
    after_small = proc_status_kib(proc.pid, "VmHWM")
    t0 = time.monotonic()
    _, a = _stream(fake_api, proc, {"mib": 100}, timeout=120)
    elapsed = time.monotonic() - t0
    after_big = proc_status_kib(proc.pid, "VmHWM")
    assert a.status == 202, a
    assert a.size == 100 * MIB and len(a.chunks) == 100 and a.truncated
    expected = hashlib.sha256()
    for i in range(100):
        expected.update(streaming.chunk_of(i))
    assert a.sha256 == expected.hexdigest()
    growth = (after_big - after_small) / 1024
    assert growth < 20, "peak memory grew by %.1f MiB streaming 100 MiB (%.1fs)" % (growth, elapsed)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_a_200_mib_chunk_is_sent_without_a_copy(fake_api, runtime, ours):
    """One yielded chunk of 200 MiB: the runtime's peak memory grows by the chunk the handler made, not by a
    second, framed copy of it (which took the peak to 436 MB)."""
    fake_api.keep_body_bytes = 64
    proc = runtime("streaming.one_chunk", ours)
    _, small = _stream(fake_api, proc, {"mib": 1}, timeout=30)
    assert small.status == 202 and small.size == MIB
    before = proc_status_kib(proc.pid, "VmHWM")
    _, a = _stream(fake_api, proc, {"mib": 200}, timeout=120)
    assert a.status == 202 and a.size == 200 * MIB and len(a.chunks) == 1, a
    growth = (proc_status_kib(proc.pid, "VmHWM") - before) / 1024
    print("peak memory: %.0f MiB before, grew by %.0f MiB for one 200 MiB chunk" % (before / 1024, growth))
    assert growth < 260, "peak memory grew by %.0f MiB for one 200 MiB chunk: it was copied" % growth


# --- under the RIE ------------------------------------------------------------------------------------------
# What the RIE (aws-sam-cli 1.170.0) does with a streamed response: it accepts the chunked POST, collects the
# whole body and answers the invoke with HTTP 200 and a Content-Length (it does not stream to its caller); it
# drops the error trailers (the invoke counts as a success carrying the bytes sent before the failure); it does
# not interpret the HTTP-integration prelude; and it caps a streamed response at 6291556 bytes, answering the
# runtime 413 and its caller a Function.ResponseSizeTooLarge error (Lambda itself allows 200 MB).


@pytest.fixture
def streaming_rie(rie_ours_argv, rie_launcher):
    return lambda handler: rie_launcher(rie_ours_argv, handler, HANDLERS_DIR)


def _rie_invoke(r, event):
    status, body, headers = r.invoke(json.dumps(event).encode(), timeout=60)
    return status, body, headers


@pytest.mark.rie
@pytest.mark.slow
def test_rie_accepts_a_streamed_response(streaming_rie):
    r = streaming_rie("streaming.pieces")
    status, body, _ = _rie_invoke(r, {"chunks": ["a", "b", "c"], "sleep": 0.2})
    logs = r.logs()
    assert (status, body) == (200, b"abc"), logs
    assert (
        "Lambda-Runtime-Function-Response-Mode:[streaming]" in logs or "INVOKE RTDONE(status: success" in logs
    )
    status, body, _ = _rie_invoke(r, {"chunks": ["again"]})
    assert (status, body) == (200, b"again") and len(r.init_reports_ms()) == 1, r.logs()


@pytest.mark.rie
@pytest.mark.slow
def test_rie_midstream_failure(streaming_rie):
    r = streaming_rie("streaming.fails_midstream")
    status, body, _ = _rie_invoke(r, {"after": 2})
    logs = r.logs()
    assert status == 200 and body == b"c0c1", (status, body, logs)  # no error text in the body
    assert "[ERROR] ValueError: mid-stream failure" in logs, logs
    status, body, _ = _rie_invoke(r, {"after": 0})  # before the first chunk: an ordinary error
    assert status == 200 and json.loads(body)["errorType"] == "ValueError", body
    assert len(r.init_reports_ms()) == 1, r.logs()


@pytest.mark.rie
@pytest.mark.slow
def test_rie_takes_a_long_midstream_error_and_the_runtime_goes_on(streaming_rie):
    """The RIE refuses a trailer section over 4 KiB ("suspiciously long trailer after chunked body") and resets
    the connection: the runtime keeps its trailers within it, so the invoke completes and no new init follows."""
    r = streaming_rie("streaming.fails_midstream_at_depth")
    for _ in range(2):
        status, body, _ = _rie_invoke(r, {"depth": 200, "message_size": 5000})
        assert (status, body) == (200, b"c0"), (status, body[:300], r.logs())
    logs = r.logs()
    assert "suspiciously long trailer" not in logs and len(r.init_reports_ms()) == 1, logs


@pytest.mark.rie
@pytest.mark.slow
def test_rie_http_integration_prelude_passes_through(streaming_rie):
    r = streaming_rie("streaming.http_response")
    status, body, _ = _rie_invoke(r, {})
    prelude, sep, payload = body.partition(b"\0" * 8)
    assert status == 200 and sep and payload == b"<html></html>", (status, body, r.logs())
    assert json.loads(prelude)["statusCode"] == 201


@pytest.mark.rie
@pytest.mark.slow
@pytest.mark.parametrize("mib", [8, 100])
def test_rie_caps_streams_at_6_mb_and_the_runtime_goes_on(streaming_rie, mib):
    r = streaming_rie("streaming.big")
    status, body, _ = _rie_invoke(r, {"mib": mib})
    logs = r.logs()
    assert status == 200, (status, body[:300], logs)
    assert json.loads(body)["errorType"] == "Function.ResponseSizeTooLarge", body[:300]
    assert "refused the response" in logs and "413" in logs, logs
    # the runtime survives the refusal: the next invoke needs no new init
    r2 = _rie_invoke(r, {"mib": 1})
    assert r2[0] == 200 and len(r2[1]) == MIB, (r2[0], r2[1][:300], r.logs())
    assert len(r.init_reports_ms()) == 1, r.logs()


def test_fake_records_chunk_times_and_can_drop_bodies_self_test(fake_api):
    """The harness itself: per-chunk sizes and arrival times, a stream visible while it arrives, and a body
    reduced to its size, hash and head when keep_body_bytes is set."""
    import http.client

    from runtime_emulator import INVOCATION_PREFIX, NEXT_PATH

    fake_api.keep_body_bytes = 3
    rid = fake_api.push_event({})
    c = http.client.HTTPConnection("127.0.0.1", fake_api.port, timeout=5)
    c.request("GET", NEXT_PATH)
    c.getresponse().read()
    c.putrequest("POST", INVOCATION_PREFIX + "%s/response" % rid)
    c.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
    c.putheader("Transfer-Encoding", "chunked")
    c.endheaders()
    c.send(b"4\r\nabcd\r\n")
    partial = fake_api.wait_chunks(rid, 1, 5)
    assert not partial.complete and [ch.size for ch in partial.chunks] == [4]
    time.sleep(0.3)
    c.send(b"2\r\nef\r\n0\r\n\r\n")
    assert c.getresponse().status == 202
    a = fake_api.wait_answer(rid, 5)
    assert a.complete and a.size == 6 and a.body == b"abc" and a.truncated
    assert a.sha256 == hashlib.sha256(b"abcdef").hexdigest()
    assert a.chunks[1].at - a.chunks[0].at >= 0.25
