"""Graceful shutdown (beyond awslambdaric): opted in with LAMBDA_GRACEFUL_SHUTDOWN=1 or `bootstrap.on_shutdown`,
the runtime registers a no-op internal extension before its first /next (so that Lambda sends SIGTERM), and
on SIGTERM runs the hooks (newest first, bounded), flushes and exits 0. Against the fake Extensions API, then
under the RIE, which SIGTERMs the runtime at its own shutdown only when an extension is registered."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import rie
from conftest import HANDLERS_DIR
from runtime_emulator import Fault

EXTENSION_NAME = "_python-bootstrap-graceful-shutdown"


def _registered_and_polling(api, proc):
    """Wait for the runtime's /next; return (register request, extension)."""
    api.wait_for(lambda: api.waiting_next > 0, 10, "the runtime in /next", proc.alive)
    ext = api.wait_extension_waiting(EXTENSION_NAME, 10, proc.alive)
    (register,) = api.of_kind("ext_register")
    return register, ext


def test_opt_in_registers_an_internal_extension_before_the_first_next(fake_api, runtime, ours):
    proc = runtime("app.echo", ours, env={"LAMBDA_GRACEFUL_SHUTDOWN": "1"})
    register, ext = _registered_and_polling(fake_api, proc)
    assert register.status == 200, fake_api.describe()
    first_next = fake_api.of_kind("next")[0]
    assert register.seq < first_next.seq, "register must come before the first /next:\n" + fake_api.describe()
    assert register.headers.get("Lambda-Extension-Name") == EXTENSION_NAME
    assert json.loads(register.body) == {"events": []}  # an internal extension may not ask for SHUTDOWN
    polls = fake_api.of_kind("ext_next")
    assert polls and polls[0].headers.get("Lambda-Extension-Identifier") == ext.identifier
    assert polls[0].conn != first_next.conn, "the extension waits on its own connection"
    # init is over (the fake serves /next only then): events are answered
    rid = fake_api.push_event({"x": 1})
    assert fake_api.wait_answer(rid, 10, proc.alive).body == b'{"x": 1}'
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(5) == 0, proc.diag()
    assert time.monotonic() - t0 < 2


@pytest.mark.parametrize("value", [None, "", "0", "false"])
def test_no_extension_without_opt_in(fake_api, runtime, ours, value):
    proc = runtime("app.echo", ours, env={"LAMBDA_GRACEFUL_SHUTDOWN": value})
    rid = fake_api.push_event({})
    fake_api.wait_answer(rid, 10, proc.alive)
    fake_api.wait_idle(5, proc.alive)
    assert not fake_api.of_kind("ext_register", "ext_next"), fake_api.describe()
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(5) == 0


def test_on_shutdown_opts_in_and_hooks_run_newest_first_on_sigterm(fake_api, runtime, ours, tmp_path):
    marker = tmp_path / "marker"
    proc = runtime("shutdown_hooks.handler", ours, env={"SHUTDOWN_MARKER": str(marker)})
    register, _ = _registered_and_polling(fake_api, proc)
    assert register.seq < fake_api.of_kind("next")[0].seq
    rid = fake_api.push_event({})
    assert fake_api.wait_answer(rid, 10, proc.alive).json()["hooks"] == 2
    assert not marker.exists(), "hooks ran before shutdown"
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(5) == 0, proc.diag()
    assert marker.read_text().split() == ["two", "one"]
    # what the hooks wrote was flushed before the exit, even bytes left in stdout's buffer
    assert "hook two ran" in proc.stdout and "hook one ran, no newline" in proc.stdout, proc.diag()


