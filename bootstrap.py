"""A Python custom runtime for AWS Lambda (provided.al2, provided.al2023).

One file, stdlib + urllib3. It reads the handler named by `_HANDLER`, loads it
once, then serves invocations from the Lambda Runtime API over one keep-alive
connection. What it shows the outside world (error types and messages, the
error JSON, the context object, log formats) matches AWS's own runtime
interface client, awslambdaric; README lists where it goes further.

Sections, in order: configuration, errors, Runtime API client, handler
loading, context, marshalling, logging, the loop, entry point.
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

__version__ = "0.1.0"

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

API_VERSION = "2018-06-01"
MAX_XRAY_CAUSE_BYTES = 64 * 1024  # what the platform keeps of the X-Ray cause
DEFAULT_PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100  # RAPID's limit, used when a 413 does not say
CONNECT_TIMEOUT_SECONDS = 1.0
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
    """A request to the Runtime API failed on the wire (refused, reset, cut short)."""


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
        body = error_body(name, message, traceback.format_list(frames), request_id)
        if header_type is None:
            header_type = (
                "Function.%s" % name if name.isalpha() and name[0].isupper() else "Function.Unhandled"
            )
        return cls(body, xray_cause(name, message, frames), header_type, exception_chain(exc))


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


def xray_cause(error_type, message, frames):
    """The X-Ray error cause, cut to what the platform keeps rather than dropped."""
    stack = [{"label": f.name, "path": f.filename, "line": f.lineno} for f in frames]
    while True:
        cause = {
            "working_directory": os.getcwd(),
            "exceptions": [{"message": message, "type": error_type, "stack": stack}],
            "paths": sorted({entry["path"] for entry in stack}),
        }
        encoded = json.dumps(cause, ensure_ascii=True)
        if len(encoded) <= MAX_XRAY_CAUSE_BYTES:
            return encoded
        if len(stack) > 1:
            stack = stack[: len(stack) // 2]
        else:
            message = message[: len(message) // 2]


# ---------------------------------------------------------------------------
# Runtime API client
# ---------------------------------------------------------------------------


class Invocation:
    """One event from /next: the body and the headers that describe it."""

    __slots__ = (
        "request_id", "body", "content_type", "deadline_ms", "function_arn", "trace_id",
        "client_context", "cognito_identity", "tenant_id", "invocation_id",
    )  # fmt: skip

    def __init__(self, headers, body):
        self.request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.body = body
        self.content_type = headers.get("Content-Type") or "application/json"
        try:
            self.deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        except ValueError:
            self.deadline_ms = 0
        self.function_arn = header_text(headers.get("Lambda-Runtime-Invoked-Function-Arn"))
        self.trace_id = headers.get("Lambda-Runtime-Trace-Id") or None
        self.client_context = header_text(headers.get("Lambda-Runtime-Client-Context"))
        self.cognito_identity = header_text(headers.get("Lambda-Runtime-Cognito-Identity"))
        self.tenant_id = header_text(headers.get("Lambda-Runtime-Aws-Tenant-Id"))
        self.invocation_id = headers.get("Lambda-Runtime-Invocation-Id")


def header_text(value):
    """http.client reads header bytes as Latin-1; the Runtime API sends UTF-8."""
    if value is None or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


class RuntimeApiClient:
    """The Runtime API over one keep-alive urllib3 connection.

    urllib3's HTTPConnection sets up the socket (TCP_NODELAY, connect timeout);
    requests go through the http.client primitives it inherits, which are the
    same on urllib3 1.26 and 2.x and skip per-request pool bookkeeping.
    """

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.base = "/%s/runtime" % API_VERSION
        self._conn = None

    def _connection(self):
        if self._conn is None:
            import http.client

            from urllib3.connection import HTTPConnection

            self._getresponse = http.client.HTTPConnection.getresponse
            self._conn = HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT_SECONDS)
        conn = self._conn
        if conn.sock is None:
            conn.connect()
            conn.sock.settimeout(None)  # /next may wait for minutes, across freezes of the sandbox
        return conn

    def _request(self, method, path, body=None, headers=()):
        try:
            conn = self._connection()
            conn.putrequest(method, path, skip_accept_encoding=True)
            conn.putheader("User-Agent", USER_AGENT)
            for name, value in headers:
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = self._getresponse(conn)
            data = response.read()
        except Exception as exc:
            if self._conn is not None:
                self._conn.close()
            raise TransportError("%s: %s" % (type(exc).__name__, exc)) from exc
        return response.status, response.headers, data

    def next_invocation(self):
        path = self.base + "/invocation/next"
        for delay in (*NEXT_RETRY_DELAYS, None):
            try:
                status, headers, body = self._request("GET", path)
                break
            except TransportError as exc:  # nothing was taken: asking again cannot take an event twice
                if delay is None:
                    raise RuntimeApiError(
                        "cannot reach the Runtime API at %s:%s: %s" % (self.host, self.port, exc)
                    ) from exc
                time.sleep(delay)
        if status != 200:
            raise RuntimeApiError.answered("GET", path, status, body)
        return Invocation(headers, body)

    def post_response(self, invocation, body, content_type):
        headers = [("Content-Type", content_type)]
        return self._post("/invocation/%s/response" % invocation.request_id, body, headers, invocation)

    def post_error(self, invocation, error):
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Function-Error-Type", error.header_type),
            ("Lambda-Runtime-Function-XRay-Error-Cause", error.xray_cause),
        ]
        body = to_json(error.body).encode()
        return self._post("/invocation/%s/error" % invocation.request_id, body, headers, invocation)

    def post_init_error(self, error):
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Function-Error-Type", error.header_type),
        ]
        return self._post("/init/error", to_json(error.body).encode(), headers, None)

    def _post(self, path, body, headers, invocation):
        if invocation is not None and invocation.invocation_id is not None:
            headers.append(("Lambda-Runtime-Invocation-Id", invocation.invocation_id))
        try:
            status, _, answer = self._request("POST", self.base + path, body, headers)
        except TransportError as exc:  # the post may have arrived: sending it again could answer twice
            raise RuntimeApiError("POST %s failed: %s" % (path, exc)) from exc
        if status >= 500:
            raise RuntimeApiError.answered("POST", path, status, answer)
        return status, answer


# ---------------------------------------------------------------------------
# Handler loading
# ---------------------------------------------------------------------------


def load_handler(name):
    """Import the handler named `module.function` (dots or slashes in the module part)."""
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
            [] if _is_missing(exc, module_path) else traceback.format_list(_code_frames(exc)),
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
        """Write one record to the function's log, newline-terminated so it stands alone."""
        text = str(msg)
        LOG_SINK.write(text if text.endswith("\n") else text + "\n")

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
    import decimal

    if isinstance(obj, decimal.Decimal):
        raise _NeedsSlowPath
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


