"""A Python custom runtime for AWS Lambda (provided.al2, provided.al2023).

One file, stdlib + urllib3. It reads the handler named by `_HANDLER`, loads it
once, then serves invocations from the Lambda Runtime API over one keep-alive
connection. What it shows the outside world (error types and messages, the
error JSON, the context object, log formats) matches AWS's own runtime
interface client, awslambdaric; README lists where it goes further.

Sections, in order: configuration, errors, Runtime API client, handler
loading, context, marshalling, logging, the loop; then what awslambdaric does
not have (response streaming, graceful shutdown and extensions, Managed
Instances workers); the entry point last.
"""

import contextlib
import contextvars
import json
import logging
import os
import signal
import sys
import time
import traceback
import types

__version__ = "0.1.0"

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

API_VERSION = "2018-06-01"
MAX_XRAY_CAUSE_BYTES = 64 * 1024  # what the platform keeps of the X-Ray cause
# The error JSON in a stream's trailers: its base64 and the type fit the 4 KiB trailer section RAPID reads.
MAX_STREAM_ERROR_BYTES = 2048
MAX_ERROR_TYPE_NAME = 100  # a longer class name does not go into a header
DEFAULT_PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100  # RAPID's limit, used when a 413 does not say
CONNECT_TIMEOUT_SECONDS = 1.0
BODY_PIECE_BYTES = 1 << 20  # a longer body is read in pieces: an announced length reserves nothing
MAX_LINE_BYTES = 65536
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
NEXT_RETRY_DELAYS = (0.05, 0.2, 0.5)  # bounded retry of /next on connection errors only
USER_AGENT = "python-lambda-bootstrap/%s (Python %s)" % (__version__, sys.version.split()[0])


class RuntimeConfig:
    """Everything the runtime reads from its environment, read once at start."""

    def __init__(self, environ, argv):
        self.api_address = environ.get("AWS_LAMBDA_RUNTIME_API", "")
        self.handler = argv[1] if len(argv) > 1 else environ.get("_HANDLER", "")
        self.task_root = environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
        self.log_format = "JSON" if environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON" else "TEXT"
        level = environ.get("AWS_LAMBDA_LOG_LEVEL")
        self.log_level = {None: "", "TRACE": "DEBUG"}.get(level, level or "").upper()
        self.timestamp_ms = environ.get("AWS_LAMBDA_LOG_TIMESTAMP_PRECISION", "").lower() == "milliseconds"
        self.telemetry_fd = environ.get("_LAMBDA_TELEMETRY_LOG_FD")
        self.graceful_shutdown = environ.get("LAMBDA_GRACEFUL_SHUTDOWN", "") not in ("", "0", "false")
        concurrency = environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "")
        self.max_concurrency = int(concurrency) if concurrency.strip().isdigit() else None
        self.config_error = None
        if concurrency and (self.max_concurrency is None or self.max_concurrency < 1):
            self.config_error = (
                "AWS_LAMBDA_MAX_CONCURRENCY must be a whole number of workers, not %r" % concurrency
            )
        self.log_socket = environ.get("_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET")
        self.frozen = bool(getattr(sys, "frozen", False))


def prepare_process(config, environ):
    """Put the function's code on sys.path and undo what a frozen interpreter changes."""
    # The telemetry fd belongs to this process; children must not write frames into it.
    environ.pop("_LAMBDA_TELEMETRY_LOG_FD", None)
    minor = "python%d.%d" % sys.version_info[:2]
    paths = [config.task_root]
    if config.frozen:
        # A frozen interpreter ignores PYTHONPATH (sys.flags.ignore_environment), so honour it here.
        paths += [p for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths += ["/opt/python", "/opt/python/lib/%s/site-packages" % minor]
    for path in reversed(paths):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)
    if config.frozen:
        # PyInstaller's bootloader prepends its own library folder; children get the original back.
        original = environ.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is None:
            environ.pop("LD_LIBRARY_PATH", None)
        else:
            environ["LD_LIBRARY_PATH"] = original
        # The bundled OpenSSL looks for CA certificates where its build host kept them.
        if "SSL_CERT_FILE" not in environ:
            for bundle in ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"):
                if os.path.exists(bundle):
                    environ["SSL_CERT_FILE"] = bundle
                    break


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class RuntimeFault(Exception):
    """A failure the runtime reports with a `Runtime.*` type (awslambdaric's FaultException)."""

    def __init__(self, error_type, message, stack_trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


class TransportError(Exception):
    """A request to the Runtime API failed on the wire (refused, reset, cut short). `head`: the answer's
    (status, headers) when only its body was lost."""

    def __init__(self, message, head=None):
        super().__init__(message)
        self.head = head


class BodyLost(ConnectionError):
    """The answer's head arrived, its body did not (in full)."""

    def __init__(self, exc, head):
        super().__init__("%s: %s" % (type(exc).__name__, exc))
        self.head = head


class MalformedAnswer(Exception):
    """The Runtime API answered with something that is not HTTP/1.1 the runtime can frame."""


class RuntimeApiError(Exception):
    """The Runtime API answered with an unexpected status, or could not be reached."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status

    @classmethod
    def answered(cls, method, path, status, body):
        return cls("%s %s answered %d: %s" % (method, path, status, safe_text(body)), status)


def safe_str(value):
    try:
        return str(value)
    except Exception as exc:  # an exception whose __str__ raises must still be reported
        return "<%s: str() failed: %s>" % (type(value).__name__, type(exc).__name__)


def user_frames(tb):
    """Frames of a traceback, without the runtime's own leading frames when user code follows."""
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if frame.filename != _THIS_FILE:
            return frames[i:]
    return frames


def format_frames(frames):
    """awslambdaric's stack trace lines: from plain tuples, so Python 3.11+ adds no ^^^ lines."""
    return traceback.format_list([(f.filename, f.lineno, f.name, f.line) for f in frames])


def error_body(error_type, message, stack_trace, request_id=""):
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id or "",
        "stackTrace": stack_trace or [],
    }


