"""Run a Lambda runtime under the AWS Runtime Interface Emulator (RIE), on loopback.

Used by scripts/lambda_root.py (smoke tests in a Lambda-like root), the end-to-end tests and the bench
scripts. Standard library only, Python 3.9+, Linux (the RIE is a Linux binary).

    from rie import RieProcess

    with RieProcess([sys.executable, "/abs/path/bootstrap.py"],  # argv runs in cwd=LAMBDA_TASK_ROOT
                    env={"_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": "/abs/example"}) as r:
        status, body, headers = r.invoke(b'{"n": 1}')
        print(r.logs())

Facts about the RIE (aws-sam-cli 1.170.0) that this module relies on:

* ``aws-lambda-rie --runtime-interface-emulator-address A --runtime-api-address B BOOTSTRAP [ARGS...]``
  starts the runtime lazily, on the first invoke, with the RIE's own cwd and environment plus
  ``AWS_LAMBDA_RUNTIME_API=B``. So ``_HANDLER`` and ``LAMBDA_TASK_ROOT`` go into the RIE's env.
* ``AWS_LAMBDA_FUNCTION_TIMEOUT`` (seconds, default 300) sets the deadline the RIE gives out.
* The runtime runs in its own process group but in the RIE's session; we start the RIE with
  ``start_new_session=True`` and on exit kill every process of that session.
* Function error: HTTP 200 with the runtime's error JSON. Init error posted by the runtime:
  HTTP 502 with the posted JSON. Runtime that dies without posting: HTTP 502, empty body.
  ``REPORT`` lines appear only for invokes that completed (success, function error, timeout).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from lambda_env import lambda_environment
from lambda_root import RIE_INSIDE, LambdaRoot, Layer, Loopback

REPO = Path(__file__).resolve().parent.parent
FETCH_RIE = REPO / "scripts" / "fetch_rie.sh"
DEFAULT_RIE = REPO / ".cache" / "rie" / "aws-lambda-rie"
INVOKE_PATH = "/2015-03-31/functions/function/invocations"

# Inherited variables that would change what the runtime under test does, or leak credentials.
# Anything passed explicitly in ``env`` is kept.
_SCRUB_PREFIXES = ("AWS_", "_LAMBDA_", "_AWS_")
_SCRUB_NAMES = ("_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "_X_AMZN_TRACE_ID", "LOG_LEVEL")

# Inside a root's own network namespace nothing else listens: the RIE takes Lambda's own addresses.
ROOT_RIE_PORT, ROOT_API_PORT = 8080, 9001
# The RIE's answer when the function ran out of time: plain text, with HTTP 200.
_TIMEOUT_RE = re.compile(rb"^Task timed out after [0-9.]+ seconds$")
_REPORT_RE = re.compile(r"^REPORT RequestId: (?P<id>\S+)\t.*$", re.MULTILINE)
_INIT_REPORT_RE = re.compile(r"INIT REPORT\(durationMs: (?P<ms>[0-9.]+)\)")


class RieError(RuntimeError):
    """The RIE could not be fetched or started."""


def rie_binary(timeout: float = 300.0) -> Path:
    """Path of the RIE: ``$RIE_BINARY``, else .cache/rie/aws-lambda-rie (fetched if missing)."""
    override = os.environ.get("RIE_BINARY")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RieError(f"RIE_BINARY={override!r} is not an executable file")
        return path
    if DEFAULT_RIE.is_file() and os.access(DEFAULT_RIE, os.X_OK):
        return DEFAULT_RIE
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)
    try:
        out = subprocess.run(
            ["bash", str(FETCH_RIE)],
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RieError(f"{FETCH_RIE} took more than {timeout:.0f} s") from exc
    if out.returncode != 0:
        raise RieError(
            f"{FETCH_RIE} failed (exit {out.returncode}):\n{out.stderr.decode(errors='replace')}"
            "Run scripts/fetch_rie.sh by hand to see why, or set RIE_BINARY to an aws-lambda-rie binary."
        )
    path = Path(out.stdout.decode().strip().splitlines()[-1])
    if not path.is_file():
        raise RieError(f"{FETCH_RIE} printed {path}, which does not exist")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _session_pids(sid: int) -> List[int]:
    """Live (non-zombie) processes whose session id is ``sid`` (Linux /proc; [] elsewhere)."""
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # fields: state ppid pgrp session ...
        if len(fields) > 3 and fields[0] != "Z" and fields[3] == str(sid):
            pids.append(int(name))
    return pids


class RieProcess:
    """The RIE running ``bootstrap_argv`` on two free loopback ports. Use as a context manager.

    ``env`` is laid over Lambda's environment (scripts/lambda_env.py: region, function name,
    placeholder credentials...). In a Lambda-like root (``root``) that is all the runtime sees, and
    the RIE runs in the root's own network namespace (``Loopback``), reached through ``connection``.
    Outside a root it is laid over a copy of ``os.environ`` from which AWS_*, _LAMBDA_*, _HANDLER,
    LAMBDA_TASK_ROOT and similar variables were removed, this machine's paths kept; put ``_HANDLER``
    and ``LAMBDA_TASK_ROOT`` in it. ``cwd`` is where the RIE (and therefore the runtime) runs;
    it defaults to ``LAMBDA_TASK_ROOT``. ``timeout`` bounds the start-up wait (seconds).
    ``function_timeout`` sets ``AWS_LAMBDA_FUNCTION_TIMEOUT`` (seconds).
    The combined RIE + runtime output goes to a file in ``log_dir`` (default: a temp dir,
    removed on exit) and can be read with ``logs()``.
    """

    def __init__(
        self,
        bootstrap_argv: Union[Sequence[str], Layer],
        env: Optional[Dict[str, str]] = None,
        cwd: Optional[str] = None,
        timeout: float = 20.0,
        *,
        function_timeout: Optional[int] = None,
        log_level: str = "info",
        log_dir: Optional[str] = None,
        rie: Optional[str] = None,
        root: Optional[LambdaRoot] = None,
        scratch: Optional[Path] = None,
    ) -> None:
        if isinstance(bootstrap_argv, Layer):
            # The layer at /opt, the function's folder (cwd, or LAMBDA_TASK_ROOT) at /var/task.
            task = Path(cwd or (env or {})["LAMBDA_TASK_ROOT"])
            root = LambdaRoot(task, bootstrap_argv.bundle, bootstrap_argv.variant)
            env = {**(env or {}), "LAMBDA_TASK_ROOT": "/var/task"}
            bootstrap_argv = [root.bootstrap]
        self.bootstrap_argv = [str(a) for a in bootstrap_argv]
        self.timeout = timeout
        self.log_level = log_level
        self.rie = str(rie) if rie else None
        explicit = dict(env or {})
        if function_timeout is not None:
            explicit["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(int(function_timeout))
        scrubbed = {
            k: v for k, v in os.environ.items() if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB_NAMES
        }
        self.env = {**scrubbed, **lambda_environment(explicit, paths=False)}
        # In a Lambda-like root the runtime sees only Lambda's environment and what is passed: none of
        # this machine's (LambdaRoot.command lays it over lambda_environment).
        self.root = root
        self.root_env = explicit
        self.loopback: Optional[Loopback] = None
        self.scratch = scratch
        # In a root, the runtime's cwd is /var/task, set inside it; bwrap itself may start anywhere.
        self.cwd = os.getcwd() if root else str(cwd or self.env.get("LAMBDA_TASK_ROOT") or os.getcwd())
        self._log_dir = log_dir
        self._tmpdir: Optional[tempfile.TemporaryDirectory] = None
        self.log_path: Optional[Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self.rie_port = 0
        self.api_port = 0

    # -- life cycle -------------------------------------------------------------------------

    def __enter__(self) -> RieProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        rie = self.rie or str(rie_binary())
        if self._log_dir is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="rie-")
            log_dir = self._tmpdir.name
        else:
            log_dir = self._log_dir
            os.makedirs(log_dir, exist_ok=True)
        last_error = ""
        for _attempt in range(3):  # a port picked as free may be taken before the RIE binds it
            if self.root is not None:
                self.loopback = Loopback()
                self.rie_port, self.api_port = ROOT_RIE_PORT, ROOT_API_PORT
            else:
                self.rie_port, self.api_port = free_port(), free_port()
                while self.api_port == self.rie_port:
                    self.api_port = free_port()
            fd, name = tempfile.mkstemp(prefix="rie-", suffix=".log", dir=log_dir)
            self.log_path = Path(name)
            argv = [
                RIE_INSIDE if self.root else rie,
                "--log-level",
                self.log_level,
                "--runtime-interface-emulator-address",
                f"127.0.0.1:{self.rie_port}",
                "--runtime-api-address",
                f"127.0.0.1:{self.api_port}",
                *self.bootstrap_argv,
            ]
            output = {"cwd": self.cwd, "env": self.env, "stdin": subprocess.DEVNULL, "stdout": fd}
            try:
                if self.root is not None and self.loopback is not None:
                    scratch = self.scratch or Path(log_dir)
                    rie_path, stderr = Path(rie), subprocess.STDOUT
                    self.proc = self.root.start(
                        self.loopback, argv, self.root_env, scratch, rie=rie_path, stderr=stderr, **output
                    )
                else:
                    self.proc = subprocess.Popen(
                        argv, stderr=subprocess.STDOUT, start_new_session=True, **output
                    )  # fmt: skip
            finally:
                os.close(fd)
            if self._wait_ready():
                return
            last_error = self.logs()
            retry = self.proc.poll() is not None and "address already in use" in last_error
            self.close(_keep_tmp=True)
            if not retry:
                break
        self._cleanup_tmp()
        raise RieError(
            f"the RIE did not listen on 127.0.0.1:{self.rie_port} and :{self.api_port} "
            f"within {self.timeout:.0f} s. Its output:\n{last_error}"
        )

    def _wait_ready(self) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._port_open(self.rie_port) and self._port_open(self.api_port):
                return True
            time.sleep(0.02)
        return False

    def runtime_pids(self) -> List[int]:
        """PIDs of the live processes the RIE started (the runtime and its children)."""
        if self.proc is None:
            return []
        return [p for p in _session_pids(self.proc.pid) if p != self.proc.pid]

    def runtime_pids_inside(self) -> List[int]:
        """The same processes as ``runtime_pids``, numbered as they see themselves (in a root: its PID
        namespace)."""
        inside = []
        for pid in self.runtime_pids():
            with contextlib.suppress(OSError, ValueError, IndexError, StopIteration):
                with open(f"/proc/{pid}/status") as f:
                    line = next(ln for ln in f if ln.startswith("NSpid:"))
                inside.append(int(line.split()[-1]))
        return inside

    def close(self, _keep_tmp: bool = False) -> None:
        """Kill the runtime(s), then the RIE, with bounded waits. Safe to call twice."""
        proc = self.proc
        if proc is not None:
            sid = proc.pid
            # Children first (the RIE reaps them), then the RIE and its group.
            for pid in self.runtime_pids():
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.killpg(sid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            # Anything the RIE started after the first sweep, or that it failed to reap.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                left = _session_pids(sid)
                if not left:
                    break
                for pid in left:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)
            self._final_logs = self.logs()
            self.proc = None
        if self.loopback is not None:
            self.loopback.close()
            self.loopback = None
        if not _keep_tmp:
            self._cleanup_tmp()

    def _cleanup_tmp(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    # -- using it ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The invoke URL; in a root, reachable only through ``connection``."""
        return f"http://127.0.0.1:{self.rie_port}{INVOKE_PATH}"

    def _port_open(self, port: int) -> bool:
        if self.loopback is None:
            return _port_open(port)
        try:
            self.loopback.connect(port, 0.2).close()
            return True
        except OSError:
            return False

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        """An HTTP connection to the RIE (in a root: made inside its network namespace)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.rie_port, timeout=timeout)
        if self.loopback is not None:
            conn.sock = self.loopback.connect(self.rie_port, timeout)
        return conn

    def invoke(
        self,
        payload: bytes = b"{}",
        timeout: float = 60.0,
        headers: Optional[Dict[str, str]] = None,
    ) -> Tuple[int, bytes, http.client.HTTPMessage]:
        """POST ``payload`` to the invoke endpoint; returns (status, body, headers).

        ``headers`` of the result is case-insensitive (``headers.get("content-type")``).
        """
        if isinstance(payload, str):
            payload = payload.encode()
        conn = self.connection(timeout)
        try:
            conn.request("POST", INVOKE_PATH, body=payload, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, body, resp.msg
        finally:
            conn.close()

    def invoke_json(self, event: object, timeout: float = 60.0) -> Tuple[int, object]:
        """Invoke with ``json.dumps(event)``; returns (status, parsed body or raw bytes if not JSON)."""
        status, body, _ = self.invoke(json.dumps(event).encode(), timeout=timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def logs(self) -> str:
        """RIE and runtime output so far."""
        if self.log_path is None or not self.log_path.exists():
            return getattr(self, "_final_logs", "")
        return self.log_path.read_bytes().decode(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 5.0, count: int = 1) -> List[re.Match]:
        """Wait until ``pattern`` (a regex, multiline) matches ``count`` times; return the matches."""
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            found = list(rx.finditer(self.logs()))
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{pattern!r} seen {len(found)} of {count} times after {timeout} s. Logs:\n{self.logs()}"
                )
            time.sleep(0.02)

    def report_line(self, request_id: Optional[str] = None, timeout: float = 2.0) -> Optional[str]:
        """The RIE's ``REPORT RequestId: ...`` line (for ``request_id``, else the last one), or None."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [m for m in _REPORT_RE.finditer(self.logs()) if request_id in (None, m["id"])]
            if lines:
                return lines[-1].group(0)
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def init_reports_ms(self) -> List[float]:
        """durationMs of every ``INIT REPORT`` so far (one per runtime start)."""
        return [float(m["ms"]) for m in _INIT_REPORT_RE.finditer(self.logs())]


def is_error_response(status: int, body: bytes) -> bool:
    """True for anything but HTTP 200 with a body that is neither a Lambda error object nor the RIE's
    timeout message."""
    if status != 200 or _TIMEOUT_RE.match(body.strip()):
        return True
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "errorType" in parsed and "errorMessage" in parsed
