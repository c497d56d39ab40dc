"""Unit tests of each part of the runtime (bootstrap.py and lambda_bootstrap/), in the order of its sections.

Where awslambdaric is installed (Python 3.10+), several tests compare a part of ours with the same part
of the reference directly, so that "matches awslambdaric" is checked, not assumed.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import pathlib
import re
import sys
import traceback
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bootstrap
from lambda_bootstrap import logs

try:  # the reference needs Python 3.10+; on 3.9 only our own assertions run
    from awslambdaric import bootstrap as ric_bootstrap
    from awslambdaric import lambda_context as ric_context
    from awslambdaric import lambda_runtime_log_utils as ric_log_utils
    from awslambdaric.lambda_runtime_exception import FaultException
    from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller

    HAVE_REFERENCE = True
except ImportError:
    HAVE_REFERENCE = False


def with_reference(test):
    """A comparison with awslambdaric: collected only where the reference is installed (Python 3.10+)."""
    return test if HAVE_REFERENCE else None


# --- configuration -------------------------------------------------------------------------------


def test_the_runtime_names_provided_al2023_only():
    """provided.al2 is closed to new code: the runtime's text (its docstrings first) does not offer it."""
    package = pathlib.Path(bootstrap.__file__).parent / "lambda_bootstrap"
    assert "provided.al2023" in bootstrap.__doc__
    for path in [pathlib.Path(bootstrap.__file__), *sorted(package.glob("*.py"))]:
        assert re.findall(r"provided\.al2(?!023)", path.read_text()) == [], path


def test_config_reads_handler_from_argv_before_env():
    config = bootstrap.RuntimeConfig(
        {"_HANDLER": "a.b", "AWS_LAMBDA_RUNTIME_API": "h:1"}, ["bootstrap", "c.d"]
    )
    assert config.handler == "c.d"
    assert bootstrap.RuntimeConfig({"_HANDLER": "a.b"}, ["bootstrap"]).handler == "a.b"


@pytest.mark.parametrize(
    ("raw", "level"), [(None, ""), ("TRACE", "DEBUG"), ("info", "INFO"), ("WARN", "WARN"), ("FATAL", "FATAL")]
)
def test_config_maps_log_level_like_awslambdaric(raw, level):
    environ = {} if raw is None else {"AWS_LAMBDA_LOG_LEVEL": raw}
    assert bootstrap.RuntimeConfig(environ, ["b"]).log_level == level


@pytest.mark.parametrize(
    ("raw", "fmt"), [("json", "JSON"), ("JSON", "JSON"), ("Text", "TEXT"), ("xml", "TEXT")]
)
def test_config_log_format(raw, fmt):
    assert bootstrap.RuntimeConfig({"AWS_LAMBDA_LOG_FORMAT": raw}, ["b"]).log_format == fmt


@pytest.mark.parametrize(
    ("raw", "on"),
    [
        *[(None, False), ("", False), ("0", False), ("false", False), ("False", False), ("FALSE", False)],
        *[("1", True), ("true", True), ("True", True), ("TRUE", True)],
    ],
)
def test_config_graceful_shutdown_reads_1_true_0_false(raw, on):
    environ = {} if raw is None else {"LAMBDA_GRACEFUL_SHUTDOWN": raw}
    config = bootstrap.RuntimeConfig(environ, ["b"])
    assert (config.graceful_shutdown, config.config_error) == (on, None)


@pytest.mark.parametrize("value", ["yes", "on", "2", "no", " 1"])
def test_a_graceful_shutdown_value_that_is_not_a_boolean_is_a_clear_start_error(value, capsys):
    environ = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "LAMBDA_GRACEFUL_SHUTDOWN": value}
    assert bootstrap.main(["bootstrap"], environ) == 1
    assert "LAMBDA_GRACEFUL_SHUTDOWN must be 1 or true (on), or 0 or false (off), not %r" % value in (
        capsys.readouterr().err
    )


