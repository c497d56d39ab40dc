"""A Python custom runtime for AWS Lambda's provided.al2023.

stdlib + urllib3. It reads the handler named by `_HANDLER`, loads it once, then serves invocations from the
Lambda Runtime API over one keep-alive connection. What it shows the outside world (error types and
messages, the error JSON, the context object, log formats) matches AWS's own runtime interface client,
awslambdaric; README lists where it goes further.

This file holds the configuration, handler loading, the context and the loop, then the entry point. The
rest lives in the package beside it, lambda_bootstrap/, one concern a module (its docstring lists them).
Their public names are re-exported here: handlers and tools use them as `bootstrap.NAME`.
"""

import lambda_bootstrap  # noqa: F401  (first: importing it marks where the runtime starts, lambda_bootstrap.phases)

# isort: split
import gc
import json
import logging
import os
import signal
import sys
import time
import traceback
import types

from lambda_bootstrap import __version__, logs, phases, shutdown
from lambda_bootstrap.errors import (
    MAX_ERROR_TYPE_NAME,
    MAX_XRAY_CAUSE_BYTES,
    InvocationError,
    cut_to_fit,
    error_body,
    exception_chain,
    format_frames,
    header_name,
    invocation_error,
    is_runtime_file,
    user_frames,
    working_directory,
    xray_cause,
)
from lambda_bootstrap.event_loop import run_awaitable
from lambda_bootstrap.extensions import ExtensionsApiClient, run_extension
from lambda_bootstrap.faults import RuntimeFault, safe_str, safe_text
from lambda_bootstrap.logs import (
    LEVEL_FRAME_BITS,
    POOL_THREAD_MODULES,
    RESERVED_RECORD_KEYS,
    TEXT_FORMAT,
    UNHANDLED_WARNING,
    FlushingStream,
    JsonFormatter,
    LambdaLogHandler,
    LogSink,
    RequestIdFilter,
    TextFormatter,
    current_request_id,
    error_headline,
    frame_type,
    inherit_invocation_context,
    normalised_level,
    own_stdout,
    setup_logging,
)
from lambda_bootstrap.managed_instances import (
    WORKER_RESTART_WINDOW_SECONDS,
    claim_init_error,
    exit_status,
    reap,
    run_workers,
    send_output_to,
    worker_main,
)
from lambda_bootstrap.marshal import decode_event, encode_result, to_json
from lambda_bootstrap.runtime_api import (
    API_VERSION,
    BODY_PIECE_BYTES,
    CONNECT_TIMEOUT_SECONDS,
    HEX_DIGITS,
    MAX_LINE_BYTES,
    NEXT_RETRY_DELAYS,
    USER_AGENT,
    BodyLost,
    Invocation,
    KeepAliveConnection,
    MalformedAnswer,
    RuntimeApiClient,
    RuntimeApiError,
    TransportError,
    frame_headers,
    is_decimal,
    parse_address,
)
from lambda_bootstrap.shutdown import (
    SHUTDOWN_EXTENSION_NAME,
    SHUTDOWN_HOOKS_SECONDS,
    SHUTDOWN_WORKERS_SECONDS,
    on_shutdown,
    on_sigterm,
    run_shutdown_hooks,
    start_shutdown_extension,
)
from lambda_bootstrap.streaming import (
    MAX_STREAM_ERROR_BYTES,
    HttpStreamingResponse,
    OutgoingStream,
    StreamingResponse,
)
from lambda_bootstrap.web import asgi, serve_app, wsgi

# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------

