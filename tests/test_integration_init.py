"""Integration tests: handler resolution and init errors (contract §2), end to end
through the fake Runtime API, for ours and, where the contract says we match,
for awslambdaric 4.2.2 as the reference."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import HANDLERS_DIR

INIT_BODY_KEYS = ["errorMessage", "errorType", "requestId", "stackTrace"]

SYNTAX_ERR_SRC = "def handler(event, context)\n    return 1\n"


def _init_error(fake_api, rt, timeout=10.0):
    req = fake_api.wait_init_error(timeout, alive=None)
    rc = rt.run_until_exit(10)
    return req, rc


def _check_init_error(req, rc, rt, error_type, message):
    body = req.json()
    assert list(body) == INIT_BODY_KEYS, rt.diag()
    assert body["errorType"] == error_type, rt.diag()
    assert body["errorMessage"] == message, rt.diag()
    assert body["requestId"] == ""
    assert req.headers.get("Lambda-Runtime-Function-Error-Type") == error_type
    assert rc == 1, rt.diag()
    return body


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "apphandler",
            "Runtime.MalformedHandlerName",
            "Bad handler 'apphandler': not enough values to unpack (expected 2, got 1)",
        ),
        (
            "sys.handler",
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
        (
            "nomod.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'nomod': No module named 'nomod'",
        ),
        ("app.nope", "Runtime.HandlerNotFound", "Handler 'nope' missing on module 'app'"),
        (
            "pkg/sub/nomod.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'pkg/sub/nomod': No module named 'pkg.sub.nomod'",
        ),
    ],
)
def test_init_error_without_trace(fake_api, runtime, both, handler, error_type, message):
    """Init faults with an empty stackTrace: posted to /runtime/init/error, then exit 1."""
    rt = runtime(handler, both)
    req, rc = _init_error(fake_api, rt)
    body = _check_init_error(req, rc, rt, error_type, message)
    assert body["stackTrace"] == []
    # nothing else was asked of the API: init failed before the first /next
    assert fake_api.of_kind("next") == []
    assert len(fake_api.init_errors) == 1


def test_init_error_dependency_missing(fake_api, runtime, both):
    """A module that imports a missing dependency: Runtime.ImportModuleError with the
    dependency's name. awslambdaric loses the trace ([]); ours keeps the user-code
    frames (Our decisions #4)."""
    rt = runtime("import_err.handler", both)
    req, rc = _init_error(fake_api, rt)
    body = _check_init_error(
        req,
        rc,
        rt,
        "Runtime.ImportModuleError",
        "Unable to import module 'import_err': No module named 'requests_not_here'",
    )
    if both == "ric":
        assert body["stackTrace"] == []
    else:
        assert any("import_err.py" in frame for frame in body["stackTrace"]), body
        assert any("import requests_not_here" in frame for frame in body["stackTrace"]), body
        # and the log keeps the nested traceback (Our decisions #4)
        assert "import requests_not_here" in rt.stdout, rt.diag()


def test_init_error_syntax_error(fake_api, runtime, both, tmp_path):
    """SyntaxError in the handler module: Runtime.UserCodeSyntaxError, message from
    str(SyntaxError), one stack element with capital 'Line'."""
    root = tmp_path / "task"
    root.mkdir()
    path = root / "syntax_err.py"
    path.write_text(SYNTAX_ERR_SRC)
    try:
        compile(SYNTAX_ERR_SRC, str(path), "exec")
    except SyntaxError as e:
        expected_str = str(e)
    rt = runtime("syntax_err.handler", both, task_root=root)
    req, rc = _init_error(fake_api, rt)
    body = _check_init_error(
        req, rc, rt, "Runtime.UserCodeSyntaxError", "Syntax error in module 'syntax_err': " + expected_str
    )
    assert len(body["stackTrace"]) == 1, body
    frame = body["stackTrace"][0]
    assert re.fullmatch(r'  File "[^"]*syntax_err\.py" Line 1\n    def handler\(event, context\)\n', frame), (
        frame
    )


def test_init_error_syntax_error_in_dependency(fake_api, runtime, both, tmp_path):
    """A SyntaxError in a module the handler module imports is also UserCodeSyntaxError."""
    root = tmp_path / "task"
    root.mkdir()
    (root / "broken_dep.py").write_text(SYNTAX_ERR_SRC)
    (root / "uses_dep.py").write_text("import broken_dep  # noqa\n\n\ndef handler(e, c):\n    return 1\n")
    rt = runtime("uses_dep.handler", both, task_root=root)
    req, rc = _init_error(fake_api, rt)
    body = req.json()
    assert body["errorType"] == "Runtime.UserCodeSyntaxError", rt.diag()
    assert body["errorMessage"].startswith("Syntax error in module 'uses_dep': "), body
    assert "broken_dep.py" in body["errorMessage"], body
    assert rc == 1


def test_init_error_exception_at_import(fake_api, runtime, both):
    """Any other exception at import: bare class name, str(exc), and a stack trace from
    importlib onward (frozen importlib frames included, no bootstrap frames)."""
    rt = runtime("raises_at_import.handler", both)
    req, rc = _init_error(fake_api, rt)
    body = _check_init_error(req, rc, rt, "KeyError", "'DOES_NOT_EXIST'")
    trace = body["stackTrace"]
    assert trace, body
    assert "importlib" in trace[0], trace
    assert any("<frozen importlib._bootstrap" in f for f in trace), trace
    assert any('os.environ["DOES_NOT_EXIST"]' in f and "raises_at_import.py" in f for f in trace), trace
    assert not any("/bootstrap.py" in f or "lambda_bootstrap" in f for f in trace), trace
    # every element is a traceback.format_list entry
    assert all(f.startswith('  File "') for f in trace), trace


def test_init_error_logged_before_post(fake_api, runtime, both):
    """The unhandled-exception warning and the [ERROR] line are written to stdout."""
    rt = runtime("nomod.handler", both)
    _init_error(fake_api, rt)
    out = rt.stdout
    assert "LAMBDA_WARNING: Unhandled exception." in out, rt.diag()
    assert (
        "[ERROR] Runtime.ImportModuleError: Unable to import module 'nomod': No module named 'nomod'" in out
    )


def test_init_error_class_name_cannot_inject_a_header(fake_api, runtime, ours):
    """An import-time exception class named "Bad\\r\\nX-Injected: yes": the body keeps the name, the
    error-type header follows the invocation-error rule (ASCII letters, else Function.Unhandled)."""
    rt = runtime("header_injection_at_import.handler", ours)
    req, rc = _init_error(fake_api, rt)
    assert "X-Injected" not in req.headers, req.headers
    assert req.headers.get("Lambda-Runtime-Function-Error-Type") == "Function.Unhandled"
    assert req.json()["errorType"] == "Bad\r\nX-Injected: yes"
    assert rc == 1, rt.diag()


def test_not_callable_handler_ours_init_error(fake_api, runtime, ours):
    """Ours goes further (Our decisions #5): a non-callable handler attribute is an init
    error (Runtime.HandlerNotFound style), posted before any /next, then exit 1."""
    rt = runtime("app.not_callable", ours)
    req, rc = _init_error(fake_api, rt)
    body = req.json()
    assert body["errorType"] == "Runtime.HandlerNotFound", body
    assert "not_callable" in body["errorMessage"], body
    assert req.headers.get("Lambda-Runtime-Function-Error-Type") == body["errorType"]
    assert rc == 1
    assert fake_api.of_kind("next") == []


def test_not_callable_handler_ric_type_error_at_invoke(fake_api, runtime, ric):
    """Reference behaviour (documented difference): awslambdaric accepts the attribute
    and fails each invoke with TypeError."""
    rid = fake_api.push_event({})
    rt = runtime("app.not_callable", ric)
    ans = fake_api.wait_answer(rid, alive=rt.alive)
    assert ans.kind == "error"
    body = ans.json()
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "'str' object is not callable"


@pytest.mark.parametrize("handler", ["pkg.sub.mod.handler", "pkg/sub/mod.handler"])
def test_handler_dotted_and_slash_forms(fake_api, runtime, both, handler):
    """Dotted and slash module paths both resolve to pkg.sub.mod."""
    rid = fake_api.push_event({"x": 1})
    rt = runtime(handler, both)
    ans = fake_api.wait_answer(rid, alive=rt.alive)
    assert ans.kind == "response", ans
    assert ans.json() == {"module": "pkg.sub.mod", "event": {"x": 1}}


def test_task_root_first_on_sys_path(fake_api, runtime, ours, tmp_path):
    """Ours puts LAMBDA_TASK_ROOT on sys.path (cwd is elsewhere), ahead of the stdlib, so a
    module in the task root is found; its directory is the first sys.path entry."""
    root = tmp_path / "task"
    shutil.copytree(HANDLERS_DIR, root, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "where.py").write_text("import sys\n\n\ndef handler(e, c):\n    return sys.path[:3]\n")
    rid = fake_api.push_event({})
    rt = runtime("where.handler", ours, task_root=root)
    ans = fake_api.wait_answer(rid, alive=rt.alive)
    assert ans.kind == "response", rt.diag()
    assert ans.json()[0] == str(root)


def test_missing_runtime_api_env(runtime, ours):
    """Ours only: without AWS_LAMBDA_RUNTIME_API, a one-line error on stderr naming the
    variable, and exit 1 (awslambdaric dies with a KeyError traceback)."""
    rt = runtime("app.echo", ours, runtime_api=None)
    rc = rt.run_until_exit(10)
    assert rc == 1, rt.diag()
    lines = [line for line in rt.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, rt.diag()
    assert "AWS_LAMBDA_RUNTIME_API" in lines[0]
    assert "Traceback" not in rt.output


def test_init_error_post_uses_json_body(fake_api, runtime, both):
    """The init error body is JSON with ", "/": " separators as awslambdaric writes it."""
    rt = runtime("app.nope", both)
    req, _ = _init_error(fake_api, rt)
    assert (
        req.body
        == json.dumps(
            {
                "errorMessage": "Handler 'nope' missing on module 'app'",
                "errorType": "Runtime.HandlerNotFound",
                "requestId": "",
                "stackTrace": [],
            }
        ).encode()
    )
