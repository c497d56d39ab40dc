"""Logging as awslambdaric does it: TEXT and JSON formats, telemetry-fd frames, the request id on every
record, and the error log of an invocation or init error."""

import contextvars
import json
import logging
import os
import sys
import time
import traceback

from lambda_bootstrap.errors import format_frames
from lambda_bootstrap.faults import safe_str
from lambda_bootstrap.marshal import to_json

LOG_SINK = None  # set by setup_logging(); every part of the runtime writes its logs here

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


def set_request(request_id, tenant_id):
    """The invocation that records are logged for from now on."""
    _current["request_id"] = request_id
    _current["tenant_id"] = tenant_id
    _request_id.set(request_id)
    _tenant_id.set(tenant_id)


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
    """Unbuffered stdout/stderr and the root logger handler; returns the log sink, LOG_SINK from now on."""
    global LOG_SINK
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
    LOG_SINK = sink
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