def test_prepare_process_puts_task_root_then_layers_first(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "path", ["/x", str(tmp_path)])
    environ = {"LAMBDA_TASK_ROOT": str(tmp_path), "_LAMBDA_TELEMETRY_LOG_FD": "3"}
    bootstrap.prepare_process(bootstrap.RuntimeConfig(environ, ["b"]), environ)
    minor = "python%d.%d" % sys.version_info[:2]
    assert sys.path == [str(tmp_path), "/opt/python", "/opt/python/lib/%s/site-packages" % minor, "/x"]
    assert "_LAMBDA_TELEMETRY_LOG_FD" not in environ


def test_prepare_process_when_frozen_restores_what_the_bootloader_changed(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "path", ["/bundle"])
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    environ = {
        "LAMBDA_TASK_ROOT": "/task",
        "PYTHONPATH": "/extra1:/extra2",
        "LD_LIBRARY_PATH": "/bundle/_internal:/var/lang/lib",
        "LD_LIBRARY_PATH_ORIG": "/var/lang/lib",
        "_PYI_ARCHIVE_FILE": "/var/task/bootstrap",
        "_PYI_PARENT_PROCESS_LEVEL": "0",
        "PYI_OF_THE_USER": "kept",
    }
    bootstrap.prepare_process(bootstrap.RuntimeConfig(environ, ["b"]), environ)
    assert sys.path[:3] == ["/task", "/extra1", "/extra2"]
    assert environ["LD_LIBRARY_PATH"] == "/var/lang/lib"
    assert "LD_LIBRARY_PATH_ORIG" not in environ
    assert [name for name in environ if "PYI" in name] == ["PYI_OF_THE_USER"]
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt") or os.path.exists(
        "/etc/pki/tls/certs/ca-bundle.crt"
    ):
        assert os.path.exists(environ["SSL_CERT_FILE"])


def test_prepare_process_when_frozen_drops_a_library_path_that_was_not_there(monkeypatch):
    monkeypatch.setattr(sys, "path", [])
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    environ = {"LAMBDA_TASK_ROOT": "/task", "LD_LIBRARY_PATH": "/bundle/_internal", "SSL_CERT_FILE": "/mine"}
    bootstrap.prepare_process(bootstrap.RuntimeConfig(environ, ["b"]), environ)
    assert "LD_LIBRARY_PATH" not in environ
    assert environ["SSL_CERT_FILE"] == "/mine"


def test_prepare_process_not_frozen_leaves_pythonpath_to_python(monkeypatch):
    monkeypatch.setattr(sys, "path", [])
    monkeypatch.delattr(sys, "frozen", raising=False)
    environ = {"LAMBDA_TASK_ROOT": "/task", "PYTHONPATH": "/extra", "LD_LIBRARY_PATH": "/keep"}
    bootstrap.prepare_process(bootstrap.RuntimeConfig(environ, ["b"]), environ)
    assert "/extra" not in sys.path
    assert environ["LD_LIBRARY_PATH"] == "/keep"


# --- errors ----------------------------------------------------------------------------------------


class BrokenStr(Exception):
    def __str__(self):
        raise RuntimeError("no")


def test_safe_str_survives_a_broken_str():
    assert bootstrap.safe_str(BrokenStr()) == "<BrokenStr: str() failed: RuntimeError>"


def raise_in_user_code(exc):
    raise exc


@pytest.mark.parametrize(
    ("exc", "header"),
    [
        (ValueError("boom"), "Function.ValueError"),
        (type("my_error", (Exception,), {})("x"), "Function.Unhandled"),
        (type("Error2", (Exception,), {})("x"), "Function.Unhandled"),
    ],
)
def test_invocation_error_from_exception(exc, header):
    try:
        raise_in_user_code(exc)
    except Exception as caught:
        error = bootstrap.InvocationError.from_exception(caught, "req-1")
    assert error.header_type == header
    assert error.body["errorType"] == type(exc).__name__
    assert error.body["requestId"] == "req-1"
    assert error.body["stackTrace"][-1].endswith("raise exc\n")
    cause = json.loads(error.xray_cause)
    assert cause["exceptions"][0]["type"] == type(exc).__name__
    assert cause["working_directory"] == os.getcwd()


