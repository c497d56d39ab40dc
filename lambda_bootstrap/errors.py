"""What the runtime posts and logs when an invocation or init fails: the error JSON, the error-type header,
the X-Ray cause, and the stack trace without the runtime's own frames."""

import json
import os
import traceback

from lambda_bootstrap.faults import RuntimeFault, safe_str
from lambda_bootstrap.marshal import to_json

MAX_XRAY_CAUSE_BYTES = 64 * 1024  # what the platform keeps of the X-Ray cause
MAX_ERROR_TYPE_NAME = 100  # a longer class name does not go into a header


def is_runtime_file(filename):
    """True for the runtime's own code: this package, and bootstrap.py beside it (the frozen build keeps them
    so too)."""
    folder, name = os.path.split(filename)
    return folder == _PACKAGE_DIR or (name == "bootstrap.py" and folder == os.path.dirname(_PACKAGE_DIR))


def user_frames(tb):
    """Frames of a traceback, without the runtime's own leading frames when user code follows."""
    frames = traceback.extract_tb(tb)
    for i, frame in enumerate(frames):
        if not is_runtime_file(frame.filename):
            return frames[i:]
    return frames


_PACKAGE_DIR = os.path.dirname(user_frames.__code__.co_filename)


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


def invocation_error(exc, request_id, header_type=None):
    if isinstance(exc, RuntimeFault):
        return InvocationError.from_fault(exc, request_id)
    if not isinstance(exc, Exception):
        header_type = "Runtime.ExitError"
    return InvocationError.from_exception(exc, request_id, header_type)
