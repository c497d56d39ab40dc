"""Apps for the runtime tests (tests/test_web_runtime.py), each named by `_HANDLER=runtime_apps:NAME`, and the
references' handlers for the differential run through awslambdaric."""

import asyncio
import os

from probe import asgi_app, wsgi_app

import bootstrap


async def _lifespan_app(scope, receive, send, fail=False):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if fail:
                    await send({"type": "lifespan.startup.failed", "message": "cannot reach the database"})
                    return
                await send({"type": "lifespan.startup.complete"})
            else:
                with open(os.environ["SHUTDOWN_MARK"], "w") as f:
                    f.write("lifespan shutdown ran\n")
                await send({"type": "lifespan.shutdown.complete"})
                return
    await asgi_app(scope, receive, send)


async def with_lifespan(scope, receive, send):
    await _lifespan_app(scope, receive, send)


async def with_lifespan_and_work_after_the_answer(scope, receive, send):
    """Answers at once, then goes on working (the runtime waits for it before /next): a SIGTERM that comes
    meanwhile finds the event loop running."""
    if scope["type"] == "lifespan":
        await _lifespan_app(scope, receive, send)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"answered"})
    await asyncio.sleep(float(os.environ.get("WORK_AFTER_THE_ANSWER_S", "1")))


async def failing_startup(scope, receive, send):
    await _lifespan_app(scope, receive, send, fail=True)


def undetectable_asgi(scope, receive, send):
    """An ASGI app behind a plain function (it returns the coroutine): only LAMBDA_WEB_INTERFACE=asgi tells."""
    return asgi_app(scope, receive, send)


streamed_handler = bootstrap.asgi(asgi_app, invoke_mode="RESPONSE_STREAM")
wsgi_handler = bootstrap.wsgi(wsgi_app)


def jobs(event, context):
    return {"records": len(event["Records"])}