def test_xray_cause_is_cut_to_64_kib_not_dropped():
    frames = traceback.extract_stack() * 400
    cause = bootstrap.xray_cause("ValueError", "m" * 200_000, frames)
    assert len(cause.encode()) <= 64 * 1024
    parsed = json.loads(cause)
    assert parsed["exceptions"][0]["type"] == "ValueError"
    assert parsed["exceptions"][0]["message"].startswith("mmm")
    assert parsed["exceptions"][0]["stack"]


@pytest.mark.timeout(10)
def test_xray_cause_returns_for_a_huge_class_name():
    """The message is cut first, then the type: a 70,000-character class name alone is over 64 KiB."""
    cause = bootstrap.xray_cause("E" * 70_000, "m" * 100, traceback.extract_stack())
    assert len(cause.encode()) <= 64 * 1024
    exception = json.loads(cause)["exceptions"][0]
    assert exception["message"] == "" and exception["type"].startswith("EEE")
    assert len(exception["stack"]) == 1


@pytest.mark.timeout(10)
def test_an_error_body_cut_to_a_limit_cuts_the_stack_then_the_message_then_the_type():
    error = bootstrap.InvocationError(
        bootstrap.error_body("T" * 1000, "m" * 5000, ["frame %d\n" % i for i in range(500)], "rid-1"), "", ""
    )
    assert error.json(10**6) == error.json()
    for limit, kept in ((4000, "message"), (1050, "type"), (80, "nothing")):
        text = error.json(limit)
        body = json.loads(text)
        assert len(text) <= limit
        assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
        assert body["requestId"] == "rid-1" and body["stackTrace"] == (
            ["frame 0\n"] if kept != "nothing" else []
        )
        assert (body["errorMessage"] != "") == (kept == "message")
        assert (body["errorType"] != "") == (kept != "nothing")


@pytest.mark.parametrize(
    "value", ["a\r\nX-Injected: yes", "a\nb", "a\rb", "caf\u00e9", "nul\x00", "tab\there"]
)
def test_header_values_with_cr_lf_controls_or_non_ascii_are_refused_where_the_head_is_framed(value):
    with pytest.raises(ValueError, match="X-Test header cannot be sent"):
        bootstrap.frame_headers([("Content-Type", "text/plain"), ("X-Test", value)])
    assert bootstrap.frame_headers([("X-Test", "plain, ASCII; ok=1")]) == "X-Test: plain, ASCII; ok=1\r\n"


def test_exception_chain_stops_on_a_cycle():
    first, second = ValueError("a"), KeyError("b")
    first.__cause__, second.__cause__ = second, first
    chain = bootstrap.exception_chain(first)
    assert [exc for _, exc in chain] == [second]


def test_exception_chain_skips_suppressed_context():
    try:
        try:
            raise KeyError("inner")
        except KeyError:
            raise ValueError("outer") from None
    except ValueError as exc:
        assert bootstrap.exception_chain(exc) == []


# --- Runtime API client ----------------------------------------------------------------------------


def test_invocation_reads_headers_and_survives_a_bad_deadline():
    headers = {
        "Lambda-Runtime-Aws-Request-Id": "r1",
        "Lambda-Runtime-Deadline-Ms": "soon",
        "Lambda-Runtime-Aws-Tenant-Id": "",
        "Lambda-Runtime-Client-Context": '{"custom": {"k": "é"}}',
    }
    invocation = bootstrap.Invocation({k.lower(): v for k, v in headers.items()}, b"{}")
    assert invocation.deadline_ms == 0
    assert invocation.tenant_id == ""
    assert invocation.trace_id is None
    assert invocation.invocation_id is None
    assert invocation.content_type == "application/json"
    assert json.loads(invocation.client_context) == {"custom": {"k": "é"}}


