"""WSGI apps (Flask, Django's WSGI handler, ...) served in-process by the runtime.

The environ carries the raw event and the context as `environ["aws.event"]` and `environ["aws.context"]`;
`SCRIPT_NAME` is the stage or base path the front puts before the app's routes. Streamed, each item of the
app's iterable leaves as the app produces it; buffered, they are joined. The iterable's `close()` runs when
the body is done, or in `finish()` if the runtime could not send it all.
"""

import io
import itertools
import logging
import sys

from lambda_bootstrap.http_front import WebAdapter, header_text, streamed

logger = logging.getLogger("lambda_bootstrap.wsgi")


class WsgiAdapter(WebAdapter):
    """`handler = WsgiAdapter(app)`: a Lambda handler serving the WSGI `app`."""

    def __init__(self, app, invoke_mode=None, non_http=None):
        super().__init__(app, invoke_mode, non_http)
        self._pending = None

    def serve(self, request, event, context, stream):
        response = self._pending = Response()
        body = response.run(self.app, self.environ(request, event, context))
        if not response.started:  # the app calls start_response from its iterable: wait for its first item
            body = itertools.chain([next(body, b"")], body)
            if not response.started:
                raise RuntimeError("the WSGI app did not call start_response")
        if stream:
            return streamed(request.front, response.status, response.headers, itertools.chain([b""], body))
        return request.front.answer(response.status, response.headers, b"".join(body))

    def finish(self):
        response, self._pending = self._pending, None
        if response is not None:
            try:
                response.close()  # done already, unless the runtime stopped taking the body early
            except Exception:
                logger.exception("the WSGI app's close() failed")

    @staticmethod
    def environ(request, event, context):
        path_info = request.path[len(request.root_path) :]
        environ = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": _native(request.root_path),
            "PATH_INFO": _native(path_info),
            "QUERY_STRING": request.query.decode("latin-1"),
            "SERVER_NAME": request.server[0],
            "SERVER_PORT": str(request.server[1]),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_LENGTH": str(len(request.body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(request.body),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "aws.event": event,
            "aws.context": context,
        }
        if request.client:
            environ["REMOTE_ADDR"] = request.client[0]
        for name, value in request.headers:
            if name == "content-length":
                continue  # the decoded body's length is the one that counts
            key = "CONTENT_TYPE" if name == "content-type" else "HTTP_" + name.upper().replace("-", "_")
            value = _native(value)
            if key in environ:
                value = environ[key] + ("; " if name == "cookie" else ", ") + value
            environ[key] = value
        return environ


def _native(text):
    """A WSGI "native string": the UTF-8 bytes of the path, each one a character (PEP 3333)."""
    return text.encode("utf-8").decode("latin-1")


class Response:
    """What the app said through start_response and its iterable."""

    def __init__(self):
        self.started = False
        self.status = self.headers = None
        self._written = []
        self._result = None

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None and self.started:
            raise exc_info[1].with_traceback(exc_info[2])
        self.status = int(status.split(None, 1)[0])
        self.headers = [(name, header_text(value.encode("latin-1"))) for name, value in headers]
        self.started = True
        return self._written.append

    def run(self, app, environ):
        """Call the app; the body's pieces as it produces them (what it wrote, then its items)."""
        self._result = app(environ, self.start_response)
        return self._pieces()

    def _pieces(self):
        try:
            for item in self._result:
                if self._written:
                    yield from self._take_written()
                if item:
                    yield item
            yield from self._take_written()
        finally:
            self.close()

    def close(self):
        """The iterable's close(), once (PEP 3333), whether or not the body was read to its end."""
        result, self._result = self._result, None
        close = getattr(result, "close", None)
        if close is not None:
            close()

    def _take_written(self):
        written, self._written[:] = list(self._written), []
        return written
