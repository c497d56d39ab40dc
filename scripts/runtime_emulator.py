"""The AWS Lambda Runtime API, emulated: the platform's rules, held once for the whole project.

Its users: the tests (with the fault injection below), the benchmarks (bench/), the build's init check
(scripts/lambda_root.py) and the local endpoint (dev.sh). Standard library only, Python 3.9+, Linux. It
binds 127.0.0.1 only; every wait in it is bounded; ``stop()`` ends what it started.

Caller side
===========

    import sys
    from runtime_emulator import RuntimeEmulator, subprocess_launcher

    launch = subprocess_launcher([sys.executable, "bootstrap.py"],
                                 env={"_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": "/abs/example"})
    with RuntimeEmulator(launcher=launch, timeout=3.0) as emu:   # port=0: a free port
        inv = emu.invoke({"n": 1}, client_context={"custom": {"k": "v"}}, tenant_id="blue")
        for chunk in inv.chunks(timeout=10):    # each piece as the runtime sends it
            print(chunk)
        inv.wait(timeout=10)
        print(inv.outcome, inv.content_type, inv.body, inv.error_type, inv.trailers)

``RuntimeEmulator(*, host="127.0.0.1", port=0, prefix="", timeout=300.0, concurrency=1, launcher=None,
answer_204_after=None, function_name="test-fn", ...)``

- ``start()`` / ``stop()``, or ``with``. ``port``; ``address`` ("127.0.0.1:PORT"); ``runtime_api``: the
  value for ``AWS_LAMBDA_RUNTIME_API`` (``address``, or ``http://address/prefix`` with a ``prefix`` such as
  ``"/.rt"``, as cargo-lambda hands out); ``runtime_env()``: the variables Lambda gives a runtime
  (``AWS_LAMBDA_RUNTIME_API``, function name, memory, version, log group and stream, region, and
  ``AWS_LAMBDA_MAX_CONCURRENCY`` when ``concurrency`` > 1).
- ``invoke(payload=b"{}", *, content_type="application/json", client_context=None, cognito_identity=None,
  trace_id=None, tenant_id=None, request_id=None, timeout=None) -> Invocation``. Callable from any thread;
  any number may be in flight: they queue and the runtime takes them one at a time (``concurrency=N``: up
  to N at once, Managed Instances). ``payload``: bytes as-is, str as UTF-8, anything else as JSON.
  ``client_context`` / ``cognito_identity``: a dict (sent as JSON) or the decoded JSON text. ``timeout``
  overrides the function timeout for this invoke. With a launcher and no runtime running, invoke starts one
  (an init, as Lambda's first invoke does).
- Runtime process (with ``launcher``): ``start_runtime()``, ``restart_runtime()``,
  ``stop_runtime(reason="spindown")`` (Lambda's shutdown phase, below), ``runtime`` (the current handle
  or None), ``wait_init(timeout) -> "ready" | "init_error" | "exited"`` ("" when init has not ended; also
  without a launcher: the runtime's first ``/next`` or ``/init/error``), ``init_error`` (the posted init
  error document of the current runtime, a dict, or None), ``init_duration_ms``, ``first_next`` (the
  recorded request that ended init).

``launcher`` is ``callable(env: dict) -> handle``: ``env`` is ``runtime_env()``; the handle has ``poll()``
(exit status or None), ``kill()`` and ``send_signal(sig)``, as ``subprocess.Popen`` does.
``subprocess_launcher(argv, env=None, cwd=None, stdout=None, stderr=None)`` makes one that runs argv in its
own session with ``env`` over ``runtime_env()`` and kills the whole group.

``Invocation``, the caller's handle:

- ``request_id``; ``chunks(timeout=30.0)``: an iterator of the response body's pieces (bytes) as they
  arrive, each within ``timeout`` seconds of the last or ``TimeoutError``; it ends when the answer is
  complete. A buffered answer or an error is one piece.
- ``wait(timeout=30.0) -> self`` (``TimeoutError`` if not done); ``done``.
- ``outcome``:
  ``"response"``: the function's answer (buffered, or streamed to its end without error trailers);
  ``"error"``: a ``/error`` post, a stream that ended with error trailers, or a response over its limit
  (``error_type`` ``Function.ResponseSizeTooLarge``);
  ``"timeout"``: no answer within the function timeout (``error_type`` ``Sandbox.Timedout``, message
  ``"RequestId: <id> Error: Task timed out after N.NN seconds"``);
  ``"init_error"``: the runtime posted ``/init/error`` (the posted document is the body);
  ``"exited"``: the runtime exited without answering (``Runtime.ExitError``).
- ``streamed`` (bool), ``content_type``, ``body`` (what the caller gets: the response, or the error
  document), ``error_type`` (RAPID's normalised ``Lambda-Runtime-Function-Error-Type``, ``Runtime.Unknown``
  when absent or malformed), ``trailers`` (dict), ``error_body`` (a trailer's body, base64-decoded),
  ``init_duration_ms`` (when this invoke waited for an init), ``duration_ms``.

Runtime side: the rules (RAPID's, classic and Managed Instances)
================================================================

- ``GET /2018-06-01/runtime/invocation/next`` long-polls (no time limit; ``answer_204_after=S`` answers
  204 after S seconds without an event, as cargo-lambda does). An event carries every header Lambda sends:
  ``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``, ``-Invoked-Function-Arn``, ``-Trace-Id``,
  ``-Client-Context``, ``-Cognito-Identity``, ``-Aws-Tenant-Id``, ``-Invocation-Id`` (empty ones left out,
  ``Content-Type`` defaulted to application/json). The runtime's first ``/next`` ends init.
- Exactly one answer per event: ``/response`` or ``/error`` for the current event gets 202
  ``{"status":"OK"}``; a second answer 403 ``InvalidStateTransition``; an unknown id 400
  ``InvalidRequestID``; a buffered response over 6,291,556 bytes 413 ``RequestEntityTooLarge`` (the event
  then counts as answered); a ``Lambda-Runtime-Function-Response-Mode`` other than ``streaming`` 400.
  Managed Instances (``concurrency`` > 1): any event in flight may be answered; unknown or answered ids get
  400, a late answer after a timeout 410 ``InvokeTimeout``.
- Streamed responses (chunked, trailers ``Lambda-Runtime-Function-Error-Type`` and ``-Error-Body``) up to
  200 MiB; a trailer section over 4096 bytes closes the connection unanswered, as RAPID's Go server does.
- ``/runtime/init/error`` gets 202; the invokes waiting, and the next ones until a new init, get it.
- The function timeout: no answer by the deadline gives ``Sandbox.Timedout``; the runtime is then stopped
  and started again (with a launcher; classic mode). A late answer for that event gets 410 ``InvokeTimeout``
  (``enforce_deadline`` applies the same to events queued with ``push_event``).
- A runtime that exits, or is stopped, leaves its event answered ``Runtime.ExitError``, worded as the RIE
  does. A ``/next`` whose connection is closed (its runtime stopped while it waited) gets no event.
- Extensions API ``/2020-01-01/extension``: ``register`` (name header required, ``Lambda-Extension-
  Identifier`` uuid back, registration closed after init), ``event/next`` (blocking; INVOKE for every
  event served, SHUTDOWN at shutdown), ``init/error``, ``exit/error``; init ends only when every
  registered extension has called ``event/next``. Shutdown: SHUTDOWN with ``deadlineMs`` (2000 ms with
  external extensions, 500 with internal ones only), SIGTERM to the runtime when an extension is
  registered, SIGKILL at the deadline.

Recording and fault injection (tests)
=====================================

- ``push_event(body, *, request_id=<new uuid>, deadline_ms=<now + 300 s>, trace_id=None, ...) -> key``: an
  event with no caller and no time limit, its headers exactly as given (None leaves one out: ``request_id=
  None`` sends none; ``extra_headers`` values may be raw bytes); its ``Invocation`` is ``invocation(key)``.
- ``script_next(*faults)``, ``script_post(kind, *faults, request_id=None)``: what the next ``/next`` or
  post of ``kind`` ("response", "error", "init_error", "ext_register", ...) gets instead of the rule's
  answer; a fault is a ``Fault`` or an int (``Fault("status", status)``). ``Fault`` kinds on ``/next``:
  ``status``, ``reset``, ``reset_mid_headers``, ``reset_after_headers``, ``truncate``, ``huge_length``,
  ``stall``, ``stall_body``, ``raw``, ``interim``, ``close``, ``chunked``; on posts: ``status``, ``reset``,
  ``truncate``.
- Every request is recorded (``Request``: kind, headers, body, chunks with arrival times, trailers, the
  status answered): ``requests``, ``of_kind()``, ``answers``, ``answers_for(id)``, ``init_errors``; each
  event's ``Invocation`` (``ledger``, ``invocation(key)``: how it was delivered, its answers);
  ``check_ledger()`` (every event delivered answered exactly once), ``describe()``; waits:
  ``wait_for(predicate)``, ``wait_answer(id)``, ``wait_idle()``, ``wait_init_error()``, ``wait_chunks()``,
  ``wait_extension_waiting(name)``; extensions: ``extension_invoke()``, ``extension_shutdown()``,
  ``push_extension_event()``, ``extension_named()``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

RUNTIME_PREFIX = "/2018-06-01/runtime"
NEXT_PATH = RUNTIME_PREFIX + "/invocation/next"
INVOCATION_PREFIX = RUNTIME_PREFIX + "/invocation/"
INIT_ERROR_PATH = RUNTIME_PREFIX + "/init/error"
EXTENSION_PREFIX = "/2020-01-01/extension"
EXTENSION_KINDS = {
    ("POST", EXTENSION_PREFIX + "/register"): "ext_register",
    ("GET", EXTENSION_PREFIX + "/event/next"): "ext_next",
    ("POST", EXTENSION_PREFIX + "/init/error"): "ext_init_error",
    ("POST", EXTENSION_PREFIX + "/exit/error"): "ext_exit_error",
}
POST_KINDS = ("response", "error", "init_error", "ext_register", "ext_init_error", "ext_exit_error")

PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100  # RAPID's MaxPayloadSize: 6,291,556 bytes
STREAM_LIMIT = 200 * 1024 * 1024
TRAILER_LIMIT = 4096  # Go's net/http reads a chunked body's trailers through a 4 KiB buffer
HEAD_LINE_LIMIT = 4 << 20  # an X-Ray error cause header may be 1 MiB (awslambdaric's cap)
ACCOUNT = "123456789012"
REGION = "us-east-1"
# Grace between SHUTDOWN and SIGKILL: external extensions get 2 s, internal ones only 500 ms.
SHUTDOWN_GRACE_EXTERNAL_S, SHUTDOWN_GRACE_INTERNAL_S = 2.0, 0.5
ERROR_TYPE_RE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")
POLL_S = 0.05  # the granularity of every internal wait


def error_document(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}, separators=(",", ":")).encode()


OK_BODY = b'{"status":"OK"}'
INVALID_REQUEST_ID_BODY = error_document("InvalidRequestID", "Invalid request ID")
INVALID_STATE_BODY = (
    b'{"errorType":"InvalidStateTransition","errorMessage":"State transition from '
    b"RuntimeResponseSentState to InvocationResponse failed for runtime. Error: State transition "
    b'is not allowed"}'
)
INVOKE_TIMEOUT_BODY = error_document("InvokeTimeout", "Invoke timeout")
INVALID_MODE_BODY = error_document("InvalidFunctionResponseMode", "Invalid function response mode")
CONTAINER_ERROR_BODY = error_document("ContainerError", "Internal container error")
NOT_FOUND_BODY = error_document("NotFound", "Not found")
RESPONSE_TOO_LARGE = (
    b'{"errorType":"Function.ResponseSizeTooLarge",'
    b'"errorMessage":"Response payload size exceeded maximum allowed payload size (%d bytes)."}'
)


def platform_error(error_type: str, inv: Invocation, message: str) -> bytes:
    """An invoke's failure as the platform words it (the RIE's layout: type first, request id in the text)."""
    text = "RequestId: %s Error: %s" % (inv.request_id, message)
    return json.dumps({"errorType": error_type, "errorMessage": text}, separators=(",", ":")).encode()


def too_large_body(limit: int) -> bytes:
    return error_document(
        "RequestEntityTooLarge", "Exceeded maximum allowed payload size (%d bytes)." % limit
    )


STATUS_BODIES = {
    202: OK_BODY,
    400: INVALID_REQUEST_ID_BODY,
    403: INVALID_STATE_BODY,
    410: INVOKE_TIMEOUT_BODY,
    413: too_large_body(PAYLOAD_LIMIT),
}
REASONS = {
    100: "Continue",
    200: "OK",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    410: "Gone",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


def normalized_error_type(value: Optional[str]) -> str:
    """RAPID's reading of an error-type header: kept when it holds ``(Runtime|Function).Reason``."""
    if value and ERROR_TYPE_RE.search(value):
        return value
    return "Function.Unknown" if (value or "").startswith("Function.") else "Runtime.Unknown"