def test_connection_parses_ipv4_and_ipv6_addresses():
    conn = bootstrap.KeepAliveConnection("127.0.0.1:9001")
    assert (conn.host, conn.port, conn.address) == ("127.0.0.1", 9001, "127.0.0.1:9001")
    conn = bootstrap.KeepAliveConnection("[::1]:9001")
    assert (conn.host, conn.port, conn.address) == ("::1", 9001, "[::1]:9001")


# --- handler loading -------------------------------------------------------------------------------

HANDLER_MODULES = {
    "good_mod.py": "def handler(event, context):\n    return event\nvalue = 'not callable'\n",
    "syntax_mod.py": "def handler(event, context)\n    return 1\n",
    "dep_mod.py": "import not_installed_dependency_xyz\n",
    "keyerror_mod.py": "import os\nos.environ['DOES_NOT_EXIST_XYZ']\n",
    "pkg_a/__init__.py": "",
    "pkg_a/sub/__init__.py": "",
    "pkg_a/sub/mod.py": "def handler(event, context):\n    return 'dotted'\n",
}


@pytest.fixture
def handler_dir(tmp_path, monkeypatch):
    for name, text in HANDLER_MODULES.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in list(sys.modules):
        if name.split(".")[0] in {"good_mod", "syntax_mod", "dep_mod", "keyerror_mod", "pkg_a"}:
            del sys.modules[name]


def load_fault(name):
    try:
        bootstrap.load_handler(name)
    except bootstrap.RuntimeFault as fault:
        return fault.error_type, fault.message, fault.stack_trace
    raise AssertionError("no fault for %s" % name)


@pytest.mark.parametrize("name", ["good_mod.handler", "pkg_a.sub.mod.handler", "pkg_a/sub/mod.handler"])
def test_load_handler_accepts_every_form(handler_dir, name):
    assert callable(bootstrap.load_handler(name))


