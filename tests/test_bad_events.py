"""Bad events (invalid UTF-8 or JSON, 6 MB, 100,000 levels deep, duplicate keys, empty, not JSON), and
property tests end to end: arbitrary JSON events round-trip through an echo handler, arbitrary exception
messages give a valid JSON error body. One runtime process serves all the examples of a property.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from launch_helpers import Launcher
from runtime_emulator import RuntimeEmulator

SIX_MB = 6 * 1024 * 1024


class Runtime:
    """One faulty API and one runtime process; relaunched if a failing example killed it."""

    def __init__(self, tmp_path):
        self.api = RuntimeEmulator().start()
        self.launcher = Launcher(tmp_path)
        self.rt = self.launcher("hostile.dispatch", self.api.address)

    def invoke(self, fn, event=None, timeout=20.0, **push):
        if not self.rt.alive():
            self.rt = self.launcher("hostile.dispatch", self.api.address)
        payload = json.dumps({"fn": fn, "event": event}) if "body" not in push else push.pop("body")
        key = self.api.push_event(payload, **push)
        return self.api.wait_answer(key, timeout, alive=self.rt.alive)

    def close(self):
        self.launcher.close()
        self.api.stop()


@pytest.fixture(scope="module")
def runtime_proc(tmp_path_factory):
    runtime = Runtime(tmp_path_factory.mktemp("bad-events"))
    yield runtime
    runtime.close()


@pytest.fixture
def rt(runtime_proc):
    yield runtime_proc
    assert runtime_proc.rt.alive(), runtime_proc.rt.diag()  # every bad event leaves the process alive
    assert runtime_proc.api.check_ledger() == [], runtime_proc.api.describe()


def unmarshal_error(answer, starts):
    assert answer.kind == "error", answer
    body = json.loads(answer.body)
    assert body["errorType"] == "Runtime.UnmarshalError"
    assert answer.headers["lambda-runtime-function-error-type"] == "Runtime.UnmarshalError"
    assert body["errorMessage"].startswith("Unable to unmarshal input: " + starts), body
    assert body["stackTrace"] == []
    return body


# -- the handler is never called ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, starts",
    [
        (b'{"a": "\xc3\x28"}', "'utf-8' codec can't decode byte 0xc3"),
        (b'{"a": "\xff"}', "'utf-8' codec can't decode byte 0xff"),
    ],
)
def test_invalid_utf8_json(rt, body, starts):
    unmarshal_error(rt.invoke(None, body=body), starts)
    rt.rt.wait_output("[ERROR] Runtime.UnmarshalError: Unable to unmarshal input:", 10, "stdout")


@pytest.mark.parametrize(
    "body, starts",
    [
        (b"{not json", "Expecting property name enclosed in double quotes"),
        (b'{"a": 1,}', ""),  # the message differs between Python versions
        (b'{"a": 1} trailing', "Extra data"),
        (b"'single'", "Expecting value: line 1 column 1 (char 0)"),
        (b"", "Expecting value: line 1 column 1 (char 0)"),
        (b"   ", "Expecting value: line 1 column 4 (char 3)"),
        (b'{"n": 1' + b"0" * 5000 + b"}", ""),  # an int of more than 4300 digits
    ],
    ids=["broken", "trailing-comma", "extra-data", "single-quotes", "empty", "blank", "5000-digit-int"],
)
def test_invalid_json(rt, body, starts):
    unmarshal_error(rt.invoke(None, body=body), starts)


@pytest.mark.parametrize("open_, close", [("[", "]"), ('{"a":', "}")], ids=["arrays", "objects"])
def test_nested_100000_levels(rt, open_, close):
    """The decoder's recursion limit: an unmarshal error for that event, not a crash."""
    body = (open_ * 100_000 + "1" + close * 100_000).encode()
    unmarshal_error(rt.invoke(None, body=body), "maximum recursion depth exceeded")


def test_utf8_encoded_surrogate_accepted(rt):
    """Python's json reads bytes with "surrogatepass": an encoded lone surrogate becomes "\\ud800", and the
    response escapes it (a lone surrogate has no UTF-8 form)."""
    answer = rt.invoke(None, body=b'{"fn": "echo", "event": "\xed\xa0\x80"}')
    assert answer.body == b'"\\ud800"'
    assert json.loads(answer.body) == "\ud800"


def test_empty_body_without_content_type_is_json(rt):
    """RAPID sends application/json when no content type was given: an empty body does not parse."""
    unmarshal_error(rt.invoke(None, body=b"", content_type=None), "Expecting value")


# -- the handler is called ------------------------------------------------------------------------


def test_six_mb_event_round_trips(rt):
    event = {"s": "x" * (SIX_MB - 10)}
    answer = rt.invoke("echo", event, timeout=60)
    assert (answer.kind, answer.status) == ("response", 202)
    assert json.loads(answer.body) == event
    assert len(answer.body) == len(json.dumps(event))


