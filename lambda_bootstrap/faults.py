"""The runtime's own failures (`Runtime.*` faults) and text that is safe to report whatever it came from."""


class RuntimeFault(Exception):
    """A failure the runtime reports with a `Runtime.*` type (awslambdaric's FaultException)."""

    def __init__(self, error_type, message, stack_trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack_trace = stack_trace or []


def safe_str(value):
    try:
        return str(value)
    except Exception as exc:  # an exception whose __str__ raises must still be reported
        return "<%s: str() failed: %s>" % (type(value).__name__, type(exc).__name__)


def safe_text(data):
    return data[:500].decode("utf-8", "replace").strip()
