"""ASGI 3 apps (FastAPI, Starlette, Django's ASGI handler, ...) served in-process by the runtime.

The app runs on the runtime's one event loop, which lives across invocations (async handlers share it).
The scope carries the raw event and the context as `scope["aws.event"]` and `scope["aws.context"]`.

- Buffered: the answer goes back as soon as the app has sent its last body message; the rest of the app's
  work (background tasks, code after the last `send`) finishes in `finish()`, before the next event.
- Streamed: the status and headers leave as the prelude as soon as `http.response.start` arrives, and
  each body message leaves as it is sent; the app's `send` returns once the runtime has taken the chunk.
- Lifespan: startup runs when the adapter is made (at init: a failure is an init error), shutdown when
  Lambda sends SIGTERM (the runtime's shutdown hooks). An app without lifespan support is served anyway.
"""

import asyncio
import logging

from lambda_bootstrap.event_loop import run_awaitable
from lambda_bootstrap.http_front import WebAdapter, header_text, streamed
from lambda_bootstrap.shutdown import on_shutdown

ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}
LIFESPAN_MODES = ("auto", "on", "off")
logger = logging.getLogger("lambda_bootstrap.asgi")


class ClientDisconnected(OSError):
    """The response can no longer reach the client: raised in the app's `send`."""


class LifespanFailure(Exception):
    """The app's lifespan startup failed (an init error) or its shutdown did."""


class AsgiAdapter(WebAdapter):
    """`handler = AsgiAdapter(app)`: a Lambda handler serving the ASGI 3 `app`."""

    def __init__(self, app, invoke_mode=None, non_http=None, lifespan="auto"):
        super().__init__(app, invoke_mode, non_http)
        if lifespan not in LIFESPAN_MODES:
            raise ValueError("lifespan %r: it is one of %s" % (lifespan, ", ".join(LIFESPAN_MODES)))
        self.state = {}
        self._pending = None
        self._lifespan = None
        if lifespan != "off":
            self._lifespan = run_awaitable(Lifespan.start(app, self.state, required=lifespan == "on"))
        if self._lifespan is not None:
            on_shutdown(self.shutdown)

    def serve(self, request, event, context, stream):
        exchange = Exchange(self.app, self._scope(request, event, context), request.body)
        self._pending = exchange
        status, headers = run_awaitable(exchange.started())
        if stream:
            return streamed(request.front, status, headers, exchange.chunks())
        return request.front.answer(status, headers, run_awaitable(exchange.whole_body()))

    def finish(self):
        exchange, self._pending = self._pending, None
        if exchange is not None:
            run_awaitable(exchange.finish())

    def shutdown(self):
        lifespan, self._lifespan = self._lifespan, None
        if lifespan is not None:
            run_awaitable(lifespan.stop())

    def _scope(self, request, event, context):
        return {
            "type": "http",
            "asgi": ASGI_VERSION,
            "http_version": "1.1",
            "method": request.method,
            "scheme": request.scheme,
            "path": request.path,
            "raw_path": request.raw_path.encode("utf-8"),
            "root_path": request.root_path,
            "query_string": request.query,
            "headers": [(k.encode("latin-1"), v.encode("utf-8")) for k, v in request.headers],
            "client": request.client,
            "server": request.server,
            "state": dict(self.state),
            "aws.event": event,
            "aws.context": context,
        }