@pytest.mark.parametrize(
    ("name", "error_type", "message"),
    [
        ("apphandler", "Runtime.MalformedHandlerName",
         "Bad handler 'apphandler': not enough values to unpack (expected 2, got 1)"),
        ("sys.handler", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module"),
        ("nomod_xyz.handler", "Runtime.ImportModuleError",
         "Unable to import module 'nomod_xyz': No module named 'nomod_xyz'"),
        ("dep_mod.handler", "Runtime.ImportModuleError",
         "Unable to import module 'dep_mod': No module named 'not_installed_dependency_xyz'"),
        ("good_mod.nope", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'good_mod'"),
    ],
)  # fmt: skip
def test_load_handler_faults(handler_dir, name, error_type, message):
    assert load_fault(name)[:2] == (error_type, message)


def test_import_error_keeps_user_frames_only_when_the_module_exists(handler_dir):
    assert load_fault("nomod_xyz.handler")[2] == []
    trace = load_fault("dep_mod.handler")[2]
    assert len(trace) == 1 and "dep_mod.py" in trace[0]


def test_syntax_error_trace_is_awslambdaric_shaped(handler_dir):
    error_type, message, trace = load_fault("syntax_mod.handler")
    assert error_type == "Runtime.UserCodeSyntaxError"
    assert message.startswith("Syntax error in module 'syntax_mod': ")
    assert trace == [
        '  File "%s" Line 1\n    def handler(event, context)\n' % (handler_dir / "syntax_mod.py")
    ]


def test_not_callable_is_an_init_error_for_us(handler_dir):
    error_type, message, _ = load_fault("good_mod.value")
    assert error_type == "Runtime.HandlerNotFound"
    assert message == "Handler 'value' on module 'good_mod' is not callable: it is a str"


def test_import_time_exception_propagates_for_init_to_report(handler_dir):
    with pytest.raises(KeyError):
        bootstrap.load_handler("keyerror_mod.handler")


@with_reference
@pytest.mark.parametrize(
    "name",
    ["apphandler", "sys.handler", "nomod_xyz.handler", "dep_mod.handler", "good_mod.nope", "syntax_mod.h"],
)
def test_load_handler_faults_match_awslambdaric(handler_dir, name):
    with pytest.raises(FaultException) as reference:
        ric_bootstrap._get_handler(name)
    for module in ("dep_mod", "syntax_mod"):
        sys.modules.pop(module, None)
    ours = load_fault(name)
    assert ours[:2] == (reference.value.exception_type, reference.value.msg)
    if name != "dep_mod.handler":  # ours keeps the user frames of a failed dependency import
        assert ours[2] == (reference.value.trace or [])


# --- context ---------------------------------------------------------------------------------------

CLIENT_CONTEXT = {
    "custom": {"a": 1},
    "env": {"e": "v"},
    "client": {"installation_id": "i", "app_title": "t"},
    "w3c": {"traceparent": "00-abc", "tracestate": 5, "other": "x"},
}
INVOCATION_HEADERS = {
    "Lambda-Runtime-Aws-Request-Id": "req-9",
    "Lambda-Runtime-Deadline-Ms": "4102444800000",
    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:1:function:f",
    "Lambda-Runtime-Aws-Tenant-Id": "blue",
}


def make_context(client_context, cognito):
    invocation = bootstrap.Invocation({k.lower(): v for k, v in INVOCATION_HEADERS.items()}, b"{}")
    return bootstrap.LambdaContext(invocation, client_context, cognito)


def test_context_attributes(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "f")
    context = make_context(json.loads(json.dumps(CLIENT_CONTEXT)), {"cognitoIdentityId": "id"})
    assert context.aws_request_id == "req-9"
    assert context.memory_limit_in_mb == "128"
    assert context.function_name == "f"
    assert context.function_version is None
    assert context.tenant_id == "blue"
    assert context.client_context.custom == {"a": 1}
    assert context.client_context.client.app_title == "t"
    assert context.client_context.client.app_package_name is None
    assert context.identity.cognito_identity_id == "id"
    assert context.identity.cognito_identity_pool_id is None
    assert context.w3c() == {"traceparent": "00-abc"}
    assert context.get_remaining_time_in_millis() > 0


def test_context_identity_is_an_object_even_without_cognito():
    context = make_context(None, None)
    assert context.client_context is None
    assert (context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id) == (None, None)
    assert context.w3c() == {}


def test_remaining_time_never_negative():
    invocation = bootstrap.Invocation(
        {"lambda-runtime-aws-request-id": "r", "lambda-runtime-deadline-ms": "1"}, b""
    )
    assert bootstrap.LambdaContext(invocation, None, None).get_remaining_time_in_millis() == 0


@with_reference
@pytest.mark.parametrize("cognito", [None, {"cognitoIdentityId": "id", "cognitoIdentityPoolId": "pool"}])
def test_context_repr_and_w3c_match_awslambdaric(monkeypatch, cognito):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
    ours = make_context(json.loads(json.dumps(CLIENT_CONTEXT)), cognito)
    theirs = ric_context.LambdaContext(
        "req-9", json.loads(json.dumps(CLIENT_CONTEXT)), cognito, 4102444800000,
        "arn:aws:lambda:us-east-1:1:function:f", "blue",
    )  # fmt: skip
    assert repr(ours) == repr(theirs)
    assert ours.w3c() == theirs.w3c()


def test_bad_client_context_json_is_a_context_unmarshal_error():
    with pytest.raises(bootstrap.RuntimeFault) as fault:
        bootstrap.parse_json_header("{nope", "Client Context")
    assert fault.value.error_type == "Runtime.LambdaContextUnmarshalError"
    assert fault.value.message == (
        "Unable to parse Client Context JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )


# --- marshalling -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON ;charset=UTF-8"]
)
def test_decode_json_media_types(content_type):
    assert bootstrap.decode_event(b'{"k": 1.10}', content_type) == {"k": 1.1}


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", "application/jsonx"])
def test_decode_other_media_types_gives_bytes(content_type):
    assert bootstrap.decode_event(b"raw", content_type) == b"raw"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"),
        (
            b"{",
            "Unable to unmarshal input: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        ),
    ],
)
def test_decode_invalid_json_is_an_unmarshal_error(body, message):
    with pytest.raises(bootstrap.RuntimeFault) as fault:
        bootstrap.decode_event(body, "application/json")
    assert (fault.value.error_type, fault.value.message) == ("Runtime.UnmarshalError", message)


def test_decode_invalid_utf8_is_an_unmarshal_error():
    with pytest.raises(bootstrap.RuntimeFault) as fault:
        bootstrap.decode_event(b'"\xff\xfe\xfa"', "application/json")
    assert fault.value.error_type == "Runtime.UnmarshalError"


def test_encode_result_forms():
    assert bootstrap.encode_result(b"\x00\x01") == (b"\x00\x01", "application/unknown")
    assert bootstrap.encode_result(None) == (b"null", "application/json")
    assert bootstrap.encode_result((1, "£")) == ('[1, "£"]'.encode(), "application/json")
    nan = {
        "n": math.nan,
        "i": math.inf,
        "d": Decimal("NaN"),
        "di": Decimal("-Infinity"),
        "x": Decimal("1.10"),
    }
    assert (
        bootstrap.encode_result(nan)[0] == b'{"n": NaN, "i": Infinity, "d": NaN, "di": -Infinity, "x": 1.10}'
    )


def test_encode_result_unserialisable_is_a_marshal_error():
    with pytest.raises(bootstrap.RuntimeFault) as fault:
        bootstrap.encode_result({"s": {1}})
    assert fault.value.error_type == "Runtime.MarshalError"
    assert fault.value.message == "Unable to marshal response: Object of type set is not JSON serializable"


def test_encode_result_self_reference_is_a_marshal_error():
    loop = {}
    loop["self"] = loop
    with pytest.raises(bootstrap.RuntimeFault) as fault:
        bootstrap.encode_result(loop)
    assert fault.value.message == "Unable to marshal response: Circular reference detected"
    with pytest.raises(bootstrap.RuntimeFault):
        bootstrap.encode_result([Decimal(1), loop])


def test_encode_result_lone_surrogate_is_escaped_not_lost():
    body, _ = bootstrap.encode_result({"s": "a\ud800b"})
    assert body == b'{"s": "a\\ud800b"}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_event_round_trips(value):
    body = json.dumps(value).encode()
    assert json.loads(bootstrap.encode_result(bootstrap.decode_event(body, "application/json"))[0]) == value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.decimals(allow_nan=True, places=None), max_size=5))
