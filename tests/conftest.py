"""Fixtures for the integration tests: the Runtime API emulator (scripts/runtime_emulator.py) and a launcher
that runs a runtime (ours, ``bootstrap.py``, or AWS's ``awslambdaric``) against it.

Fixtures other test files can reuse:

- ``fake_api`` (and ``api``): a started :class:`RuntimeEmulator`, stopped at teardown.
- ``runtime``: a :class:`RuntimeLauncher`; ``runtime("app.echo", kind)`` starts a
  runtime subprocess and returns a :class:`RuntimeProcess`. Every process it started
  is killed (its whole process group) at teardown.
- ``both``: parametrized over ``"ours"`` and ``"ric"``, for behaviour where ours
  matches awslambdaric 4.2.2.
- ``ours``: just ``"ours"``, for behaviour where ours goes further.
- ``telemetry_pipe``: a pipe to pass as ``_LAMBDA_TELEMETRY_LOG_FD``, with a frame parser.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import frozen
import pytest
import rie
from launch_helpers import Launcher
from runtime_emulator import RuntimeEmulator

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
BOOTSTRAP = REPO_ROOT / "bootstrap.py"
HANDLERS_DIR = TESTS_DIR / "handlers"

# awslambdaric 4.2.2 needs Python 3.10+: where it cannot be installed, only ours runs (no skipped cases).
RUNTIME_KINDS = ("ours", "ric") if importlib.util.find_spec("awslambdaric") is not None else ("ours",)

# Environment a runtime gets unless a test overrides it. The parent's environment is
# not inherited (so a developer's AWS_LAMBDA_LOG_LEVEL etc. cannot leak in).
BASE_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "test-fn",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/test-fn",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/29/[$LATEST]0123456789abcdef",
    "AWS_REGION": "us-east-1",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONDONTWRITEBYTECODE": "1",
}


class RuntimeProcess:
    """A runtime subprocess with its stdout/stderr captured to files."""

    def __init__(self, kind: str, proc: subprocess.Popen, out: Path, err: Path, argv: List[str]):
        self.kind = kind
        self.proc = proc
        self.stdout_path = out
        self.stderr_path = err
        self.argv = argv

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stdout_bytes(self) -> bytes:
        return self.stdout_path.read_bytes()

    def stderr_bytes(self) -> bytes:
        return self.stderr_path.read_bytes()

    @property
    def stdout(self) -> str:
        return self.stdout_bytes().decode("utf-8", "replace")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes().decode("utf-8", "replace")

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def run_until_exit(self, timeout: float = 10.0) -> int:
        """Wait for the process to exit and return its exit code; fail the test on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(
                "%s runtime did not exit within %.1fs\n--- stdout ---\n%s\n--- stderr ---\n%s"
                % (self.kind, timeout, self.stdout[-3000:], self.stderr[-3000:])
            )
            raise  # unreachable

    def wait_output(self, needle: str, timeout: float = 10.0, stream: str = "output") -> str:
        """Wait until ``needle`` appears in stdout/stderr/output; return that text."""
        deadline = time.monotonic() + timeout
        while True:
            text = getattr(self, stream)
            if needle in text:
                return text
            if time.monotonic() > deadline or not self.alive():
                text = getattr(self, stream)
                if needle in text:
                    return text
                pytest.fail(
                    "%r not seen in %s of the %s runtime:\n%s" % (needle, stream, self.kind, text[-3000:])
                )
            time.sleep(0.02)

    def send_signal(self, sig: int) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """Kill the process group this launcher created (only ours)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def diag(self) -> str:
        return "--- %s stdout ---\n%s\n--- %s stderr ---\n%s" % (
            self.kind,
            self.stdout[-4000:],
            self.kind,
            self.stderr[-4000:],
        )


def runtime_environment(
    settings: Dict[str, str], overrides: Optional[Dict[str, Optional[str]]]
) -> Dict[str, str]:
    """A runtime's whole environment: a fixed base (not the test's), then `settings`, then `overrides`
    (a None value removes the variable)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp")}
    env.update(BASE_ENV)
    env.update(settings)
    for name, value in (overrides or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def spawn_runtime(
    kind: str, argv: List[str], env, cwd: Path, out: Path, err: Path, pass_fds=()
) -> RuntimeProcess:
    """Start a runtime in its own session (so that kill() reaches only what the test started)."""
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen(
            argv,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=fo,
            stderr=fe,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    return RuntimeProcess(kind, proc, out, err, argv)


class RuntimeLauncher:
    """Starts runtimes against a fake Runtime API; kills them all at teardown."""

    def __init__(self, api: Optional[RuntimeEmulator], tmp_path: Path):
        self.api = api
        self.tmp_path = tmp_path
        self.procs: List[RuntimeProcess] = []

    def __call__(
        self,
        handler: Optional[str],
        kind: str = "ours",
        env: Optional[Dict[str, Optional[str]]] = None,
        task_root: Path = HANDLERS_DIR,
        pass_fds: Sequence[int] = (),
        runtime_api: Optional[str] = "",
    ) -> RuntimeProcess:
        """Start a runtime.

        ``env`` entries override BASE_ENV; a value of None removes the variable.
        ``runtime_api``: "" uses the fake's address, None leaves AWS_LAMBDA_RUNTIME_API unset.
        """
        assert kind in RUNTIME_KINDS, kind
        settings = {"LAMBDA_TASK_ROOT": str(task_root)}
        if runtime_api == "":
            assert self.api is not None
            runtime_api = self.api.address
        if runtime_api is not None:
            settings["AWS_LAMBDA_RUNTIME_API"] = runtime_api
        if handler is not None:
            settings["_HANDLER"] = handler
        if kind == "ours":
            if not BOOTSTRAP.exists():
                pytest.skip("bootstrap.py does not exist yet")
            argv = [sys.executable, str(BOOTSTRAP)]
            cwd = self.tmp_path / "cwd"
            cwd.mkdir(exist_ok=True)
        else:
            if importlib.util.find_spec("awslambdaric") is None:
                pytest.skip("awslambdaric is not installed for this Python (it needs 3.10+)")
            argv = [sys.executable, "-m", "awslambdaric"]
            if handler is not None:
                argv.append(handler)
            cwd = task_root
        n = len(self.procs)
        out = self.tmp_path / ("%s-%d.stdout" % (kind, n))
        err = self.tmp_path / ("%s-%d.stderr" % (kind, n))
        rp = spawn_runtime(kind, argv, runtime_environment(settings, env), cwd, out, err, pass_fds)
        self.procs.append(rp)
        return rp

    def close(self) -> None:
        for p in self.procs:
            p.kill()


@pytest.fixture
def fake_api():
    api = RuntimeEmulator()
    api.start()
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def runtime(fake_api, tmp_path):
    launcher = RuntimeLauncher(fake_api, tmp_path)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(params=RUNTIME_KINDS)
def both(request) -> str:
    """Runtime kind, over ours and awslambdaric: behaviour where ours matches the reference."""
    return request.param


@pytest.fixture
def ric() -> str:
    """Runtime kind "ric" only: records where awslambdaric differs from ours (the reference's side)."""
    return "ric"


def pytest_collection_modifyitems(config, items):
    """Without awslambdaric (Python 3.9) its comparisons are deselected, not skipped: they cannot run."""
    if "ric" in RUNTIME_KINDS:
        return
    dropped = [item for item in items if "ric" in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]


@pytest.fixture
def ours() -> str:
    """Runtime kind "ours" only: behaviour where ours goes further than awslambdaric."""
    return "ours"


def proc_status_kib(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status in KiB (VmSize: reserved; VmHWM: peak resident)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for %d" % (field, pid))


# --- telemetry fd ------------------------------------------------------------

FRAME_HEADER = struct.Struct(">IIQ")


class TelemetryPipe:
    """The write end (``fd``) goes to the runtime via pass_fds; a thread drains the read end."""

    def __init__(self) -> None:
        self.read_fd, self.fd = os.pipe()
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.read_fd], [], [], 0.05)
                if not ready:
                    continue
                chunk = os.read(self.read_fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._buf += chunk

    def close_write_end(self) -> None:
        """Call after the runtime started, so EOF arrives when the runtime exits."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def data(self) -> bytes:
        with self._lock:
            return bytes(self._buf)

    def frames(self) -> List[Tuple[int, int, bytes]]:
        """Parse (frame type, timestamp in µs, message) frames; trailing partial frame ignored."""
        data = self.data()
        out = []
        i = 0
        while i + FRAME_HEADER.size <= len(data):
            ftype, length, ts = FRAME_HEADER.unpack_from(data, i)
            start = i + FRAME_HEADER.size
            if start + length > len(data):
                break
            out.append((ftype, ts, data[start : start + length]))
            i = start + length
        return out

    def wait_frames(self, predicate, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while True:
            frames = self.frames()
            if predicate(frames):
                return frames
            if time.monotonic() > deadline:
                pytest.fail("telemetry frames not as expected within %.1fs: %r" % (timeout, frames))
            time.sleep(0.02)

    def close(self) -> None:
        self.close_write_end()
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(OSError):
            os.close(self.read_fd)


@pytest.fixture
def telemetry_pipe():
    tp = TelemetryPipe()
    try:
        yield tp
    finally:
        tp.close()


# --- the runtime under the Runtime Interface Emulator ------------------------------------------------------


def rie_params(ours_only, in_roots=False):
    """pytest params over frozen.runtime_commands(); the frozen ones are marked build and slow."""
    slow_build = [pytest.mark.build, pytest.mark.slow]
    return [
        pytest.param(cmd, id=cmd.id, marks=slow_build if cmd.frozen else [])
        for cmd in frozen.runtime_commands(in_roots)
        if not (ours_only and cmd.id == "awslambdaric")
    ]


def rie_argv_of(cmd):
    return frozen.resolve_argv(cmd)


@pytest.fixture
def rie_launcher(tmp_path):
    """``start(argv, handler, task_root, env=None, **kw)`` -> a running RieProcess; all closed after the test."""
    started = []

    def start(argv, handler, task_root, env=None, **kw):
        full_env = {"_HANDLER": handler, "LAMBDA_TASK_ROOT": str(task_root), **(env or {})}
        proc = rie.RieProcess(argv, env=full_env, cwd=str(task_root), log_dir=str(tmp_path), **kw)
        started.append(proc)
        proc.start()
        return proc

    yield start
    for proc in started:
        proc.close()


@pytest.fixture(params=rie_params(ours_only=True))
def rie_ours_argv(request):
    """The bootstrap argv of ours (script, and frozen) under the RIE: features awslambdaric lacks."""
    return rie_argv_of(request.param)


# --- the fault-injection tests: the same emulator under their name, and their launcher ---------------------


@pytest.fixture
def api(fake_api):
    return fake_api


@pytest.fixture
def launch(tmp_path):
    launcher = Launcher(tmp_path)
    yield launcher
    launcher.close()


@pytest.fixture(params=["script", pytest.param("binary", marks=[pytest.mark.build, pytest.mark.slow])])
def flavor(request):
    """bootstrap.py as a script, or the frozen binary."""
    return request.param