_encode_fast = json.JSONEncoder(ensure_ascii=False, allow_nan=True, default=_reject).encode


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
    if not ensure_ascii:
        try:
            return _encode_fast(obj)
        except _NeedsSlowPath:
            pass
    return "".join(_decimal_encoder(ensure_ascii)(obj, 0))


def _decimal_encoder(ensure_ascii):
    import decimal
    from json import encoder

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
# Threads started by a handler begin with an empty context: they fall back to the current invocation.
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

    def __init__(self, json_format, fd=None):
        self.json_format = json_format
        self.error_frame = frame_type(40, json_format)
        self.default_frame = frame_type(0, json_format)
        self._file = os.fdopen(int(fd), "wb", 0) if fd is not None else None

    def write(self, text, frame=None):
        if self._file is None:
            sys.stdout.write(text)
            return
        data = text.encode("utf-8", "backslashreplace")
        header = (frame or self.default_frame) + len(data).to_bytes(4, "big")
        self._file.write(header + (time.time_ns() // 1000).to_bytes(8, "big") + data)

    def write_error(self, error):
        """An invocation or init error: one CloudWatch event, however many lines it has."""
        body = error.body
        if self.json_format:
            timestamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            text = to_json({"timestamp": timestamp, "level": "ERROR", **body})
            self.write(text + "\n" if self._file is None else text, self.error_frame)
            return
        lines = [error_headline(body.get("errorType"), body.get("errorMessage"))]
        lines.append("Traceback (most recent call last):")
        lines += _trace_lines(body.get("stackTrace") or [])
        for how, exc in error.chain:
            lines += ["", how]
            if exc.__traceback__ is not None:
                lines.append("Traceback (most recent call last):")
                lines += _trace_lines(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
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


def setup_logging(config):
    """Unbuffered stdout/stderr and the root logger handler; returns the log sink."""
    sys.stdout = FlushingStream(sys.stdout)
    sys.stderr = FlushingStream(sys.stderr)
    json_format = config.log_format == "JSON"
    sink = LogSink(json_format, config.telemetry_fd)
    handler = LambdaLogHandler(sink, per_level_frames=json_format or bool(config.log_level))
    handler.setFormatter(JsonFormatter(config.timestamp_ms) if json_format else TextFormatter())
    handler.addFilter(RequestIdFilter())
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
    while True:
        invocation = client.next_invocation()
        if invocation.request_id is None:
            raise RuntimeApiError(
                "/next sent an event without Lambda-Runtime-Aws-Request-Id: it cannot be answered"
            )
        begin_invocation(invocation)
        try:
            body, content_type = invoke(handler, invocation)
        except BaseException as exc:
            answer_error(client, invocation, invocation_error(exc, invocation.request_id))
            if not isinstance(exc, Exception):
                raise  # SystemExit, KeyboardInterrupt: answered, then the process ends as asked
            continue
        answer(client, invocation, body, content_type)


def init(config, client):
    try:
        return load_handler(config.handler)
    except Exception as exc:
        # awslambdaric names an import-time exception by its bare class, in the body and the header alike.
        error = invocation_error(exc, "", header_type=type(exc).__name__)
        logging.warning(UNHANDLED_WARNING)
        LOG_SINK.write_error(error)
        client.post_init_error(error)
        sys.exit(1)


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
    client_context = parse_json_header(invocation.client_context, "Client Context")
    cognito_identity = parse_json_header(invocation.cognito_identity, "Cognito Identity")
    context = LambdaContext(invocation, client_context, cognito_identity)
    event = decode_event(invocation.body, invocation.content_type)
    result = handler(event, context)
    if hasattr(result, "__await__"):
        result = run_awaitable(result)
    return encode_result(result)


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


def invocation_error(exc, request_id, header_type=None):
    if isinstance(exc, RuntimeFault):
        return InvocationError.from_fault(exc, request_id)
    if not isinstance(exc, Exception):
        header_type = "Runtime.ExitError"
    return InvocationError.from_exception(exc, request_id, header_type)


def answer(client, invocation, body, content_type):
    status, reply = client.post_response(invocation, body, content_type)
    if status == 413:
        limit = _payload_limit(reply)
        LOG_SINK.write_runtime_message(
            "response of %d bytes refused (413): %s" % (len(body), safe_text(reply))
        )
        message = "Response payload size (%d bytes) exceeded maximum allowed payload size (%d bytes)." % (
            len(body),
            limit,
        )
        fault = RuntimeFault("Function.ResponseSizeTooLarge", message)
        answer_error(client, invocation, InvocationError.from_fault(fault, invocation.request_id))
    elif status >= 300:
        report_refused("response", invocation, status, reply)


def answer_error(client, invocation, error):
    LOG_SINK.write_error(error)
    status, reply = client.post_error(invocation, error)
    if status >= 300:
        report_refused("error", invocation, status, reply)


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
    return data[:500].decode("utf-8", "replace")


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

_THIS_FILE = run.__code__.co_filename


def on_sigterm(signum, frame):
    """Lambda sends SIGTERM at shutdown: flush what is logged and leave cleanly."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a handler may have closed them: nothing is left to save
            stream.flush()
    os._exit(0)


def main(argv=None, environ=None):
    global LOG_SINK
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    config = RuntimeConfig(environ, argv)
    if not config.api_address:
        sys.stderr.write(
            "bootstrap: AWS_LAMBDA_RUNTIME_API is not set. Lambda sets it; to run locally, set it to the "
            "host:port of a Runtime API (for example the Runtime Interface Emulator).\n"
        )
        return 1
    signal.signal(signal.SIGTERM, on_sigterm)
    prepare_process(config, environ)
    LOG_SINK = setup_logging(config)
    client = RuntimeApiClient(config.api_address)
    try:
        run(config, client)
    except RuntimeApiError as exc:
        LOG_SINK.write_runtime_message("%s; exiting" % exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