def test_decimals_are_written_as_their_exact_text(values):
    """Read back as Decimals, each number has the sign, digits and exponent it had (so 1.10 stays 1.10, not
    1.1); a NaN of any kind is NaN."""
    text = bootstrap.to_json(values)
    parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=Decimal)
    assert len(parsed) == len(values)
    for written, value in zip(parsed, values):
        if value.is_nan():
            assert written.is_nan() and not written.is_snan()
        else:
            assert written.as_tuple() == value.as_tuple(), (text, value)


@pytest.mark.parametrize(
    "value, text",
    [
        ("1.10", "1.10"),
        ("1E+2", "1E+2"),
        ("-0", "-0"),
        ("0.000", "0.000"),
        ("-Infinity", "-Infinity"),
        ("sNaN", "NaN"),
    ],
)
def test_decimal_text_examples(value, text):
    assert bootstrap.to_json([Decimal(value), 1]) == "[%s, 1]" % text


ascii_text = st.characters(max_codepoint=126)


@with_reference
@settings(max_examples=300, deadline=None)
@given(
    value=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(ascii_text)
        | st.decimals(allow_nan=True),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(ascii_text, max_size=5), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_encoding_matches_awslambdaric_byte_for_byte(value):
    """Byte for byte on ASCII text; beyond it ours writes characters unescaped, by design."""
    theirs, their_type = LambdaMarshaller().marshal_response(value)
    ours, our_type = bootstrap.encode_result(value)
    assert (ours, our_type) == (theirs.encode(), their_type)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(max_size=30))