def as_body(body: Any) -> bytes:
    """bytes as-is, str as UTF-8, anything else as JSON."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


# A sentinel: "the default value", where None means "leave the header out".
DEFAULT: Any = object()
HeaderValue = Union[str, bytes]


class Headers:
    """Case-insensitive, order-keeping HTTP headers (repeats kept); equal to a dict of the same headers."""

    def __init__(self, items: Sequence[Tuple[str, str]] = ()):
        self.items = list(items)
        self._first = {k.lower(): v for k, v in reversed(self.items)}

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> List[str]:
        lname = name.lower()
        return [v for k, v in self.items if k.lower() == lname]

    def names(self) -> List[str]:
        return [k for k, _ in self.items]

    def as_dict(self) -> Dict[str, str]:
        return {k.lower(): v for k, v in self.items}  # the last of repeated headers, as dict() would

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self.items == other.items
        if isinstance(other, dict):
            return self.as_dict() == {k.lower(): v for k, v in other.items()}
        return NotImplemented

    def __repr__(self) -> str:
        return "Headers(%r)" % (self.items,)


@dataclass
class Fault:
    """What a request gets instead of the rule's answer (kinds: see the module docstring)."""

    kind: str
    status: int = 500
    body: Optional[bytes] = None
    seconds: float = 0.0
    headers: List[Tuple[str, str]] = field(default_factory=list)


NEXT_FAULTS = ("status", "reset", "reset_mid_headers", "raw")
NEXT_FAULTS_WITH_EVENT = (
    "reset_after_headers", "truncate", "huge_length", "stall", "stall_body", "interim", "close", "chunked",
)  # fmt: skip
POST_FAULTS = ("status", "reset", "truncate")


def _fault(fault: Union[Fault, int]) -> Fault:
    return fault if isinstance(fault, Fault) else Fault("status", status=fault)


@dataclass
class Chunk:
    at: float  # time.monotonic() when the chunk's last byte arrived
    size: int


@dataclass
class Request:
    """One recorded HTTP request and the status it was answered with."""

    seq: int
    method: str
    path: str
    headers: Headers
    body: bytes = b""
    conn: str = ""  # "host:port" of the client side of the TCP connection
    kind: str = "other"  # next | response | error | init_error | ext_* | other
    request_id: Optional[str] = None  # for /response and /error
    chunked: bool = False
    trailers: Optional[Headers] = None  # chunked bodies only
    status: Optional[int] = None  # the status answered; 0: the connection was closed (or reset) instead
    received_at: float = 0.0  # time.time() when the whole request had arrived
    started_at: float = 0.0  # time.monotonic() when its head arrived
    chunks: List[Chunk] = field(default_factory=list)
    size: int = 0  # body size, even when only part of it was kept
    sha256: str = ""
    truncated: bool = False  # only the first keep_body_bytes were kept
    complete: bool = False  # the whole body has arrived
    trailer_refused: bool = False  # trailers over TRAILER_LIMIT: closed unanswered

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 200 else self.body[:200] + b"...(%d bytes)" % len(self.body)
        return "<Request #%d %s %s kind=%s rid=%s conn=%s status=%s body=%r>" % (
            self.seq, self.method, self.path, self.kind, self.request_id, self.conn, self.status, body,
        )  # fmt: skip


@dataclass
class Extension:
    """One registered extension."""

    name: str
    identifier: str
    events: List[str]
    seq: int  # seq of its register request
    queue: Deque[Dict[str, Any]] = field(default_factory=collections.deque)
    next_calls: int = 0
    waiting: int = 0  # event/next calls blocked right now


