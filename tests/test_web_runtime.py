"""Web apps through the runtime (`python bootstrap.py` against the Runtime API emulator): `_HANDLER=module:app`,
the `bootstrap.asgi` / `bootstrap.wsgi` wrappers, buffered and streamed answers, the lifespan at init and at
SIGTERM, work after the response before the next /next, events that are not HTTP; and the same events
through Mangum and apig-wsgi on awslambdaric."""

from __future__ import annotations

import base64
import json
import signal
import sys
from pathlib import Path

import pytest
from conftest import RuntimeLauncher
from runtime_emulator import RuntimeEmulator

WEB_APPS = Path(__file__).parent / "web_apps"
sys.path.insert(0, str(WEB_APPS))
from events import make_event  # noqa: E402

SQS = {"Records": [{"eventSource": "aws:sqs", "messageId": "1", "body": "x"}]}


def start(runtime, handler, env=None, task_root=WEB_APPS, kind="ours"):
    return runtime(handler, kind, env=env, task_root=task_root)


def ask(fake_api, proc, event, timeout=15.0):
    rid = fake_api.push_event(event)
    return fake_api.wait_answer(rid, timeout, alive=proc.alive)


def body_of(answer):
    return base64.b64decode(answer["body"]) if answer["isBase64Encoded"] else answer["body"].encode()


@pytest.mark.parametrize("app", ["probe:asgi_app", "probe:wsgi_app"])
def test_handler_in_module_colon_app_form_serves_the_app(fake_api, runtime, app):
    proc = start(runtime, app)
    a = ask(fake_api, proc, make_event("rest", "POST", "/echo", query=[("q", "1")], body=b"hi"))
    assert a.kind == "response", a
    answer = a.json()
    assert answer["statusCode"] == 200
    seen = json.loads(body_of(answer))
    assert (seen["method"], seen["root_path"], seen["body"], seen["query"]) == (
        "POST",
        "/prod",
        "hi",
        {"q": ["1"]},
    )
    b = ask(fake_api, proc, make_event("url", path="/cookies"))
    assert b.json()["cookies"] == ["a=1; Path=/", "b=2; HttpOnly"]


@pytest.mark.parametrize(("interface", "served"), [(None, False), ("asgi", True)])
def test_interface_override_for_an_app_that_does_not_look_async(fake_api, runtime, interface, served):
    proc = start(runtime, "runtime_apps:undetectable_asgi", env={"LAMBDA_WEB_INTERFACE": interface})
    a = ask(fake_api, proc, make_event("url", path="/status/204"))
    if served:
        assert a.json()["statusCode"] == 204
    else:
        assert a.kind == "error", "served as WSGI, the coroutine is not a response"


def test_a_missing_app_is_an_init_error(fake_api, runtime):
    proc = start(runtime, "probe:no_such_app")
    error = fake_api.wait_init_error(10, alive=None).json()
    assert error["errorType"] == "Runtime.HandlerNotFound" and "no_such_app" in error["errorMessage"]
    assert proc.run_until_exit(10) != 0


@pytest.mark.parametrize("app", ["probe:asgi_app", "probe:wsgi_app"])
def test_streamed_chunks_leave_as_they_are_produced(fake_api, runtime, app):
    proc = start(runtime, app, env={"LAMBDA_INVOKE_MODE": "RESPONSE_STREAM"})
    a = ask(fake_api, proc, make_event("url", path="/stream", query=[("n", "4"), ("sleep", "0.3")]))
    assert (
        a.chunked and a.headers.get("Content-Type") == "application/vnd.awslambda.http-integration-response"
    )
    metadata, nuls, body = a.body.partition(b"\0" * 8)
    assert nuls and json.loads(metadata)["statusCode"] == 200
    assert body == b"chunk-0\nchunk-1\nchunk-2\nchunk-3\n"
    sizes = [c.size for c in a.chunks[:2]]
    assert sizes == [len(metadata), 8], "the prelude and its NULs leave alone, before the first chunk"
    data = a.chunks[2:]
    assert [c.size for c in data] == [8, 8, 8, 8]
    gaps = [later.at - earlier.at for earlier, later in zip(data, data[1:])]
    assert all(g >= 0.25 for g in gaps), gaps


