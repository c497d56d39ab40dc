"""Hostile handlers (tests/hostile_handlers/hostile.py): for each, what the caller receives, what the logs
show, and whether the process lives on. README's table of outcomes is taken from these tests.

Tests that take a ``flavor`` also run under the frozen binary (marked build + slow): exit codes, signals
and stdout can differ there.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import time

import pytest
from launch_helpers import call
from runtime_emulator import Fault

RAPID_ERROR_TYPE = re.compile(r"(Runtime|Function)\.[A-Z][a-zA-Z]+")


def invoke(api, rt, fn, event=None, timeout=20.0, **push):
    key = api.push_event(call(fn, event), **push)
    return key, api.wait_answer(key, timeout, alive=rt.alive)


def assert_lives_on(api, rt):
    _, answer = invoke(api, rt, "echo", {"still": "alive"})
    assert (answer.kind, json.loads(answer.body)) == ("response", {"still": "alive"}), rt.diag()
    problems = api.check_ledger()
    assert problems == [], "%s\n%s" % (problems, api.describe())


def error_of(answer):
    assert answer.kind == "error", answer
    assert answer.status == 202
    body = json.loads(answer.body)  # strict JSON: never NaN in an error
    assert set(body) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    cause = answer.headers["lambda-runtime-function-xray-error-cause"]
    assert len(cause.encode()) <= 64 * 1024
    json.loads(cause)
    return body, answer.headers["lambda-runtime-function-error-type"]


# -- exceptions that are hard to report -------------------------------------------------------


ERRORS = {
    # fn: (errorType, errorMessage, header, log line)
    "str_raises": (
        "BadStr",
        "<BadStr: str() failed: RuntimeError>",
        "Function.BadStr",
        "[ERROR] BadStr: <BadStr: str() failed: RuntimeError>",
    ),
    "deep_recursion": (
        "RecursionError",
        "maximum recursion depth exceeded",
        "Function.RecursionError",
        "[ERROR] RecursionError: maximum recursion depth exceeded",
    ),
    "deep_stack_error": (
        "ValueError",
        "bottom of a 10000-frame stack",
        "Function.ValueError",
        "[ERROR] ValueError: bottom of a 10000-frame stack",
    ),
    "circular_cause": (
        "ValueError",
        "first",
        "Function.ValueError",
        "The exception above was directly caused by:",
    ),
}


@pytest.mark.parametrize("fn", sorted(ERRORS))
def test_exception_hard_to_report(api, launch, fn):
    error_type, message, header, log = ERRORS[fn]
    rt = launch("hostile.dispatch", api.address)
    key, answer = invoke(api, rt, fn)
    body, sent_header = error_of(answer)
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message)
    assert body["requestId"] == key
    assert sent_header == header
    assert log in rt.stdout, rt.diag()
    if fn == "deep_stack_error":
        # the 10,000 frames, with repeats folded as Python's traceback module folds them
        assert "  [Previous line repeated 9997 more times]\n" in body["stackTrace"], body["stackTrace"]
        assert len(answer.body) < 10_000
    if fn == "circular_cause":  # each exception of the cycle logged once
        assert rt.stdout.count("KeyError: 'second'") == 1, rt.diag()
    assert_lives_on(api, rt)


def test_non_ascii_exception_class_header(api, launch):
    """README: `Function.<ExceptionClass>` for letters only, else Function.Unhandled. RAPID's pattern is
    ASCII ([A-Z][a-zA-Z]+): `Function.Ünicode` is sent as raw UTF-8 and RAPID records Function.Unknown."""
    rt = launch("hostile.dispatch", api.address)
    _, answer = invoke(api, rt, "non_ascii_exception_class")
    body, header = error_of(answer)
    assert body["errorType"] == "Ünicode"
    assert RAPID_ERROR_TYPE.fullmatch(header), header


def test_huge_exception_class_name(api, launch):
    """A 70,000-character class name: the X-Ray cause is still cut to 64 KiB (the type too, once the message is
    empty) instead of looping for ever, and the header falls back to Function.Unhandled."""
    rt = launch("hostile.dispatch", api.address)
    _, answer = invoke(api, rt, "huge_class_name", timeout=10)
    body, header = error_of(answer)
    assert body["errorType"] == "E" * 70_000 and body["errorMessage"] == "a huge class name"
    assert header == "Function.Unhandled"
    assert_lives_on(api, rt)


def test_lone_surrogate_in_exception_message(api, launch):
    """A message with a lone surrogate (from a JSON event's "\\ud800") still gives a JSON error body, the
    surrogate escaped as in responses, and the process lives on. (A UTF-8 encoding of the body would raise,
    leave the event unanswered and end the process.)"""
    rt = launch("hostile.dispatch", api.address)
    _, answer = invoke(api, rt, "raise_message", {"message": "\ud800 lone"})
    body, _ = error_of(answer)
    assert body["errorMessage"] == "\ud800 lone"
    assert_lives_on(api, rt)


# -- results that are hard to encode ----------------------------------------------------------

RESULTS = {
    # fn, event: (kind, exact body or errorType, errorMessage)
    ("ret_nan", None): ("response", b"NaN", None),
    ("ret_infinity", None): ("response", b'{"inf": Infinity, "-inf": -Infinity}', None),
    ("ret_big_int", 100): ("response", b"1" + b"0" * 100, None),
    ("ret_big_int", 5000): (  # sys.get_int_max_str_digits(); 3.9 says "(4300)", later "(4300 digits)"
        "error",
        "Runtime.MarshalError",
        "Unable to marshal response: Exceeds the limit (4300",
    ),
    ("ret_self_ref", None): (
        "error",
        "Runtime.MarshalError",
        "Unable to marshal response: Circular reference detected",
    ),
    ("ret_set", None): (
        "error",
        "Runtime.MarshalError",
        "Unable to marshal response: Object of type set is not JSON serializable",
    ),
    ("ret_broken_repr", None): (
        "error",
        "Runtime.MarshalError",
        "Unable to marshal response: Object of type BrokenRepr is not JSON serializable",
    ),
    ("ret_bad_generator", None): (
        "error",
        "Runtime.MarshalError",
        "Unable to marshal response: streamed chunk 1 (counting from 1) is of type int, not bytes or str",
    ),
}


@pytest.mark.parametrize("fn, arg", sorted(RESULTS, key=str))
def test_result_hard_to_encode(api, launch, fn, arg):
    kind, expected, message = RESULTS[(fn, arg)]
    rt = launch("hostile.dispatch", api.address)
    _, answer = invoke(api, rt, fn, {"digits": arg} if arg else None)
    if kind == "response":
        assert (answer.kind, answer.body) == ("response", expected), rt.diag()
        assert answer.headers["content-type"] == "application/json"
    else:
        body, header = error_of(answer)
        assert body["errorType"] == expected
        assert body["errorMessage"].startswith(message), body
        assert header == (expected if expected.startswith("Runtime.") else "Function." + expected)
        assert "[ERROR] %s: %s" % (expected, message) in rt.stdout, rt.diag()
    assert_lives_on(api, rt)


def test_generator_is_streamed(api, launch):
    rt = launch("hostile.dispatch", api.address)
    _, answer = invoke(api, rt, "ret_generator")
    assert (answer.kind, answer.body) == ("response", b"one,two,three")
    assert answer.headers["lambda-runtime-function-response-mode"] == "streaming"
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.trailers == {}
    assert_lives_on(api, rt)


def test_generator_failing_mid_stream_ends_with_trailers(api, launch):
    rt = launch("hostile.dispatch", api.address)
    key, answer = invoke(api, rt, "ret_failing_generator")
    assert (answer.kind, answer.body) == ("response", b"first chunk;")
    assert answer.trailers["lambda-runtime-function-error-type"] == "Function.ValueError"
    error = json.loads(base64.b64decode(answer.trailers["lambda-runtime-function-error-body"]))
    assert (error["errorType"], error["errorMessage"], error["requestId"]) == (
        "ValueError",
        "failed mid-stream",
        key,
    )
    assert "[ERROR] ValueError: failed mid-stream" in rt.stdout
    assert len(api.answers_for(key)) == 1  # no /error after the stream began
    assert_lives_on(api, rt)


# -- leaving the process ----------------------------------------------------------------------

EXITS = {
    # fn, event: (errorType, errorMessage, exit status of the script, of the binary)
    ("sys_exit", 0): ("SystemExit", "0", 0, 0),
    ("sys_exit", 3): ("SystemExit", "3", 3, 3),
    ("keyboard_interrupt", None): ("KeyboardInterrupt", "", -signal.SIGINT, 1),
    ("base_exception", None): ("CustomBase", "not an Exception", 1, 1),
}


@pytest.mark.parametrize("fn, code", sorted(EXITS, key=str))
def test_handler_leaves_the_process(api, launch, flavor, fn, code):
    """The event is answered (Runtime.ExitError), then the process exits as asked; the next event stays
    with the platform. A frozen binary dies of KeyboardInterrupt with status 1, not by SIGINT."""
    error_type, message, script_rc, binary_rc = EXITS[(fn, code)]
    rt = launch("hostile.dispatch", api.address, flavor)
    _, answer = invoke(api, rt, fn, {"code": code})
    after = api.push_event(call("ok"))
    body, header = error_of(answer)
    assert (body["errorType"], body["errorMessage"], header) == (error_type, message, "Runtime.ExitError")
    rc = rt.run_until_exit(15)
    assert rc == (script_rc if flavor == "script" else binary_rc), rt.diag()
    assert "[ERROR] %s" % error_type in rt.stdout
    if fn in ("keyboard_interrupt", "base_exception"):
        assert error_type in rt.stderr  # Python's own report of the uncaught exception
    assert api.invocation(after).delivered == ""
    assert api.check_ledger(exited=True) == []


def test_os_exit_leaves_unanswered(api, launch, flavor):
    """os._exit ends the process at once: nothing can answer; the platform reports Runtime.ExitError."""
    rt = launch("hostile.dispatch", api.address, flavor)
    key = api.push_event(call("os_exit", {"code": 1}))
    assert rt.run_until_exit(15) == 1
    assert api.invocation(key).delivered == "full" and api.answers_for(key) == []
    assert rt.stdout == ""
    assert api.check_ledger(exited=True) == []
    assert api.check_ledger(exited=False) != []  # the ledger does see the unanswered event


# -- damaging the process -----------------------------------------------------------------------


@pytest.mark.parametrize("fn", ["close_stdout", "close_fd1", "replace_stdout"])
def test_stdout_closed_or_replaced_logs_still_flow(api, launch, flavor, fn):
    rt = launch("hostile.dispatch", api.address, flavor)
    _, answer = invoke(api, rt, fn)
    assert answer.kind == "response"
    key, answer = invoke(api, rt, "log_line", {"text": "after-%s" % fn})
    assert answer.kind == "response"
    out = rt.wait_output("after-%s via context.log" % fn, 10, "stdout")
    assert re.search(r"\[WARNING\]\t\S+\t%s\tafter-%s\n" % (key, fn), out), out
    _, answer = invoke(api, rt, "print_line", {"text": "print-after-%s" % fn})
    if fn == "replace_stdout":  # print() goes to the handler's StringIO
        assert answer.kind == "response"
    else:  # print() to a closed stream fails in the handler, like any other exception of its own
        body, _ = error_of(answer)
        expected = (
            ("ValueError", "I/O operation on closed file.")
            if fn == "close_stdout"
            else ("OSError", "[Errno 9] Bad file descriptor")
        )
        assert (body["errorType"], body["errorMessage"]) == expected
        rt.wait_output("[ERROR] %s: %s" % expected, 10, "stdout")
    assert "print-after" not in rt.stdout
    _, answer = invoke(api, rt, "raise_message", {"message": "error-after-%s" % fn})
    rt.wait_output("[ERROR] ValueError: error-after-%s" % fn, 10, "stdout")
    assert_lives_on(api, rt)


def test_write_50mb_to_stdout(api, launch, flavor):
    rt = launch("hostile.dispatch", api.address, flavor)
    started = time.monotonic()
    _, answer = invoke(api, rt, "write_50mb", timeout=60)
    elapsed = time.monotonic() - started
    assert (answer.kind, answer.body) == ("response", b'"wrote 50 MB"')
    assert rt.stdout_path.stat().st_size >= 50 * 1024 * 1024
    invoke(api, rt, "log_line", {"text": "after-50mb"})
    out = rt.wait_output("after-50mb via context.log", 10, "stdout")
    assert out.endswith("after-50mb via context.log\n")  # nothing held back, nothing interleaved
    assert elapsed < 30
    assert_lives_on(api, rt)


def test_chdir_and_removed_cwd(api, launch, tmp_path):
    rt = launch("hostile.dispatch", api.address)
    _, answer = invoke(api, rt, "chdir_to", {"path": "/"})
    assert answer.body == b'"/"'
    _, answer = invoke(api, rt, "getcwd")
    assert answer.body == b'"/"'  # the runtime does not restore the directory
    gone = str(tmp_path / "gone")
    _, answer = invoke(api, rt, "chdir_removed", {"path": gone})
    body, _ = error_of(answer)
    assert body["errorMessage"] == "cwd is gone"
    cause = json.loads(answer.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["working_directory"] == ""  # getcwd() fails: reported as empty, not a crash
    assert_lives_on(api, rt)


def test_environ_cleared_and_changed(api, launch):
    rt = launch("hostile.dispatch", api.address)
    invoke(api, rt, "environ_clear")
    _, answer = invoke(api, rt, "environ_get", extra_headers=[("Lambda-Runtime-Trace-Id", "Root=1-abc")])
    got = json.loads(answer.body)
    assert got == {"function_name": None, "trace": "Root=1-abc", "keys": ["_X_AMZN_TRACE_ID"]}
    invoke(api, rt, "environ_set", {"_X_AMZN_TRACE_ID": "bogus", "AWS_LAMBDA_FUNCTION_NAME": "other"})
    _, answer = invoke(api, rt, "environ_get")
    got = json.loads(answer.body)
    assert (got["function_name"], got["trace"]) == (
        "other",
        None,
    )  # the trace id is the runtime's, per invoke
    assert_lives_on(api, rt)


@pytest.mark.parametrize("fn", ["syspath_clear", "syspath_replace"])
def test_sys_path_changed(api, launch, fn):
    """The runtime's own work needs no sys.path after init: encoding errors stay correct."""
    rt = launch("hostile.dispatch", api.address)
    invoke(api, rt, fn)
    _, answer = invoke(api, rt, "ret_self_ref")
    body, _ = error_of(answer)
    assert body["errorMessage"] == "Unable to marshal response: Circular reference detected"
    _, answer = invoke(api, rt, "ret_generator")
    assert answer.body == b"one,two,three"
    assert_lives_on(api, rt)


def test_pyinstaller_variables_do_not_reach_the_function(api, launch, flavor):
    """The bootloader's _PYI_* variables are removed once it has started Python: neither the handler nor its
    children see them (a child that is itself a frozen program would take them for its own)."""
    rt = launch("hostile.dispatch", api.address, flavor)
    _, answer = invoke(api, rt, "pyinstaller_environ")
    assert json.loads(answer.body) == {"handler": [], "child": []}, rt.diag()


def test_sys_path_emptied_at_import(api, launch, flavor):
    """What the loop needs (socket, urllib3, the idna codec) is imported before the handler: a handler module
    that empties sys.path is served. Before: exit 2, "cannot reach the Runtime API ... No module named
    'socket'"."""
    rt = launch("empties_sys_path.handler", api.address, flavor)
    key = api.push_event({"n": 1})
    answer = api.wait_answer(key, 20, alive=rt.alive)
    assert (answer.kind, json.loads(answer.body)) == ("response", {"sys.path": [], "event": {"n": 1}}), (
        rt.diag()
    )
    key = api.push_event({"n": 2})
    answer = api.wait_answer(key, 20, alive=rt.alive)
    assert json.loads(answer.body) == {"sys.path": [], "event": {"n": 2}}, rt.diag()
    assert api.check_ledger() == [], api.describe()


def test_sys_path_emptied_at_import_then_a_stream_fails(api, launch, flavor):
    """The stream that fails is ended with its trailers (base64 is imported before the handler too)."""
    rt = launch("empties_sys_path.fails_midstream", api.address, flavor)
    key = api.push_event({})
    answer = api.wait_answer(key, 20, alive=rt.alive)
    assert answer.body == b"first", rt.diag()
    assert answer.trailers["lambda-runtime-function-error-type"] == "Function.ValueError", answer.trailers
    error = json.loads(base64.b64decode(answer.trailers["lambda-runtime-function-error-body"]))
    assert error["errorMessage"] == "mid-stream, with sys.path empty"
    assert api.check_ledger() == [], api.describe()


def test_sys_path_emptied_at_import_then_an_init_error(api, launch, flavor):
    """An import that fails after emptying sys.path: its init error is posted, then the runtime exits 1."""
    rt = launch("empties_sys_path.handler", api.address, flavor, env={"EMPTIES_SYS_PATH_RAISE": "1"})
    assert rt.run_until_exit(20) == 1, rt.diag()
    assert len(api.init_errors) == 1, rt.diag()
    body = api.init_errors[0].json()
    assert (body["errorType"], body["errorMessage"]) == ("ValueError", "failed after emptying sys.path")


@pytest.mark.parametrize("fn", ["syspath_clear", "syspath_replace"])
def test_sys_path_changed_then_unserialisable(api, launch, fn):
    """Today: `Unable to marshal response: No module named 'decimal'` instead of naming the set."""
    rt = launch("hostile.dispatch", api.address)
    invoke(api, rt, fn)
    _, answer = invoke(api, rt, "ret_set")
    body, _ = error_of(answer)
    assert body["errorMessage"] == "Unable to marshal response: Object of type set is not JSON serializable"


def test_thread_logs_after_handler_returned(api, launch, flavor):
    """A thread the handler started logs after the handler returned, while the next invocation runs: the
    record carries the request id of the invocation that started it."""
    rt = launch("hostile.dispatch", api.address, flavor)
    first, _ = invoke(api, rt, "thread_logs_later", {"delay": 0.3})
    second, _ = invoke(api, rt, "sleeps", {"seconds": 0.8})
    out = rt.wait_output("late thread speaking", 10, "stdout")
    assert re.search(r"\[WARNING\]\t\S+\t%s\tlate thread speaking\n" % first, out), out
    assert second not in out.split("late thread speaking")[0].rsplit("\n", 1)[-1]
    assert_lives_on(api, rt)


@pytest.mark.parametrize("pool", ["executor", "threadpool", "default_executor"])
def test_pooled_threads_log_the_current_invocation(api, launch, pool):
    """A pool's worker thread starts once and serves every invocation after: each record it writes carries the
    request id and tenant id of the invocation that is running, not of the one that started the thread."""
    rt = launch("hostile.dispatch", api.address, env={"AWS_LAMBDA_LOG_FORMAT": "JSON"})
    keys = []
    for i in range(3):
        tenant = [("Lambda-Runtime-Aws-Tenant-Id", "tenant-%d" % i)]
        key, answer = invoke(api, rt, "pooled_logs", {"pool": pool, "tag": "t%d" % i}, extra_headers=tenant)
        assert answer.kind == "response", answer.body
        keys.append(key)
    out = rt.wait_output('"pooled t2"', 10, "stdout")
    records = {
        r["message"]: r
        for r in map(json.loads, out.splitlines())
        if r.get("message", "").startswith("pooled")
    }
    seen = [
        (records["pooled t%d" % i]["requestId"], records["pooled t%d" % i].get("tenantId")) for i in range(3)
    ]
    assert seen == [(key, "tenant-%d" % i) for i, key in enumerate(keys)], out


def test_blocks_past_deadline(api, launch):
    """The runtime does not cut a handler off (the platform does). Its late answer is refused (410 here, as
    RAPID does after a timeout): that is logged, and the next event is served."""
    api.enforce_deadline = True
    rt = launch("hostile.dispatch", api.address)
    invoke(api, rt, "ok")  # warm
    deadline = int(time.time() * 1000) + 300
    key, answer = invoke(api, rt, "sleeps", {"seconds": 0.8}, deadline_ms=deadline)
    assert answer.status == 410
    assert json.loads(answer.body)["remaining"] == 0
    rt.wait_output("refused the response for %s with 410" % key, 10, "stdout")
    assert_lives_on(api, rt)


# -- everything that lives on, in one process -----------------------------------------------------


def test_all_survivable_in_one_process(api, launch, tmp_path):
    rt = launch("hostile.dispatch", api.address)
    sequence = [
        ("str_raises", None),
        ("deep_recursion", None),
        ("deep_stack_error", None),
        ("circular_cause", None),
        ("ret_nan", None),
        ("ret_infinity", None),
        ("ret_big_int", {"digits": 5000}),
        ("ret_self_ref", None),
        ("ret_generator", None),
        ("ret_bad_generator", None),
        ("ret_failing_generator", None),
        ("ret_set", None),
        ("ret_broken_repr", None),
        ("close_stdout", None),
        ("replace_stdout", None),
        ("chdir_to", {"path": "/"}),
        ("chdir_removed", {"path": str(tmp_path / "gone")}),
        ("environ_clear", None),
        ("syspath_clear", None),
        ("thread_logs_later", {"delay": 0.05}),
        ("raise_message", {"message": "plain"}),
    ]
    kinds = []
    for fn, event in sequence:
        _, answer = invoke(api, rt, fn, event)
        kinds.append(answer.kind)
    responses = [fn for (fn, _), kind in zip(sequence, kinds) if kind == "response"]
    assert responses == [
        "ret_nan",
        "ret_infinity",
        "ret_generator",
        "ret_failing_generator",
        "close_stdout",
        "replace_stdout",
        "chdir_to",
        "environ_clear",
        "syspath_clear",
        "thread_logs_later",
    ]
    assert_lives_on(api, rt)
    api.script_post("response", Fault("status", status=410))
    invoke(api, rt, "ok")
    assert_lives_on(api, rt)