class Invocation:
    """One event: what the runtime is served and answers (the ledger), and the caller's view of it."""

    def __init__(
        self,
        emulator: RuntimeEmulator,
        key: str,
        request_id: Optional[str],
        payload: bytes,
        headers: List[Tuple[str, HeaderValue]],
        timeout: Optional[float],
        caller: bool,
    ):
        self._cond = emulator._cond
        self.key = key  # the request id, or a generated key for an event sent without one
        self.request_id = request_id
        self.payload = payload
        self.headers = headers
        self.timeout = timeout  # enforced when not None
        self.caller = caller  # made by invoke(): someone waits for its outcome
        self.deadline_ms: Optional[int] = None
        self.queued_at = time.monotonic()
        self.served_at: Optional[float] = None  # time.monotonic() when it was handed out
        self.finished_at: Optional[float] = None  # and when its outcome was settled
        self.delivered = ""  # "" (not yet), "partial" (the connection broke inside it), "full"
        self.answers: List[Request] = []  # every /response and /error posted for it
        self.answering: Optional[Request] = None  # a post being read right now
        self.answered = False  # the event counts as answered (RAPID's "response sent")
        self.timed_out = False
        self.too_large = False
        self.answered_after_413 = False
        # The caller's view
        self.done = False
        self.outcome: Optional[str] = None
        self.streamed = False
        self.content_type: Optional[str] = None
        self.body = b""
        self.error_type: Optional[str] = None
        self.error_body: Optional[bytes] = None
        self.trailers: Dict[str, str] = {}
        self.init_duration_ms: Optional[float] = None
        self.duration_ms: Optional[float] = None
        self._pieces: Deque[bytes] = collections.deque()
        self._received = bytearray()

    @property
    def accepted(self) -> List[Request]:
        return [a for a in self.answers if a.status is not None and 200 <= a.status < 300]

    def chunks(self, timeout: float = 30.0) -> Iterator[bytes]:
        """The body's pieces as they arrive; TimeoutError when none comes within ``timeout`` s."""
        while True:
            deadline = time.monotonic() + timeout
            with self._cond:
                while not self._pieces and not self.done:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError("no piece of %s's answer within %.1fs" % (self.key, timeout))
                    self._cond.wait(min(left, POLL_S * 4))
                if not self._pieces:
                    return
                piece = self._pieces.popleft()
            yield piece

    def wait(self, timeout: float = 30.0) -> Invocation:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("invocation %s not done within %.1fs" % (self.key, timeout))
                self._cond.wait(min(left, POLL_S * 4))
        return self

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self) -> str:
        return "<Invocation %s delivered=%r outcome=%s error_type=%s answers=%s>" % (
            self.key, self.delivered, self.outcome, self.error_type,
            [(a.kind, a.status) for a in self.answers],
        )  # fmt: skip

    # -- called with the emulator's lock held --------------------------------------------------------------
    def _piece(self, data: bytes) -> None:
        if self.caller and not self.done:
            self._pieces.append(data)
            self._received += data

    def _finish(self, outcome: str, **fields: Any) -> None:
        if self.done:
            return
        self.outcome = outcome
        for name, value in fields.items():
            setattr(self, name, value)
        if self.streamed and outcome in ("response", "error") and "body" not in fields:
            self.body = bytes(self._received)
        elif self.caller:
            self._pieces.append(self.body)
        self.finished_at = time.monotonic()
        start = self.served_at if self.served_at is not None else self.queued_at
        self.duration_ms = (self.finished_at - start) * 1000
        self.done = True
        self._cond.notify_all()


class _Condition(threading.Condition):
    """A condition whose notify_all costs nothing when nobody waits: every request notifies, few wait."""

    def notify_all(self) -> None:
        if self._waiters:  # type: ignore[attr-defined]  (CPython's list of waiting locks)
            super().notify_all()