@pytest.mark.parametrize("app", ["probe:asgi_app", "probe:wsgi_app"])
def test_failure_after_the_first_chunk_ends_the_stream_in_trailers_and_the_runtime_goes_on(
    fake_api, runtime, app
):
    proc = start(runtime, app, env={"LAMBDA_INVOKE_MODE": "RESPONSE_STREAM"})
    a = ask(fake_api, proc, make_event("url", path="/fail-after"))
    assert a.body.endswith(b"first")
    assert a.trailers.get("Lambda-Runtime-Function-Error-Type") == "Function.ValueError"
    assert ask(fake_api, proc, make_event("url", path="/status/204")).chunked  # still serving


def test_wrapper_argument_streams_and_stream_mode_answers_alb_whole(fake_api, runtime):
    proc = start(runtime, "runtime_apps.streamed_handler")
    a = ask(fake_api, proc, make_event("url", path="/stream"))
    assert a.chunked and a.body.endswith(b"chunk-2\n")
    b = ask(fake_api, proc, make_event("alb", path="/stream"))
    assert not b.chunked and body_of(b.json()) == b"chunk-0\nchunk-1\nchunk-2\n"


def test_wsgi_wrapper(fake_api, runtime):
    proc = start(runtime, "runtime_apps.wsgi_handler")
    assert ask(fake_api, proc, make_event("http", path="/status/204")).json()["statusCode"] == 204


def test_lifespan_startup_failure_is_an_init_error(fake_api, runtime):
    proc = start(runtime, "runtime_apps:failing_startup")
    error = fake_api.wait_init_error(10).json()
    assert error["errorType"] == "LifespanFailure"
    assert "cannot reach the database" in error["errorMessage"]
    assert proc.run_until_exit(10) == 1


def test_lifespan_shutdown_runs_on_sigterm(fake_api, runtime, tmp_path):
    mark = tmp_path / "shutdown"
    proc = start(runtime, "runtime_apps:with_lifespan", env={"SHUTDOWN_MARK": str(mark)})
    fake_api.wait_extension_waiting("_python-bootstrap-graceful-shutdown", 10, alive=proc.alive)
    assert ask(fake_api, proc, make_event("url", path="/status/204")).json()["statusCode"] == 204
    assert not mark.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(10) == 0
    assert mark.read_text() == "lifespan shutdown ran\n"


def test_lifespan_shutdown_runs_on_a_sigterm_that_interrupts_the_event_loop(fake_api, runtime, tmp_path):
    """SIGTERM while the loop runs the app's work after its answer: the shutdown hooks need that loop, so they
    run once it stops, instead of failing with "This event loop is already running"."""
    mark = tmp_path / "shutdown"
    proc = start(
        runtime, "runtime_apps:with_lifespan_and_work_after_the_answer", env={"SHUTDOWN_MARK": str(mark)}
    )
    fake_api.wait_extension_waiting("_python-bootstrap-graceful-shutdown", 10, alive=proc.alive)
    assert body_of(ask(fake_api, proc, make_event("url", path="/")).json()) == b"answered"
    proc.send_signal(signal.SIGTERM)  # the app's second of work after its answer is still running
    assert proc.run_until_exit(10) == 0
    assert mark.read_text() == "lifespan shutdown ran\n", proc.diag() if hasattr(proc, "diag") else ""


