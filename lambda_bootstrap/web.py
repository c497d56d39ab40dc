"""How a function asks the runtime to serve a web app.

- `_HANDLER=module:app` (uvicorn's form): the runtime loads `app` and serves it with `serve_app`;
- in code, `handler = bootstrap.asgi(app)` or `handler = bootstrap.wsgi(app)`.

ASGI or WSGI is never guessed from a callable's arity (a two-argument callable is also a Lambda handler):
an app whose call is a coroutine function is ASGI 3, any other callable WSGI, and
`LAMBDA_WEB_INTERFACE=asgi|wsgi` overrides that for an app that hides what it is.
"""

import os

WEB_INTERFACES = ("asgi", "wsgi")


def asgi(app, invoke_mode=None, non_http=None, lifespan="auto"):
    """A Lambda handler serving the ASGI 3 `app`. `invoke_mode`: "BUFFERED" or "RESPONSE_STREAM" (default:
    LAMBDA_INVOKE_MODE, else BUFFERED); `non_http`: the handler for events that are not HTTP requests;
    `lifespan`: "auto" (run it if the app takes part), "on" (the app must) or "off"."""
    from lambda_bootstrap.asgi import AsgiAdapter

    return AsgiAdapter(app, invoke_mode, non_http, lifespan)


def wsgi(app, invoke_mode=None, non_http=None):
    """A Lambda handler serving the WSGI `app`; the arguments are those of `asgi`."""
    from lambda_bootstrap.wsgi import WsgiAdapter

    return WsgiAdapter(app, invoke_mode, non_http)


def serve_app(app):
    """The handler for an app named by `_HANDLER=module:app`."""
    interface = os.environ.get("LAMBDA_WEB_INTERFACE", "").strip().lower()
    if interface and interface not in WEB_INTERFACES:
        raise ValueError("LAMBDA_WEB_INTERFACE=%s: it is asgi or wsgi" % interface)
    if (interface or ("asgi" if is_asgi(app) else "wsgi")) == "asgi":
        return asgi(app)
    return wsgi(app)


def is_asgi(app):
    """Whether calling `app` runs a coroutine: an `async def` function, or an object whose call is one."""
    import inspect

    return inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(type(app).__call__)