def test_a_failing_hook_is_logged_and_the_others_still_run(fake_api, runtime, ours, tmp_path):
    marker = tmp_path / "marker"
    env = {"SHUTDOWN_MARKER": str(marker), "SHUTDOWN_HOOK_MODE": "raise"}
    proc = runtime("shutdown_hooks.handler", ours, env=env)
    _registered_and_polling(fake_api, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(5) == 0, proc.diag()
    assert marker.read_text().split() == ["two", "one"]
    assert "hook two failed" in proc.output and "RuntimeError" in proc.output, proc.diag()


def test_hooks_are_bounded_to_the_grace_period(fake_api, runtime, ours, tmp_path):
    marker = tmp_path / "marker"
    env = {"SHUTDOWN_MARKER": str(marker), "SHUTDOWN_HOOK_MODE": "hang"}
    proc = runtime("shutdown_hooks.handler", ours, env=env)
    _registered_and_polling(fake_api, proc)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(5) == 0, proc.diag()
    elapsed = time.monotonic() - t0
    # hooks get 400 ms; the rest is signal delivery and process exit, seen from outside
    assert elapsed < 1.0, "a hanging hook held the exit for %.2fs (Lambda gives 500 ms)" % elapsed
    assert marker.read_text().split() == ["two-hanging"]


def test_sigterm_after_an_invocation_with_log_frames(fake_api, runtime, ours, tmp_path, telemetry_pipe):
    """With the telemetry fd, what a hook prints is still written (stdout), and the exit is clean."""
    marker = tmp_path / "marker"
    env = {"SHUTDOWN_MARKER": str(marker), "_LAMBDA_TELEMETRY_LOG_FD": str(telemetry_pipe.fd)}
    proc = runtime("shutdown_hooks.handler", ours, env=env, pass_fds=[telemetry_pipe.fd])
    telemetry_pipe.close_write_end()
    _registered_and_polling(fake_api, proc)
    rid = fake_api.push_event({})
    fake_api.wait_answer(rid, 10, proc.alive)
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(5) == 0, proc.diag()
    assert marker.read_text().split() == ["two", "one"]


def test_refused_registration_is_logged_and_the_runtime_serves_anyway(fake_api, runtime, ours):
    body = b'{"errorMessage": "nope", "errorType": "Extension.TooManyExtensions"}'
    fake_api.script_post("ext_register", Fault("status", status=403, body=body))
    proc = runtime("app.echo", ours, env={"LAMBDA_GRACEFUL_SHUTDOWN": "1"})
    rid = fake_api.push_event({"a": 1})
    assert fake_api.wait_answer(rid, 10, proc.alive).status == 202
    out = proc.wait_output("graceful shutdown is off", 5)
    assert "403" in out, out
    assert not fake_api.of_kind("ext_next")


# --- under the RIE ------------------------------------------------------------------------------------------


def _rie(argv, tmp_path, handler, **env):
    full = {"_HANDLER": handler, "LAMBDA_TASK_ROOT": str(HANDLERS_DIR)}
    full.update(env)
    return rie.RieProcess(argv, env=full, cwd=str(HANDLERS_DIR), log_dir=str(tmp_path))


def _terminate_rie(r):
    """SIGTERM the RIE (a process these tests started): it resets the sandbox, which SIGTERMs the runtime when
    an extension is registered (SIGKILL otherwise), then exits."""
    r.proc.send_signal(signal.SIGTERM)
    try:
        r.proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail("the RIE did not exit after SIGTERM:\n" + r.logs())


@pytest.mark.rie
@pytest.mark.slow
def test_rie_sigterms_the_runtime_and_hooks_run(rie_ours_argv, tmp_path):
    marker = tmp_path / "marker"
    with _rie(rie_ours_argv, tmp_path, "shutdown_hooks.handler", SHUTDOWN_MARKER=str(marker)) as r:
        status, body, _ = r.invoke(b"{}", timeout=60)
        assert status == 200 and json.loads(body)["hooks"] == 2, (status, body, r.logs())
        logs = r.logs()
        assert "Internal agent %s (" % EXTENSION_NAME in logs and "registered, subscribed to []" in logs, logs
        _terminate_rie(r)
        logs = r.logs()
        assert marker.exists(), "no hook ran (SIGKILLed?):\n" + logs
        assert marker.read_text().split() == ["two", "one"], logs
        assert "hook two ran" in logs and "hook one ran, no newline" in logs, logs
        assert "Deadline: The runtime did not exit" not in logs, logs


@pytest.mark.rie
@pytest.mark.slow
def test_rie_without_opt_in_kills_the_runtime(rie_ours_argv, tmp_path):
    """The control: no extension registered, the RIE SIGKILLs the runtime, as Lambda does."""
    with _rie(rie_ours_argv, tmp_path, "app.echo") as r:
        status, _, _ = r.invoke(b"{}", timeout=60)
        assert status == 200, r.logs()
        _terminate_rie(r)
        logs = r.logs()
        assert "Internal agent" not in logs
        assert (
            "SIGKILLing the runtime as no agents are registered" in logs
            or "Sending SIGKILL to runtime" in logs
        ), logs
