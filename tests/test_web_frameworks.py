"""Real frameworks from PyPI through the adapters, in-process: FastAPI, Starlette, Django (its ASGI and its
WSGI handler) and Flask, buffered and streamed, on the fronts they are usually put behind."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

import bootstrap
from lambda_bootstrap import logs, shutdown
from lambda_bootstrap.asgi import AsgiAdapter
from lambda_bootstrap.wsgi import WsgiAdapter

WEB_APPS = Path(__file__).parent / "web_apps"
sys.path.insert(0, str(WEB_APPS))
from events import make_event  # noqa: E402


def load(name, path):
    """A web app module by path: the test apps' `main.py` files would clash under one name."""
    spec = importlib.util.spec_from_file_location(name, WEB_APPS / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fastapi_app():
    return load("fastapi_main", "fastapi_sse/main.py").app


@pytest.fixture(scope="module")
def flask_app():
    return load("flask_main", "flask_app/main.py").app


@pytest.fixture(scope="module")
def django_site():
    return load("djsite", "django_site/djsite.py")


@pytest.fixture(autouse=True)
def shutdown_hooks(monkeypatch):
    """The adapters' lifespan shutdowns, run at the end of each test as Lambda's SIGTERM would."""
    hooks = []
    monkeypatch.setattr(shutdown, "hooks", hooks)
    yield hooks
    for hook in reversed(hooks):
        hook()


def body_of(answer):
    return base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"].encode()


def drain(response):
    """[(seconds since the first piece, piece)] as the runtime would post them, and the trailers."""
    logs.LOG_SINK = bootstrap.LogSink(False, stream=open("/dev/null", "w"))  # noqa: SIM115
    stream = bootstrap.OutgoingStream(response, "req-1")
    timed, start = [], time.monotonic()
    for piece in stream:
        timed.append((time.monotonic() - start, piece))
    assert timed[1][1] == b"\0" * 8, timed  # the prelude's JSON and its NULs: HTTP chunks of their own
    timed[:2] = [(timed[0][0], timed[0][1] + timed[1][1])]
    return timed, stream.trailers()


def split_prelude(first):
    metadata, _, rest = first.partition(b"\0" * 8)
    return json.loads(metadata), rest


@pytest.mark.parametrize("front", ["url", "http", "rest", "alb-multi"])
def test_fastapi_json_routes_path_and_query_parameters(fastapi_app, front):
    handler = AsgiAdapter(fastapi_app)
    query = [("q", "café au lait"), ("tags", "a"), ("tags", "b")]
    answer = handler(make_event(front, path="/items/42", query=query), None)
    assert answer["statusCode"] == 200, answer
    assert json.loads(body_of(answer)) == {"item_id": 42, "q": "café au lait", "tags": ["a", "b"]}
    answer = handler(make_event(front, path="/items/not-a-number"), None)
    assert answer["statusCode"] == 422
    posted = handler(
        make_event(
            front, "POST", "/json", headers=[("content-type", "application/json")], body=b'{"a": [1, 2]}'
        ),
        None,
    )
    assert json.loads(body_of(posted)) == {"received": {"a": [1, 2]}}


def test_fastapi_form_post_base64_body(fastapi_app):
    form = urllib.parse.urlencode({"username": "zoë", "remember": "true"}).encode()
    event = make_event(
        "url",
        "POST",
        "/login",
        headers=[("content-type", "application/x-www-form-urlencoded")],
        body=form,
        binary=True,
    )
    answer = AsgiAdapter(fastapi_app)(event, None)
    assert json.loads(body_of(answer)) == {"username": "zoë", "remember": True}


def test_fastapi_sse_streams_event_by_event(fastapi_app):
    handler = AsgiAdapter(fastapi_app, invoke_mode="RESPONSE_STREAM")
    response = handler(make_event("url", path="/events", query=[("n", "3"), ("interval", "0.3")]), None)
    timed, trailers = drain(response)
    metadata, _ = split_prelude(timed[0][1])
    assert metadata["statusCode"] == 200
    assert metadata["headers"]["content-type"].startswith("text/event-stream")
    assert metadata["headers"]["cache-control"] == "no-cache"
    events = [piece for _, piece in timed[1:]]
    assert [e.split(b"\n")[0] for e in events] == [b"id: 0", b"id: 1", b"id: 2"]  # one event per chunk
    times = [t for t, _ in timed[1:]]
    assert times[1] - times[0] >= 0.25 and times[2] - times[1] >= 0.25  # each left when it was produced
    assert trailers == []


def test_fastapi_sse_buffered_is_the_whole_body(fastapi_app):
    answer = AsgiAdapter(fastapi_app)(make_event("url", path="/events", query=[("interval", "0")]), None)
    assert body_of(answer).count(b"event: tick") == 3


def test_fastapi_streaming_csv_on_a_rest_api_that_streams(fastapi_app):
    response = AsgiAdapter(fastapi_app, invoke_mode="RESPONSE_STREAM")(
        make_event("rest", path="/export.csv"), None
    )
    timed, _ = drain(response)
    metadata, _ = split_prelude(timed[0][1])
    assert metadata["multiValueHeaders"]["content-type"] == ["text/csv; charset=utf-8"]
    assert b"".join(p for _, p in timed[1:]) == b"id,name\n0,row0\n1,row1\n2,row2\n"


def test_fastapi_background_task_runs_after_the_answer_and_before_the_next_event(fastapi_app, tmp_path):
    mark = tmp_path / "audit.log"
    handler = AsgiAdapter(fastapi_app)
    answer = handler(make_event("url", "POST", "/audit", query=[("path", str(mark))]), None)
    assert json.loads(body_of(answer)) == {"queued": True}
    assert not mark.exists(), "the answer waited for the background task"
    handler.finish()
    assert mark.read_text() == "audited\n"


def test_starlette_lifespan_state_and_url_for_under_a_stage(shutdown_hooks):
    app = load("starlette_app", "starlette_app.py").app
    handler = AsgiAdapter(app)
    assert shutdown_hooks == [handler.shutdown]
    answer = handler(make_event("rest", path="/"), None)
    assert json.loads(body_of(answer)) == {"greeting": "hello from startup", "root_path": "/prod"}
    where = handler(make_event("rest", path="/where"), None)
    assert body_of(where) == b"https://abc123.execute-api.us-east-1.amazonaws.com/prod/"


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_django_view_and_streaming_response(django_site, kind):
    app = django_site.asgi_app if kind == "asgi" else django_site.wsgi_app
    adapter = AsgiAdapter if kind == "asgi" else WsgiAdapter
    answer = adapter(app)(make_event("rest", path="/hello"), None)
    assert answer["statusCode"] == 200, answer
    seen = json.loads(body_of(answer))
    assert seen["message"] == "hello" and seen["path"] == "/prod/hello" and seen["script"] == "/prod"
    route = "/astream" if kind == "asgi" else "/stream"  # Django streams only async iterators under ASGI
    event = make_event("url", path=route, query=[("n", "3"), ("interval", "0.2")])
    response = adapter(app, invoke_mode="RESPONSE_STREAM")(event, None)
    timed, trailers = drain(response)
    assert [p for _, p in timed[1:]] == [b"line 0\n", b"line 1\n", b"line 2\n"]
    assert timed[-1][0] - timed[1][0] >= 0.35 and trailers == []


def test_flask_json_and_url_for_under_a_stage(flask_app):
    handler = WsgiAdapter(flask_app)
    answer = handler(make_event("rest", path="/hello"), None)
    assert json.loads(body_of(answer)) == {"message": "hello", "url": "/prod/hello"}
    event = make_event(
        "url",
        "POST",
        "/json",
        query=[("x", "1")],
        headers=[("content-type", "application/json")],
        body=b'{"k": "v"}',
    )
    assert json.loads(body_of(handler(event, None))) == {"received": {"k": "v"}, "args": {"x": ["1"]}}


def test_flask_streamed_generator(flask_app):
    handler = WsgiAdapter(flask_app, invoke_mode="RESPONSE_STREAM")
    timed, _ = drain(handler(make_event("url", path="/stream", query=[("interval", "0.3")]), None))
    metadata, _ = split_prelude(timed[0][1])
    assert metadata["headers"]["Content-Type"] == "text/plain; charset=utf-8"
    lines = [p for _, p in timed[1:]]
    assert [line.split()[:2] for line in lines] == [[b"line", b"0"], [b"line", b"1"], [b"line", b"2"]]
    assert timed[2][0] - timed[1][0] >= 0.25 and timed[3][0] - timed[2][0] >= 0.25
