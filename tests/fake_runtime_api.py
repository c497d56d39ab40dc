"""A recording fake of the AWS Lambda Runtime API, for integration tests.

It serves ``GET /2018-06-01/runtime/invocation/next`` from a queue of scripted
events and records every request it receives (method, path, headers, body,
chunked trailers and the TCP connection it came on). Replies to posts can be
scripted per request id; by default the fake behaves like RAPID:

- ``/response`` and ``/error`` for the current invocation: 202 ``{"status":"OK"}``;
- a ``/response`` body over ``payload_limit`` (6291556 bytes): 413 with RAPID's body,
  after which the invocation counts as answered, so a later ``/error`` for it gets
  ``after_413_error_status`` (403 ``InvalidStateTransition`` by default, as RAPID);
- a second answer for an already answered invocation: 403 ``InvalidStateTransition``;
- an answer for a request id that is not the current invocation: 400 ``InvalidRequestID``;
- ``/runtime/init/error``: 202.

Chunked request bodies (streamed responses) are read as they arrive: each chunk's
size and arrival time (``time.monotonic()``) is recorded in ``Request.chunks``, and a
stream still arriving can be watched with ``streams_in_progress()`` / ``wait_chunks()``.
With ``keep_body_bytes=N`` only the first N bytes of a chunked body are kept (its size
and SHA-256 are always recorded), so a 100 MB stream costs the fake no memory.
A ``/response`` in ``Lambda-Runtime-Function-Response-Mode: streaming`` is held to
``stream_limit`` (200 MiB) instead of ``payload_limit``; any other mode value is a 400.
As RAPID's Go server, the fake refuses a trailer section (its lines and the blank line that ends it) over
``trailer_limit`` bytes (4096: "suspiciously long trailer after chunked body"): it closes the connection
without an answer, and records the request with ``reply_status`` 0 and ``trailer_refused`` set.

The Extensions API (``/2020-01-01/extension/...``) is there too: ``register`` answers
with a ``Lambda-Extension-Identifier`` uuid (403 RAPID-like errors for a missing name,
SHUTDOWN asked by an internal extension when ``external_extensions`` is set, or a
registration after the runtime's first ``/next``); ``event/next`` blocks until the test
pushes an event (``push_extension_event``, ``extension_invoke``, ``extension_shutdown``)
or the server stops; ``init/error`` and ``exit/error`` answer 202. All are recorded
(kinds ``ext_register``, ``ext_next``, ``ext_init_error``, ``ext_exit_error``). As in
RAPID, the runtime's ``/next`` is not served until every registered extension has called
``event/next`` once (init is over), and each served event is also sent as INVOKE to the
extensions subscribed to it (``forward_invokes_to_extensions``).

``concurrent=True`` models Lambda Managed Instances: any number of ``/next`` calls are
served at once, each a different event, and an answer is accepted for any event in
flight (served, not yet answered); an unknown or already answered id gets 400
``InvalidRequestID`` (LMI RAPID). ``max_in_flight`` is the most events in flight at once.

``/next`` blocks while the event queue is empty, in short bounded waits, and
gives up when the server stops. Every ``wait_*`` helper takes a timeout and
raises ``TimeoutError`` with a description of what was awaited and what was seen.

Only the standard library is used; the server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import http.client
import http.server
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple, Union

# The runtime may send an X-Ray error cause header of up to 64 KiB (ours crops
# there; awslambdaric sends up to 1 MiB). http.client caps a header line at
# 64 KiB, which would turn such a request into a 431, so raise the cap.
http.client._MAXLINE = max(getattr(http.client, "_MAXLINE", 65536), 4 << 20)

PREFIX = "/2018-06-01"
NEXT_PATH = PREFIX + "/runtime/invocation/next"
INIT_ERROR_PATH = PREFIX + "/runtime/init/error"
INVOCATION_PREFIX = PREFIX + "/runtime/invocation/"
EXTENSION_PREFIX = "/2020-01-01/extension"
EXT_REGISTER_PATH = EXTENSION_PREFIX + "/register"
EXT_NEXT_PATH = EXTENSION_PREFIX + "/event/next"
EXT_INIT_ERROR_PATH = EXTENSION_PREFIX + "/init/error"
EXT_EXIT_ERROR_PATH = EXTENSION_PREFIX + "/exit/error"
STREAM_LIMIT = 200 * 1024 * 1024

RAPID_PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100  # 6291556
TOO_LARGE_BODY = (
    b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
    b'"errorType":"RequestEntityTooLarge"}'
)
OK_BODY = b'{"status":"OK"}'
INVALID_REQUEST_ID_BODY = b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}'
INVALID_STATE_BODY = (
    b'{"errorType":"InvalidStateTransition","errorMessage":"State transition from '
    b"RuntimeResponseSentState to InvocationResponse failed for runtime. Error: State transition "
    b'is not allowed"}'
)
CONTAINER_ERROR_BODY = b'{"errorMessage":"Internal container error","errorType":"ContainerError"}'
INVOKE_TIMEOUT_BODY = b'{"errorMessage":"Invoke timeout","errorType":"InvokeTimeout"}'
INVALID_MODE_BODY = (
    b'{"errorMessage":"Invalid function response mode","errorType":"InvalidFunctionResponseMode"}'
)


def _error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


DEFAULT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:test-fn"

# A sentinel: "use the default value" versus None meaning "omit the header".
_DEFAULT: Any = object()


class Headers:
    """Case-insensitive, order-keeping view of HTTP headers (repeats kept)."""

    def __init__(self, items: List[Tuple[str, str]]):
        self.items = list(items)

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        lname = name.lower()
        for k, v in self.items:
            if k.lower() == lname:
                return v
        return default

    def get_all(self, name: str) -> List[str]:
        lname = name.lower()
        return [v for k, v in self.items if k.lower() == lname]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> str:
        v = self.get(name)
        if v is None:
            raise KeyError(name)
        return v

    def names(self) -> List[str]:
        return [k for k, _ in self.items]

    def __repr__(self) -> str:
        return "Headers(%r)" % (self.items,)


@dataclass
class Event:
    """One scripted invocation served by /next."""

    body: bytes
    headers: List[Tuple[str, str]]
    request_id: str
    status: int = 200


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: List[Tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0


@dataclass
class Chunk:
    at: float  # time.monotonic() when the chunk's last byte arrived
    size: int


@dataclass
class Extension:
    """One extension registered with the fake Extensions API."""

    name: str
    identifier: str
    events: List[str]
    seq: int  # seq of its register request
    queue: Deque[Dict[str, Any]] = field(default_factory=collections.deque)
    next_calls: int = 0
    waiting: int = 0  # event/next calls blocked right now


@dataclass
class Request:
    """One recorded HTTP request."""

    seq: int
    method: str
    path: str
    headers: Headers
    body: bytes
    conn: str  # "host:port" of the client side of the TCP connection
    chunked: bool = False
    trailers: Optional[Headers] = None
    kind: str = ""  # next | response | error | init_error | other
    request_id: Optional[str] = None  # for response/error posts
    reply_status: Optional[int] = None
    received_at: float = 0.0
    # Chunked bodies: each chunk's arrival (time.monotonic() when its last byte came) and size.
    chunks: List[Chunk] = field(default_factory=list)
    started_at: float = 0.0  # time.monotonic() when the request head arrived
    size: int = 0  # body size, even when only part of it was kept
    sha256: str = ""
    truncated: bool = False  # only the first keep_body_bytes of the body were kept
    complete: bool = False  # the whole body has arrived
    trailer_refused: bool = False  # the trailers were over trailer_limit: no answer, the connection closed

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"...(%d bytes)" % len(self.body)
        return "<Request #%d %s %s kind=%s rid=%s conn=%s status=%s body=%r>" % (
            self.seq,
            self.method,
            self.path,
            self.kind,
            self.request_id,
            self.conn,
            self.reply_status,
            body,
        )


def _as_body(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, api: FakeRuntimeAPI):
        self.api = api
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A runtime killed mid-request resets its connection: not worth a traceback.
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the ledger is the log

    def setup(self) -> None:
        super().setup()
        self.conn_id = "%s:%s" % self.client_address[:2]
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.api._register_conn(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._unregister_conn(self.connection)

    # -- body reading --------------------------------------------------
    def _read_body(self, req: Request) -> None:
        """Read the body into ``req``: chunk by chunk (recording each) when chunked."""
        api = self.server.api
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" not in te:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                raise ConnectionError("body cut short")
            req.body, req.size, req.complete = body, len(body), True
            req.sha256 = hashlib.sha256(body).hexdigest()
            return
        req.chunked = True
        keep = api.keep_body_bytes
        kept = bytearray()
        digest = hashlib.sha256()
        api._stream_started(req)
        try:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                left = size
                while left:
                    piece = self.rfile.read(min(left, 1 << 20))
                    if not piece:
                        raise ConnectionError("connection closed inside a chunk")
                    left -= len(piece)
                    digest.update(piece)
                    if keep is None:
                        kept += piece
                    elif len(kept) < keep:
                        kept += piece[: keep - len(kept)]
                self.rfile.readline(65537)  # CRLF after the chunk
                api._chunk_arrived(req, size)
            trailers, trailer_bytes = [], 0
            while True:
                line = self.rfile.readline(65537)
                trailer_bytes += len(line)
                if not line or line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                trailers.append((name.strip(), value.strip()))
            req.trailer_refused = trailer_bytes > api.trailer_limit
        finally:
            api._stream_ended(req)
        req.body = bytes(kept)
        req.sha256 = digest.hexdigest()
        req.truncated = req.size > len(kept)
        req.trailers = Headers(trailers)
        req.complete = True

    def _send(self, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        self.send_response(reply.status)
        names = {k.lower() for k, _ in reply.headers}
        for k, v in reply.headers:
            self.send_header(k, v)
        if "content-type" not in names:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        # Head and body in one write: two small segments would meet the client's
        # delayed ACK and cost ~40 ms per call.
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(reply.body)
        self.flush_headers()

    def _handle(self) -> None:
        api = self.server.api
        req = api._begin(self)
        try:
            self._read_body(req)
        except (ValueError, ConnectionError, OSError):
            self.close_connection = True
            return
        api._record(req)
        if req.trailer_refused:
            api._set_status(req, 0)
            self.close_connection = True
            return
        if req.kind == "next":
            event_or_reply = api._take_next(req)
            if event_or_reply is None:  # server stopping
                self.close_connection = True
                return
            if isinstance(event_or_reply, Reply):
                reply = event_or_reply
            else:
                ev = event_or_reply
                reply = Reply(ev.status, ev.body, list(ev.headers))
        elif req.kind == "ext_next":
            reply = api._take_extension_event(req)
            if reply is None:  # server stopping
                self.close_connection = True
                return
        else:
            reply = api._reply_for(req)
        api._set_status(req, reply.status)
        try:
            self._send(reply)
        except OSError:
            self.close_connection = True

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle


class FakeRuntimeAPI:
    """A recording, scriptable fake of the Lambda Runtime API.

    Use as a context manager or call ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        payload_limit: int = RAPID_PAYLOAD_LIMIT,
        strict: bool = True,
        *,
        concurrent: bool = False,
        keep_body_bytes: Optional[int] = None,
        stream_limit: int = STREAM_LIMIT,
    ):
        self.payload_limit = payload_limit
        self.strict = strict
        self.concurrent = concurrent  # LMI: many /next at once, answers for any in-flight id
        self.keep_body_bytes = keep_body_bytes  # None: keep whole chunked bodies
        self.stream_limit = stream_limit
        self.trailer_limit = 4096  # RAPID reads trailers through a 4 KiB buffer
        self._in_flight: Dict[str, float] = {}  # concurrent mode: rid -> when it was served
        self.max_in_flight = 0
        self._in_progress: List[Request] = []  # chunked bodies still arriving
        # Extensions API
        self.extensions: Dict[str, Extension] = {}  # identifier -> extension
        self.external_extensions: Optional[set] = None  # names allowed SHUTDOWN; None: any
        self.forward_invokes_to_extensions = True
        self.init_waits_for_extensions = True
        self._runtime_next_seen = False
        # The status (and RAPID-like body) of an /error posted for an invocation
        # whose /response was answered 413.
        self.after_413_error_status = 403
        self.default_deadline_s = 300.0
        self._cond = threading.Condition()
        self._events: Deque[Event] = collections.deque()
        self._next_replies: Deque[Reply] = collections.deque()
        self._post_replies: Dict[Tuple[str, Optional[str]], Deque[Reply]] = {}
        self.requests: List[Request] = []
        self._seq = 0
        self._current: Optional[str] = None  # request id served by the last /next
        self._answered: Dict[str, int] = {}  # rid -> status of the accepted answer
        self._too_large: set = set()
        self._waiting_next = 0
        self._stopping = False
        self._conns: set = set()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle -----------------------------------------------------
    def start(self) -> FakeRuntimeAPI:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            with self._cond:
                conns = list(self._conns)
            for c in conns:
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeRuntimeAPI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def address(self) -> str:
        """The value for AWS_LAMBDA_RUNTIME_API."""
        return "127.0.0.1:%d" % self.port

    # -- scripting -----------------------------------------------------
    def push_event(
        self,
        body: Any = b"{}",
        *,
        request_id: Optional[str] = None,
        deadline_ms: Any = _DEFAULT,
        function_arn: Any = DEFAULT_ARN,
        trace_id: Optional[str] = None,
        client_context: Any = None,
        cognito_identity: Any = None,
        tenant_id: Optional[str] = None,
        invocation_id: Optional[str] = None,
        content_type: Optional[str] = "application/json",
        extra_headers: Optional[List[Tuple[str, str]]] = None,
    ) -> str:
        """Queue an invocation and return its request id.

        ``body``: bytes are sent as-is, str as UTF-8, anything else as JSON.
        A header whose value is None is not sent. ``client_context`` and
        ``cognito_identity`` may be str/bytes (sent verbatim) or objects (sent as JSON).
        """
        rid = request_id or str(uuid.uuid4())
        if deadline_ms is _DEFAULT:
            deadline_ms = int((time.time() + self.default_deadline_s) * 1000)
        headers: List[Tuple[str, str]] = [("Lambda-Runtime-Aws-Request-Id", rid)]

        def add(name: str, value: Any) -> None:
            if value is None:
                return
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            elif not isinstance(value, str):
                value = value if isinstance(value, int) else json.dumps(value)
            headers.append((name, str(value)))

        add("Lambda-Runtime-Deadline-Ms", deadline_ms)
        add("Lambda-Runtime-Invoked-Function-Arn", function_arn)
        add("Lambda-Runtime-Trace-Id", trace_id)
        add("Lambda-Runtime-Client-Context", client_context)
        add("Lambda-Runtime-Cognito-Identity", cognito_identity)
        add("Lambda-Runtime-Aws-Tenant-Id", tenant_id)
        add("Lambda-Runtime-Invocation-Id", invocation_id)
        add("Content-Type", content_type)
        for k, v in extra_headers or []:
            headers.append((k, v))
        with self._cond:
            self._events.append(Event(_as_body(body), headers, rid))
            self._cond.notify_all()
        return rid

    def script_next(self, status: int, body: Any = CONTAINER_ERROR_BODY, headers=None) -> None:
        """The next /next call is answered with this reply instead of an event."""
        with self._cond:
            self._next_replies.append(Reply(status, _as_body(body), list(headers or [])))
            self._cond.notify_all()

    def script_post(
        self,
        kind: str,
        request_id: Optional[str] = None,
        status: int = 202,
        body: Any = None,
        headers=None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next post of ``kind`` ("response", "error", "init_error", "ext_register",
        "ext_init_error", "ext_exit_error") for
        ``request_id`` (None: any request id) with this status and body."""
        assert kind in (
            "response",
            "error",
            "init_error",
            "ext_register",
            "ext_init_error",
            "ext_exit_error",
        ), kind
        if body is None:
            body = {
                202: OK_BODY,
                400: INVALID_REQUEST_ID_BODY,
                403: INVALID_STATE_BODY,
                410: INVOKE_TIMEOUT_BODY,
                413: TOO_LARGE_BODY,
            }.get(status, CONTAINER_ERROR_BODY)
        with self._cond:
            self._post_replies.setdefault((kind, request_id), collections.deque()).append(
                Reply(status, _as_body(body), list(headers or []), delay)
            )

    def push_extension_event(self, event: Dict[str, Any], identifier: Optional[str] = None) -> int:
        """Queue an extension event for ``identifier``, or (None) for every registered extension
        subscribed to its eventType. Returns how many extensions it was queued for."""
        with self._cond:
            if identifier is not None:
                targets = [self.extensions[identifier]]
            else:
                targets = [e for e in self.extensions.values() if event.get("eventType") in e.events]
            for ext in targets:
                ext.queue.append(dict(event))
            self._cond.notify_all()
            return len(targets)

    def extension_invoke(
        self, request_id: Optional[str] = None, identifier: Optional[str] = None, **extra
    ) -> str:
        """Push an INVOKE event as RAPID sends it; returns its request id."""
        rid = request_id or str(uuid.uuid4())
        event = {
            "eventType": "INVOKE",
            "deadlineMs": int((time.time() + self.default_deadline_s) * 1000),
            "requestId": rid,
            "invokedFunctionArn": DEFAULT_ARN,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": "Root=1-00000000-000000000000000000000000"},
        }
        event.update(extra)
        self.push_extension_event(event, identifier)
        return rid

    def extension_shutdown(self, reason: str = "spindown", identifier: Optional[str] = None) -> int:
        """Push SHUTDOWN (the RIE sends the reason in lower case) to the subscribed extensions."""
        event = {
            "eventType": "SHUTDOWN",
            "deadlineMs": int((time.time() + 2) * 1000),
            "shutdownReason": reason,
        }
        return self.push_extension_event(event, identifier)

    # -- server side ---------------------------------------------------
    def _register_conn(self, sock: socket.socket) -> None:
        with self._cond:
            self._conns.add(sock)

    def _unregister_conn(self, sock: socket.socket) -> None:
        with self._cond:
            self._conns.discard(sock)

    def _begin(self, h: _Handler) -> Request:
        """A Request for a head that just arrived (its body not read yet, no seq yet)."""
        path = h.path.split("?", 1)[0]
        kind, rid = "other", None
        if h.command == "GET" and path == NEXT_PATH:
            kind = "next"
        elif h.command == "POST" and path == INIT_ERROR_PATH:
            kind = "init_error"
        elif h.command == "POST" and path.startswith(INVOCATION_PREFIX):
            rest = path[len(INVOCATION_PREFIX) :]
            rid, _, tail = rest.rpartition("/")
            if tail in ("response", "error"):
                kind = tail
            else:
                rid = None
        elif path.startswith(EXTENSION_PREFIX):
            kind = {
                ("POST", EXT_REGISTER_PATH): "ext_register",
                ("GET", EXT_NEXT_PATH): "ext_next",
                ("POST", EXT_INIT_ERROR_PATH): "ext_init_error",
                ("POST", EXT_EXIT_ERROR_PATH): "ext_exit_error",
            }.get((h.command, path), "other")
        return Request(
            seq=0,
            method=h.command,
            path=h.path,
            headers=Headers(list(h.headers.items())),
            body=b"",
            conn=h.conn_id,
            kind=kind,
            request_id=rid,
            started_at=time.monotonic(),
        )

    def _record(self, req: Request) -> Request:
        with self._cond:
            self._seq += 1
            req.seq = self._seq
            req.received_at = time.time()
            if req.kind == "next":
                self._runtime_next_seen = True
            self.requests.append(req)
            self._cond.notify_all()
        return req

    def _stream_started(self, req: Request) -> None:
        with self._cond:
            self._in_progress.append(req)
            self._cond.notify_all()

    def _chunk_arrived(self, req: Request, size: int) -> None:
        with self._cond:
            req.chunks.append(Chunk(time.monotonic(), size))
            req.size += size
            self._cond.notify_all()

    def _stream_ended(self, req: Request) -> None:
        with self._cond:
            with contextlib.suppress(ValueError):
                self._in_progress.remove(req)
            self._cond.notify_all()

    def _set_status(self, req: Request, status: int) -> None:
        with self._cond:
            req.reply_status = status
            self._cond.notify_all()

    def _take_next(self, req: Request) -> Union[Event, Reply, None]:
        with self._cond:
            self._waiting_next += 1
            self._cond.notify_all()
            try:
                while True:
                    if self._stopping:
                        return None
                    if self._next_replies:
                        return self._next_replies.popleft()
                    if self._events and not self._extensions_initialising():
                        ev = self._events.popleft()
                        self._current = ev.request_id
                        if self.concurrent:
                            self._in_flight[ev.request_id] = time.monotonic()
                            self.max_in_flight = max(self.max_in_flight, len(self._in_flight))
                        if self.forward_invokes_to_extensions:
                            self._forward_invoke(ev)
                        return ev
                    self._cond.wait(0.1)
            finally:
                self._waiting_next -= 1
                self._cond.notify_all()

    def _extensions_initialising(self) -> bool:
        """RAPID ends init (and serves the first event) once every extension has called next."""
        return self.init_waits_for_extensions and any(e.next_calls == 0 for e in self.extensions.values())

    def _forward_invoke(self, ev: Event) -> None:
        headers = Headers(ev.headers)
        deadline = headers.get("Lambda-Runtime-Deadline-Ms")
        event: Dict[str, Any] = {
            "eventType": "INVOKE",
            "deadlineMs": int(deadline) if deadline and deadline.isdigit() else 0,
            "requestId": ev.request_id,
            "invokedFunctionArn": headers.get("Lambda-Runtime-Invoked-Function-Arn") or "",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": headers.get("Lambda-Runtime-Trace-Id") or ""},
        }
        for ext in self.extensions.values():
            if "INVOKE" in ext.events:
                ext.queue.append(dict(event))

    def _take_extension_event(self, req: Request) -> Optional[Reply]:
        with self._cond:
            ext = self._extension_for(req)
            if isinstance(ext, Reply):
                return ext
            ext.next_calls += 1
            ext.waiting += 1
            self._cond.notify_all()
            try:
                while True:
                    if self._stopping:
                        return None
                    if ext.queue:
                        event = ext.queue.popleft()
                        headers = [("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))]
                        return Reply(200, _as_body(event), headers)
                    self._cond.wait(0.1)
            finally:
                ext.waiting -= 1
                self._cond.notify_all()

    def _extension_for(self, req: Request) -> Union[Extension, Reply]:
        """The registered extension a request names in Lambda-Extension-Identifier, or RAPID's 403."""
        ident = req.headers.get("Lambda-Extension-Identifier")
        if not ident:
            return Reply(
                403,
                _error_body(
                    "Extension.MissingExtensionIdentifier", "Missing Lambda-Extension-Identifier header"
                ),
            )
        try:
            uuid.UUID(ident)
        except ValueError:
            return Reply(
                403,
                _error_body("Extension.InvalidExtensionIdentifier", "Invalid Lambda-Extension-Identifier"),
            )
        ext = self.extensions.get(ident)
        if ext is None:
            return Reply(
                403, _error_body("Extension.UnknownExtensionIdentifier", "Unknown extension " + ident)
            )
        return ext

    def _register_extension(self, req: Request) -> Reply:
        name = req.headers.get("Lambda-Extension-Name") or ""
        if not name:
            return Reply(403, _error_body("Extension.InvalidExtensionName", "Empty extension name"))
        try:
            events = json.loads(req.body or b"{}").get("events", [])
            assert isinstance(events, list)
        except Exception:
            return Reply(403, _error_body("InvalidRequestFormat", "bad register body"))
        if self.strict and self._runtime_next_seen:
            return Reply(403, _error_body("Extension.RegistrationClosed", "Extension registration is closed"))
        for event in events:
            if event not in ("INVOKE", "SHUTDOWN"):
                return Reply(
                    403, _error_body("Extension.InvalidEventType", "%s: ErrorInvalidEventType" % event)
                )
            if (
                event == "SHUTDOWN"
                and self.external_extensions is not None
                and name not in self.external_extensions
            ):
                return Reply(
                    403,
                    _error_body(
                        "Extension.InvalidEventType",
                        "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension",
                    ),
                )
        if any(e.name == name for e in self.extensions.values()):
            return Reply(403, _error_body("Extension.AlreadyRegistered", "Extension already registered"))
        ext = Extension(name, str(uuid.uuid4()), list(events), req.seq)
        self.extensions[ext.identifier] = ext
        body = {"functionName": "test-fn", "functionVersion": "$LATEST", "handler": "app.handler"}
        return Reply(200, _as_body(body), [("Lambda-Extension-Identifier", ext.identifier)])

    def _extension_error(self, req: Request) -> Reply:
        ext = self._extension_for(req)
        if isinstance(ext, Reply):
            return ext
        if not req.headers.get("Lambda-Extension-Function-Error-Type"):
            return Reply(
                403, _error_body("Extension.MissingHeader", "Missing Lambda-Extension-Function-Error-Type")
            )
        return Reply(202, OK_BODY)

    def _reply_for(self, req: Request) -> Reply:
        with self._cond:
            for key in ((req.kind, req.request_id), (req.kind, None)):
                q = self._post_replies.get(key)
                if q:
                    reply = q.popleft()
                    if req.request_id is not None and 200 <= reply.status < 300:
                        self._answered.setdefault(req.request_id, reply.status)
                        self._in_flight.pop(req.request_id, None)
                    if reply.status == 413 and req.request_id is not None:
                        self._too_large.add(req.request_id)
                    return reply
            if req.kind == "init_error":
                return Reply(202, OK_BODY)
            if req.kind == "ext_register":
                return self._register_extension(req)
            if req.kind in ("ext_init_error", "ext_exit_error"):
                return self._extension_error(req)
            if req.kind not in ("response", "error"):
                return Reply(404, b'{"errorMessage":"Not found","errorType":"NotFound"}')
            rid = req.request_id or ""
            if req.kind == "error" and rid in self._too_large and rid not in self._answered:
                self._answered[rid] = self.after_413_error_status
                status = self.after_413_error_status
                return Reply(status, OK_BODY if status < 300 else INVALID_STATE_BODY)
            if self.concurrent:
                if rid not in self._in_flight:  # LMI RAPID: unknown or already answered
                    return Reply(400, INVALID_REQUEST_ID_BODY)
            elif self.strict:
                if rid in self._answered or rid in self._too_large:
                    return Reply(403, INVALID_STATE_BODY)
                if rid != self._current:
                    return Reply(400, INVALID_REQUEST_ID_BODY)
            mode = req.headers.get("Lambda-Runtime-Function-Response-Mode")
            if req.kind == "response" and mode is not None and mode.lower() != "streaming":
                return Reply(400, INVALID_MODE_BODY)
            limit = self.stream_limit if mode is not None else self.payload_limit
            if req.kind == "response" and req.size > limit:
                self._too_large.add(rid)
                self._in_flight.pop(rid, None)
                return Reply(413, TOO_LARGE_BODY)
            self._answered[rid] = 202
            self._in_flight.pop(rid, None)
            return Reply(202, OK_BODY)

    # -- queries -------------------------------------------------------
    def snapshot(self) -> List[Request]:
        with self._cond:
            return list(self.requests)

    def of_kind(self, *kinds: str) -> List[Request]:
        return [r for r in self.snapshot() if r.kind in kinds]

    @property
    def answers(self) -> List[Request]:
        """All /response and /error posts, in arrival order."""
        return self.of_kind("response", "error")

    @property
    def init_errors(self) -> List[Request]:
        return self.of_kind("init_error")

    def ledger(self) -> Dict[str, List[Request]]:
        """request id -> its /response and /error posts, in order."""
        out: Dict[str, List[Request]] = {}
        for r in self.answers:
            out.setdefault(r.request_id or "", []).append(r)
        return out

    def answers_for(self, request_id: str) -> List[Request]:
        return [r for r in self.answers if r.request_id == request_id]

    def in_flight(self) -> List[str]:
        """Concurrent mode: request ids served and not answered yet."""
        with self._cond:
            return list(self._in_flight)

    def streams_in_progress(self) -> List[Request]:
        """Chunked request bodies still arriving (their chunks so far in ``chunks``)."""
        with self._cond:
            return list(self._in_progress)

    def stream_for(self, request_id: str) -> Optional[Request]:
        """The chunked /response for ``request_id``: still arriving, or complete."""
        for r in self.streams_in_progress() + self.answers_for(request_id):
            if r.request_id == request_id and r.chunked:
                return r
        return None

    def wait_chunks(self, request_id: str, n: int, timeout: float = 10.0, alive=None) -> Request:
        """Wait until the streamed /response for ``request_id`` has ``n`` chunks (or ended)."""

        def got(api: FakeRuntimeAPI) -> Optional[Request]:
            r = api.stream_for(request_id)
            return r if r is not None and (len(r.chunks) >= n or r.complete) else None

        return self.wait_for(got, timeout, "%d chunks of the stream for %s" % (n, request_id), alive)

    def extension_named(self, name: str) -> Optional[Extension]:
        with self._cond:
            for e in self.extensions.values():
                if e.name == name:
                    return e
        return None

    def wait_extension_waiting(self, name: str, timeout: float = 10.0, alive=None) -> Extension:
        """Wait until extension ``name`` is registered and blocked in event/next."""

        def got(api: FakeRuntimeAPI) -> Optional[Extension]:
            e = api.extension_named(name)
            return e if e is not None and e.waiting > 0 else None

        return self.wait_for(got, timeout, "extension %r blocked in event/next" % name, alive)

    @property
    def pending_events(self) -> int:
        with self._cond:
            return len(self._events)

    @property
    def waiting_next(self) -> int:
        """How many /next calls are blocked waiting for an event right now."""
        with self._cond:
            return self._waiting_next

    def describe(self, limit: int = 30) -> str:
        reqs = self.snapshot()
        lines = [
            "%d requests recorded%s:" % (len(reqs), " (last %d shown)" % limit if len(reqs) > limit else "")
        ]
        lines += ["  %r" % r for r in reqs[-limit:]]
        return "\n".join(lines)

    # -- waiting -------------------------------------------------------
    def wait_for(
        self,
        predicate: Union[Callable[[FakeRuntimeAPI], Any], int],
        timeout: float = 10.0,
        what: Optional[str] = None,
        alive: Optional[Callable[[], bool]] = None,
    ) -> Any:
        """Wait until ``predicate(self)`` is truthy (returns its value), or, given an
        int N, until N answers (/response or /error posts) have been recorded.

        ``alive``: optional callable; when it returns False (e.g. the runtime
        process died) the wait fails at once instead of running to the timeout.
        Raises TimeoutError with a description on timeout.
        """
        if isinstance(predicate, int):
            n = predicate
            what = what or "%d answers (/response or /error)" % n

            def pred(api: FakeRuntimeAPI) -> Any:
                a = api.answers
                return a if len(a) >= n else None

        else:
            pred = predicate
            what = what or getattr(predicate, "__name__", "condition")
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._cond.release()
                try:
                    value = pred(self)
                finally:
                    self._cond.acquire()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if alive is not None and not alive():
                    # one last look: the answer may have arrived just before exit
                    self._cond.release()
                    try:
                        value = pred(self)
                    finally:
                        self._cond.acquire()
                    if value:
                        return value
                    raise TimeoutError(
                        "runtime exited while waiting for %s\n%s" % (what, self._describe_locked())
                    )
                self._cond.wait(min(remaining, 0.1))
        raise TimeoutError("timed out after %.1fs waiting for %s\n%s" % (timeout, what, self.describe()))

    def _describe_locked(self) -> str:
        self._cond.release()
        try:
            return self.describe()
        finally:
            self._cond.acquire()

    def wait_answer(self, request_id: str, timeout: float = 10.0, alive=None) -> Request:
        """Wait for the first /response or /error for ``request_id``."""

        def got(api: FakeRuntimeAPI) -> Optional[Request]:
            a = api.answers_for(request_id)
            return a[0] if a else None

        return self.wait_for(got, timeout, "an answer for request %s" % request_id, alive)

    def wait_init_error(self, timeout: float = 10.0, alive=None) -> Request:
        def got(api: FakeRuntimeAPI) -> Optional[Request]:
            e = api.init_errors
            return e[0] if e else None

        return self.wait_for(got, timeout, "a POST /runtime/init/error", alive)

    def wait_idle(self, timeout: float = 10.0, alive=None) -> None:
        """Wait until the event queue is empty and a /next call is blocked."""
        self.wait_for(
            lambda api: api.waiting_next > 0 and api.pending_events == 0,
            timeout,
            "the runtime to block in /next with no event left",
            alive,
        )
