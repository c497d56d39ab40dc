"""Web apps in-process: each HTTP front's event becomes the ASGI scope / WSGI environ the app expects, and the
app's answer becomes the answer that front reads (buffered) or the streamed prelude and body."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

import pytest

import bootstrap
from lambda_bootstrap import logs, shutdown
from lambda_bootstrap.asgi import AsgiAdapter, LifespanFailure
from lambda_bootstrap.http_front import NotAnHttpEvent
from lambda_bootstrap.wsgi import WsgiAdapter

sys.path.insert(0, str(Path(__file__).parent / "web_apps"))
from events import FRONTS, make_event
from probe import PNG, asgi_app, wsgi_app

KINDS = ("asgi", "wsgi")


def adapter(kind, **kw):
    return AsgiAdapter(asgi_app, **kw) if kind == "asgi" else WsgiAdapter(wsgi_app, **kw)


def headers_of(answer):
    """[(lower name, value)] of a buffered answer, whichever form the front uses."""
    pairs = [(k.lower(), v) for k, vs in (answer.get("multiValueHeaders") or {}).items() for v in vs]
    pairs += [(k.lower(), v) for k, v in (answer.get("headers") or {}).items()]
    pairs += [("set-cookie", c) for c in answer.get("cookies") or ()]
    return pairs


def body_of(answer):
    return base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"].encode()


def echo(kind, front, **request):
    answer = adapter(kind)(make_event(front, path="/echo", **request), {"ctx": 1})
    assert answer["statusCode"] == 200, answer
    return json.loads(body_of(answer))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("front", FRONTS)
def test_request_reaches_the_app_as_sent(kind, front):
    seen = echo(
        kind,
        front,
        method="POST",
        query=[("tag", "a"), ("tag", "b"), ("q", "x y&z")],
        headers=[("x-one", "1")],
        cookies=["c1=v1", "c2=v2"],
        body=b"hello",
    )
    assert seen["method"] == "POST"
    assert seen["body"] == "hello"
    # ALB without multi-value headers hands over the last value of a repeated parameter only.
    assert seen["query"] == {"tag": ["b"] if front == "alb" else ["a", "b"], "q": ["x y&z"]}
    headers = {k.lower().replace("_", "-").removeprefix("http-"): v for k, v in seen["headers"]}
    assert headers["x-one"] == "1"
    assert headers["cookie"] == "c1=v1; c2=v2"
    assert seen["aws"] == ["aws.context", "aws.event"]


@pytest.mark.parametrize("front", ["rest", "alb-multi"])
def test_repeated_request_headers_stay_apart_in_asgi_and_join_in_wsgi(front):
    sent = [("x-multi", "1"), ("x-multi", "2")]
    asgi_seen = echo("asgi", front, headers=sent)
    assert [v for k, v in asgi_seen["headers"] if k == "x-multi"] == ["1", "2"]
    wsgi_seen = echo("wsgi", front, headers=sent)
    assert dict(wsgi_seen["headers"])["HTTP_X_MULTI"] == "1, 2"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("front", FRONTS)
def test_base64_request_body_is_decoded(kind, front):
    raw = bytes(range(256))
    seen = echo(kind, front, method="PUT", body=raw, binary=True, headers=[("content-type", "application/x")])
    assert seen["body"].encode("latin-1") == raw


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("front", "stage", "root"),
    [
        ("rest", "prod", "/prod"),
        ("http", "dev", "/dev"),
        ("http", None, ""),
        ("url", None, ""),
        ("alb", None, ""),
    ],
)
def test_stage_is_the_root_path(kind, front, stage, root):
    seen = echo(kind, front, stage=stage)
    assert seen["root_path"] == root
    assert seen["path"] == root + "/echo"  # ASGI's path includes root_path; WSGI's SCRIPT_NAME + PATH_INFO


@pytest.mark.parametrize("kind", KINDS)
def test_percent_encoded_path_is_routed_decoded(kind):
    event = make_event("http", path="/echo")
    event["rawPath"] = "/%65cho"  # "e" percent-encoded
    assert adapter(kind)(event, None)["statusCode"] == 200
    assert adapter(kind)(make_event("http", path="/caf\u00e9 x"), None)["statusCode"] == 404


@pytest.mark.parametrize("kind", KINDS)
def test_set_cookie_and_repeated_headers_in_each_fronts_form(kind):
    answers = {front: adapter(kind)(make_event(front, path="/cookies"), None) for front in FRONTS}
    cookies = ["a=1; Path=/", "b=2; HttpOnly"]
    for front in ("http", "url"):
        assert answers[front]["cookies"] == cookies
        assert answers[front]["headers"]["x-multi"] == "one, two"
        assert "set-cookie" not in {k.lower() for k in answers[front]["headers"]}
    for front in ("rest", "alb-multi"):
        assert answers[front]["multiValueHeaders"]["set-cookie"] == cookies
        assert answers[front]["multiValueHeaders"]["x-multi"] == ["one", "two"]
        assert "headers" not in answers[front] and "cookies" not in answers[front]
    single = answers["alb"]
    assert "multiValueHeaders" not in single  # ALB refuses a form other than the one its event used
    assert sorted(v for k, v in single["headers"].items() if k.lower() == "set-cookie") == cookies
    assert single["headers"]["x-multi"] == "one, two"
    for front in ("alb", "alb-multi"):
        assert answers[front]["statusDescription"] == "200 OK"
    for answer in answers.values():
        assert answer["statusCode"] == 200 and body_of(answer) == b"cookies"
        assert answer["isBase64Encoded"] is False


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("front", FRONTS)
@pytest.mark.parametrize(
    ("path", "base64_expected"), [("/binary", True), ("/gzip", True), ("/cookies", False)]
)
def test_binary_bodies_travel_base64(kind, front, path, base64_expected):
    answer = adapter(kind)(make_event(front, path=path), None)
    assert answer["isBase64Encoded"] is base64_expected
    if path == "/binary":
        assert body_of(answer) == PNG


@pytest.mark.parametrize("kind", KINDS)
def test_status_without_body(kind):
    answer = adapter(kind)(make_event("alb", path="/status/418"), None)
    assert answer["statusCode"] == 418 and answer["statusDescription"] == "418 I'm a Teapot"
    assert answer["body"] == ""


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"Records": [{"eventSource": "aws:sqs", "body": "x"}]}, "1 record(s) from aws:sqs"),
        ({"Records": [{"eventSource": "aws:s3"}, {"eventSource": "aws:s3"}]}, "2 record(s) from aws:s3"),
        ({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, "'Scheduled Event'"),
        ({"hello": 1}, "the keys [hello]"),
        ([1, 2], "a JSON list"),
    ],
)
def test_an_event_that_is_not_http_is_named_in_the_error(kind, event, named):
    with pytest.raises(NotAnHttpEvent, match="LAMBDA_NON_HTTP_HANDLER") as caught:
        adapter(kind)(event, None)
    assert named in str(caught.value)


@pytest.mark.parametrize("kind", KINDS)
def test_an_event_that_is_not_http_goes_to_the_named_handler(kind, monkeypatch, tmp_path):
    sqs = {"Records": [{"eventSource": "aws:sqs", "body": "x"}]}
    assert adapter(kind, non_http=lambda event, context: ("batch", context))(sqs, 7) == ("batch", 7)
    (tmp_path / "jobs.py").write_text("def consume(event, context):\n    return len(event['Records'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LAMBDA_NON_HTTP_HANDLER", "jobs.consume")
    assert adapter(kind)(sqs, None) == 1
    assert adapter(kind)(make_event("url", path="/status/204"), None)["statusCode"] == 204


@pytest.mark.parametrize("kind", KINDS)
def test_app_exception_before_the_response_is_the_invocations_error(kind):
    with pytest.raises(ValueError, match="failed before the response"):
        adapter(kind)(make_event("url", path="/fail-before"), None)


def test_invoke_mode_is_checked(monkeypatch):
    with pytest.raises(ValueError, match="BUFFERED or RESPONSE_STREAM"):
        adapter("wsgi", invoke_mode="STREAM")
    monkeypatch.setenv("LAMBDA_INVOKE_MODE", "response_stream")
    assert adapter("wsgi").invoke_mode == "RESPONSE_STREAM"


def drain(response):
    """The pieces the runtime would post, and the trailers it would add."""
    stream = bootstrap.OutgoingStream(response, "req-1")
    logs.LOG_SINK = bootstrap.LogSink(False, stream=open("/dev/null", "w"))  # noqa: SIM115
    pieces = list(stream)
    if response.prelude():  # the prelude's JSON and its NULs leave as HTTP chunks of their own
        assert pieces[1] == b"\0" * 8, pieces
        pieces[:2] = [pieces[0] + pieces[1]]
    return pieces, stream.trailers()


def prelude_of(piece):
    metadata, nuls, rest = piece.partition(b"\0" * 8)
    assert nuls, piece
    return json.loads(metadata), rest


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_function_url_answer_has_the_prelude_then_each_chunk(kind):
    response = adapter(kind, invoke_mode="RESPONSE_STREAM")(
        make_event("url", path="/stream", query=[("n", "3")]), None
    )
    assert response.content_type == "application/vnd.awslambda.http-integration-response"
    pieces, trailers = drain(response)
    metadata, rest = prelude_of(pieces[0])
    assert metadata == {"statusCode": 200, "headers": {"content-type": "text/plain"}, "cookies": []}
    assert rest == b""  # the prelude leaves before the first chunk is produced
    assert pieces[1:] == [b"chunk-0\n", b"chunk-1\n", b"chunk-2\n"] and trailers == []


@pytest.mark.parametrize("kind", KINDS)
def test_streamed_prelude_carries_cookies_and_repeated_headers_per_front(kind):
    url = adapter(kind, invoke_mode="RESPONSE_STREAM")(make_event("url", path="/cookies"), None)
    metadata, _ = prelude_of(drain(url)[0][0])
    assert metadata["cookies"] == ["a=1; Path=/", "b=2; HttpOnly"]
    assert metadata["headers"]["x-multi"] == "one, two"
    rest = adapter(kind, invoke_mode="RESPONSE_STREAM")(make_event("rest", path="/cookies"), None)
    metadata, _ = prelude_of(drain(rest)[0][0])
    assert metadata["multiValueHeaders"]["set-cookie"] == ["a=1; Path=/", "b=2; HttpOnly"]
    assert metadata["multiValueHeaders"]["x-multi"] == ["one", "two"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("front", ["alb", "alb-multi", "http"])
def test_fronts_that_cannot_stream_get_a_whole_answer_in_stream_mode(kind, front):
    answer = adapter(kind, invoke_mode="RESPONSE_STREAM")(make_event(front, path="/stream"), None)
    assert isinstance(answer, dict) and body_of(answer) == b"chunk-0\nchunk-1\nchunk-2\n"


@pytest.mark.parametrize("kind", KINDS)
def test_failure_after_the_first_chunk_ends_the_stream_with_trailers(kind):
    response = adapter(kind, invoke_mode="RESPONSE_STREAM")(make_event("url", path="/fail-after"), None)
    pieces, trailers = drain(response)
    assert b"".join(pieces[1:]).endswith(b"first")
    assert dict(trailers)["Lambda-Runtime-Function-Error-Type"] == "Function.ValueError"
    body = json.loads(base64.b64decode(dict(trailers)["Lambda-Runtime-Function-Error-Body"]))
    assert body["errorMessage"] == "failed after the first chunk"


# --- ASGI lifespan and work after the response ---------------------------------------------------------------


def lifespan_app(log, fail_startup=False):
    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if fail_startup:
                        await send({"type": "lifespan.startup.failed", "message": "no database"})
                        return
                    scope["state"]["db"] = "connected"
                    log.append("startup")
                    await send({"type": "lifespan.startup.complete"})
                else:
                    log.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = json.dumps(scope["state"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        await asyncio.sleep(0.05)  # work after the response, as BackgroundTasks do
        log.append("background done")

    return app


def test_lifespan_startup_runs_once_and_its_state_reaches_requests(monkeypatch):
    hooks = []
    monkeypatch.setattr(shutdown, "hooks", hooks)
    log = []
    handler = AsgiAdapter(lifespan_app(log))
    assert log == ["startup"] and hooks == [handler.shutdown]  # graceful shutdown is asked for
    answer = handler(make_event("url", path="/"), None)
    assert json.loads(answer["body"]) == {"db": "connected"}
    assert log == ["startup"], "the answer is given before the work after the response"
    handler.finish()
    assert log == ["startup", "background done"]
    handler.shutdown()
    assert log[-1] == "shutdown"


def test_lifespan_startup_failure_is_raised_at_init(monkeypatch):
    monkeypatch.setattr(shutdown, "hooks", [])
    with pytest.raises(LifespanFailure, match="no database"):
        AsgiAdapter(lifespan_app([], fail_startup=True))


def test_an_app_without_lifespan_is_served_unless_lifespan_is_required(monkeypatch):
    hooks = []
    monkeypatch.setattr(shutdown, "hooks", hooks)
    assert AsgiAdapter(asgi_app)(make_event("url", path="/status/204"), None)["statusCode"] == 204
    assert hooks == []
    with pytest.raises(LifespanFailure, match="no lifespan support"):
        AsgiAdapter(asgi_app, lifespan="on")


def endless_apps(log):
    async def asgi(scope, receive, send):
        await receive()  # the request
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
        except OSError as exc:  # ClientDisconnected
            log.append(type(exc).__name__)
        log.append((await receive())["type"])

    def wsgi(environ, start_response):
        start_response("200 OK", [])

        def ticks():
            try:
                while True:
                    yield b"tick"
            finally:
                log.append("closed")

        return ticks()

    return {"asgi": AsgiAdapter(asgi, lifespan="off"), "wsgi": WsgiAdapter(wsgi)}


@pytest.mark.parametrize(
    ("kind", "heard"), [("asgi", ["ClientDisconnected", "http.disconnect"]), ("wsgi", ["closed"])]
)
def test_a_stream_that_cannot_be_delivered_tells_the_app_and_does_not_hang(kind, heard):
    """The runtime stops taking chunks (its connection broke, the client is gone): finish() ends the app's
    part: the ASGI app's send raises and its receive says http.disconnect; the WSGI iterable is closed."""
    log = []
    handler = endless_apps(log)[kind]
    handler.invoke_mode = "RESPONSE_STREAM"
    stream = iter(bootstrap.OutgoingStream(handler(make_event("url", path="/"), None), "req-1"))
    assert next(stream).startswith(b'{"statusCode": 200')  # the prelude
    assert next(stream) == b"\0" * 8
    assert next(stream) == b"tick"
    assert log == []
    handler.finish()  # returns: nothing waits for chunks nobody will take
    assert log == heard