def test_any_exception_message_gives_a_valid_json_error_body(message, name):
    exc_type = type("E" + "".join(c for c in name if c.isalnum() and c.isascii()), (Exception,), {})
    error = bootstrap.InvocationError.from_exception(exc_type(message), "r")
    body = json.loads(bootstrap.to_json(error.body, ensure_ascii=True))
    assert body["errorMessage"] == message
    assert json.loads(error.xray_cause)["exceptions"][0]["message"] == message


# --- logging ---------------------------------------------------------------------------------------


def test_frame_types_match_the_table():
    table = {0: (0xA55A0003, 0xA55A0002), 10: (0xA55A000B, 0xA55A000A), 20: (0xA55A000F, 0xA55A000E),
             30: (0xA55A0013, 0xA55A0012), 40: (0xA55A0017, 0xA55A0016), 50: (0xA55A001B, 0xA55A001A)}  # fmt: skip
    for level, (text, js) in table.items():
        assert bootstrap.frame_type(level, False) == text.to_bytes(4, "big")
        assert bootstrap.frame_type(level, True) == js.to_bytes(4, "big")


def failing_error():
    try:
        raise_in_user_code(ValueError("boom"))
    except ValueError as exc:
        return bootstrap.InvocationError.from_exception(exc, "req-1")


def capture_stdout(monkeypatch, write):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    write()
    return out.getvalue()


def test_error_log_on_stdout_is_one_line_with_nbsp(monkeypatch):
    sink = bootstrap.LogSink(json_format=False)
    text = capture_stdout(monkeypatch, lambda: sink.write_error(failing_error()))
    assert text.count("\n") == 1 and text.endswith("\n")
    lines = text[:-1].split("\r")
    assert lines[0] == "[ERROR] ValueError: boom"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[2].startswith("\u00a0\u00a0File ")
    assert lines[3].startswith("\u00a0\u00a0\u00a0\u00a0raise_in_user_code(")


@with_reference
def test_error_log_matches_awslambdaric(monkeypatch):
    error = failing_error()
    ours = capture_stdout(monkeypatch, lambda: bootstrap.LogSink(json_format=False).write_error(error))
    theirs = capture_stdout(
        monkeypatch, lambda: ric_bootstrap.log_error(error.body, ric_bootstrap.StandardLogSink())
    )
    assert ours == theirs


def test_error_log_shows_chained_exceptions(monkeypatch):
    try:
        try:
            raise_in_user_code(KeyError("inner"))
        except KeyError as inner:
            raise ValueError("outer") from inner
    except ValueError as exc:
        error = bootstrap.InvocationError.from_exception(exc, "r")
    text = capture_stdout(monkeypatch, lambda: bootstrap.LogSink(json_format=False).write_error(error))
    lines = text.split("\r")
    assert "The exception above was directly caused by:" in lines
    assert lines[-1] == "KeyError: 'inner'\n"
    # the error body keeps awslambdaric's shape: the frames of the last exception only
    assert error.body["stackTrace"] and all("KeyError" not in line for line in error.body["stackTrace"])


def test_error_log_json(monkeypatch):
    text = capture_stdout(
        monkeypatch, lambda: bootstrap.LogSink(json_format=True).write_error(failing_error())
    )
    record = json.loads(text)
    assert list(record) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"]
    assert (record["level"], record["errorType"], record["requestId"]) == ("ERROR", "ValueError", "req-1")


