"""Integration tests: logging (contract §4), end to end: TEXT and JSON formats, the
error log framing on stdout, and telemetry-fd frames."""

from __future__ import annotations

import json
import re
import time

import pytest
from conftest import HANDLERS_DIR

APP = str(HANDLERS_DIR / "app.py")
TS_TEXT = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
TS_JSON = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
CARET_LINE = re.compile(r"(^|[\n\r])[\s\xa0]*[~^]+[\s\xa0]*($|[\n\r])")


def _serve(fake_api, rt, rids, timeout=15.0):
    return [fake_api.wait_answer(rid, timeout, alive=rt.alive) for rid in rids]


def _call(fn, event=None):
    return {"fn": fn, "event": event if event is not None else {}}


def _text_line(level, rid, msg):
    return re.compile(r"^\[%s\]\t%s\t%s\t%s$" % (level, TS_TEXT, re.escape(rid), re.escape(msg)), re.M)


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_text_format_with_level(fake_api, runtime, both):
    """TEXT: `[LEVEL]\\t<ts>\\t<request id>\\t<msg>\\n`; AWS_LAMBDA_LOG_LEVEL=INFO drops DEBUG."""
    rid = fake_api.push_event(_call("log_levels"))
    rt = runtime("app.dispatch", both, env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
    _serve(fake_api, rt, [rid])
    out = rt.stdout
    assert _text_line("INFO", rid, "info msg").search(out), out
    assert _text_line("WARNING", rid, "warning msg").search(out), out
    assert _text_line("ERROR", rid, "error msg").search(out), out
    assert "debug msg" not in rt.output


def test_text_format_default_level_is_warning(fake_api, runtime, both):
    """Without AWS_LAMBDA_LOG_LEVEL the root logger stays at WARNING: info is dropped."""
    rid = fake_api.push_event(_call("log_levels"))
    rt = runtime("app.dispatch", both)
    _serve(fake_api, rt, [rid])
    out = rt.stdout
    assert _text_line("WARNING", rid, "warning msg").search(out), out
    assert "info msg" not in rt.output
    assert "debug msg" not in rt.output


def test_text_error_log_line(fake_api, runtime, both):
    """The invocation-error log on stdout: one line, `\\r` joins, NBSP indents, `\\n` end."""
    rid = fake_api.push_event({})
    rt = runtime("app.raises", both)
    _serve(fake_api, rt, [rid])
    expected = re.compile(
        r"\[ERROR\] ValueError: boom\rTraceback \(most recent call last\):\r"
        r'\xa0\xa0File "%s", line \d+, in raises\r\xa0\xa0\xa0\xa0raise ValueError\("boom"\)\n'
        % re.escape(APP)
    )
    assert expected.search(rt.stdout), repr(rt.stdout)


def test_stack_trace_has_no_caret_lines(fake_api, runtime, both):
    """stackTrace elements are `traceback.format_list` of (file, line, name, code) tuples,
    as awslambdaric writes them: two lines per frame, no `^^^`/`~~~` position markers
    (Python 3.11+ adds those for FrameSummary objects), in the /error body and the log."""
    rid = fake_api.push_event(_call("raises"))
    rt = runtime("app.dispatch", both)
    (a,) = _serve(fake_api, rt, [rid])
    trace = a.json()["stackTrace"]
    assert len(trace) == 2, trace
    assert trace[0] == (
        '  File "%s", line %d, in dispatch\n    return globals()[event["fn"]](event.get("event", {}), context)\n'
        % (APP, _line_of("return globals()[event["))
    ), trace
    for frame in trace:
        assert not CARET_LINE.search(frame), frame
    err_line = next(line for line in rt.stdout.split("\n") if line.startswith("[ERROR] ValueError: boom"))
    assert not CARET_LINE.search(err_line), repr(err_line)


def _line_of(snippet):
    for n, line in enumerate((HANDLERS_DIR / "app.py").read_text().splitlines(), 1):
        if snippet in line:
            return n
    raise AssertionError(snippet)


def test_json_format(fake_api, runtime, both):
    """JSON: keys and their order for a dict message, `extra=` attributes, logger.exception,
    and the invocation-error record; tenantId after requestId."""
    r_logs = fake_api.push_event(_call("log_json_variants"), tenant_id="blue")
    r_err = fake_api.push_event(_call("raises"))
    rt = runtime("app.dispatch", both, env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"})
    _serve(fake_api, rt, [r_logs, r_err])
    recs = _json_lines(rt.stdout)
    assert len(recs) == 4, rt.diag()
    d, extra, exc, err = recs
    for r in recs:
        assert re.fullmatch(TS_JSON, r["timestamp"]), r
    assert list(d) == ["timestamp", "level", "message", "logger", "requestId", "tenantId"]
    assert d["message"] == {"dict": "message", "n": 1} and d["level"] == "INFO" and d["logger"] == "root"
    assert (d["requestId"], d["tenantId"]) == (r_logs, "blue")
    assert list(extra) == ["timestamp", "level", "message", "logger", "requestId", "tenantId", "customKey"]
    assert extra["customKey"] == "v" and extra["message"] == "with extra"
    assert list(exc) == [
        "timestamp",
        "level",
        "message",
        "logger",
        "stackTrace",
        "errorType",
        "errorMessage",
        "requestId",
        "location",
        "tenantId",
    ]
    assert exc["level"] == "ERROR" and exc["message"] == "caught it"
    assert exc["errorType"] == "ZeroDivisionError" and exc["errorMessage"] == "division by zero"
    assert re.fullmatch(r".*app\.py:log_json_variants:\d+", exc["location"]), exc
    assert list(err) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"]
    assert (err["level"], err["errorType"], err["errorMessage"], err["requestId"]) == (
        "ERROR",
        "ValueError",
        "boom",
        r_err,
    )
    assert err["stackTrace"][-1].endswith('raise ValueError("boom")\n')
    # every log line is a JSON object (nothing else on stdout)
    assert all(line.startswith("{") for line in rt.stdout.splitlines() if line), rt.stdout


def test_logger_exception_does_not_glue_next_record_ours(fake_api, runtime, ours):
    """Ours only (Our decisions #7): after logger.exception() in TEXT mode the next record
    starts on its own line (awslambdaric glues it onto the traceback's last line)."""
    rid = fake_api.push_event(_call("log_exception_then_info"))
    rt = runtime("app.dispatch", ours, env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
    _serve(fake_api, rt, [rid])
    out = rt.stdout
    assert _text_line("INFO", rid, "after the exception").search(out), repr(out)
    assert "ZeroDivisionError: division by zero\n" in out, repr(out)
    assert _text_line("ERROR", rid, "caught it").search(out), repr(out)


def test_chained_exception_in_logged_traceback_ours(fake_api, runtime, ours):
    """Ours only (Our decisions #4): the cause of a chained exception appears in the logged
    traceback (still one `\\r`-joined stdout line)."""
    rid = fake_api.push_event(_call("raises_chained"))
    rt = runtime("app.dispatch", ours)
    (a,) = _serve(fake_api, rt, [rid])
    assert a.json()["errorType"] == "ValueError"
    line = next((x for x in rt.stdout.split("\n") if x.startswith("[ERROR] ValueError: outer")), None)
    assert line is not None, repr(rt.stdout)
    assert "KeyError: 'inner'" in line, repr(line)
    assert '{}["inner"]' in line, repr(line)


def test_request_id_in_logs_from_threads_ours(fake_api, runtime, ours):
    """Ours only (Our decisions #9): a thread started by the handler logs with the request
    id of the invocation that started it, even when it logs during a later invocation."""
    r_join = fake_api.push_event(_call("log_from_thread"))
    r_park = fake_api.push_event(_call("log_from_thread_later"))
    r_release = fake_api.push_event(_call("log_from_thread_later", {"release": True}))
    rt = runtime("app.dispatch", ours, env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
    _serve(fake_api, rt, [r_join, r_park, r_release])
    out = rt.stdout
    assert _text_line("INFO", r_join, "from thread").search(out), repr(out)
    assert _text_line("INFO", r_release, "released by the next invocation").search(out), repr(out)
    assert _text_line("INFO", r_park, "parked thread speaking").search(out), repr(out)


def test_print_goes_to_stdout_unprefixed(fake_api, runtime, both):
    rid = fake_api.push_event(_call("printer"))
    rt = runtime("app.dispatch", both, env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
    _serve(fake_api, rt, [rid])
    assert "\nprinted line\n" in "\n" + rt.stdout


TELEMETRY_CASES = {
    # name: (env, warning frame type, error-log frame type, info frame type or None)
    "text-nolevel": ({}, 0xA55A0003, 0xA55A0017, None),
    "text-info": ({"AWS_LAMBDA_LOG_LEVEL": "INFO"}, 0xA55A0013, 0xA55A0017, 0xA55A000F),
    "json-info": (
        {"AWS_LAMBDA_LOG_LEVEL": "INFO", "AWS_LAMBDA_LOG_FORMAT": "JSON"},
        0xA55A0012,
        0xA55A0016,
        0xA55A000E,
    ),
}


@pytest.mark.parametrize("case", sorted(TELEMETRY_CASES))
def test_telemetry_fd_frames(telemetry_pipe, fake_api, runtime, both, case):
    """With _LAMBDA_TELEMETRY_LOG_FD, log records and error logs are binary frames
    (type, BE length, BE µs timestamp, message); print() stays on stdout; the variable is
    removed from the environment the handler sees."""
    env, warn_type, err_type, info_type = TELEMETRY_CASES[case]
    env = dict(env, _LAMBDA_TELEMETRY_LOG_FD=str(telemetry_pipe.fd))
    t0 = int(time.time() * 1_000_000)
    r_logs = fake_api.push_event(_call("log_levels"))
    r_print = fake_api.push_event(_call("printer"))
    r_err = fake_api.push_event(_call("raises"))
    r_env = fake_api.push_event(_call("env_get", {"names": ["_LAMBDA_TELEMETRY_LOG_FD"]}))
    rt = runtime("app.dispatch", both, env=env, pass_fds=[telemetry_pipe.fd])
    telemetry_pipe.close_write_end()
    *_, a_env = _serve(fake_api, rt, [r_logs, r_print, r_err, r_env])
    assert a_env.json() == {"_LAMBDA_TELEMETRY_LOG_FD": None}
    frames = telemetry_pipe.wait_frames(lambda fs: any(b"boom" in m for _, _, m in fs), 10)
    t1 = int(time.time() * 1_000_000)
    for ftype, ts, _ in frames:
        assert ftype & 0xFFFF0000 == 0xA55A0000
        assert t0 <= ts <= t1, (t0, ts, t1)
    by_msg = {}
    for ftype, _, msg in frames:
        text = msg.decode("utf-8")
        for key in ("debug msg", "info msg", "warning msg", "error msg", "boom"):
            if key in text:
                by_msg[key] = (ftype, text)
    assert "debug msg" not in by_msg
    assert by_msg["warning msg"][0] == warn_type, hex(by_msg["warning msg"][0])
    if info_type is None:
        assert "info msg" not in by_msg
        assert by_msg["error msg"][0] == warn_type  # no level set: one type for all records
    else:
        assert by_msg["info msg"][0] == info_type, hex(by_msg["info msg"][0])
    err_ftype, err_text = by_msg["boom"]
    assert err_ftype == err_type, hex(err_ftype)
    if case.startswith("text"):
        assert re.fullmatch(
            r"\[WARNING\]\t%s\t%s\twarning msg\n" % (TS_TEXT, re.escape(r_logs)), by_msg["warning msg"][1]
        )
        assert err_text.startswith(
            "[ERROR] ValueError: boom\nTraceback (most recent call last):\n\xa0\xa0File "
        )
        assert err_text.endswith('\xa0\xa0\xa0\xa0raise ValueError("boom")'), repr(err_text)
        assert "\r" not in err_text
    else:
        rec = json.loads(by_msg["warning msg"][1])
        assert rec["level"] == "WARNING" and rec["requestId"] == r_logs
        err_rec = json.loads(err_text)
        assert list(err_rec) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"]
    # print() is not framed and stays on stdout; log records do not go to stdout
    assert not any(b"printed line" in m for _, _, m in frames)
    assert "printed line\n" in rt.stdout
    assert "warning msg" not in rt.stdout and "boom" not in rt.stdout


CONTEXT_LOG_MESSAGES = ["plain line", "two\nlines", "ends in a newline\n", "non-ASCII: £ ü", ""]


@pytest.mark.parametrize("level", [None, "DEBUG", "INFO", "ERROR"])
@pytest.mark.parametrize("log_format", ["TEXT", "JSON"])
def test_context_log_on_the_telemetry_fd(telemetry_pipe, fake_api, runtime, both, log_format, level):
    """context.log(msg) with a telemetry fd, in either log format and at any level: one frame of the TEXT
    default type 0xA55A0003 (the type awslambdaric's log sink uses when given none) holding exactly `msg`,
    with no newline added; nothing on stdout."""
    env = {
        "_LAMBDA_TELEMETRY_LOG_FD": str(telemetry_pipe.fd),
        "AWS_LAMBDA_LOG_FORMAT": log_format,
        "AWS_LAMBDA_LOG_LEVEL": level,
    }
    rid = fake_api.push_event(_call("context_log", {"messages": CONTEXT_LOG_MESSAGES}))
    rt = runtime("app.dispatch", both, env=env, pass_fds=[telemetry_pipe.fd])
    telemetry_pipe.close_write_end()
    _serve(fake_api, rt, [rid])
    frames = telemetry_pipe.wait_frames(lambda fs: any(b"after context.log" in m for _, _, m in fs), 10)
    last = next(i for i, (_, _, m) in enumerate(frames) if b"after context.log" in m)
    assert [(ftype, m) for ftype, _, m in frames[:last]] == [
        (0xA55A0003, m.encode("utf-8")) for m in CONTEXT_LOG_MESSAGES
    ], frames
    assert not any(m.strip() and m.strip() in rt.stdout for m in CONTEXT_LOG_MESSAGES), rt.stdout


@pytest.mark.parametrize("log_format", ["TEXT", "JSON"])
def test_context_log_on_stdout(fake_api, runtime, both, log_format):
    """Without a telemetry fd, awslambdaric writes the message as it is, so the next record runs into it;
    ours ends it with a newline unless it has one (README: differences)."""
    rid = fake_api.push_event(_call("context_log", {"messages": CONTEXT_LOG_MESSAGES[:4]}))
    rt = runtime("app.dispatch", both, env={"AWS_LAMBDA_LOG_FORMAT": log_format})
    _serve(fake_api, rt, [rid])
    if both == "ours":
        written = "plain line\ntwo\nlines\nends in a newline\nnon-ASCII: £ ü\n"
    else:
        written = "plain linetwo\nlinesends in a newline\nnon-ASCII: £ ü"
    next_record = '{"timestamp": "' if log_format == "JSON" else "[CRITICAL]\t"
    assert written + next_record in rt.stdout, repr(rt.stdout)