class Exchange:
    """One request through the app: its messages arrive in a queue, in the order the app sends them."""

    def __init__(self, app, scope, body):
        self.app, self.scope = app, scope
        self._request_body = body
        self._messages = self._gone = self._task = None
        self.status = None
        self.complete = False  # the app has sent its last body message

    async def started(self):
        """Start the app; its status and headers, or the exception it raised before it had any."""
        self._messages, self._gone = asyncio.Queue(), asyncio.Event()
        self._task = asyncio.ensure_future(self._run_app())
        item = await self._messages.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def chunks(self):
        """The body, chunk by chunk as the app sends it. An empty first chunk sends the prelude at once."""
        yield b""
        while True:
            item = await self._messages.get()
            if isinstance(item, BaseException):
                raise item
            chunk, more, taken = item
            if not taken.done():  # the app may have stopped waiting (cancelled by its own task group)
                taken.set_result(None)
            if chunk:
                yield chunk
            if not more:
                return

    async def whole_body(self):
        return b"".join([chunk async for chunk in self.chunks()])

    async def finish(self):
        """Wait for the rest of the app's work. If the response never completed (the runtime could not send
        it), the app hears that the client is gone."""
        if self._task is None:
            return
        if not self.complete:
            self._gone.set()
            while not self._messages.empty():
                item = self._messages.get_nowait()
                if isinstance(item, tuple) and not item[2].done():
                    item[2].set_exception(ClientDisconnected("the response could not be delivered"))
        await asyncio.wait([self._task])

    async def _run_app(self):
        try:
            await self.app(self.scope, self._receive, self._send)
        except BaseException as exc:
            if not self.complete and not self._gone.is_set():
                self._messages.put_nowait(exc)
            elif isinstance(exc, ClientDisconnected):
                logger.info("the response could not be delivered: %s", exc)
            elif isinstance(exc, Exception):
                logger.exception("the app failed after its response was complete")
            else:
                raise
            return
        if self.complete or self._gone.is_set():
            return
        what = "an incomplete response" if self.status else "no response"
        self._messages.put_nowait(RuntimeError("the ASGI app returned after sending %s" % what))

    async def _receive(self):
        body, self._request_body = self._request_body, None
        if body is not None:
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()  # asked again: the client is gone once the response is complete
        return {"type": "http.disconnect"}

    async def _send(self, message):
        if self._gone.is_set():
            raise ClientDisconnected("the response can no longer be delivered")
        kind = message["type"]
        if kind == "http.response.start" and self.status is None:
            self.status = message["status"]
            headers = [(header_text(k), header_text(v)) for k, v in message.get("headers") or ()]
            self._messages.put_nowait((self.status, headers))
        elif kind == "http.response.body" and self.status is not None and not self.complete:
            more = bool(message.get("more_body", False))
            taken = asyncio.get_running_loop().create_future()
            self._messages.put_nowait((bytes(message.get("body", b"")), more, taken))
            if not more:
                self.complete = True
                self._gone.set()
            await taken
        else:
            state = "after a complete response" if self.complete else "in this state"
            raise RuntimeError("unexpected ASGI message %r %s" % (kind, state))


class Lifespan:
    """The app's lifespan protocol: one task on the runtime's loop from startup to shutdown."""

    def __init__(self, app, state):
        self.app, self.state = app, state
        self._inbox, self._outbox = asyncio.Queue(), asyncio.Queue()
        self._task = None

    @classmethod
    async def start(cls, app, state, required):
        """A started Lifespan, or None when the app does not take part (and `required` is false)."""
        lifespan = cls(app, state)
        lifespan._task = asyncio.ensure_future(lifespan.run_awaitable())
        lifespan._inbox.put_nowait({"type": "lifespan.startup"})
        reply = await lifespan._outbox.get()
        if isinstance(reply, BaseException):
            if required:
                raise LifespanFailure("the app raised during lifespan startup: %r" % reply) from reply
            logger.debug("the app does not support the lifespan protocol: %r", reply)
            return None
        if reply["type"] == "lifespan.startup.failed":
            raise LifespanFailure("lifespan startup failed: %s" % (reply.get("message") or "no message"))
        return lifespan

    async def stop(self):
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        reply = await self._outbox.get()
        if isinstance(reply, BaseException):
            raise LifespanFailure("the app raised during lifespan shutdown: %r" % reply) from reply
        if reply["type"] == "lifespan.shutdown.failed":
            raise LifespanFailure("lifespan shutdown failed: %s" % (reply.get("message") or "no message"))
        await asyncio.wait([self._task])

    async def run_awaitable(self):
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self.app(scope, self._inbox.get, self._outbox.put)
        except BaseException as exc:
            self._outbox.put_nowait(exc)
        else:  # after shutdown nobody reads this; before startup it means the app has no lifespan
            self._outbox.put_nowait(RuntimeError("the app returned from the lifespan scope"))