class RuntimeEmulator:
    """The Lambda Runtime API with Lambda's rules, a caller side and test hooks (see the module docstring)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: str = "",
        timeout: float = 300.0,
        concurrency: int = 1,
        launcher: Optional[Callable[[Dict[str, str]], Any]] = None,
        answer_204_after: Optional[float] = None,
        function_name: str = "test-fn",
        memory_mb: int = 128,
        function_version: str = "$LATEST",
        handler: str = "app.handler",
        payload_limit: int = PAYLOAD_LIMIT,
        stream_limit: int = STREAM_LIMIT,
        keep_body_bytes: Optional[int] = None,
        strict: bool = True,
    ):
        if not (host.startswith("127.") or host == "localhost"):
            raise ValueError("the emulator binds loopback addresses only, not %r" % host)
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.timeout = timeout
        self.concurrency = concurrency  # > 1: Managed Instances
        self.launcher = launcher
        self.answer_204_after = answer_204_after
        self.function_name = function_name
        self.function_arn = "arn:aws:lambda:%s:%s:function:%s" % (REGION, ACCOUNT, function_name)
        self.memory_mb = memory_mb
        self.function_version = function_version
        self.handler = handler
        self.payload_limit = payload_limit
        self.stream_limit = stream_limit
        self.keep_body_bytes = keep_body_bytes  # None: keep whole bodies
        self.keep_bodies = True  # False: answers are recorded without body (soak runs)
        self.strict = strict  # classic RAPID's 400/403 checks and closed registration
        self.trailer_limit = TRAILER_LIMIT
        self.after_413_error_status = 403  # an /error after a /response refused with 413
        self.enforce_deadline = False  # time out events pushed with push_event at their deadline too
        self.default_deadline_s = 300.0  # push_event's deadline
        self.external_extensions: Optional[set] = None  # names allowed SHUTDOWN; None: any
        self.forward_invokes_to_extensions = True
        self.init_waits_for_extensions = True
        self._cond = _Condition()
        self._queue: Deque[Invocation] = collections.deque()
        self._invocations: Dict[str, Invocation] = {}
        self._next_faults: Deque[Fault] = collections.deque()
        self._post_faults: Dict[Tuple[str, Optional[str]], Deque[Fault]] = {}
        self.requests: List[Request] = []
        self.delivery_order: List[str] = []
        self.extensions: Dict[str, Extension] = {}
        self._seq = 0
        self._current: Optional[Invocation] = None  # classic: the event served last
        self._in_flight: Dict[str, Invocation] = {}  # served, not answered
        self.max_in_flight = 0
        self._in_progress: List[Request] = []  # chunked bodies still arriving
        self._waiting_next = 0
        self.next_calls = 0
        self.answer_count = 0
        self._runtime_next_seen = False
        self.first_next: Optional[Request] = None  # the runtime's first /next: init ends there
        self._stopping = False
        self._closing = False
        self._stopped = threading.Event()
        self._conns: set = set()
        self._threads: List[threading.Thread] = []
        # the runtime process (with a launcher)
        self.runtime: Any = None
        self.init_error: Optional[dict] = None
        self._init_error_type = ""
        self._init_error_body = b""
        self.init_duration_ms: Optional[float] = None
        self._init_started: Optional[float] = None
        self._init_state = ""  # "", "ready", "init_error", "exited"
        self._init_reported = False  # the first invoke after init got init_duration_ms
        self._runtime_lock = threading.RLock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port = self._sock.getsockname()[1]
        self.address = "%s:%d" % (host, self.port)

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def concurrent(self) -> bool:
        return self.concurrency > 1

    @property
    def runtime_api(self) -> str:
        """The value for AWS_LAMBDA_RUNTIME_API."""
        return "http://%s%s" % (self.address, self.prefix) if self.prefix else self.address

    def runtime_env(self) -> Dict[str, str]:
        env = {
            "AWS_LAMBDA_RUNTIME_API": self.runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": self.function_version,
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + self.function_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        }
        if self.concurrent:
            env["AWS_LAMBDA_MAX_CONCURRENCY"] = str(self.concurrency)
        return env

    def start(self, listen_after: float = 0.0) -> RuntimeEmulator:
        """Serve; with ``listen_after`` the port refuses connections for that many seconds first."""
        self._spawn(self._accept_loop, listen_after)
        self._spawn(self._watch)
        return self

    def stop(self) -> None:
        with self._runtime_lock:
            self._closing = True  # no runtime starts from now on
        self.stop_runtime()
        with self._cond:
            self._stopping = True
            self._stopped.set()
            self._cond.notify_all()
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> RuntimeEmulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        with self._cond:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        return thread

    # -- the runtime process ---------------------------------------------------------------------------------
    def start_runtime(self) -> Any:
        """Start a runtime with the launcher (a new execution environment: extensions and init reset)."""
        if self.launcher is None:
            raise RuntimeError("this emulator has no launcher to start a runtime with")
        with self._runtime_lock:
            if self._closing:
                return None
            if self.runtime is not None and self.runtime.poll() is None:
                return self.runtime
            with self._cond:
                self.extensions.clear()
                self._runtime_next_seen = False
                self.first_next = None
                self.init_error = None
                self.init_duration_ms = None
                self._init_state = ""
                self._init_started = time.monotonic()
                self._init_reported = False
                self._current = None
            self.runtime = self.launcher(self.runtime_env())
            return self.runtime

    def stop_runtime(self, reason: str = "spindown") -> None:
        """Lambda's shutdown phase for the runtime it started: SHUTDOWN to the extensions subscribed to it,
        SIGTERM when any extension is registered, SIGKILL at the deadline."""
        with self._runtime_lock:
            handle, self.runtime = self.runtime, None
            if handle is None:
                return
            grace = self.shutdown_extensions(reason)
            if grace and handle.poll() is None:
                with contextlib.suppress(OSError):
                    handle.send_signal(signal.SIGTERM)
                end = time.monotonic() + grace
                while handle.poll() is None and time.monotonic() < end:
                    time.sleep(POLL_S / 5)
            handle.kill()
            code = handle.poll()
            with self._cond:  # what it held will not be answered now (a timed-out one is settled already)
                held = [inv for inv in self._in_flight.values() if inv.caller]
                self._end_with_runtime(held, -signal.SIGKILL if code is None else code)

    def restart_runtime(self, reason: str = "spindown") -> Any:
        self.stop_runtime(reason)
        return self.start_runtime()

    def shutdown_extensions(self, reason: str = "spindown") -> float:
        """Send SHUTDOWN to the subscribed extensions; returns the grace before SIGKILL (0: no extension)."""
        with self._cond:
            if not self.extensions:
                return 0.0
            external = any("SHUTDOWN" in e.events for e in self.extensions.values())
        grace = SHUTDOWN_GRACE_EXTERNAL_S if external else SHUTDOWN_GRACE_INTERNAL_S
        self.extension_shutdown(reason, deadline_s=grace)
        return grace

    def wait_init(self, timeout: float = 30.0) -> str:
        """Wait until init ended: "ready" (first /next), "init_error" or "exited"; "" on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._init_state and time.monotonic() < deadline:
                self._cond.wait(POLL_S)
            return self._init_state

    def _watch(self) -> None:
        """Time out overdue invocations; notice a runtime that exited."""
        while not self._stopped.wait(POLL_S):  # not the condition: every request would wake this thread
            with self._cond:
                now_ms = time.time() * 1000
                overdue = [inv for inv in self._in_flight.values() if self._overdue(inv, now_ms)]
                for inv in overdue:
                    self._time_out(inv)
            handle = self.runtime
            code = handle.poll() if handle is not None else None
            if overdue and self.launcher is not None and not self.concurrent and handle is not None:
                self._spawn(self.restart_runtime, "timeout")
            elif handle is not None and code is not None:
                self._runtime_exited(handle, code)

    def _overdue(self, inv: Invocation, now_ms: float) -> bool:
        """Past its deadline and not answered. A buffered post being read counts as in time; a stream that
        runs past the deadline does not."""
        enforced = inv.timeout is not None or self.enforce_deadline
        late = inv.deadline_ms is not None and now_ms > inv.deadline_ms
        return enforced and late and (inv.answering is None or inv.streamed) and not inv.answered

    def _time_out(self, inv: Invocation) -> None:
        inv.timed_out = True
        inv.answered = True
        self._in_flight.pop(inv.key, None)
        seconds = inv.timeout if inv.timeout is not None else self.timeout
        message = "Task timed out after %.2f seconds" % seconds
        inv._finish(
            "timeout", error_type="Sandbox.Timedout", body=platform_error("Sandbox.Timedout", inv, message)
        )

    def _runtime_exited(self, handle: Any, code: int) -> None:
        with self._runtime_lock:
            if self.runtime is not handle:
                return
            self.runtime = None
        with self._cond:
            if not self._init_state:
                self._init_state = "exited"
            waiting = [inv for inv in self._in_flight.values() if inv.caller]
            waiting += [inv for inv in self._queue if inv.caller] if self._init_state != "ready" else []
            self._end_with_runtime(waiting, code)
            queued = any(inv.caller for inv in self._queue)
        if queued and self.launcher is not None:  # invokes still wait: a new execution environment
            self.start_runtime()

    def _end_with_runtime(self, invocations: List[Invocation], code: int) -> None:
        """The runtime these invocations waited for exited with ``code`` (called with the lock held)."""
        if code < 0:  # as Go's os/exec words it
            message = "Runtime exited with error: signal: %s" % signal.strsignal(-code).lower()
        elif code:
            message = "Runtime exited with error: exit status %d" % code
        else:
            message = "Runtime exited without providing a reason"
        for inv in invocations:
            if self.init_error is not None:
                self._give_init_error(inv)
            else:
                body = platform_error("Runtime.ExitError", inv, message)
                inv._finish("exited", error_type="Runtime.ExitError", body=body)
            self._discard(inv)
        self._cond.notify_all()

    def _give_init_error(self, inv: Invocation) -> None:
        inv._finish("init_error", error_type=self._init_error_type, body=self._init_error_body)

    def _discard(self, inv: Invocation) -> None:
        self._in_flight.pop(inv.key, None)
        with contextlib.suppress(ValueError):
            self._queue.remove(inv)

    # -- the caller side -------------------------------------------------------------------------------------
    def invoke(
        self,
        payload: Any = b"{}",
        *,
        content_type: Optional[str] = "application/json",
        client_context: Any = None,
        cognito_identity: Any = None,
        trace_id: Optional[str] = None,
        tenant_id: Optional[str] = None,
        request_id: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Invocation:
        """Queue an invoke, as Lambda's Invoke API does; returns its handle at once (see the docstring)."""
        inv = self._new_event(  # RAPID leaves empty headers out, and defaults the content type
            payload,
            request_id=request_id or str(uuid.uuid4()),
            deadline_ms=None,  # set when it is served: now + the timeout
            function_arn=self.function_arn,
            trace_id=trace_id or _trace_id(),
            client_context=client_context or None,
            cognito_identity=cognito_identity or None,
            tenant_id=tenant_id or None,
            invocation_id=str(uuid.uuid4()),
            content_type=content_type or "application/json",
            extra_headers=None,
            timeout=self.timeout if timeout is None else timeout,
            caller=True,
        )
        if self.launcher is not None:
            with self._runtime_lock:
                if self.runtime is None or self.runtime.poll() is not None:
                    self.runtime = None
                    self.start_runtime()
        with self._cond:
            if self._init_state in ("init_error", "exited") and self.init_error is not None:
                self._give_init_error(inv)  # a runtime that failed init and was not started again
                self._discard(inv)
        return inv

    def push_event(
        self,
        body: Any = b"{}",
        *,
        request_id: Any = DEFAULT,
        deadline_ms: Any = DEFAULT,
        function_arn: Any = DEFAULT,
        trace_id: Optional[str] = None,
        client_context: Any = None,
        cognito_identity: Any = None,
        tenant_id: Optional[str] = None,
        invocation_id: Optional[str] = None,
        content_type: Optional[str] = "application/json",
        extra_headers: Optional[Sequence[Tuple[str, HeaderValue]]] = None,
    ) -> str:
        """Queue an event with no caller; returns its key (its request id when it has one).

        A header given as None is left out (``request_id=None``: an event without a request id).
        ``deadline_ms``: default now + ``default_deadline_s``; sent as given otherwise ("soon" too).
        ``extra_headers`` values may be bytes (sent raw)."""
        if deadline_ms is DEFAULT:
            deadline_ms = int((time.time() + self.default_deadline_s) * 1000)
        inv = self._new_event(
            body,
            request_id=str(uuid.uuid4()) if request_id is DEFAULT else request_id,
            deadline_ms=deadline_ms,
            function_arn=self.function_arn if function_arn is DEFAULT else function_arn,
            trace_id=trace_id,
            client_context=client_context,
            cognito_identity=cognito_identity,
            tenant_id=tenant_id,
            invocation_id=invocation_id,
            content_type=content_type,
            extra_headers=extra_headers,
            timeout=None,
            caller=False,
        )
        return inv.key

    def _new_event(self, body: Any, *, request_id: Optional[str], deadline_ms: Any, timeout: Optional[float],
                   caller: bool, extra_headers: Optional[Sequence[Tuple[str, HeaderValue]]],
                   **values: Any) -> Invocation:  # fmt: skip
        headers: List[Tuple[str, HeaderValue]] = []
        if request_id is not None:
            headers.append(("Lambda-Runtime-Aws-Request-Id", request_id))
        if deadline_ms is not None or timeout is not None:
            headers.append(("Lambda-Runtime-Deadline-Ms", "" if deadline_ms is None else str(deadline_ms)))
        names = {
            "function_arn": "Lambda-Runtime-Invoked-Function-Arn",
            "trace_id": "Lambda-Runtime-Trace-Id",
            "client_context": "Lambda-Runtime-Client-Context",
            "cognito_identity": "Lambda-Runtime-Cognito-Identity",
            "tenant_id": "Lambda-Runtime-Aws-Tenant-Id",
            "invocation_id": "Lambda-Runtime-Invocation-Id",
            "content_type": "Content-Type",
        }
        for arg, name in names.items():
            value = values[arg]
            if value is None:
                continue
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            elif not isinstance(value, (str, int)):
                value = json.dumps(value)
            headers.append((name, str(value)))
        headers.extend(extra_headers or ())
        key = request_id if request_id is not None else "no-id-%s" % uuid.uuid4()
        inv = Invocation(self, key, request_id, as_body(body), headers, timeout, caller)
        if isinstance(deadline_ms, int):
            inv.deadline_ms = deadline_ms
        with self._cond:
            self._invocations[key] = inv
            self._queue.append(inv)
            self._cond.notify_all()
        return inv

    def invocation(self, key: str) -> Invocation:
        with self._cond:
            return self._invocations[key]

    # -- fault injection -------------------------------------------------------------------------------------
    def script_next(self, *faults: Union[Fault, int]) -> None:
        """The next /next calls get these faults, one each, in order."""
        with self._cond:
            for fault in map(_fault, faults):
                assert fault.kind in NEXT_FAULTS + NEXT_FAULTS_WITH_EVENT, fault.kind
                self._next_faults.append(fault)
            self._cond.notify_all()

    def script_post(self, kind: str, *faults: Union[Fault, int], request_id: Optional[str] = None) -> None:
        """The next posts of ``kind`` (for ``request_id``, or any) get these faults, one each, in order."""
        assert kind in POST_KINDS, kind
        with self._cond:
            for fault in map(_fault, faults):
                assert fault.kind in POST_FAULTS, fault.kind
                self._post_faults.setdefault((kind, request_id), collections.deque()).append(fault)

    def _pop_post_fault(self, kind: str, request_id: Optional[str]) -> Optional[Fault]:
        for key in ((kind, request_id), (kind, None)):
            queue = self._post_faults.get(key)
            if queue:
                return queue.popleft()
        return None

    # -- the server ------------------------------------------------------------------------------------------
    def _accept_loop(self, listen_after: float) -> None:
        end = time.monotonic() + listen_after
        while time.monotonic() < end and not self._stopping:
            time.sleep(0.01)
        try:
            self._sock.listen(128)
            self._sock.settimeout(0.1)
        except OSError:
            return
        while not self._stopping:
            try:
                conn, peer = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                if self._stopping:
                    conn.close()
                    return
                self._conns.add(conn)
            self._spawn(self._serve_conn, conn, "%s:%s" % peer[:2])

    def _serve_conn(self, conn: socket.socket, peer: str) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._stopping:
                head = _read_head(reader)
                if head is None or not self._handle(conn, reader, peer, *head):
                    return
        except (OSError, ValueError):
            return
        finally:
            with self._cond:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                reader.close()
                conn.close()

    def _route(self, method: str, target: str) -> Tuple[str, Optional[str]]:
        path = target.split("?", 1)[0]
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return "other", None
            path = path[len(self.prefix) :]
        if method == "GET" and path == NEXT_PATH:
            return "next", None
        if method == "POST" and path == INIT_ERROR_PATH:
            return "init_error", None
        if method == "POST" and path.startswith(INVOCATION_PREFIX):
            rid, _, tail = path[len(INVOCATION_PREFIX) :].rpartition("/")
            if tail in ("response", "error"):
                return tail, rid
        return EXTENSION_KINDS.get((method, path), "other"), None

    def _handle(self, conn: socket.socket, reader: Any, peer: str, method: str, target: str,
                headers: List[Tuple[str, str]]) -> bool:  # fmt: skip
        """Answer one request; False when the connection is finished."""
        kind, rid = self._route(method, target)
        req = Request(0, method, target, Headers(headers), conn=peer, kind=kind, request_id=rid,
                      started_at=time.monotonic())  # fmt: skip
        if kind in ("response", "error"):
            return self._serve_answer(conn, reader, req)
        fault = None
        if kind in POST_KINDS:
            with self._cond:
                fault = self._pop_post_fault(kind, None)
        self._read_body(req, reader, conn, None)
        self._record(req)
        if kind == "next":
            return self._serve_next(conn, reader)
        if fault is not None:
            return self._post_fault(conn, reader, req, fault)
        if kind == "ext_next":
            reply = self._take_extension_event(req)
            if reply is None:
                return False
        elif kind == "init_error":
            reply = self._init_error_posted(req)
        elif kind == "ext_register":
            reply = self._register_extension(req)
        elif kind in ("ext_init_error", "ext_exit_error"):
            reply = self._extension_error(req)
        else:
            reply = (404, NOT_FOUND_BODY, [])
        self._set_status(req, reply[0])
        _send(conn, *reply)
        return True

    def _read_body(
        self, req: Request, reader: Any, conn: socket.socket, stream_to: Optional[Invocation]
    ) -> None:
        headers = req.headers
        if "100-continue" in (headers.get("Expect") or "").lower():
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" not in (headers.get("Transfer-Encoding") or "").lower():
            length = int(headers.get("Content-Length") or 0)
            body = reader.read(length) if length else b""
            if len(body) != length:
                raise ConnectionError("the connection closed inside a request body")
            req.size, req.complete = length, True
            if self.keep_bodies:
                req.body, req.sha256 = body, hashlib.sha256(body).hexdigest()
            return
        req.chunked = True
        keep = self.keep_body_bytes
        kept = bytearray()
        digest = hashlib.sha256()
        with self._cond:
            self._in_progress.append(req)
            self._cond.notify_all()
        try:
            while True:
                line = reader.readline(65537)
                if not line:
                    raise ConnectionError("the connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    break
                data = reader.read(size)
                if len(data) != size or not reader.readline(65537):
                    raise ConnectionError("the connection closed inside a chunk")
                digest.update(data)
                if keep is None:
                    kept += data
                elif len(kept) < keep:
                    kept += data[: keep - len(kept)]
                with self._cond:
                    req.chunks.append(Chunk(time.monotonic(), size))
                    req.size += size
                    if stream_to is not None and req.size <= self.stream_limit:  # RAPID cuts there
                        stream_to._piece(data)
                    self._cond.notify_all()
            trailers, trailer_bytes = [], 0
            while True:
                line = reader.readline(65537)
                trailer_bytes += len(line)
                if not line or line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                trailers.append((name.strip(), value.strip()))
        finally:
            with self._cond:
                with contextlib.suppress(ValueError):
                    self._in_progress.remove(req)
                self._cond.notify_all()
        req.trailer_refused = trailer_bytes > self.trailer_limit
        req.body = bytes(kept) if self.keep_bodies else b""
        req.sha256 = digest.hexdigest()
        req.truncated = req.size > len(kept)
        req.trailers = Headers(trailers)
        req.complete = True

    def _record(self, req: Request) -> None:
        with self._cond:
            self._seq += 1
            req.seq = self._seq
            req.received_at = time.time()
            if req.kind == "next" and not self._runtime_next_seen:
                self._runtime_next_seen = True
                self.first_next = req
                if not self._init_state:
                    self._init_state = "ready"
                    if self._init_started is not None:
                        self.init_duration_ms = (time.monotonic() - self._init_started) * 1000
            if self.keep_bodies or req.kind not in ("response", "error", "next"):
                self.requests.append(req)
            self._cond.notify_all()

    def _set_status(self, req: Request, status: int) -> None:
        with self._cond:
            req.status = status
            self._cond.notify_all()

    # -- /next -----------------------------------------------------------------------------------------------
    def _take_event(self) -> Optional[Invocation]:
        if not self._queue or self._extensions_initialising():
            return None
        if self.concurrent and len(self._in_flight) >= self.concurrency:
            return None
        return self._queue.popleft()

    def _serve_next(self, conn: socket.socket, reader: Any) -> bool:
        inv: Optional[Invocation] = None
        with self._cond:
            self.next_calls += 1
            self._waiting_next += 1
            self._cond.notify_all()
            since = time.monotonic()
            try:
                while True:
                    # A runtime stopped while parked here left this request behind: no event goes to it.
                    if self._stopping or _peer_gone(conn):
                        return False
                    if self._next_faults:
                        fault: Optional[Fault] = self._next_faults.popleft()
                        if fault.kind in NEXT_FAULTS_WITH_EVENT:
                            inv = self._take_event()
                            if inv is None:  # these need an event: wait for one
                                self._next_faults.appendleft(fault)
                                self._cond.wait(POLL_S)
                                continue
                        break
                    inv, fault = self._take_event(), None
                    if inv is not None:
                        break
                    if (
                        self.answer_204_after is not None
                        and time.monotonic() - since >= self.answer_204_after
                    ):
                        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                        return True
                    self._cond.wait(POLL_S * 2)
            finally:
                self._waiting_next -= 1
                self._cond.notify_all()
        if fault is None or fault.kind == "stall":
            if fault is not None:
                self._sleep(fault.seconds)
            self._mark(inv, "full")
            _send_event(conn, inv)
            return True
        return self._next_fault(conn, reader, fault, inv)

    def _mark(self, inv: Invocation, how: str) -> None:
        """The event is handed out (its head at least): from now on it must be answered."""
        with self._cond:
            inv.delivered = how
            inv.served_at = time.monotonic()
            if inv.timeout is not None:  # invoke(): the deadline runs from now
                inv.deadline_ms = int((time.time() + inv.timeout) * 1000)
                inv.headers = [
                    (k, str(inv.deadline_ms) if k == "Lambda-Runtime-Deadline-Ms" else v)
                    for k, v in inv.headers
                ]
            if inv.caller and self.init_duration_ms is not None and not self._init_reported:
                inv.init_duration_ms = self.init_duration_ms
                self._init_reported = True
            self.delivery_order.append(inv.key)
            self._current = inv
            self._in_flight[inv.key] = inv
            self.max_in_flight = max(self.max_in_flight, len(self._in_flight))
            if self.forward_invokes_to_extensions and self.extensions:
                self._forward_invoke(inv)
            self._cond.notify_all()

    def _next_fault(self, conn: socket.socket, reader: Any, fault: Fault, inv: Optional[Invocation]) -> bool:
        if fault.kind == "status":
            body = (
                fault.body
                if fault.body is not None
                else STATUS_BODIES.get(fault.status, CONTAINER_ERROR_BODY)
            )
            conn.sendall(_head(fault.status, [("Content-Type", "application/json")], len(body)) + body)
            return True
        if fault.kind == "reset":
            _reset(conn, reader)
            return False
        if fault.kind == "raw":
            conn.sendall(fault.body or b"")
            self._sleep(fault.seconds)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            return False
        if fault.kind == "reset_mid_headers":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: partial-head\r\nLambda-Runtime-Dea"
            )
            time.sleep(POLL_S)
            _reset(conn, reader)
            return False
        assert inv is not None
        if fault.kind == "interim":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-Progress: yes\r\n\r\n")
            self._mark(inv, "full")
            _send_event(conn, inv)
            return True
        if fault.kind == "close":
            self._mark(inv, "full")
            head = _head(200, [*inv.headers, ("Connection", "close")], len(inv.payload))
            conn.sendall(head + inv.payload)
            time.sleep(POLL_S)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            return False
        if fault.kind == "chunked":
            self._mark(inv, "full")
            third = max(1, len(inv.payload) // 3)
            pieces = [inv.payload[i : i + third] for i in range(0, len(inv.payload), third)]
            chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces)
            head = _head(200, [*inv.headers, ("Transfer-Encoding", "chunked")], None)
            conn.sendall(head + chunks + b"0\r\nX-Checksum: none\r\n\r\n")
            return True
        if fault.kind == "stall_body":
            self._mark(inv, "full")
            conn.sendall(_head(200, inv.headers, len(inv.payload)))
            self._sleep(fault.seconds)
            conn.sendall(inv.payload)
            return True
        self._mark(inv, "partial")
        head = _head(200, inv.headers, len(inv.payload))
        if fault.kind == "reset_after_headers":
            conn.sendall(head)
            time.sleep(POLL_S)
            _reset(conn, reader)
            return False
        if fault.kind == "huge_length":
            head = _head(200, inv.headers, 1 << 30)
        conn.sendall(head + inv.payload[: len(inv.payload) // 2])  # truncate, huge_length: then FIN
        self._sleep(fault.seconds or POLL_S)
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        return False

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._stopping:
            time.sleep(min(POLL_S, max(0.0, end - time.monotonic())))

    # -- /response and /error --------------------------------------------------------------------------------
    def _serve_answer(self, conn: socket.socket, reader: Any, req: Request) -> bool:
        mode = req.headers.get("Lambda-Runtime-Function-Response-Mode")
        with self._cond:
            fault = self._pop_post_fault(req.kind, req.request_id)
            inv = self._invocations.get(req.request_id or "")
            refusal = None if fault is not None else self._refusal(req, inv, mode)
            claimed = fault is None and refusal is None and inv is not None
            if claimed:
                inv.answering = req
                inv.streamed = req.kind == "response" and mode is not None
                inv.content_type = req.headers.get("Content-Type")
        try:
            self._read_body(req, reader, conn, inv if claimed and inv.streamed else None)
        except (OSError, ValueError):
            if claimed:
                with self._cond:
                    inv.answering = None
            raise
        self._record(req)
        with self._cond:
            if claimed:
                inv.answering = None
            if req.trailer_refused:
                status, reply = 0, b""
            elif fault is not None:
                status = fault.status if fault.kind == "status" else 0
                reply = (
                    fault.body if fault.body is not None else STATUS_BODIES.get(status, CONTAINER_ERROR_BODY)
                )
                if inv is not None and 200 <= status < 300:
                    self._settle(req, inv)
                elif inv is not None and status == 413:
                    inv.too_large = True
            elif refusal is not None:
                status, reply = refusal
            elif inv is None:  # not strict: anything goes
                status, reply = 202, OK_BODY
            elif inv.timed_out:  # a stream cut off by the timeout
                status, reply = 410, INVOKE_TIMEOUT_BODY
            else:
                status, reply = self._settle(req, inv)
            req.status = status
            self.answer_count += 1
            if inv is not None:
                inv.answers.append(req)
            self._cond.notify_all()
        if status == 0 and fault is None:  # trailers too long: RAPID's server hangs up
            return False
        if fault is not None and fault.kind == "reset":
            _reset(conn, reader)
            return False
        if fault is not None and fault.kind == "truncate":
            conn.sendall(_head(202, [], len(reply) + 100) + reply)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            return False
        _send(conn, status, reply, fault.headers if fault is not None else [])
        return True

    def _refusal(
        self, req: Request, inv: Optional[Invocation], mode: Optional[str]
    ) -> Optional[Tuple[int, bytes]]:
        """RAPID's answer to a post it refuses before reading it, or None."""
        if inv is not None and inv.key in self._in_flight and self._overdue(inv, time.time() * 1000):
            self._time_out(inv)
        if inv is not None and inv.timed_out:
            return 410, INVOKE_TIMEOUT_BODY
        if inv is not None and inv.too_large and req.kind == "error" and not inv.answered_after_413:
            inv.answered_after_413 = True
            status = self.after_413_error_status
            return status, OK_BODY if status < 300 else INVALID_STATE_BODY
        if self.concurrent:
            if inv is None or inv.key not in self._in_flight or inv.answering is not None:
                return 400, INVALID_REQUEST_ID_BODY
        elif self.strict:
            if inv is not None and (inv.answered or inv.answering is not None):
                return 403, INVALID_STATE_BODY
            if inv is None or inv is not self._current:
                return 400, INVALID_REQUEST_ID_BODY
        if req.kind == "response" and mode is not None and mode.lower() != "streaming":
            return 400, INVALID_MODE_BODY
        return None

    def _settle(self, req: Request, inv: Invocation) -> Tuple[int, bytes]:
        """The answer is in: the event counts as answered, and the caller gets its outcome."""
        inv.answered = True
        self._in_flight.pop(inv.key, None)
        limit = self.stream_limit if inv.streamed else self.payload_limit
        if req.kind == "response" and req.size > limit:
            inv.too_large = True
            # What the RIE gives the caller, byte for byte (its type first, no size in the message).
            inv._finish("error", error_type="Function.ResponseSizeTooLarge", body=RESPONSE_TOO_LARGE % limit)
            return 413, too_large_body(limit)
        if req.kind == "error":
            error_type = normalized_error_type(req.headers.get("Lambda-Runtime-Function-Error-Type"))
            inv._finish("error", error_type=error_type, body=req.body)
            return 202, OK_BODY
        trailers = req.trailers.as_dict() if req.trailers is not None else {}
        fields: Dict[str, Any] = {"trailers": trailers}
        if not inv.streamed:
            fields["body"] = req.body
        trailer_type = trailers.get("lambda-runtime-function-error-type")
        if trailer_type:
            with contextlib.suppress(ValueError):
                fields["error_body"] = base64.b64decode(
                    trailers.get("lambda-runtime-function-error-body", "")
                )
            inv._finish("error", error_type=normalized_error_type(trailer_type), **fields)
        else:
            inv._finish("response", **fields)
        return 202, OK_BODY

    def _post_fault(self, conn: socket.socket, reader: Any, req: Request, fault: Fault) -> bool:
        status = fault.status if fault.kind == "status" else 0
        self._set_status(req, status)
        if fault.kind == "reset":
            _reset(conn, reader)
            return False
        body = fault.body if fault.body is not None else STATUS_BODIES.get(status, CONTAINER_ERROR_BODY)
        if fault.kind == "truncate":
            conn.sendall(_head(202, [], len(body) + 100) + body)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            return False
        _send(conn, status, body, fault.headers)
        return True

    # -- /init/error -----------------------------------------------------------------------------------------
    def _init_error_posted(self, req: Request) -> Tuple[int, bytes, list]:
        with self._cond:
            try:
                doc = json.loads(req.body)
            except ValueError:
                doc = {"errorType": "", "errorMessage": req.body.decode("utf-8", "replace")}
            self.init_error = doc if isinstance(doc, dict) else {"errorMessage": doc}
            self._init_error_type = normalized_error_type(
                req.headers.get("Lambda-Runtime-Function-Error-Type")
            )
            self._init_error_body = req.body
            self._init_state = "init_error"
            for inv in [inv for inv in self._queue if inv.caller]:
                self._give_init_error(inv)
                self._discard(inv)
            self._cond.notify_all()
        return 202, OK_BODY, []

    # -- the Extensions API ----------------------------------------------------------------------------------
    def _extensions_initialising(self) -> bool:
        """RAPID ends init (and serves the first event) once every extension has called next."""
        return self.init_waits_for_extensions and any(e.next_calls == 0 for e in self.extensions.values())

    def _forward_invoke(self, inv: Invocation) -> None:
        headers = Headers([(k, v if isinstance(v, str) else v.decode("latin-1")) for k, v in inv.headers])
        event = {
            "eventType": "INVOKE",
            "deadlineMs": inv.deadline_ms or 0,
            "requestId": inv.request_id or "",
            "invokedFunctionArn": headers.get("Lambda-Runtime-Invoked-Function-Arn") or "",
            "tracing": {"type": "X-Amzn-Trace-Id", "value": headers.get("Lambda-Runtime-Trace-Id") or ""},
        }
        for ext in self.extensions.values():
            if "INVOKE" in ext.events:
                ext.queue.append(dict(event))

    def _take_extension_event(self, req: Request) -> Optional[Tuple[int, bytes, list]]:
        with self._cond:
            ext = self._extension_for(req)
            if not isinstance(ext, Extension):
                return ext
            ext.next_calls += 1
            ext.waiting += 1
            self._cond.notify_all()
            try:
                while not self._stopping:
                    if ext.queue:
                        headers = [("Lambda-Extension-Event-Identifier", str(uuid.uuid4()))]
                        return 200, as_body(ext.queue.popleft()), headers
                    self._cond.wait(POLL_S * 2)
                return None
            finally:
                ext.waiting -= 1
                self._cond.notify_all()

    def _extension_for(self, req: Request) -> Union[Extension, Tuple[int, bytes, list]]:
        """The registered extension a request names in Lambda-Extension-Identifier, or RAPID's 403."""
        ident = req.headers.get("Lambda-Extension-Identifier")
        if not ident:
            message = "Missing Lambda-Extension-Identifier header"
            return 403, error_document("Extension.MissingExtensionIdentifier", message), []
        try:
            uuid.UUID(ident)
        except ValueError:
            message = "Invalid Lambda-Extension-Identifier"
            return 403, error_document("Extension.InvalidExtensionIdentifier", message), []
        ext = self.extensions.get(ident)
        if ext is None:
            return (
                403,
                error_document("Extension.UnknownExtensionIdentifier", "Unknown extension " + ident),
                [],
            )
        return ext

    def _register_extension(self, req: Request) -> Tuple[int, bytes, list]:
        name = req.headers.get("Lambda-Extension-Name") or ""
        if not name:
            return 403, error_document("Extension.InvalidExtensionName", "Empty extension name"), []
        try:
            events = json.loads(req.body or b"{}").get("events", [])
            assert isinstance(events, list)
        except Exception:
            return 403, error_document("InvalidRequestFormat", "bad register body"), []
        with self._cond:
            if self.strict and self._runtime_next_seen:
                message = "Extension registration is closed"
                return 403, error_document("Extension.RegistrationClosed", message), []
            for event in events:
                internal = self.external_extensions is not None and name not in self.external_extensions
                if event not in ("INVOKE", "SHUTDOWN"):
                    return (
                        403,
                        error_document("Extension.InvalidEventType", "%s: ErrorInvalidEventType" % event),
                        [],
                    )
                if event == "SHUTDOWN" and internal:
                    message = "SHUTDOWN: ShutdownEventNotSupportedForInternalExtension"
                    return 403, error_document("Extension.InvalidEventType", message), []
            if any(e.name == name for e in self.extensions.values()):
                return 403, error_document("Extension.AlreadyRegistered", "Extension already registered"), []
            ext = Extension(name, str(uuid.uuid4()), list(events), req.seq)
            self.extensions[ext.identifier] = ext
            self._cond.notify_all()
        body = {"functionName": self.function_name, "functionVersion": self.function_version,
                "handler": self.handler}  # fmt: skip
        return 200, as_body(body), [("Lambda-Extension-Identifier", ext.identifier)]

    def _extension_error(self, req: Request) -> Tuple[int, bytes, list]:
        with self._cond:
            ext = self._extension_for(req)
        if not isinstance(ext, Extension):
            return ext
        if not req.headers.get("Lambda-Extension-Function-Error-Type"):
            message = "Missing Lambda-Extension-Function-Error-Type"
            return 403, error_document("Extension.MissingHeader", message), []
        return 202, OK_BODY, []

    def push_extension_event(self, event: Dict[str, Any], identifier: Optional[str] = None) -> int:
        """Queue an extension event for ``identifier``, or (None) for every registered extension subscribed
        to its eventType. Returns how many extensions it was queued for."""
        with self._cond:
            if identifier is not None:
                targets = [self.extensions[identifier]]
            else:
                targets = [e for e in self.extensions.values() if event.get("eventType") in e.events]
            for ext in targets:
                ext.queue.append(dict(event))
            self._cond.notify_all()
            return len(targets)

    def extension_invoke(self, request_id: Optional[str] = None, identifier: Optional[str] = None,
                         **extra: Any) -> str:  # fmt: skip
        """Push an INVOKE event as RAPID sends it; returns its request id."""
        rid = request_id or str(uuid.uuid4())
        event = {
            "eventType": "INVOKE",
            "deadlineMs": int((time.time() + self.default_deadline_s) * 1000),
            "requestId": rid,
            "invokedFunctionArn": self.function_arn,
            "tracing": {"type": "X-Amzn-Trace-Id", "value": _trace_id()},
        }
        event.update(extra)
        self.push_extension_event(event, identifier)
        return rid

    def extension_shutdown(self, reason: str = "spindown", identifier: Optional[str] = None,
                           deadline_s: float = SHUTDOWN_GRACE_EXTERNAL_S) -> int:  # fmt: skip
        """Push SHUTDOWN (the RIE sends the reason in lower case) to the subscribed extensions."""
        event = {"eventType": "SHUTDOWN", "deadlineMs": int((time.time() + deadline_s) * 1000),
                 "shutdownReason": reason}  # fmt: skip
        return self.push_extension_event(event, identifier)

    # -- queries ---------------------------------------------------------------------------------------------
    def snapshot(self) -> List[Request]:
        with self._cond:
            return list(self.requests)

    def of_kind(self, *kinds: str) -> List[Request]:
        return [r for r in self.snapshot() if r.kind in kinds]

    @property
    def answers(self) -> List[Request]:
        """Every /response and /error post, in arrival order."""
        return self.of_kind("response", "error")

    @property
    def init_errors(self) -> List[Request]:
        return self.of_kind("init_error")

    def answers_for(self, request_id: str) -> List[Request]:
        return [r for r in self.answers if r.request_id == request_id]

    @property
    def ledger(self) -> Dict[str, Invocation]:
        """Every event by key (its request id), in the order queued."""
        with self._cond:
            return dict(self._invocations)

    def in_flight(self) -> List[str]:
        """Keys of the events served and not answered yet."""
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

    def extension_named(self, name: str) -> Optional[Extension]:
        with self._cond:
            for e in self.extensions.values():
                if e.name == name:
                    return e
        return None

    @property
    def pending_events(self) -> int:
        with self._cond:
            return len(self._queue)

    @property
    def waiting_next(self) -> int:
        """How many /next calls are blocked waiting for an event right now."""
        with self._cond:
            return self._waiting_next

    @property
    def answered_count(self) -> int:
        with self._cond:
            return sum(1 for inv in self._invocations.values() if inv.answers)

    def check_ledger(self, exited: bool = False) -> List[str]:
        """Problems with the run's ledger; [] when every event handed out was answered exactly once.

        The only second post allowed for an event is the /error that follows a /response refused with 413.
        An event handed out (in full, or its head and part of its body) but never answered is a problem
        unless ``exited`` (the runtime exited by design) and it is the last one handed out; a partial one can
        only be answered with an /error."""
        problems = []
        with self._cond:
            invocations = dict(self._invocations)
            last = self.delivery_order[-1] if self.delivery_order else None
            strays = [r for r in self.requests if r.kind in ("response", "error")
                      and (r.request_id or "") not in invocations]  # fmt: skip
        for r in strays:
            problems.append("%s: answered %s but never delivered" % (r.request_id, [(r.kind, r.status)]))
        for key, inv in invocations.items():
            kinds = [(a.kind, a.status) for a in inv.answers]
            if inv.answers and not inv.delivered:
                problems.append("%s: answered %s but never delivered" % (key, kinds))
            if inv.delivered == "partial" and any(kind != "error" for kind, _ in kinds):
                problems.append("%s: half-received, yet answered %s" % (key, kinds))
            if len(inv.accepted) > 1:
                problems.append("%s: accepted twice: %s" % (key, kinds))
            if len(kinds) > 2 or (
                len(kinds) == 2 and not (kinds[0] == ("response", 413) and kinds[1][0] == "error")
            ):
                problems.append("%s: answered more than once: %s" % (key, kinds))
            if inv.delivered and not inv.answers and not inv.timed_out and not (exited and key == last):
                problems.append("%s: delivered (%s) but never answered" % (key, inv.delivered))
        return problems

    def describe(self, limit: int = 30) -> str:
        reqs = self.snapshot()
        shown = " (last %d shown)" % limit if len(reqs) > limit else ""
        lines = ["%d requests recorded%s:" % (len(reqs), shown)] + ["  %r" % r for r in reqs[-limit:]]
        with self._cond:
            invocations = list(self._invocations.values())[-limit:]
        lines += ["events:"] + ["  %r" % inv for inv in invocations]
        return "\n".join(lines)

    # -- waiting ---------------------------------------------------------------------------------------------
    def wait_for(self, predicate: Union[Callable[[], Any], int], timeout: float = 10.0,
                 what: Optional[str] = None, alive: Optional[Callable[[], bool]] = None) -> Any:  # fmt: skip
        """Wait until ``predicate()`` is truthy and return its value, or, given an int N, until N answers
        (/response or /error posts) have been recorded. ``alive``: when it returns False (the runtime
        exited) the wait fails at once. TimeoutError, with what was seen, otherwise."""
        if isinstance(predicate, int):
            n = predicate
            what = what or "%d answers (/response or /error)" % n

            def pred() -> Any:
                found = self.answers
                return found if len(found) >= n else None

        else:
            pred = predicate
            what = what or getattr(predicate, "__name__", "condition")
        deadline = time.monotonic() + timeout
        while True:
            value = pred()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "timed out after %.1fs waiting for %s\n%s" % (timeout, what, self.describe())
                )
            if alive is not None and not alive():
                value = pred()  # one last look: the answer may have come just before the exit
                if value:
                    return value
                raise TimeoutError("the runtime exited while waiting for %s\n%s" % (what, self.describe()))
            with self._cond:
                self._cond.wait(POLL_S)

    def wait_answer(self, request_id: str, timeout: float = 10.0, alive=None) -> Request:
        """The first /response or /error for ``request_id``."""

        def got() -> Optional[Request]:
            found = self.answers_for(request_id)
            return found[0] if found else None

        return self.wait_for(got, timeout, "an answer for request %s" % request_id, alive)

    def wait_answers(self, request_id: str, n: int, timeout: float = 10.0, alive=None) -> List[Request]:
        def got() -> Optional[List[Request]]:
            found = self.answers_for(request_id)
            return found if len(found) >= n else None

        return self.wait_for(got, timeout, "%d answers for %s" % (n, request_id), alive)

    def wait_init_error(self, timeout: float = 10.0, alive=None) -> Request:
        def got() -> Optional[Request]:
            found = self.init_errors
            return found[0] if found else None

        return self.wait_for(got, timeout, "a POST /runtime/init/error", alive)

    def wait_idle(self, timeout: float = 10.0, alive=None) -> None:
        """Until no event is queued and the runtime waits in /next."""
        self.wait_for(
            lambda: self.waiting_next > 0 and self.pending_events == 0,
            timeout,
            "the runtime to wait in /next with no event left",
            alive,
        )

    def wait_chunks(self, request_id: str, n: int, timeout: float = 10.0, alive=None) -> Request:
        """Until the streamed /response for ``request_id`` has ``n`` chunks (or has ended)."""

        def got() -> Optional[Request]:
            r = self.stream_for(request_id)
            return r if r is not None and (len(r.chunks) >= n or r.complete) else None

        return self.wait_for(got, timeout, "%d chunks of the stream for %s" % (n, request_id), alive)

    def wait_extension_waiting(self, name: str, timeout: float = 10.0, alive=None) -> Extension:
        """Until extension ``name`` is registered and blocked in event/next."""

        def got() -> Optional[Extension]:
            e = self.extension_named(name)
            return e if e is not None and e.waiting > 0 else None

        return self.wait_for(got, timeout, "extension %r blocked in event/next" % name, alive)


# -- HTTP/1.1 on raw sockets (http.server cannot reset a connection or cut a body short) ---------------------


def _read_head(reader: Any) -> Optional[Tuple[str, str, List[Tuple[str, str]]]]:
    line = reader.readline(65537)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = []
    while True:
        line = reader.readline(HEAD_LINE_LIMIT)
        if line in (b"\r\n", b"\n"):
            return method, target, headers
        if not line:
            raise ConnectionError("the connection closed inside a request head")
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))