def test_frames_on_the_telemetry_fd(tmp_path):
    read_fd, write_fd = os.pipe()
    sink = bootstrap.LogSink(json_format=False, fd=write_fd)
    sink.write("hello\nworld\n", bootstrap.frame_type(20, False))
    sink.write_error(failing_error())
    data = os.read(read_fd, 65536)
    os.close(read_fd)
    frames = []
    while data:
        length = int.from_bytes(data[4:8], "big")
        frames.append((data[:4].hex(), data[16 : 16 + length].decode()))
        data = data[16 + length :]
    assert frames[0] == ("a55a000f", "hello\nworld\n")
    assert frames[1][0] == "a55a0017"
    assert frames[1][1].startswith("[ERROR] ValueError: boom\nTraceback (most recent call last):\n")
    assert not frames[1][1].endswith("\n")


def make_record(msg, args=(), exc_info=None, **extra):
    record = logging.LogRecord("root", logging.INFO, "/p/app.py", 7, msg, args, exc_info, func="handler")
    record.created, record.msecs = 1700000000.25, 250.0
    record.aws_request_id, record.tenant_id = "req-1", "blue"
    record.__dict__.update(extra)
    return record


@with_reference
@pytest.mark.parametrize(
    ("msg", "args", "extra"),
    [("plain %s", ("x",), {}), ({"dict": "message", "n": 1}, (), {}), ("with extra", (), {"customKey": "v"})],
)
def test_json_formatter_matches_awslambdaric(msg, args, extra):
    ours = bootstrap.JsonFormatter(milliseconds=False).format(make_record(msg, args, **extra))
    theirs = ric_log_utils.JsonFormatter()
    theirs.converter = __import__("time").gmtime
    assert ours == theirs.format(make_record(msg, args, **extra))


def test_json_formatter_with_exception_and_milliseconds():
    try:
        raise_in_user_code(ZeroDivisionError("zero"))
    except ZeroDivisionError:
        record = make_record("failed", exc_info=sys.exc_info())
    result = json.loads(bootstrap.JsonFormatter(milliseconds=True).format(record))
    assert result["timestamp"] == "2023-11-14T22:13:20.250Z"
    assert (result["errorType"], result["errorMessage"], result["tenantId"]) == (
        "ZeroDivisionError",
        "zero",
        "blue",
    )
    assert result["location"] == "/p/app.py:handler:7"


def test_text_formatter_ends_the_record_after_the_traceback():
    try:
        raise_in_user_code(ZeroDivisionError("zero"))
    except ZeroDivisionError:
        record = make_record("failed", exc_info=sys.exc_info())
    text = bootstrap.TextFormatter().format(record)
    assert text.startswith("[INFO]\t2023-11-14T22:13:20.250Z\treq-1\tfailed\nTraceback")
    assert text.endswith("ZeroDivisionError: zero\n")


def test_request_id_filter_falls_back_to_the_current_invocation(monkeypatch):
    monkeypatch.setitem(logs._current, "request_id", "from-loop")
    record = make_record("m")
    context = __import__("contextvars").Context()
    context.run(bootstrap.RequestIdFilter().filter, record)
    assert record.aws_request_id == "from-loop"
    context.run(logs._request_id.set, "from-task")
    context.run(bootstrap.RequestIdFilter().filter, record)
    assert record.aws_request_id == "from-task"


def test_flushing_stream_flushes_every_write():
    flushed = []
    raw = SimpleNamespace(write=lambda text: len(text), flush=lambda: flushed.append(1), encoding="utf-8")
    stream = bootstrap.FlushingStream(raw)
    stream.write("partial line without newline")
    assert flushed == [1]
    assert stream.encoding == "utf-8"


@pytest.mark.parametrize(
    "value", ["x", "0", "-2", "1.5", "\u00b2", "\u0661"]
)  # superscript 2, Arabic-Indic 1
def test_a_bad_max_concurrency_is_a_clear_start_error(value, capsys):
    environ = {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "AWS_LAMBDA_MAX_CONCURRENCY": value}
    assert bootstrap.main(["bootstrap"], environ) == 1
    assert "AWS_LAMBDA_MAX_CONCURRENCY must be a whole number of workers" in capsys.readouterr().err