def test_background_work_ends_before_the_next_event_is_asked_for(fake_api, runtime, tmp_path):
    mark = tmp_path / "audit.log"
    proc = start(runtime, "main:app", task_root=WEB_APPS / "fastapi_sse")
    fake_api.wait_for(lambda: fake_api.waiting_next > 0, 15, alive=proc.alive)
    a = ask(fake_api, proc, make_event("url", "POST", "/audit", query=[("path", str(mark))]))
    assert json.loads(a.json()["body"]) == {"queued": True}
    assert not mark.exists(), "the answer waited for the background task"
    fake_api.wait_for(lambda: fake_api.waiting_next > 0, 10, alive=proc.alive)
    assert mark.read_text() == "audited\n", "the runtime asked for the next event before the task ended"


def test_an_event_that_is_not_http_is_answered_with_an_error_naming_it(fake_api, runtime):
    proc = start(runtime, "probe:asgi_app")
    error = ask(fake_api, proc, SQS)
    assert error.kind == "error"
    body = error.json()
    assert body["errorType"] == "NotAnHttpEvent"
    assert "1 record(s) from aws:sqs" in body["errorMessage"]


def test_an_event_that_is_not_http_goes_to_the_named_handler(fake_api, runtime):
    proc = start(runtime, "probe:wsgi_app", env={"LAMBDA_NON_HTTP_HANDLER": "runtime_apps.jobs"})
    assert ask(fake_api, proc, SQS).json() == {"records": 1}
    assert ask(fake_api, proc, make_event("url", path="/status/204")).json()["statusCode"] == 204


EVENTS = {
    "cookies": make_event("url", path="/cookies"),
    "binary": make_event("rest", path="/binary"),
    "alb-multi": make_event("alb-multi", path="/cookies"),
    "echo": make_event(
        "http", "POST", "/echo", query=[("a", "1")], body=b"x", headers=[("content-type", "text/plain")]
    ),
}


@pytest.mark.parametrize(
    ("ours_app", "reference"),
    [
        ("probe:asgi_app", "reference_handlers.mangum_handler"),
        ("probe:wsgi_app", "reference_handlers.apig_handler"),
    ],
)
def test_same_answers_as_the_references_on_awslambdaric(
    fake_api, runtime, ric, tmp_path, ours_app, reference
):
    """The in-process differential (test_web_differential.py) again, end to end: each runtime on its own
    Runtime API emulator answers the same events; statuses, bodies and cookies agree."""
    answers = {"ours": {}, ric: {}}
    proc = start(runtime, ours_app)
    answers["ours"] = {name: ask(fake_api, proc, event).json() for name, event in EVENTS.items()}
    with RuntimeEmulator() as reference_api:
        launcher = RuntimeLauncher(reference_api, tmp_path)
        try:
            proc = launcher(reference, ric, task_root=WEB_APPS)
            answers[ric] = {name: ask(reference_api, proc, event).json() for name, event in EVENTS.items()}
        finally:
            launcher.close()
    for name in EVENTS:
        ours, theirs = answers["ours"][name], answers[ric][name]
        assert ours["statusCode"] == theirs["statusCode"], name
        if name != "echo":  # the echo differs in what the differential test's decisions list
            assert body_of(ours) == body_of(theirs), name
    ours, theirs = answers["ours"]["alb-multi"], answers[ric]["alb-multi"]
    assert ours["multiValueHeaders"]["set-cookie"] == theirs["multiValueHeaders"]["set-cookie"]
    assert answers["ours"]["cookies"]["cookies"] == answers[ric]["cookies"]["cookies"]


