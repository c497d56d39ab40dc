"""Apps for the runtime tests (tests/test_web_runtime.py), each named by `_HANDLER=runtime_apps:NAME`, and the
references' handlers for the differential run through awslambdaric."""

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


async def failing_startup(scope, receive, send):
    await _lifespan_app(scope, receive, send, fail=True)


def undetectable_asgi(scope, receive, send):
    """An ASGI app behind a plain function (it returns the coroutine): only LAMBDA_WEB_INTERFACE=asgi tells."""
    return asgi_app(scope, receive, send)


streamed_handler = bootstrap.asgi(asgi_app, invoke_mode="RESPONSE_STREAM")
wsgi_handler = bootstrap.wsgi(wsgi_app)


def jobs(event, context):
    return {"records": len(event["Records"])}