def test_event_at_rapid_limit(rt):
    """An event of exactly 6,291,556 bytes reaches the handler whole."""
    prefix = b'{"fn": "event_summary", "event": "'
    body = prefix + b"y" * (6 * 1024 * 1024 + 100 - len(prefix) - 2) + b'"}'
    assert len(body) == 6 * 1024 * 1024 + 100
    answer = rt.invoke(None, body=body, timeout=60)
    assert json.loads(answer.body) == {"type": "str", "len": len(body) - len(prefix) - 2}


def test_duplicate_keys_last_wins(rt):
    body = b'{"fn": "echo", "event": {"a": 1, "a": 2, "b": {"c": 1, "c": [3]}}}'
    answer = rt.invoke(None, body=body)
    assert json.loads(answer.body) == {"a": 2, "b": {"c": [3]}}


def test_nan_and_infinity_literals_accepted(rt):
    """As awslambdaric (and Python's json): NaN and Infinity in an event are floats; echoed back as is."""
    answer = rt.invoke(None, body=b'{"fn": "echo", "event": [NaN, Infinity, -Infinity]}')
    assert answer.body == b"[NaN, Infinity, -Infinity]"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/octet-stream", "application/xml", "json"]
)
def test_non_json_bytes_round_trip(tmp_path, content_type):
    """Any other media type: the handler gets the raw bytes; bytes it returns are posted as they are."""
    api = RuntimeEmulator().start()
    launcher = Launcher(tmp_path)
    try:
        rt = launcher("hostile.echo", api.address)
        raw = bytes(range(256)) + b"\xc3\x28"
        for body in (raw, b""):
            key = api.push_event(body, content_type=content_type)
            answer = api.wait_answer(key, 15, alive=rt.alive)
            assert (answer.kind, answer.body) == ("response", body)
            assert answer.headers["content-type"] == "application/unknown"
        assert api.check_ledger() == []
        assert rt.alive()
    finally:
        launcher.close()
        api.stop()


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json ;x=y"]
)
def test_json_media_type_with_parameters(rt, content_type):
    answer = rt.invoke("echo", {"k": "v"}, content_type=content_type)
    assert json.loads(answer.body) == {"k": "v"}


# -- properties, end to end ---------------------------------------------------------------------

# Hypothesis's characters() never draws surrogates: add lone ones (a JSON event can carry "\ud800").
ANY_CHAR = st.characters() | st.integers(0xD800, 0xDFFF).map(chr)
any_text = st.text(alphabet=ANY_CHAR, max_size=40)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda children: st.lists(children, max_size=6) | st.dictionaries(any_text, children, max_size=6),
    max_leaves=40,
)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)


@PROPERTY
@given(event=json_values)
def test_property_json_events_round_trip(rt, event):
    answer = rt.invoke("echo", event)
    assert answer.kind == "response", answer.body[:500]
    # the event as JSON means it: "\ud800\udc00" side by side is one character, U+10000
    assert json.loads(answer.body) == json.loads(json.dumps(event))


def long_messages(alphabet):
    return st.text(alphabet=alphabet, max_size=200) | st.builds(
        lambda t, n: t * n, st.text(alphabet=alphabet, min_size=1, max_size=4), st.integers(1_000, 100_000)
    )


def check_error_body(answer, message, key=None):
    assert answer.kind == "error"
    body = json.loads(answer.body)  # strict: valid JSON
    assert body["errorType"] == "ValueError"
    # the message travelled in a JSON event: "\ud800\udc00" side by side arrives as one character
    assert body["errorMessage"] == json.loads(json.dumps(message))
    cause = answer.headers["lambda-runtime-function-xray-error-cause"]
    assert len(cause.encode()) <= 64 * 1024
    assert json.loads(cause)["exceptions"][0]["type"] == "ValueError"


@PROPERTY
@given(message=long_messages(st.characters(exclude_categories=("Cs",))))
def test_property_exception_messages_give_json_errors(rt, message):
    """Any text but lone surrogates (see the next test), any length: a valid JSON error body."""
    check_error_body(rt.invoke("raise_message", {"message": message}), message)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], database=None
)
@given(message=long_messages(ANY_CHAR))
def test_property_exception_messages_any_unicode(tmp_path, message):
    """With lone surrogates too (a JSON event may carry "\\ud800"): escaped in the error body, as JSON allows."""
    runtime = _surrogate_runtime(tmp_path)
    check_error_body(runtime.invoke("raise_message", {"message": message}), message)


_SURROGATE_RUNTIMES = {}


def _surrogate_runtime(tmp_path):
    runtime = _SURROGATE_RUNTIMES.get("rt")
    if runtime is None:
        runtime = _SURROGATE_RUNTIMES["rt"] = Runtime(tmp_path)
    return runtime


@pytest.fixture(autouse=True, scope="module")
def _close_surrogate_runtime():
    yield
    runtime = _SURROGATE_RUNTIMES.pop("rt", None)
    if runtime is not None:
        runtime.close()