class InvocationError:
    """What the runtime posts (and logs) when an invocation or init fails."""

    def __init__(self, body, xray_cause, header_type, chain=()):
        self.body = body
        self.xray_cause = xray_cause
        self.header_type = header_type
        self.chain = chain  # chained exceptions, for the log only

    def json(self, limit=None):
        """The error body as awslambdaric writes it: ASCII, so even a lone surrogate gets through. With a
        `limit`, cut to that many bytes: the stack trace first, then the message, then the type."""
        body = self.body
        if limit is None:
            return to_json(body, ensure_ascii=True)

        def render(stack, texts):
            fields = {"errorMessage": texts[0], "errorType": texts[1], "stackTrace": stack}
            return to_json({**body, **fields}, ensure_ascii=True)

        return cut_to_fit(render, limit, body["stackTrace"], (body["errorMessage"], body["errorType"]))

    @classmethod
    def from_fault(cls, fault, request_id=""):
        body = error_body(fault.error_type, fault.message, fault.stack_trace, request_id)
        cause = xray_cause("LambdaValidationError", fault.message, [])
        return cls(body, cause, fault.error_type)

    @classmethod
    def from_exception(cls, exc, request_id="", header_type=None):
        frames = user_frames(exc.__traceback__)
        name = type(exc).__name__
        message = safe_str(exc)
        body = error_body(name, message, format_frames(frames), request_id)
        if header_type is None:
            header_type = "Function.%s" % (header_name(exc) or "Unhandled")
        return cls(body, xray_cause(name, message, frames), header_type, exception_chain(exc))


def header_name(exc):
    """The exception's class name as it may go into an error-type header (one short line, and RAPID's
    (Runtime|Function).[A-Z][a-zA-Z]+): ASCII letters only, else None."""
    name = type(exc).__name__
    valid = name.isascii() and name.isalpha() and name[0].isupper() and len(name) <= MAX_ERROR_TYPE_NAME
    return name if valid else None


def exception_chain(exc):
    """The exceptions behind `exc` (__cause__ or unsuppressed __context__), each once."""
    chain, seen = [], {id(exc)}
    while True:
        if exc.__cause__ is not None:
            exc, how = exc.__cause__, "The exception above was directly caused by:"
        elif exc.__context__ is not None and not exc.__suppress_context__:
            exc, how = exc.__context__, "The exception above happened while handling:"
        else:
            return chain
        if id(exc) in seen:
            return chain
        seen.add(id(exc))
        chain.append((how, exc))


def working_directory():
    try:
        return os.getcwd()
    except OSError:  # a handler removed the directory it was in
        return ""


def xray_cause(error_type, message, frames):
    """The X-Ray error cause, cut to what the platform keeps rather than dropped."""
    stack = [{"label": f.name, "path": f.filename, "line": f.lineno} for f in frames]

    def render(stack, texts):
        cause = {
            "working_directory": working_directory(),
            "exceptions": [{"message": texts[0], "type": texts[1], "stack": stack}],
            "paths": sorted({entry["path"] for entry in stack}),
        }
        return json.dumps(cause, ensure_ascii=True)

    return cut_to_fit(render, MAX_XRAY_CAUSE_BYTES, stack, (message, error_type))