def _head(status: int, headers: Sequence[Tuple[str, HeaderValue]], length: Optional[int]) -> bytes:
    """A response head; ``length`` None: no Content-Length (the headers say how the body ends)."""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Status").encode())]
    for name, value in headers:
        out.append(
            b"%s: %s\r\n" % (name.encode("latin-1"), value if isinstance(value, bytes) else value.encode())
        )
    if length is not None:
        out.append(b"Content-Length: %d\r\n" % length)
    out.append(b"\r\n")
    return b"".join(out)


def _send(conn: socket.socket, status: int, body: bytes, headers: Sequence[Tuple[str, str]] = ()) -> None:
    # Head and body in one write: two small segments would meet the client's delayed ACK (~40 ms).
    if status == 202 and body is OK_BODY and not headers:
        conn.sendall(ACCEPTED)  # the answer to nearly every post, rendered once
        return
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers = [*headers, ("Content-Type", "application/json")]
    conn.sendall(_head(status, headers, len(body)) + body)


def _peer_gone(conn: socket.socket) -> bool:
    """The client closed or reset its side: nobody would read what is sent."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:  # open, nothing sent: a client waiting for its answer
        return False
    except OSError:
        return True


def _send_event(conn: socket.socket, inv: Invocation) -> None:
    head = _head(200, inv.headers, len(inv.payload))
    if len(inv.payload) < 65536:
        conn.sendall(head + inv.payload)
    else:  # not worth a copy
        conn.sendall(head)
        conn.sendall(inv.payload)


ACCEPTED = _head(202, [("Content-Type", "application/json")], len(OK_BODY)) + OK_BODY


def _reset(conn: socket.socket, reader: Any) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reader.close()
        conn.close()


def _trace_id() -> str:
    """An X-Ray trace header as Lambda hands one to a runtime."""
    return "Root=1-%08x-%s;Parent=%s;Sampled=0" % (
        int(time.time()),
        uuid.uuid4().hex[:24],
        uuid.uuid4().hex[:16],
    )


# -- runtime processes -------------------------------------------------------------------------------------


class SubprocessRuntime:
    """A runtime process in its own session; ``kill()`` ends its whole process group."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.pid = popen.pid

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def send_signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(10)


def subprocess_launcher(
    argv: Sequence[str],
    env: Optional[Dict[str, str]] = None,
    cwd: Optional[str] = None,
    stdout: Any = None,
    stderr: Any = None,
) -> Callable[[Dict[str, str]], SubprocessRuntime]:
    """A launcher running ``argv`` with ``env`` over the emulator's ``runtime_env()`` (nothing else inherited
    but PATH and HOME), in its own session."""

    def launch(lambda_env: Dict[str, str]) -> SubprocessRuntime:
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}
        full.update(lambda_env)
        full.update(env or {})
        popen = subprocess.Popen(list(argv), env=full, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout,
                                 stderr=stderr, start_new_session=True)  # fmt: skip
        return SubprocessRuntime(popen)

    return launch
