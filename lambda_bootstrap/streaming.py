"""Response streaming (beyond awslambdaric): a handler returns a generator, an async generator or a
StreamingResponse, and its chunks leave as they are produced; a failure after the first one travels in the
trailers."""

import base64  # now, not at the first failure: a handler may leave sys.path unusable
import json
import types

from lambda_bootstrap import logs
from lambda_bootstrap.errors import invocation_error
from lambda_bootstrap.event_loop import run_awaitable
from lambda_bootstrap.faults import RuntimeFault

# The error JSON in a stream's trailers: its base64 and the type fit the 4 KiB trailer section RAPID reads.
MAX_STREAM_ERROR_BYTES = 2048


class StreamingResponse:
    """Return this, or any generator or async generator of bytes or str, to stream the response."""

    def __init__(self, chunks, content_type="application/octet-stream"):
        if not (content_type.isascii() and content_type.isprintable()):
            raise ValueError("content_type goes into a header: printable ASCII only, not %r" % content_type)
        self.chunks = chunks
        self.content_type = content_type

    def prelude(self):
        """What goes before the body, each piece an HTTP chunk of its own."""
        return ()


class HttpStreamingResponse(StreamingResponse):
    """A streamed response for function URLs: status, headers and cookies go first, then the body."""

    def __init__(self, chunks, status_code=200, headers=None, cookies=None):
        super().__init__(chunks, "application/vnd.awslambda.http-integration-response")
        self.metadata = {"statusCode": status_code, "headers": headers or {}, "cookies": cookies or []}

    def prelude(self):
        # Eight NULs end the prelude. Lambda reads the byte stream, where chunk boundaries mean nothing;
        # cargo-lambda reads the JSON from a chunk of its own and drops the next one as the separator.
        return json.dumps(self.metadata).encode(), b"\0" * 8


class OutgoingStream:
    """A handler's chunks on their way out. The first is produced before anything is sent, so a handler
    that fails at once is answered with an ordinary error; a later failure ends the stream with trailers."""

    def __init__(self, response, request_id):
        self.content_type = response.content_type
        self.request_id = request_id
        self.error = self.exit = None
        iterator = response.chunks
        if not isinstance(iterator, types.AsyncGeneratorType):
            iterator = iter(iterator)
        self._iterator = iterator
        self._taken = 0  # chunks the handler has yielded, for the error that names one
        self._prelude = response.prelude()
        self._first = self._next_chunk(b"")

    def _next_chunk(self, end):
        iterator = self._iterator
        try:
            if isinstance(iterator, types.AsyncGeneratorType):
                chunk = run_awaitable(iterator.__anext__())
            else:
                chunk = next(iterator)
        except (StopIteration, StopAsyncIteration):
            return end
        self._taken += 1
        if isinstance(chunk, str):
            return chunk.encode("utf-8")
        if isinstance(chunk, (bytes, bytearray, memoryview)):
            return bytes(chunk)
        raise RuntimeFault(
            "Runtime.MarshalError",
            "Unable to marshal response: streamed chunk %d (counting from 1) is of type %s, not bytes or str"
            % (self._taken, type(chunk).__name__),
        )

    def __iter__(self):
        """The HTTP chunks to post: the prelude's pieces, then the body's chunks as they are produced."""
        yield from self._prelude
        if self._first:
            yield self._first
        while True:
            try:
                chunk = self._next_chunk(None)
            except BaseException as exc:  # SystemExit and the like too: the stream must still end properly
                self.error = invocation_error(exc, self.request_id)
                logs.LOG_SINK.write_error(self.error)
                if not isinstance(exc, Exception):
                    self.exit = exc
                return
            if chunk is None:
                return
            yield chunk

    def trailers(self):
        if self.error is None:
            return []
        body = base64.b64encode(self.error.json(MAX_STREAM_ERROR_BYTES).encode("ascii")).decode()
        return [
            ("Lambda-Runtime-Function-Error-Type", self.error.header_type),
            ("Lambda-Runtime-Function-Error-Body", body),
        ]