def test_a_stream_cut_short_by_its_connection_is_settled_and_the_app_told(tmp_path):
    """The connection under a streamed answer closes mid-body (what a caller that went away could look like
    from inside): post_stream reports it instead of raising, so the loop goes on to /next; finish() tells the
    app. The server here reads the head and a little body, then resets the connection."""
    import socket
    import struct
    import threading

    from bootstrap import OutgoingStream, RuntimeApiClient
    from lambda_bootstrap import logs
    from lambda_bootstrap.asgi import AsgiAdapter
    from lambda_bootstrap.runtime_api import Invocation

    heard = []

    async def endless(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 4096, "more_body": True})
        except OSError as exc:
            heard.append(type(exc).__name__)

    server = socket.create_server(("127.0.0.1", 0))
    received = []

    def cut():
        conn, _ = server.accept()
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 20000:
            data += conn.recv(65536)
        received.append(data)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        conn.close()

    thread = threading.Thread(target=cut, daemon=True)
    thread.start()
    logs.LOG_SINK = logs.LogSink(False, stream=open(tmp_path / "log", "w"))  # noqa: SIM115
    handler = AsgiAdapter(endless, invoke_mode="RESPONSE_STREAM", lifespan="off")
    invocation = Invocation({"lambda-runtime-aws-request-id": "rid-1"}, b"")
    stream = OutgoingStream(handler(make_event("url", path="/"), None), "rid-1")
    client = RuntimeApiClient("127.0.0.1:%d" % server.getsockname()[1])
    status, reply = client.post_stream(invocation, stream)
    thread.join(10)
    server.close()
    assert received and received[0].startswith(b"POST /2018-06-01/runtime/invocation/rid-1/response")
    assert status is None and reply.startswith("was cut short: "), reply
    handler.finish()
    assert heard == ["ClientDisconnected"]


FRAMEWORK_STREAMS = {
    "fastapi-sse": (
        WEB_APPS / "fastapi_sse",
        "main:app",
        "/events",
        [("n", "3"), ("interval", "0.3")],
        b"event: tick",
    ),
    "flask": (WEB_APPS / "flask_app", "main:app", "/stream", [("n", "3"), ("interval", "0.3")], b"line "),
    "django-asgi": (
        WEB_APPS / "django_site",
        "djsite:asgi_app",
        "/astream",
        [("n", "3"), ("interval", "0.3")],
        b"line ",
    ),
    "django-wsgi": (
        WEB_APPS / "django_site",
        "djsite:wsgi_app",
        "/stream",
        [("n", "3"), ("interval", "0.3")],
        b"line ",
    ),
}


@pytest.mark.parametrize("name", FRAMEWORK_STREAMS)
def test_frameworks_stream_through_the_runtime(fake_api, runtime, name):
    task_root, handler, path, query, marker = FRAMEWORK_STREAMS[name]
    proc = start(runtime, handler, env={"LAMBDA_INVOKE_MODE": "RESPONSE_STREAM"}, task_root=task_root)
    a = ask(fake_api, proc, make_event("url", path=path, query=query), timeout=30)
    assert a.chunked and a.trailers is not None and len(a.trailers.items) == 0, a
    metadata, _, body = a.body.partition(b"\0" * 8)
    assert json.loads(metadata)["statusCode"] == 200
    pieces = a.chunks[2:]  # after the prelude and its NULs
    assert body.count(marker) == 3 and len(pieces) == 3, a.chunks
    gaps = [later.at - earlier.at for earlier, later in zip(pieces, pieces[1:])]
    assert all(g >= 0.25 for g in gaps), gaps


@pytest.mark.parametrize(
    ("task_root", "handler", "path", "expected"),
    [
        (WEB_APPS / "django_site", "djsite:asgi_app", "/hello", {"path": "/prod/hello", "script": "/prod"}),
        (WEB_APPS / "django_site", "djsite:wsgi_app", "/hello", {"path": "/prod/hello", "script": "/prod"}),
        (WEB_APPS / "flask_app", "main:app", "/hello", {"url": "/prod/hello"}),
        (WEB_APPS, "starlette_app:app", "/", {"greeting": "hello from startup", "root_path": "/prod"}),
    ],
)
def test_frameworks_answer_buffered_through_the_runtime(
    fake_api, runtime, task_root, handler, path, expected
):
    proc = start(runtime, handler, task_root=task_root)
    answer = ask(fake_api, proc, make_event("rest", path=path), timeout=30).json()
    assert answer["statusCode"] == 200, answer
    seen = json.loads(body_of(answer))
    assert {k: seen[k] for k in expected} == expected