@pytest.mark.parametrize("kind", KINDS)
def test_non_ascii_header_values_survive_both_ways(kind):
    """A UTF-8 header value from the front reaches the app as its UTF-8 bytes (ASGI) or their native string
    (WSGI, PEP 3333), and comes back as the same text."""
    seen = echo(kind, "rest", headers=[("x-name", "zoë"), ("x-name", "zoë")])
    values = [v for k, v in seen["headers"] if k.lower() in ("x-name", "http_x_name")]
    if kind == "wsgi":  # native strings: the UTF-8 bytes, one character each
        values = [v.encode("latin-1").decode("utf-8") for v in values]
    assert values == (["zoë", "zoë"] if kind == "asgi" else ["zoë, zoë"])

    async def asgi_app_(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-name", "zoë".encode())]})
        await send({"type": "http.response.body", "body": b""})

    def wsgi_app_(environ, start_response):
        start_response("200 OK", [("X-Name", "zoë".encode().decode("latin-1"))])
        return [environ["HTTP_X_NAME"].encode("latin-1")]

    if kind == "asgi":
        answer = AsgiAdapter(asgi_app_, lifespan="off")(make_event("url", path="/"), None)
    else:
        answer = WsgiAdapter(wsgi_app_)(make_event("url", path="/", headers=[("x-name", "zoë")]), None)
        assert body_of(answer) == "zoë".encode()
    assert {k.lower(): v for k, v in answer["headers"].items()}["x-name"] == "zoë"


def test_a_failing_close_after_an_abandoned_stream_is_logged_not_raised(caplog):
    class Body:
        def __iter__(self):
            return iter([b"a", b"b"])

        def close(self):
            raise RuntimeError("close failed")

    def app(environ, start_response):
        start_response("200 OK", [])
        return Body()

    handler = WsgiAdapter(app, invoke_mode="RESPONSE_STREAM")
    stream = iter(bootstrap.OutgoingStream(handler(make_event("url", path="/"), None), "req-1"))
    next(stream)
    handler.finish()  # the runtime goes on
    assert "the WSGI app's close() failed" in caplog.text


def test_a_body_marked_base64_that_is_not_is_a_clear_error():
    event = make_event("url", "POST", "/echo", body=b"x")
    event.update(body="not base64!", isBase64Encoded=True)
    with pytest.raises(ValueError, match="marked isBase64Encoded but is not base64"):
        adapter("asgi")(event, None)
