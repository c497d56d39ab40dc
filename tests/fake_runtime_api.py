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

``/next`` blocks while the event queue is empty, in short bounded waits, and
gives up when the server stops. Every ``wait_*`` helper takes a timeout and
raises ``TimeoutError`` with a description of what was awaited and what was seen.

Only the standard library is used; the server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import collections
import contextlib
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
    def _read_body(self) -> Tuple[bytes, bool, Optional[Headers]]:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
            trailers = []
            while True:
                line = self.rfile.readline(65537)
                if not line or line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                trailers.append((name.strip(), value.strip()))
            return b"".join(chunks), True, Headers(trailers)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return body, False, None

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
        try:
            body, chunked, trailers = self._read_body()
        except (ValueError, ConnectionError, OSError):
            self.close_connection = True
            return
        req = api._record(self, body, chunked, trailers)
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

    def __init__(self, payload_limit: int = RAPID_PAYLOAD_LIMIT, strict: bool = True):
        self.payload_limit = payload_limit
        self.strict = strict
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
        """Answer the next post of ``kind`` ("response", "error", "init_error") for
        ``request_id`` (None: any request id) with this status and body."""
        assert kind in ("response", "error", "init_error"), kind
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

    # -- server side ---------------------------------------------------
    def _register_conn(self, sock: socket.socket) -> None:
        with self._cond:
            self._conns.add(sock)

    def _unregister_conn(self, sock: socket.socket) -> None:
        with self._cond:
            self._conns.discard(sock)

    def _record(self, h: _Handler, body: bytes, chunked: bool, trailers: Optional[Headers]) -> Request:
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
        with self._cond:
            self._seq += 1
            req = Request(
                seq=self._seq,
                method=h.command,
                path=h.path,
                headers=Headers(list(h.headers.items())),
                body=body,
                conn=h.conn_id,
                chunked=chunked,
                trailers=trailers,
                kind=kind,
                request_id=rid,
                received_at=time.time(),
            )
            self.requests.append(req)
            self._cond.notify_all()
        return req

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
                    if self._events:
                        ev = self._events.popleft()
                        self._current = ev.request_id
                        return ev
                    self._cond.wait(0.1)
            finally:
                self._waiting_next -= 1
                self._cond.notify_all()

    def _reply_for(self, req: Request) -> Reply:
        with self._cond:
            for key in ((req.kind, req.request_id), (req.kind, None)):
                q = self._post_replies.get(key)
                if q:
                    reply = q.popleft()
                    if req.request_id is not None and 200 <= reply.status < 300:
                        self._answered.setdefault(req.request_id, reply.status)
                    if reply.status == 413 and req.request_id is not None:
                        self._too_large.add(req.request_id)
                    return reply
            if req.kind == "init_error":
                return Reply(202, OK_BODY)
            if req.kind not in ("response", "error"):
                return Reply(404, b'{"errorMessage":"Not found","errorType":"NotFound"}')
            rid = req.request_id or ""
            if req.kind == "error" and rid in self._too_large and rid not in self._answered:
                self._answered[rid] = self.after_413_error_status
                status = self.after_413_error_status
                return Reply(status, OK_BODY if status < 300 else INVALID_STATE_BODY)
            if self.strict:
                if rid in self._answered or rid in self._too_large:
                    return Reply(403, INVALID_STATE_BODY)
                if rid != self._current:
                    return Reply(400, INVALID_REQUEST_ID_BODY)
            if req.kind == "response" and len(req.body) > self.payload_limit:
                self._too_large.add(rid)
                return Reply(413, TOO_LARGE_BODY)
            self._answered[rid] = 202
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