DEFAULT_PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100  # RAPID's limit, used when a 413 does not say
IMPORT_GC_THRESHOLD = 100_000  # the collector's first threshold while the handler is imported (see init)


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
        self.config_error = None
        if self.api_address:
            try:
                parse_address(self.api_address)
            except ValueError as exc:
                self.config_error = str(exc)
        graceful = environ.get("LAMBDA_GRACEFUL_SHUTDOWN", "")
        self.graceful_shutdown = graceful.lower() in ("1", "true")
        if graceful.lower() not in ("", "0", "false", "1", "true"):
            self.config_error = (
                "LAMBDA_GRACEFUL_SHUTDOWN must be 1 or true (on), or 0 or false (off), not %r" % graceful
            )
        concurrency = environ.get("AWS_LAMBDA_MAX_CONCURRENCY", "")
        digits = concurrency.strip()
        self.max_concurrency = int(digits) if is_decimal(digits) else None
        if concurrency and (self.max_concurrency is None or self.max_concurrency < 1):
            self.config_error = (
                "AWS_LAMBDA_MAX_CONCURRENCY must be a whole number of workers, not %r" % concurrency
            )
        if self.max_concurrency == 1:  # one process, not a pool of one (cargo-lambda always sets 1)
            self.max_concurrency = None
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
        # The bootloader's own variables: it has started Python and reads them no more, and a child that is
        # itself a frozen program (this one again, say) would take them for its own.
        for name in [name for name in environ if name.startswith("_PYI_")]:
            del environ[name]
        # The bundled OpenSSL looks for CA certificates where its build host kept them.
        if "SSL_CERT_FILE" not in environ:
            for bundle in ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt"):
                if os.path.exists(bundle):
                    environ["SSL_CERT_FILE"] = bundle
                    break


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
    phases.mark("handler")
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
    phases.mark("handler-done")
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
    return serve_app(handler) if web_app else handler


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

    return [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not is_runtime_file(f.filename)
        and f.filename != importlib.__file__
        and not f.filename.startswith("<frozen ")
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
        logs.LOG_SINK.write_unformatted(str(msg))

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
    # A handler's import makes objects by the hundred thousand, and the collector would walk them again and
    # again as they pile up: during it, it runs once per IMPORT_GC_THRESHOLD of them (the default is 700).
    threshold = gc.get_threshold()
    gc.set_threshold(IMPORT_GC_THRESHOLD, *threshold[1:])
    try:
        handler = load_handler(config.handler)
    except Exception as exc:
        # awslambdaric names an import-time exception by its bare class, in the body and the header alike.
        error = invocation_error(exc, "", header_type=header_name(exc) or "Function.Unhandled")
        logging.warning(UNHANDLED_WARNING)
        logs.LOG_SINK.write_error(error)
        if claim_init_error():  # one per environment, however many Managed Instances workers failed
            client.post_init_error(error)
        sys.exit(1)
    finally:
        if gc.get_threshold()[0] == IMPORT_GC_THRESHOLD:  # unless the function set its own
            gc.set_threshold(*threshold)
    # What init made lives as long as the process: no later collection walks it again (a full one took
    # 30-70 ms after importing boto3 and FastAPI), and Managed Instances workers keep its pages shared.
    gc.freeze()
    if config.max_concurrency is None and (config.graceful_shutdown or shutdown.hooks):
        start_shutdown_extension(config.api_address)
    elif shutdown.hooks and not config.graceful_shutdown:
        logs.LOG_SINK.write_runtime_message(
            "shutdown hooks run with Managed Instances only when LAMBDA_GRACEFUL_SHUTDOWN=1: the runtime "
            "registers for SIGTERM before its workers import the handler",
            logging.WARNING,
        )
    return handler


def begin_invocation(invocation):
    logs.set_request(invocation.request_id, invocation.tenant_id)
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
        logs.LOG_SINK.write_runtime_message(
            "the streamed response for %s %s" % (invocation.request_id, reply)
        )
    elif status == 413 and size is not None:
        logs.LOG_SINK.write_runtime_message(
            "response of %d bytes refused (413): %s" % (size, safe_text(reply))
        )
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
    logs.LOG_SINK.write_error(error)
    status, reply = client.post_error(invocation, error)
    if status >= 300:
        report_refused("error", invocation, status, reply)


def report_refused(what, invocation, status, reply):
    # 400/403/410: the invoke is already settled (timed out, answered, unknown); the next one is not.
    logs.LOG_SINK.write_runtime_message(
        "the Runtime API refused the %s for %s with %d: %s"
        % (what, invocation.request_id, status, safe_text(reply))
    )


def _payload_limit(reply):
    import re

    found = re.search(rb"\((\d+) bytes\)", reply)
    return int(found.group(1)) if found else DEFAULT_PAYLOAD_LIMIT


def serve(config):
    """The runtime in one process: its exit status."""
    try:
        run(config, RuntimeApiClient(config.api_address))
    except RuntimeApiError as exc:
        logs.LOG_SINK.write_runtime_message("%s; exiting" % exc)
        return 2
    return 0


def is_multiprocessing_child(argv):
    """True for the arguments multiprocessing starts a frozen program's children with: `--multiprocessing-fork
    ...` (a spawned worker), or interpreter flags then `-c CODE` (the resource tracker, the fork server)."""
    return len(argv) > 1 and (
        argv[1] == "--multiprocessing-fork" or (argv[1].startswith("-") and "-c" in argv[1:])
    )


def main(argv=None, environ=None):
    phases.mark("main")
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    if getattr(sys, "frozen", False) and is_multiprocessing_child(argv):
        # multiprocessing starts its children with sys.executable, this program: they are no runtime.
        import multiprocessing

        multiprocessing.freeze_support()  # PyInstaller's version: runs the child's part, then exits
        sys.stderr.write("bootstrap: not a multiprocessing child this runtime knows: %s\n" % argv[1:])
        return 2
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
    setup_logging(config)
    if extension:
        if len(argv) != 4:
            sys.stderr.write("usage: bootstrap --extension NAME MODULE.FUNCTION\n")
            return 2
        return run_extension(config, argv[2], argv[3], load_handler)
    if config.max_concurrency is not None:
        return run_workers(config, config.max_concurrency, serve)
    if config.log_socket:
        send_output_to(config.log_socket)
    return serve(config)


# ---------------------------------------------------------------------------
# Public names
# ---------------------------------------------------------------------------


def __getattr__(name):
    """LOG_SINK is set when logging is set up, in lambda_bootstrap.logs: read it there, here too."""
    if name == "LOG_SINK":
        return logs.LOG_SINK
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


# What `import bootstrap` has had since the runtime was one file, whichever module now holds it.
__all__ = [
    "API_VERSION",
    "BODY_PIECE_BYTES",
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_PAYLOAD_LIMIT",
    "HEX_DIGITS",
    "LEVEL_FRAME_BITS",
    "MAX_ERROR_TYPE_NAME",
    "MAX_LINE_BYTES",
    "MAX_STREAM_ERROR_BYTES",
    "MAX_XRAY_CAUSE_BYTES",
    "NEXT_RETRY_DELAYS",
    "POOL_THREAD_MODULES",
    "RESERVED_RECORD_KEYS",
    "SHUTDOWN_EXTENSION_NAME",
    "SHUTDOWN_HOOKS_SECONDS",
    "SHUTDOWN_WORKERS_SECONDS",
    "TEXT_FORMAT",
    "UNHANDLED_WARNING",
    "USER_AGENT",
    "W3C_FIELDS",
    "WORKER_RESTART_WINDOW_SECONDS",
    "BodyLost",
    "Client",
    "ClientContext",
    "CognitoIdentity",
    "ExtensionsApiClient",
    "FlushingStream",
    "HttpStreamingResponse",
    "Invocation",
    "InvocationError",
    "JsonFormatter",
    "KeepAliveConnection",
    "LambdaContext",
    "LambdaLogHandler",
    "LogSink",
    "MalformedAnswer",
    "OutgoingStream",
    "RequestIdFilter",
    "RuntimeApiClient",
    "RuntimeApiError",
    "RuntimeConfig",
    "RuntimeFault",
    "StreamingResponse",
    "TextFormatter",
    "TransportError",
    "__version__",
    "answer",
    "answer_error",
    "asgi",
    "begin_invocation",
    "current_request_id",
    "cut_to_fit",
    "decode_event",
    "encode_result",
    "error_body",
    "error_headline",
    "exception_chain",
    "exit_status",
    "format_frames",
    "frame_headers",
    "frame_type",
    "header_name",
    "inherit_invocation_context",
    "init",
    "invocation_error",
    "invoke",
    "load_handler",
    "main",
    "normalised_level",
    "on_shutdown",
    "on_sigterm",
    "own_stdout",
    "parse_json_header",
    "prepare_process",
    "reap",
    "report_refused",
    "run",
    "run_awaitable",
    "run_extension",
    "run_shutdown_hooks",
    "run_workers",
    "safe_str",
    "safe_text",
    "serve",
    "setup_logging",
    "start_shutdown_extension",
    "to_json",
    "user_frames",
    "worker_main",
    "working_directory",
    "wsgi",
    "xray_cause",
]


if __name__ == "__main__":
    sys.exit(main())
