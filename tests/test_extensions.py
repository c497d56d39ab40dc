"""Extensions (beyond awslambdaric): bootstrap.ExtensionsApiClient and `bootstrap --extension NAME MODULE.FUNCTION`,
against the fake Extensions API; example/extensions/log-events as shipped; and the client under the RIE, as
an internal extension (the RIE starts external extensions only from /opt/extensions)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
import rie
from conftest import BASE_ENV, BOOTSTRAP, HANDLERS_DIR, REPO_ROOT

import bootstrap

EXAMPLE = REPO_ROOT / "example"


# --- the client, in this process ----------------------------------------------------------------------------


def test_client_register_next_event_and_errors(fake_api):
    client = bootstrap.ExtensionsApiClient(fake_api.address)
    info = client.register("my-ext", ["INVOKE", "SHUTDOWN"])
    assert info == {"functionName": "test-fn", "functionVersion": "$LATEST", "handler": "app.handler"}
    (reg,) = fake_api.of_kind("ext_register")
    assert reg.method == "POST" and reg.path == "/2020-01-01/extension/register"
    assert reg.headers.get("Lambda-Extension-Name") == "my-ext"
    assert json.loads(reg.body) == {"events": ["INVOKE", "SHUTDOWN"]}
    ext = fake_api.extension_named("my-ext")
    assert client.identifier == ext.identifier

    got = {}
    t = threading.Thread(target=lambda: got.setdefault("event", client.next_event()), daemon=True)
    t.start()
    fake_api.wait_extension_waiting("my-ext", 5)
    time.sleep(0.1)
    assert "event" not in got, "next_event must block until there is an event"
    rid = fake_api.extension_invoke(request_id="req-42")
    t.join(5)
    assert got["event"]["eventType"] == "INVOKE" and got["event"]["requestId"] == rid
    (poll,) = fake_api.of_kind("ext_next")
    assert poll.method == "GET" and poll.headers.get("Lambda-Extension-Identifier") == ext.identifier

    fake_api.extension_shutdown("spindown")
    assert client.next_event()["shutdownReason"] == "spindown"

    assert client.init_error("Extension.ConfigInvalid", "bad config") == 202
    assert client.exit_error("Extension.Crashed", "it broke") == 202
    for kind, error_type, message in (
        ("ext_init_error", "Extension.ConfigInvalid", "bad config"),
        ("ext_exit_error", "Extension.Crashed", "it broke"),
    ):
        (req,) = fake_api.of_kind(kind)
        assert req.status == 202
        assert req.headers.get("Lambda-Extension-Identifier") == ext.identifier
        assert req.headers.get("Lambda-Extension-Function-Error-Type") == error_type
        body = req.json()
        assert body["errorType"] == error_type and body["errorMessage"] == message
    # one keep-alive connection for every call
    assert len({r.conn for r in fake_api.snapshot()}) == 1, fake_api.describe()


def test_client_register_refused_raises(fake_api):
    client = bootstrap.ExtensionsApiClient(fake_api.address)
    with pytest.raises(bootstrap.RuntimeApiError, match=r"403.*Extension\.InvalidExtensionName"):
        client.register("", ["INVOKE"])
    assert client.identifier is None


def test_client_next_event_without_registering_raises(fake_api):
    client = bootstrap.ExtensionsApiClient(fake_api.address)
    with pytest.raises(bootstrap.RuntimeApiError, match=r"403.*MissingExtensionIdentifier"):
        client.next_event()


# --- bootstrap --extension ----------------------------------------------------------------------------------


class ExtensionProcess:
    def __init__(self, argv, env, tmp_path, n):
        self.out = tmp_path / ("ext-%d.out" % n)
        self.err = tmp_path / ("ext-%d.err" % n)
        with open(self.out, "wb") as fo, open(self.err, "wb") as fe:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, start_new_session=True
            )

    def alive(self):
        return self.proc.poll() is None

    @property
    def output(self):
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def wait(self, timeout=10.0):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail("the extension did not exit within %.0fs:\n%s" % (timeout, self.output))

    def wait_output(self, needle, timeout=10.0):
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            if time.monotonic() > deadline or not self.alive():
                if needle in self.output:
                    break
                pytest.fail("%r not in the extension's output:\n%s" % (needle, self.output))
            time.sleep(0.02)
        return self.output

    def kill(self):
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


@pytest.fixture
def extension(fake_api, tmp_path):
    """extension(*args, task_root=..., argv=None, **env) starts `bootstrap <args>` against the fake."""
    started = []

    def start(*args, task_root=HANDLERS_DIR, argv=None, runtime_api="", **env):
        full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
        full.update(BASE_ENV)
        full["LAMBDA_TASK_ROOT"] = str(task_root)
        if runtime_api is not None:
            full["AWS_LAMBDA_RUNTIME_API"] = runtime_api or fake_api.address
        full.update(env)
        p = ExtensionProcess(argv or [sys.executable, str(BOOTSTRAP), *args], full, tmp_path, len(started))
        started.append(p)
        return p

    yield start
    for p in started:
        p.kill()


def _events_file(tmp_path):
    return tmp_path / "events.jsonl"


def _read_events(path):
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_extension_registers_calls_back_and_leaves_at_shutdown(fake_api, extension, tmp_path):
    fake_api.external_extensions = {"recorder"}  # as RAPID: only external extensions may have SHUTDOWN
    events = _events_file(tmp_path)
    ext = extension("--extension", "recorder", "ext_callbacks.record", EXT_EVENTS=str(events))
    registered = fake_api.wait_extension_waiting("recorder", 10, ext.alive)
    (reg,) = fake_api.of_kind("ext_register")
    assert reg.status == 200 and json.loads(reg.body) == {"events": ["INVOKE", "SHUTDOWN"]}
    rids = [fake_api.extension_invoke() for _ in range(2)]
    fake_api.wait_for(lambda: len(_read_events(events)) >= 2, 10, "2 events recorded", ext.alive)
    assert ext.alive()
    fake_api.extension_shutdown("spindown")
    assert ext.wait(10) == 0, ext.output
    seen = _read_events(events)
    assert [e["eventType"] for e in seen] == ["INVOKE", "INVOKE", "SHUTDOWN"]
    assert [e["requestId"] for e in seen[:2]] == rids
    assert seen[2]["shutdownReason"] == "spindown"
    polls = fake_api.of_kind("ext_next")
    assert len(polls) == 3 and {p.headers.get("Lambda-Extension-Identifier") for p in polls} == {
        registered.identifier
    }
    assert not fake_api.of_kind("ext_init_error", "ext_exit_error")


def test_callback_that_cannot_be_loaded_is_an_init_error(fake_api, extension):
    ext = extension("--extension", "broken", "no_such_module.callback")
    assert ext.wait(10) != 0, ext.output
    (err,) = fake_api.of_kind("ext_init_error")
    assert err.status == 202, fake_api.describe()
    assert err.headers.get("Lambda-Extension-Function-Error-Type") == "Extension.ImportModuleError"
    assert err.headers.get("Lambda-Extension-Identifier") == fake_api.extension_named("broken").identifier
    assert "no_such_module" in err.json()["errorMessage"]
    assert not fake_api.of_kind("ext_next"), "it must not poll for events after an init error"


def test_callback_that_raises_is_an_exit_error(fake_api, extension):
    ext = extension("--extension", "fragile", "ext_callbacks.fails_on_invoke")
    fake_api.wait_extension_waiting("fragile", 10, ext.alive)
    rid = fake_api.extension_invoke()
    assert ext.wait(10) != 0, ext.output
    (err,) = fake_api.of_kind("ext_exit_error")
    assert err.headers.get("Lambda-Extension-Function-Error-Type") == "Extension.ValueError"
    assert err.json()["errorMessage"] == "callback failed on %s" % rid


def test_refused_registration_exits_non_zero(fake_api, extension):
    fake_api.external_extensions = set()  # every name is internal: SHUTDOWN is refused
    ext = extension("--extension", "internal-one", "ext_callbacks.record", EXT_EVENTS="/dev/null")
    assert ext.wait(10) != 0, ext.output
    (reg,) = fake_api.of_kind("ext_register")
    assert reg.status == 403
    assert "ShutdownEventNotSupportedForInternalExtension" in ext.output, ext.output


@pytest.mark.parametrize(
    "args", [("--extension",), ("--extension", "name"), ("--extension", "a", "b.c", "d")]
)
def test_usage_errors(extension, args):
    ext = extension(*args)
    assert ext.wait(10) == 2, ext.output
    assert "usage: bootstrap --extension NAME MODULE.FUNCTION" in ext.output


def test_without_runtime_api_address(extension):
    ext = extension("--extension", "x", "ext_callbacks.record", runtime_api=None)
    assert ext.wait(10) == 1
    assert "AWS_LAMBDA_RUNTIME_API is not set" in ext.output


def test_extension_and_runtime_together(fake_api, extension, runtime, tmp_path):
    """The fake forwards each event the runtime takes to the extensions subscribed to INVOKE, as Lambda does;
    init ends (the runtime gets its first event) once the extension polls."""
    events = _events_file(tmp_path)
    ext = extension("--extension", "recorder", "ext_callbacks.record", EXT_EVENTS=str(events))
    fake_api.wait_extension_waiting("recorder", 10, ext.alive)
    proc = runtime("app.echo", "ours")
    rid = fake_api.push_event({"both": True})
    assert fake_api.wait_answer(rid, 10, proc.alive).body == b'{"both": true}'
    fake_api.wait_for(lambda: _read_events(events), 10, "the INVOKE at the extension", ext.alive)
    (seen,) = _read_events(events)
    assert seen["eventType"] == "INVOKE" and seen["requestId"] == rid
    assert seen["invokedFunctionArn"].startswith("arn:aws:lambda:")
    fake_api.extension_shutdown()
    assert ext.wait(10) == 0


def test_shipped_log_events_extension(fake_api, extension, tmp_path):
    """example/extensions/log-events, as Lambda would start it from /opt/extensions."""
    wrapper = tmp_path / "bootstrap"
    wrapper.write_text('#!/bin/sh\nexec "%s" "%s" "$@"\n' % (sys.executable, BOOTSTRAP))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    script = EXAMPLE / "extensions" / "log-events"
    assert os.access(script, os.X_OK), "%s must be executable" % script
    fake_api.external_extensions = {"log-events"}
    ext = extension(argv=[str(script)], BOOTSTRAP=str(wrapper), LOG_EVENTS_ROOT=str(EXAMPLE))
    fake_api.wait_extension_waiting("log-events", 10, ext.alive)
    rid = fake_api.extension_invoke()
    out = ext.wait_output('"requestId": "%s"' % rid)
    line = next(x for x in out.splitlines() if rid in x)
    assert line.startswith("[log-events] ")
    logged = json.loads(line[len("[log-events] ") :])
    assert logged["eventType"] == "INVOKE" and "deadlineMs" in logged
    fake_api.extension_shutdown("spindown")
    assert ext.wait(10) == 0, ext.output
    assert (
        '[log-events] {"eventType": "SHUTDOWN"' in ext.output and '"shutdownReason": "spindown"' in ext.output
    )


# --- under the RIE ------------------------------------------------------------------------------------------


@pytest.mark.rie
@pytest.mark.slow
def test_rie_client_as_internal_extension(rie_ours_argv, tmp_path):
    events = tmp_path / "events.jsonl"
    env = {"_HANDLER": "ext_probe.handler", "LAMBDA_TASK_ROOT": str(HANDLERS_DIR), "EXT_EVENTS": str(events)}
    with rie.RieProcess(rie_ours_argv, env=env, cwd=str(HANDLERS_DIR), log_dir=str(tmp_path)) as r:
        results = []
        for _ in range(2):
            status, body, _ = r.invoke(b"{}", timeout=60)
            assert status == 200, (status, body, r.logs())
            results.append(json.loads(body))
        first = results[0]
        # the RIE refuses SHUTDOWN to an internal extension
        assert first["refused"] is not None and "403" in first["refused"], first
        assert "ShutdownEventNotSupportedForInternalExtension" in first["refused"], first
        assert first["identifier"], first
        assert "functionName" in first["registered"], first
        logs = r.logs()
        assert "Internal agent probe (%s) registered, subscribed to [INVOKE]" % first["identifier"] in logs, (
            logs
        )
        deadline = time.monotonic() + 10
        while len(_read_events(events)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = _read_events(events)
        assert [e["eventType"] for e in seen] == ["INVOKE", "INVOKE"], (seen, logs)
        assert [e["requestId"] for e in seen] == [x["request_id"] for x in results]
        assert len(r.init_reports_ms()) == 1, logs