def cut_to_fit(render, limit, stack, texts):
    """`render(stack, texts)` (ASCII) cut to at most `limit` bytes: the stack halved down to its first entry,
    then each text in turn shortened, then the last entry dropped. Each step shrinks it, so it ends."""
    texts = list(texts)
    while True:
        encoded = render(stack, texts)
        excess = len(encoded) - limit
        if excess <= 0:
            return encoded
        if len(stack) > 1:
            stack = stack[: len(stack) // 2]
        elif any(texts):
            i = next(i for i, text in enumerate(texts) if text)
            texts[i] = texts[i][: max(0, len(texts[i]) - excess)]  # each character is at least one byte
        elif stack:
            stack = []
        else:
            return encoded  # nothing left to cut


# ---------------------------------------------------------------------------
# Runtime API client
# ---------------------------------------------------------------------------


class Invocation:
    """One event from /next: the body and the headers that describe it."""

    __slots__ = (
        "request_id", "body", "content_type", "deadline_ms", "function_arn", "trace_id",
        "client_context", "cognito_identity", "tenant_id", "invocation_id", "read_error",
    )  # fmt: skip

    def __init__(self, headers, body, read_error=None):
        """`headers`: lower-case names. `read_error`: why the body could not be read, if it could not."""
        self.request_id = headers.get("lambda-runtime-aws-request-id")
        self.body = body
        self.read_error = read_error
        self.content_type = headers.get("content-type") or "application/json"
        try:
            self.deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            self.deadline_ms = 0
        self.function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.trace_id = headers.get("lambda-runtime-trace-id") or None
        self.client_context = headers.get("lambda-runtime-client-context")
        self.cognito_identity = headers.get("lambda-runtime-cognito-identity")
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        self.invocation_id = headers.get("lambda-runtime-invocation-id")


class KeepAliveConnection:
    """One HTTP/1.1 connection to the Runtime API, opened once and kept for every call.

    urllib3 opens the socket (TCP_NODELAY and a connect timeout, the same on urllib3 1.26 and 2.x). The
    runtime frames requests and responses itself: the endpoint is fixed and local, and http.client's
    email-based header parsing took more than a quarter of the runtime's own time per event.
    """

    def __init__(self, address):
        """`address`: host:port, as in AWS_LAMBDA_RUNTIME_API ([::1]:port for IPv6)."""
        host, _, port = address.rpartition(":")
        self.address = address
        self.host, self.port = host.strip("[]"), int(port)
        self.sock = self._reader = None

    def close(self):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self._reader.close()
                self.sock.close()
        self.sock = self._reader = None

    def request(self, method, path, body=None, headers=()):
        """(status, headers with lower-case names, body). Any failure on the wire: TransportError; an answer
        that cannot be framed: RuntimeApiError (the API is local and trusted: waiting for more could hang)."""
        try:
            self.send_head(method, path, headers, body)
            return self.read_response()
        except MalformedAnswer as exc:
            self.close()
            raise RuntimeApiError(
                "%s %s: the Runtime API's answer cannot be read: %s" % (method, path, exc)
            ) from exc
        except Exception as exc:
            raise self.broken(exc) from exc

    def broken(self, exc):
        self.close()
        return TransportError("%s: %s" % (type(exc).__name__, exc), getattr(exc, "head", None))

    def send_head(self, method, path, headers, body=None):
        if self.sock is None:
            import socket

            from urllib3.util.connection import create_connection

            options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            sock = create_connection((self.host, self.port), CONNECT_TIMEOUT_SECONDS, socket_options=options)
            sock.settimeout(None)  # /next may wait for minutes, across freezes of the sandbox
            self.sock, self._reader = sock, sock.makefile("rb")
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self.address)
        head += "User-Agent: %s\r\n" % USER_AGENT
        head += frame_headers(headers)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        head = (head + "\r\n").encode("utf-8")
        if body and len(body) <= 65536:
            self.sock.sendall(head + body)  # one segment for the common small post
        else:
            self.sock.sendall(head)
            if body:
                self.sock.sendall(body)

    def send(self, data):
        self.sock.sendall(data)

    def send_chunk(self, chunk):
        """One chunk of a chunked body; a large one goes out as it is, not copied into its frame."""
        if len(chunk) <= 65536:
            self.sock.sendall(b"%X\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.sock.sendall(b"%X\r\n" % len(chunk))
            self.sock.sendall(chunk)
            self.sock.sendall(b"\r\n")

    def read_response(self):
        status = 100
        while 100 <= status < 200:  # skip interim responses
            status, headers = self._read_head()
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if not chunked and length is None and status not in (204, 304):
            raise MalformedAnswer("a %d answer with neither Content-Length nor chunked encoding" % status)
        try:
            body = self._read_chunked() if chunked else self._read_exactly(int(length or 0))
        except Exception as exc:
            raise BodyLost(exc, (status, headers)) from exc
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _read_head(self):
        readline = self._reader.readline
        line = readline(MAX_LINE_BYTES + 1)
        if not line:
            raise ConnectionError("the Runtime API closed the connection")
        parts = line.split(None, 2)
        if (
            len(parts) < 2
            or not parts[0].startswith(b"HTTP/1.")
            or len(parts[1]) != 3
            or not parts[1].isdigit()
        ):
            raise MalformedAnswer("status line %r" % line[:100])
        headers = {}
        while True:
            line = readline(MAX_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n"):
                return int(parts[1]), headers
            if line[-1:] != b"\n":
                if len(line) > MAX_LINE_BYTES:
                    raise MalformedAnswer("a header line over %d bytes" % MAX_LINE_BYTES)
                raise ConnectionError("the connection closed inside the response headers")
            name, colon, value = line.partition(b":")
            if not colon or not name or name.strip() != name:
                raise MalformedAnswer(
                    "a header line that is folded or has no colon after a name: %r" % line[:100]
                )
            name = name.lower().decode("latin-1")
            value = _header_value(value.strip())
            if name == "content-length" and (name in headers or not _is_decimal(value)):
                raise MalformedAnswer("a duplicate or non-decimal Content-Length %r" % value)
            headers[name] = value

    def _read_line(self):
        """A line of a chunked body."""
        line = self._reader.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise ValueError("a line over %d bytes" % MAX_LINE_BYTES)
        return line

    def _read_exactly(self, size):
        if size <= BODY_PIECE_BYTES:
            data = self._reader.read(size)
        else:
            pieces, left = [], size
            while left:
                piece = self._reader.read(min(left, BODY_PIECE_BYTES))
                if not piece:
                    break
                pieces.append(piece)
                left -= len(piece)
            data = b"".join(pieces)
        if len(data) != size:
            raise ConnectionError("the body was cut short: %d of %d bytes" % (len(data), size))
        return data

    def _read_chunked(self):
        parts = []
        while True:
            size = self._read_line().split(b";", 1)[0].strip()
            if not size or not set(size) <= HEX_DIGITS:
                raise ValueError("a chunk size line %r" % size[:100])
            size = int(size, 16)
            if size == 0:
                break
            parts.append(self._read_exactly(size))
            if self._read_line() not in (b"\r\n", b"\n"):
                raise ValueError("a chunk not followed by CRLF")
        while self._read_line() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(parts)


def frame_headers(headers):
    """Header (or trailer) lines. A value with CR, LF, another control character or non-ASCII would forge
    or break the head: refused, whatever it was built from."""
    for name, value in headers:
        if not (value.isascii() and value.isprintable()):
            raise ValueError("the %s header cannot be sent: %r" % (name, value[:100]))
    return "".join("%s: %s\r\n" % pair for pair in headers)


def _is_decimal(text):
    """Digits 0-9 only: int() also takes signs, underscores, blanks and other scripts' digits."""
    return text.isascii() and text.isdigit()


def _header_value(raw):
    """The Runtime API sends header values as UTF-8 (client context may hold any text)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class RuntimeApiClient:
    """The Runtime API calls, all over one KeepAliveConnection."""

    def __init__(self, address):
        self.base = "/%s/runtime" % API_VERSION
        self._conn = KeepAliveConnection(address)

    def next_invocation(self):
        path = self.base + "/invocation/next"
        lost = None
        for delay in (*NEXT_RETRY_DELAYS, None):
            try:
                status, headers, body = self._conn.request("GET", path)
                break
            except TransportError as exc:
                # An event whose head arrived was handed out: it gets an answer, the error invoke() raises.
                if exc.head is not None:
                    (status, headers), body, lost = exc.head, b"", exc
                    break
                if delay is None:  # nothing was taken: asking again cannot take an event twice
                    raise RuntimeApiError(
                        "cannot reach the Runtime API at %s: %s" % (self._conn.address, exc)
                    ) from exc
                time.sleep(delay)
        if status != 200:
            raise RuntimeApiError.answered("GET", path, status, body)
        invocation = Invocation(headers, body, lost)
        if invocation.request_id is None:
            raise RuntimeApiError(
                "/next sent an event without Lambda-Runtime-Aws-Request-Id: it cannot be answered"
            )
        return invocation

    def post_response(self, invocation, body, content_type):
        headers = [("Content-Type", content_type)]
        return self._post("/invocation/%s/response" % invocation.request_id, body, headers, invocation)

    def post_error(self, invocation, error):
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Function-Error-Type", error.header_type),
            ("Lambda-Runtime-Function-XRay-Error-Cause", error.xray_cause),
        ]
        body = error.json().encode("ascii")
        return self._post("/invocation/%s/error" % invocation.request_id, body, headers, invocation)

    def post_init_error(self, error):
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Function-Error-Type", error.header_type),
        ]
        return self._post("/init/error", error.json().encode("ascii"), headers, None)

    def post_stream(self, invocation, stream):
        """A streamed response: chunked, each chunk sent as soon as it is produced. A failure after the
        first byte travels in HTTP trailers, which the platform reads; /error is no longer allowed then."""
        path = self.base + "/invocation/%s/response" % invocation.request_id
        headers = [
            ("Content-Type", stream.content_type),
            ("Lambda-Runtime-Function-Response-Mode", "streaming"),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"),
        ]
        self._add_invocation_id(headers, invocation)
        conn = self._conn
        sent = False
        try:
            conn.send_head("POST", path, headers)
            for chunk in stream:
                if chunk:  # an empty chunk would end the body
                    conn.send_chunk(chunk)
            conn.send(b"0\r\n" + frame_headers(stream.trailers()).encode("ascii") + b"\r\n")
            sent = True
            status, _, answer = conn.read_response()
        except Exception as exc:
            failure = conn.broken(exc)
            if sent:  # the whole response went out; nothing may be posted again for it: (None, why)
                return None, str(failure)
            raise RuntimeApiError("POST %s failed: %s" % (path, failure)) from exc
        conn.close()  # the platform asks for a new connection after a streamed response
        return status, answer

    @staticmethod
    def _add_invocation_id(headers, invocation):
        if invocation is not None and invocation.invocation_id is not None:
            headers.append(("Lambda-Runtime-Invocation-Id", invocation.invocation_id))

    def _post(self, path, body, headers, invocation):
        self._add_invocation_id(headers, invocation)
        try:
            status, _, answer = self._conn.request("POST", self.base + path, body, headers)
        except TransportError as exc:  # the post may have arrived: sending it again could answer twice
            raise RuntimeApiError("POST %s failed: %s" % (path, exc)) from exc
        if status >= 500:
            raise RuntimeApiError.answered("POST", path, status, answer)
        return status, answer


class ExtensionsApiClient:
    """The Lambda Extensions API (register, next event, init error, exit error), for the graceful-shutdown
    helper and for extensions run with `bootstrap --extension NAME MODULE.FUNCTION`."""

    def __init__(self, address):
        self._conn = KeepAliveConnection(address)
        self.base = "/2020-01-01/extension"
        self.identifier = None

    def _call(self, method, path, body=None, headers=()):
        headers = list(headers)
        if self.identifier is not None:
            headers.append(("Lambda-Extension-Identifier", self.identifier))
        return self._conn.request(method, self.base + path, body, headers)

    def register(self, name, events):
        """Register as extension `name` for `events` (e.g. ["INVOKE", "SHUTDOWN"]); returns the body."""
        body = json.dumps({"events": list(events)}).encode()
        status, headers, answer = self._call("POST", "/register", body, [("Lambda-Extension-Name", name)])
        if status != 200:
            raise RuntimeApiError.answered("POST", self.base + "/register", status, answer)
        self.identifier = headers.get("lambda-extension-identifier")
        return json.loads(answer or b"{}")

    def ask_next_event(self):
        """Send /event/next and leave its answer unread: for an extension subscribed to no event."""
        self._conn.send_head(
            "GET", self.base + "/event/next", [("Lambda-Extension-Identifier", self.identifier)]
        )

    def next_event(self):
        """Block until the next event: {"eventType": "INVOKE" | "SHUTDOWN", ...}."""
        status, _, answer = self._call("GET", "/event/next")
        if status != 200:
            raise RuntimeApiError.answered("GET", self.base + "/event/next", status, answer)
        return json.loads(answer)

    def init_error(self, error_type, message):
        return self._report("/init/error", error_type, message)

    def exit_error(self, error_type, message):
        return self._report("/exit/error", error_type, message)

    def _report(self, path, error_type, message):
        body = json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()
        return self._call("POST", path, body, [("Lambda-Extension-Function-Error-Type", error_type)])[0]


# ---------------------------------------------------------------------------
# Handler loading
# ---------------------------------------------------------------------------


def load_handler(name):
    """Import the handler named `module.function` (dots or slashes in the module part), or the web app named
    `module:app`, which the runtime then serves (lambda_bootstrap.web)."""
    modname, web_app, fname = name.partition(":")
    if not web_app:
        try:
            modname, fname = name.rsplit(".", 1)
        except ValueError as exc:
            raise RuntimeFault("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (name, exc)) from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise RuntimeFault(
            "Runtime.BuiltInModuleConflict", "Cannot use built-in module %s as a handler module" % modname
        )
    import importlib

    module_path = modname.replace("/", ".")
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise RuntimeFault(
            "Runtime.ImportModuleError",
            "Unable to import module '%s': %s" % (modname, exc),
            [] if _is_missing(exc, module_path) else format_frames(_code_frames(exc)),
        ) from None
    except SyntaxError as exc:
        trace = ['  File "%s" Line %s\n    %s' % (exc.filename, exc.lineno, exc.text)]
        raise RuntimeFault(
            "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, exc), trace
        ) from None
    try:
        handler = getattr(module, fname)
    except AttributeError:
        raise RuntimeFault(
            "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname)
        ) from None
    if not callable(handler):
        raise RuntimeFault(
            "Runtime.HandlerNotFound",
            "Handler '%s' on module '%s' is not callable: it is a %s"
            % (fname, modname, type(handler).__name__),
        )
    if web_app:
        from lambda_bootstrap.web import serve_app

        return serve_app(handler)
    return handler


def _is_missing(exc, module_path):
    """True when the handler module itself (or a package above it) does not exist."""
    missing = getattr(exc, "name", None)
    return (
        isinstance(exc, ModuleNotFoundError)
        and missing is not None
        and (module_path == missing or module_path.startswith(missing + "."))
    )


def _code_frames(exc):
    """The frames of user code (and its dependencies) in an import failure, without the import machinery."""
    import importlib

    machinery = (_THIS_FILE, importlib.__file__)
    return [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename not in machinery and not f.filename.startswith("<frozen ")
    ]


# ---------------------------------------------------------------------------
# Context
# ---------------------------------------------------------------------------

W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class LambdaContext:
    """The handler's `context` argument, with awslambdaric's attributes and types."""

    def __init__(self, invocation, client_context, cognito_identity):
        environ = os.environ
        self.aws_request_id = invocation.request_id
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invocation.function_arn
        self.tenant_id = invocation.tenant_id
        self._w3c_fields = {}
        if isinstance(client_context, dict) and "w3c" in client_context:
            w3c = client_context.pop("w3c")
            if isinstance(w3c, dict):
                self._w3c_fields = {k: w3c[k] for k in W3C_FIELDS if isinstance(w3c.get(k), str)}
        self.client_context = _from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _from_dict(Client, self.client_context.client)
        self.identity = CognitoIdentity()
        if cognito_identity is not None:
            self.identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self._epoch_deadline_time_in_ms = invocation.deadline_ms

    def get_remaining_time_in_millis(self):
        return max(0, self._epoch_deadline_time_in_ms - int(time.time() * 1000))

    def w3c(self):
        return dict(self._w3c_fields)

    def log(self, msg):
        LOG_SINK.write_unformatted(str(msg))

    def __repr__(self):
        return _slots_repr(
            self,
            (
                "aws_request_id",
                "log_group_name",
                "log_stream_name",
                "function_name",
                "memory_limit_in_mb",
                "function_version",
                "invoked_function_arn",
                "client_context",
                "identity",
                "tenant_id",
            ),
        )


def _slots_repr(obj, names):
    return "%s([%s])" % (type(obj).__name__, ",".join("%s=%s" % (n, getattr(obj, n)) for n in names))


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self):
        self.cognito_identity_id = self.cognito_identity_pool_id = None

    def __repr__(self):
        return _slots_repr(self, self.__slots__)


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __repr__(self):
        return _slots_repr(self, self.__slots__)


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __repr__(self):
        return _slots_repr(self, self.__slots__)


def _from_dict(cls, values):
    if values is None:
        return None
    obj = cls()
    for name in cls.__slots__:
        setattr(obj, name, values.get(name))
    return obj


def parse_json_header(value, what):
    if not value:
        return None
    try:
        return json.loads(value)
    except Exception as exc:
        raise RuntimeFault(
            "Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (what, exc)
        ) from None


# ---------------------------------------------------------------------------
# Marshalling
# ---------------------------------------------------------------------------


class _NeedsSlowPath(Exception):
    pass


def _reject(obj):
    decimal = sys.modules.get("decimal")  # not imported: obj cannot be a Decimal (and sys.path may be gone)
    if decimal is not None and isinstance(obj, decimal.Decimal):
        raise _NeedsSlowPath
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


# The C encoder for everything but Decimal; keyed by ensure_ascii.
_FAST_ENCODERS = {
    ascii_only: json.JSONEncoder(ensure_ascii=ascii_only, allow_nan=True, default=_reject).encode
    for ascii_only in (False, True)
}


def decode_event(body, content_type):
    """The event for the handler: JSON when the media type is application/json, else the raw bytes."""
    if (
        content_type != "application/json"
        and content_type.split(";", 1)[0].strip().lower() != "application/json"
    ):
        return body
    try:
        return json.loads(body)
    except Exception as exc:
        raise RuntimeFault("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % exc) from None


def encode_result(result):
    """The response body and its content type."""
    if isinstance(result, bytes):
        return result, "application/unknown"
    try:
        return to_json(result).encode("utf-8"), "application/json"
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8: escape them, as JSON allows
        return to_json(result, ensure_ascii=True).encode("ascii"), "application/json"
    except Exception as exc:
        raise RuntimeFault("Runtime.MarshalError", "Unable to marshal response: %s" % safe_str(exc)) from None


def to_json(obj, ensure_ascii=False):
    """JSON as awslambdaric writes it: Decimal as its exact text, NaN and Infinity allowed."""
    try:
        return _FAST_ENCODERS[ensure_ascii](obj)
    except _NeedsSlowPath:
        return "".join(_decimal_encoder(ensure_ascii)(obj, 0))


def _decimal_encoder(ensure_ascii):
    from json import encoder

    decimal = sys.modules["decimal"]  # a Decimal was met, so it is imported

    def number_text(value):
        if isinstance(value, decimal.Decimal):
            return "NaN" if value.is_nan() else str(value)
        return float_text(value)

    def float_text(value):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)

    def default(obj):
        raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)

    quote = encoder.encode_basestring_ascii if ensure_ascii else encoder.encode_basestring
    # json's own pure-Python encoder, told that Decimal is a number too.
    return encoder._make_iterencode(
        {}, default, quote, None, number_text, ": ", ", ", False, False, False, float=(float, decimal.Decimal)
    )


# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

_request_id = contextvars.ContextVar("aws_request_id")
_tenant_id = contextvars.ContextVar("tenant_id")
# Pool threads run in an empty context: they fall back to the current invocation.
_current = {"request_id": "", "tenant_id": None}

TEXT_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
LEVEL_FRAME_BITS = {0: 0x00, 10: 0x08, 20: 0x0C, 30: 0x10, 40: 0x14, 50: 0x18}
RESERVED_RECORD_KEYS = frozenset(
    (
        "name",
        "msg",
        "args",
        "levelname",
        "levelno",
        "pathname",
        "filename",
        "module",
        "exc_info",
        "exc_text",
        "stack_info",
        "lineno",
        "funcName",
        "created",
        "msecs",
        "relativeCreated",
        "thread",
        "threadName",
        "processName",
        "process",
        "aws_request_id",
        "tenant_id",
        "_frame_type",
    )
)


def frame_type(level, json_format):
    """Telemetry frame type: 0xA55A0000 | level bits | 2 | (1 for TEXT)."""
    return (0xA55A0002 | LEVEL_FRAME_BITS[level] | (0 if json_format else 1)).to_bytes(4, "big")


def normalised_level(levelno):
    return min(50, max(0, levelno)) // 10 * 10


class FlushingStream:
    """stdout/stderr that never hold a line back (a frozen interpreter ignores PYTHONUNBUFFERED)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        written = self._stream.write(text)
        self._stream.flush()
        return written

    def writelines(self, lines):
        self._stream.writelines(lines)
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


class LogSink:
    """Where log records go: stdout as lines, or the telemetry fd as frames."""

    def __init__(self, json_format, fd=None, stream=None):
        self.json_format = json_format
        self.error_frame = frame_type(40, json_format)
        self.default_frame = frame_type(0, False)  # awslambdaric's, whatever the format: plain text
        self._file = os.fdopen(int(fd), "wb", 0) if fd is not None else None
        self._stream = stream  # None: whatever sys.stdout is at the time

    def write_to(self, stream):
        self._stream = stream

    def write(self, text, frame=None):
        if self._file is None:
            stream = self._stream or sys.stdout
            stream.write(text)
            stream.flush()
            return
        data = text.encode("utf-8", "backslashreplace")
        header = (frame or self.default_frame) + len(data).to_bytes(4, "big")
        self._file.write(header + (time.time_ns() // 1000).to_bytes(8, "big") + data)

    def write_unformatted(self, text):
        """Text outside any record (context.log): on the telemetry fd one frame holding exactly `text`, as
        awslambdaric writes it; on stdout a line of its own, so that the next record does not run into it."""
        if self._file is None and not text.endswith("\n"):
            text += "\n"
        self.write(text)

    def write_error(self, error):
        """An invocation or init error: one CloudWatch event, however many lines it has."""
        body = error.body
        if self.json_format:
            timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            text = to_json({"timestamp": timestamp, "level": "ERROR", **body}, ensure_ascii=True)
            self.write(text + "\n" if self._file is None else text, self.error_frame)
            return
        lines = [error_headline(body.get("errorType"), body.get("errorMessage"))]
        lines.append("Traceback (most recent call last):")
        lines += _trace_lines(body.get("stackTrace") or [])
        for how, exc in error.chain:
            lines += ["", how]
            if exc.__traceback__ is not None:
                lines.append("Traceback (most recent call last):")
                lines += _trace_lines(format_frames(traceback.extract_tb(exc.__traceback__)))
            lines.append("%s: %s" % (type(exc).__name__, safe_str(exc)))
        if self._file is None:
            self.write("\r".join(lines) + "\n")
        else:
            self.write("\n".join(lines), self.error_frame)

    def write_runtime_message(self, message, level=logging.ERROR):
        """The runtime's own diagnostics, in the function's log format."""
        name = logging.getLevelName(level)
        if self.json_format:
            record = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "level": name,
                "message": message,
                "logger": "bootstrap",
                "requestId": current_request_id(),
            }
            self.write(to_json(record) + "\n", frame_type(level, True))
        else:
            now = time.time()
            stamp = "%s.%03dZ" % (
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)),
                int(now * 1000) % 1000,
            )
            self.write(
                "[%s]\t%s\t%s\tLAMBDA_RUNTIME %s\n" % (name, stamp, current_request_id(), message),
                frame_type(level, False),
            )


def error_headline(error_type, message):
    headline = "[ERROR]"
    if error_type:
        headline += " " + error_type
    if message:
        headline += (":" if error_type else "") + " " + message
    return headline


def _trace_lines(stack_trace):
    lines = []
    for element in stack_trace:
        if element == "":
            lines.append("")
        for line in element.splitlines():
            stripped = line.lstrip(" ")
            lines.append("\u00a0" * (len(line) - len(stripped)) + stripped)
    return lines


def current_request_id():
    return _request_id.get(_current["request_id"])


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = _request_id.get(_current["request_id"]) or ""
        record.tenant_id = _tenant_id.get(_current["tenant_id"])
        return True


class TextFormatter(logging.Formatter):
    """awslambdaric's TEXT format, with the record's newline after any traceback, not before it."""

    converter = time.gmtime

    def __init__(self):
        super().__init__(TEXT_FORMAT, "%Y-%m-%dT%H:%M:%S")

    def format(self, record):
        return super().format(record) + "\n"


class JsonFormatter(logging.Formatter):
    """awslambdaric's JSON format: one object a record, keys in its order."""

    converter = time.gmtime

    def __init__(self, milliseconds):
        super().__init__()
        self.milliseconds = milliseconds

    def formatTime(self, record, datefmt=None):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return "%s.%03dZ" % (stamp, record.msecs) if self.milliseconds else stamp + "Z"

    def format(self, record):
        record.levelno = normalised_level(record.levelno)
        record.levelname = logging.getLevelName(record.levelno)
        record._frame_type = frame_type(record.levelno, True)
        exc_info = record.exc_info
        result = {
            "timestamp": self.formatTime(record),
            "level": record.levelname,
            "message": record.msg
            if isinstance(record.msg, dict) and not record.args
            else record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc_info[2]) if exc_info else None,
            "errorType": exc_info[0].__name__ if exc_info else None,
            "errorMessage": safe_str(exc_info[1]) if exc_info else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": "%s:%s:%s" % (record.pathname, record.funcName, record.lineno) if exc_info else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        for key, value in record.__dict__.items():
            if key not in RESERVED_RECORD_KEYS and key not in result:
                result[key] = value
        return (
            json.dumps({k: v for k, v in result.items() if v is not None}, ensure_ascii=False, default=str)
            + "\n"
        )


class LambdaLogHandler(logging.Handler):
    def __init__(self, sink, per_level_frames):
        super().__init__()
        self.sink = sink
        self.per_level_frames = per_level_frames

    def emit(self, record):
        try:
            text = self.format(record)
            frame = None
            if self.per_level_frames:
                frame = getattr(record, "_frame_type", None) or frame_type(
                    normalised_level(record.levelno), False
                )
            self.sink.write(text, frame)
        except Exception:
            self.handleError(record)


# Their worker threads start once and then serve one invocation after another.
POOL_THREAD_MODULES = ("concurrent.futures.thread", "multiprocessing.pool")


def inherit_invocation_context():
    """Threads a handler starts keep the request id of the invocation that started them, even when they
    log after it ended. A pool's worker threads run in an empty context instead, so they log the invocation
    running at the time (a context copied when they started would name the first one for ever)."""
    import threading

    start = threading.Thread.start

    def start_in_context(thread):
        pooled = getattr(getattr(thread, "_target", None), "__module__", None) in POOL_THREAD_MODULES
        run, context = thread.run, contextvars.Context() if pooled else contextvars.copy_context()
        thread.run = lambda: context.run(run)
        return start(thread)

    threading.Thread.start = start_in_context


def own_stdout():
    """The runtime's own copy of stdout: logs still reach CloudWatch after a handler closes or replaces
    sys.stdout."""
    try:
        return open(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", errors="backslashreplace")
    except (AttributeError, OSError, ValueError):  # stdout is not a file here: share it
        return sys.stdout


def setup_logging(config):
    """Unbuffered stdout/stderr and the root logger handler; returns the log sink."""
    sys.stdout = FlushingStream(sys.stdout)
    sys.stderr = FlushingStream(sys.stderr)
    json_format = config.log_format == "JSON"
    sink = LogSink(json_format, config.telemetry_fd, own_stdout())
    handler = LambdaLogHandler(sink, per_level_frames=json_format or bool(config.log_level))
    handler.setFormatter(JsonFormatter(config.timestamp_ms) if json_format else TextFormatter())
    handler.addFilter(RequestIdFilter())
    inherit_invocation_context()
    root = logging.getLogger()
    root.addHandler(handler)
    if config.log_level in logging._nameToLevel:
        root.setLevel(config.log_level)
    return sink


UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the runtime "
    "version in the INIT_START log entry. If this error correlates with a change in the runtime version, "
    "you may be able to mitigate this error by temporarily rolling back to the previous runtime version. "
    "For more information, see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)

LOG_SINK = None  # set by main(); context.log() writes here

# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------


def run(config, client):
    """Init once, then answer every event that /next hands out, each exactly once."""
    handler = init(config, client)
    finish = getattr(handler, "finish", None)  # a web app's work after its response (lambda_bootstrap.web)
    while True:
        if finish is not None:
            finish()
        invocation = client.next_invocation()
        begin_invocation(invocation)
        try:
            result = invoke(handler, invocation)
        except BaseException as exc:
            answer_error(client, invocation, invocation_error(exc, invocation.request_id))
            if not isinstance(exc, Exception):
                raise  # SystemExit, KeyboardInterrupt: answered, then the process ends as asked
            continue
        answer(client, invocation, result)


def init(config, client):
    try:
        handler = load_handler(config.handler)
    except Exception as exc:
        # awslambdaric names an import-time exception by its bare class, in the body and the header alike.
        error = invocation_error(exc, "", header_type=header_name(exc) or "Function.Unhandled")
        logging.warning(UNHANDLED_WARNING)
        LOG_SINK.write_error(error)
        client.post_init_error(error)
        sys.exit(1)
    if config.max_concurrency is None and (config.graceful_shutdown or _shutdown_hooks):
        start_shutdown_extension(config.api_address)
    elif _shutdown_hooks and not config.graceful_shutdown:
        LOG_SINK.write_runtime_message(
            "shutdown hooks run with Managed Instances only when LAMBDA_GRACEFUL_SHUTDOWN=1: the runtime "
            "registers for SIGTERM before its workers import the handler",
            logging.WARNING,
        )
    return handler


def begin_invocation(invocation):
    _current["request_id"] = invocation.request_id
    _current["tenant_id"] = invocation.tenant_id
    _request_id.set(invocation.request_id)
    _tenant_id.set(invocation.tenant_id)
    if invocation.trace_id is None:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    else:
        os.environ["_X_AMZN_TRACE_ID"] = invocation.trace_id


def invoke(handler, invocation):
    """Run the handler on one event: the encoded response, or a stream that produces it."""
    if invocation.read_error is not None:
        raise RuntimeFault(
            "Runtime.LambdaRuntimeClientError", "the event body could not be read: %s" % invocation.read_error
        )
    client_context = parse_json_header(invocation.client_context, "Client Context")
    cognito_identity = parse_json_header(invocation.cognito_identity, "Cognito Identity")
    context = LambdaContext(invocation, client_context, cognito_identity)
    event = decode_event(invocation.body, invocation.content_type)
    result = handler(event, context)
    if hasattr(result, "__await__"):
        result = run_awaitable(result)
    if isinstance(result, (types.GeneratorType, types.AsyncGeneratorType)):
        result = StreamingResponse(result)
    if isinstance(result, StreamingResponse):
        return OutgoingStream(result, invocation.request_id)
    return encode_result(result)


def answer(client, invocation, result):
    if isinstance(result, OutgoingStream):
        status, reply = client.post_stream(invocation, result)
        size = None
    else:
        body, content_type = result
        status, reply = client.post_response(invocation, body, content_type)
        size = len(body)
    if status is None:
        LOG_SINK.write_runtime_message(
            "the streamed response for %s was sent; its answer was lost (%s)" % (invocation.request_id, reply)
        )
    elif status == 413 and size is not None:
        LOG_SINK.write_runtime_message("response of %d bytes refused (413): %s" % (size, safe_text(reply)))
        message = "Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes)." % (
            size,
            _payload_limit(reply),
        )
        fault = RuntimeFault("Function.ResponseSizeTooLarge", message)
        answer_error(client, invocation, InvocationError.from_fault(fault, invocation.request_id))
    elif status >= 300:
        report_refused("response", invocation, status, reply)
    if isinstance(result, OutgoingStream) and result.exit is not None:
        raise result.exit  # the stream has ended properly; now the process ends as the handler asked


def answer_error(client, invocation, error):
    LOG_SINK.write_error(error)
    status, reply = client.post_error(invocation, error)
    if status >= 300:
        report_refused("error", invocation, status, reply)


def invocation_error(exc, request_id, header_type=None):
    if isinstance(exc, RuntimeFault):
        return InvocationError.from_fault(exc, request_id)
    if not isinstance(exc, Exception):
        header_type = "Runtime.ExitError"
    return InvocationError.from_exception(exc, request_id, header_type)


def report_refused(what, invocation, status, reply):
    # 400/403/410: the invoke is already settled (timed out, answered, unknown); the next one is not.
    LOG_SINK.write_runtime_message(
        "the Runtime API refused the %s for %s with %d: %s"
        % (what, invocation.request_id, status, safe_text(reply))
    )


def _payload_limit(reply):
    import re

    found = re.search(rb"\((\d+) bytes\)", reply)
    return int(found.group(1)) if found else DEFAULT_PAYLOAD_LIMIT


def safe_text(data):
    return data[:500].decode("utf-8", "replace").strip()


_event_loop = None


def run_awaitable(awaitable):
    """Await an async handler's result on one event loop kept for the life of the process."""
    global _event_loop
    if _event_loop is None:
        import asyncio

        _event_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_event_loop)

    async def wrap():
        return await awaitable

    return _event_loop.run_until_complete(wrap())


# ---------------------------------------------------------------------------
# Response streaming (beyond awslambdaric)
# ---------------------------------------------------------------------------


def asgi(app, invoke_mode=None, non_http=None, lifespan="auto"):
    """`handler = bootstrap.asgi(app)`: a handler serving the ASGI 3 app (see lambda_bootstrap.web)."""
    from lambda_bootstrap.web import asgi

    return asgi(app, invoke_mode, non_http, lifespan)


def wsgi(app, invoke_mode=None, non_http=None):
    """`handler = bootstrap.wsgi(app)`: a handler serving the WSGI app (see lambda_bootstrap.web)."""
    from lambda_bootstrap.web import wsgi

    return wsgi(app, invoke_mode, non_http)


class StreamingResponse:
    """Return this, or any generator or async generator of bytes or str, to stream the response."""

    def __init__(self, chunks, content_type="application/octet-stream"):
        if not (content_type.isascii() and content_type.isprintable()):
            raise ValueError("content_type goes into a header: printable ASCII only, not %r" % content_type)
        self.chunks = chunks
        self.content_type = content_type

    def prelude(self):
        return b""


class HttpStreamingResponse(StreamingResponse):
    """A streamed response for function URLs: status, headers and cookies go first, then the body."""

    def __init__(self, chunks, status_code=200, headers=None, cookies=None):
        super().__init__(chunks, "application/vnd.awslambda.http-integration-response")
        self.metadata = {"statusCode": status_code, "headers": headers or {}, "cookies": cookies or []}

    def prelude(self):
        return json.dumps(self.metadata).encode() + b"\0" * 8  # eight NULs end the prelude


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
        self._first = response.prelude() + self._next_chunk(b"")

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
        yield self._first
        while True:
            try:
                chunk = self._next_chunk(None)
            except BaseException as exc:  # SystemExit and the like too: the stream must still end properly
                self.error = invocation_error(exc, self.request_id)
                LOG_SINK.write_error(self.error)
                if not isinstance(exc, Exception):
                    self.exit = exc
                return
            if chunk is None:
                return
            yield chunk

    def trailers(self):
        if self.error is None:
            return []
        import base64

        body = base64.b64encode(self.error.json(MAX_STREAM_ERROR_BYTES).encode("ascii")).decode()
        return [
            ("Lambda-Runtime-Function-Error-Type", self.error.header_type),
            ("Lambda-Runtime-Function-Error-Body", body),
        ]


# ---------------------------------------------------------------------------
# Graceful shutdown and extensions (beyond awslambdaric)
# ---------------------------------------------------------------------------

SHUTDOWN_EXTENSION_NAME = "_python-bootstrap-graceful-shutdown"
SHUTDOWN_HOOKS_SECONDS = 0.4  # of the 500 ms Lambda gives a runtime with an internal extension
SHUTDOWN_WORKERS_SECONDS = 0.45  # the Managed Instances parent waits this long for its workers' hooks
_shutdown_hooks = []
_shutdown_extension = None  # kept, so that its connection stays open


def on_shutdown(hook):
    """Run `hook()` when Lambda shuts the environment down. Use as a decorator in the handler module;
    it opts the function in to graceful shutdown, as LAMBDA_GRACEFUL_SHUTDOWN=1 does."""
    _shutdown_hooks.append(hook)
    return hook


def start_shutdown_extension(address):
    """Lambda sends SIGTERM only when an extension is registered: register a no-op internal one before the
    first /next, and leave it waiting in /event/next on its own connection, so that init can complete. No
    thread waits for the answer: it subscribed to nothing, and Managed Instances workers are forked after."""
    global _shutdown_extension
    extension = ExtensionsApiClient(address)
    try:
        extension.register(SHUTDOWN_EXTENSION_NAME, [])
        extension.ask_next_event()
    except (TransportError, RuntimeApiError, OSError) as exc:
        LOG_SINK.write_runtime_message("graceful shutdown is off: %s" % exc, logging.WARNING)
        return
    _shutdown_extension = extension


def run_shutdown_hooks():
    import threading

    def run_all():
        for hook in reversed(_shutdown_hooks):
            try:
                hook()
            except Exception:
                logging.getLogger().exception("shutdown hook %r failed", hook)

    worker = threading.Thread(target=run_all, name="shutdown-hooks", daemon=True)
    worker.start()
    worker.join(SHUTDOWN_HOOKS_SECONDS)


def run_extension(config, name, target):
    """`bootstrap --extension NAME MODULE.FUNCTION`: an external extension that calls FUNCTION(event) for
    each event it receives, and leaves at SHUTDOWN."""
    extension = ExtensionsApiClient(config.api_address)
    extension.register(name, ["INVOKE", "SHUTDOWN"])
    try:
        callback = load_handler(target)
    except Exception as exc:
        error_type = exc.error_type if isinstance(exc, RuntimeFault) else header_name(exc) or "Unhandled"
        extension.init_error("Extension.%s" % error_type.rpartition(".")[2], safe_str(exc))
        return 1
    while True:
        event = extension.next_event()
        try:
            callback(event)
        except Exception as exc:
            extension.exit_error("Extension.%s" % (header_name(exc) or "Unhandled"), safe_str(exc))
            return 1
        if str(event.get("eventType", "")).upper() == "SHUTDOWN":
            return 0


# ---------------------------------------------------------------------------
# Lambda Managed Instances: several workers (beyond awslambdaric)
# ---------------------------------------------------------------------------

WORKER_RESTART_WINDOW_SECONDS = 30.0


def run_workers(config, count):
    """N worker processes, each with its own /next loop and connection; a worker that dies is replaced,
    and when they keep dying the parent gives up with a non-zero exit."""
    # awslambdaric's parent announces the pool once, before it forks (seen at DEBUG only).
    logging.getLogger().debug(
        {
            "event": "runtime_worker_pool_initializing",
            "workerCount": count,
            "executionEnvironmentMaxConcurrency": count,
        }
    )
    workers, deaths = {}, []
    if config.graceful_shutdown:  # once, before any worker polls: registration closes when init completes
        start_shutdown_extension(config.api_address)

    def start(slot):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # held until the new worker is noted
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(worker_main(config))
            workers[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def stop_all(signum=None, frame=None):
        if signum is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        if signum is not None:  # Lambda's SIGTERM: the workers' hooks run before the parent leaves
            reap(workers, SHUTDOWN_WORKERS_SECONDS)
            on_sigterm(signum, frame)

    signal.signal(signal.SIGTERM, stop_all)
    for slot in range(count):
        start(slot)
    while True:
        pid, status = os.wait()
        slot = workers.pop(pid, None)
        if slot is None:
            continue
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < WORKER_RESTART_WINDOW_SECONDS] + [now]
        code = os.waitstatus_to_exitcode(status)
        if len(deaths) > count:
            LOG_SINK.write_runtime_message(
                "workers keep exiting (worker %d: status %d); giving up" % (slot, code)
            )
            stop_all()
            return 1
        LOG_SINK.write_runtime_message("worker %d exited with status %d; starting another" % (slot, code))
        start(slot)


def reap(workers, seconds):
    """Wait, at most `seconds`, for the workers to exit."""
    deadline = time.monotonic() + seconds
    while workers and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            workers.pop(pid, None)
        else:
            time.sleep(0.005)


def worker_main(config):
    """One LMI worker: its output to the platform's log socket when there is one, then the usual loop."""
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by the parent around the fork
    try:
        if config.log_socket:
            import socket

            for fd in (1, 2):
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(config.log_socket)
                os.dup2(sock.fileno(), fd)
                sock.close()
            LOG_SINK.write_to(own_stdout())  # its copy of fd 1 was made before the fork
        return serve(config)
    except SystemExit as exc:
        return exit_status(exc)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

_THIS_FILE = run.__code__.co_filename


def exit_status(exc):
    """Python's status for an uncaught SystemExit: None is 0, an int is itself, anything else is printed and
    is 1."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    sys.stderr.write("%s\n" % (exc.code,))
    return 1


def on_sigterm(signum, frame):
    """Lambda sends SIGTERM at shutdown: run the shutdown hooks, flush what is logged, leave cleanly."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a worker may get it from Lambda and from its parent
    if _shutdown_hooks:
        run_shutdown_hooks()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a handler may have closed them: nothing is left to save
            stream.flush()
    os._exit(0)


def serve(config):
    """The runtime in one process: its exit status."""
    try:
        run(config, RuntimeApiClient(config.api_address))
    except RuntimeApiError as exc:
        LOG_SINK.write_runtime_message("%s; exiting" % exc)
        return 2
    return 0


def main(argv=None, environ=None):
    global LOG_SINK
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    extension = argv[1:2] == ["--extension"]
    config = RuntimeConfig(environ, argv[:1] if extension else argv)
    if not config.api_address:
        config.config_error = (
            "AWS_LAMBDA_RUNTIME_API is not set. Lambda sets it; to run locally, set it to the "
            "host:port of a Runtime API (for example the Runtime Interface Emulator)."
        )
    if config.config_error:
        sys.stderr.write("bootstrap: %s\n" % config.config_error)
        return 1
    # Handler modules reach on_shutdown, StreamingResponse and the rest as `import bootstrap`.
    sys.modules.setdefault("bootstrap", sys.modules[__name__])
    signal.signal(signal.SIGTERM, on_sigterm)
    prepare_process(config, environ)
    LOG_SINK = setup_logging(config)
    if extension:
        if len(argv) != 4:
            sys.stderr.write("usage: bootstrap --extension NAME MODULE.FUNCTION\n")
            return 2
        return run_extension(config, argv[2], argv[3])
    if config.max_concurrency is not None:
        return run_workers(config, config.max_concurrency)
    return serve(config)


if __name__ == "__main__":
    sys.exit(main())
