"""The local endpoint behind ./dev.sh: a function served on 127.0.0.1 as Lambda serves it, reloaded on save.

One HTTP server answers three kinds of request (routes as AWS spells them; any function name is taken):

- ``POST /2015-03-31/functions/NAME/invocations``: the Invoke API (``X-Amz-Invocation-Type``
  RequestResponse, Event or DryRun; ``X-Amz-Log-Type: Tail``; ``X-Amz-Client-Context``), as boto3's
  ``invoke`` and ``aws lambda invoke`` send it.
- ``POST /2021-11-15/functions/NAME/response-streaming-invocations``: InvokeWithResponseStream, answered
  in event-stream framing (scripts/eventstream.py) as each chunk arrives: a ``PayloadChunk`` per chunk
  (the bytes as the function sent them, an HTTP prelude included), then ``InvokeComplete``, whose
  ``ErrorCode`` is the error type (the trailer's, or the posted error's) and ``ErrorDetails`` the error
  document. AWS documents neither value beyond "an error code" and "the details".
- anything else: a function URL request (scripts/function_url.py), streamed chunk by chunk when the
  function streams.

Behind it, scripts/runtime_emulator.py holds the Runtime API and its rules (timeouts, restarts, limits,
concurrency); this module only starts the runtime, watches the function's files and speaks HTTP. The
runtime runs as ``python bootstrap.py`` in a venv holding the function's requirements (made once per set
of requirements under .cache/dev/), or with ``--frozen`` as the zip ./build.sh makes, in the Lambda-like
root of scripts/lambda_root.py.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import hashlib
import http.server
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import eventstream
import function_url
from function_handler import HandlerError, find_handler
from lambda_env import PLACEHOLDER_CREDENTIALS, REGION_NAMES, region_variables
from runtime_emulator import RuntimeEmulator, SubprocessRuntime

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "dev"
PROG = "dev.sh"
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
STREAM_PATH = re.compile(r"^/2021-11-15/functions/([^/]+)/response-streaming-invocations$")
LOG_TAIL_BYTES = 4096  # what X-Amz-Log-Result carries: the last 4 KB of the invocation's log
MAX_REQUEST_BYTES = 6 * 1024 * 1024  # a synchronous invoke's payload limit
# Host variables that would tell the runtime it is somewhere else; the developer's own AWS credentials,
# profile and region pass through, as `sam local` lets them, so that the function can call AWS.
_HOST_ONLY_PREFIXES = ("AWS_LAMBDA_", "_LAMBDA_", "_AWS_", "LAMBDA_")
_HOST_ONLY_NAMES = ("_HANDLER", "_X_AMZN_TRACE_ID", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
DEVELOPER_AWS = (*PLACEHOLDER_CREDENTIALS, "AWS_PROFILE", *REGION_NAMES)


class DevError(RuntimeError):
    """Something the developer must fix before the endpoint can serve; the message says what."""


def say(message: str) -> None:
    print("%s: %s" % (PROG, message), file=sys.stderr, flush=True)


@dataclasses.dataclass
class Settings:
    function_dir: Path
    handler: str = "app.handler"
    host: str = "127.0.0.1"
    port: int = 9000
    timeout: float = 3.0
    memory: int = 128
    env: Dict[str, str] = dataclasses.field(default_factory=dict)
    concurrency: int = 1
    frozen: bool = False
    watch: bool = True
    python: str = sys.executable
    function_name: str = "function"


# --- the environment ------------------------------------------------------------------------------------


def function_environment(settings: Settings, task_root: str) -> Dict[str, str]:
    """What a function needs beyond Lambda's variables (the emulator's runtime_env(), from
    scripts/lambda_env.py), with the developer's --env and --env-file on top."""
    return {"_HANDLER": settings.handler, "LAMBDA_TASK_ROOT": task_root, "TZ": ":UTC", **settings.env}


def developer_aws(env: Dict[str, str]) -> Dict[str, str]:
    """``env`` with the developer's own AWS credentials, profile and region in place of Lambda's
    placeholders, so that the function calls AWS as it does under `sam local`."""
    own = {key: os.environ[key] for key in DEVELOPER_AWS if key in os.environ}
    if not own:
        return env
    env = {key: value for key, value in env.items() if key not in PLACEHOLDER_CREDENTIALS}
    env.update(own)
    if set(own) & set(REGION_NAMES):
        env.update(region_variables(own))
    return env


def host_environment() -> Dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_HOST_ONLY_PREFIXES) and key not in _HOST_ONLY_NAMES
    }


def read_env_file(path: Path) -> Dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; optional quotes around the value."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DevError("cannot read the env file %s: %s" % (path, exc.strerror)) from exc
    env = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise DevError("%s:%d: want KEY=VALUE, not %r" % (path, number, line))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key] = value
    return env


# --- the function's venv --------------------------------------------------------------------------------


def runtime_urllib3() -> str:
    """The runtime's one dependency, as requirements.txt pins it."""
    for line in (REPO / "requirements.txt").read_text().splitlines():
        if re.match(r"urllib3\s*[=<>~]", line):
            return line.split("#")[0].strip()
    raise DevError("requirements.txt pins no urllib3")


class FunctionVenv:
    """A venv with the runtime's and the function's requirements, one per distinct set (by content), so
    that a changed requirements.txt gets a fresh venv and returning to an old one costs nothing."""

    def __init__(self, python: str, function_dir: Path):
        self.python = python
        self.requirements = function_dir / "requirements.txt"
        self._pip: Optional[subprocess.Popen] = None
        self._stopped = False

    def key(self) -> str:
        digest = hashlib.sha256()
        version = subprocess.run(
            [self.python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
        ).stdout
        digest.update(version.encode())
        digest.update(runtime_urllib3().encode())
        digest.update(self.requirements.read_bytes() if self.requirements.is_file() else b"-")
        return digest.hexdigest()[:16]

    def ensure(self) -> str:
        """The venv's python, made (with pip's output shown) if this set of requirements has none yet."""
        folder = CACHE / ("venv-" + self.key())
        python = folder / "bin" / "python"
        if python.exists():
            return str(python)
        CACHE.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=CACHE))
        try:
            say("making the function's venv (%s) ..." % folder.relative_to(REPO))
            self._run([self.python, "-m", "venv", str(staging)])
            pip = [str(staging / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
            pip.append("-q")
            if self.requirements.is_file():
                self._run([*pip, "-r", str(self.requirements)])
            # The runtime needs urllib3 (1.26 or 2.x): the function's own when it brings one, as frozen.
            probe = subprocess.run(
                [str(staging / "bin" / "python"), "-c", "import urllib3"],
                stderr=subprocess.DEVNULL,
                check=False,
            )
            if probe.returncode != 0:
                self._run([*pip, runtime_urllib3()])
            # Moving a venv breaks only its scripts' shebangs; its bin/python, all we run, still works.
            try:
                staging.rename(folder)
            except OSError:  # another dev.sh made the same one meanwhile
                if not python.exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(python)

    def _run(self, argv: List[str]) -> None:
        if self._stopped:
            raise DevError("stopped")
        self._pip = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            status = self._pip.wait()
        except BaseException:  # Ctrl-C: pip is in a session of its own, the terminal's signal missed it
            self.stop()
            raise
        finally:
            self._pip = None
        if status != 0:
            raise DevError(
                "%s failed (exit %d): fix %s and save it to try again"
                % (" ".join(Path(a).name for a in argv[:4]), status, self.requirements)
            )

    def stop(self) -> None:
        self._stopped = True
        pip = self._pip
        if pip is not None and pip.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pip.pid, signal.SIGKILL)


# --- the runtime's output -------------------------------------------------------------------------------


class LogPump:
    """The runtimes' output, shown as it comes and kept (a bounded history) for X-Amz-Log-Result.

    A function prints before it answers, so its lines are in the pipe when its answer arrives; ``mark``
    and ``since`` first read what the pipes hold, so that an invocation's log tail is complete."""

    KEEP = 1 << 20

    def __init__(self, out=None):
        self.out = out or sys.stdout.buffer
        self._lock = threading.Lock()
        self._history = bytearray()
        self._dropped = 0  # bytes cut off the front of the history
        self._fds: List[int] = []

    def follow(self, stream) -> None:
        """Read a runtime's output (a pipe) until it closes."""
        fd = stream.fileno()
        os.set_blocking(fd, False)
        with self._lock:
            self._fds.append(fd)
        try:
            while True:
                select.select([fd], [], [], 1.0)
                with self._lock:
                    if not self._read(fd):
                        return
        finally:
            with self._lock:
                self._fds.remove(fd)
            stream.close()

    def _read(self, fd: int) -> bool:
        """Take what the pipe holds (lock held); False at its end."""
        while True:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return True
            if not data:
                return False
            # The runtime joins a record's lines with CR (as on Lambda, one log event); show them as lines.
            self.out.write(data.replace(b"\r", b"\n"))
            self.out.flush()
            self._history += data
            if len(self._history) > self.KEEP:
                cut = len(self._history) - self.KEEP // 2
                del self._history[:cut]
                self._dropped += cut

    def _catch_up(self) -> None:
        for fd in list(self._fds):
            self._read(fd)

    def mark(self) -> int:
        with self._lock:
            self._catch_up()
            return self._dropped + len(self._history)

    def since(self, mark: int) -> bytes:
        with self._lock:
            self._catch_up()
            return bytes(self._history[max(0, mark - self._dropped) :])


class Runtime:
    """How a runtime is started: from source in a venv, or frozen in the Lambda-like root. Each save
    prepares a new launcher (a venv or a zip of its own), so the runtime of the old code keeps serving
    while the new one starts."""

    def __init__(self, settings: Settings, logs: LogPump):
        self.settings = settings
        self.logs = logs
        self.venv = FunctionVenv(settings.python, settings.function_dir)
        self._scratch = Path(tempfile.mkdtemp(prefix="dev-endpoint-"))
        self._tasks: List[Path] = []  # unpacked zips (--frozen), the newest last

    def prepare(self) -> Callable[[Dict[str, str]], SubprocessRuntime]:
        """A launcher for the emulator, made for the function as it is now: the venv (made if its
        requirements are new), or a freshly built and unpacked zip."""
        if self.settings.frozen:
            task = self._build_zip()
            return lambda runtime_env: self._launch_frozen(task, runtime_env)
        python = self.venv.ensure()
        return lambda runtime_env: self._launch_source(python, runtime_env)

    def forget_old_zips(self) -> None:
        """Remove the unpacked zips no runtime runs from any more."""
        for task in self._tasks[:-1]:
            shutil.rmtree(task, ignore_errors=True)
        del self._tasks[:-1]

    def _build_zip(self) -> Path:
        import lambda_root

        dist = self._scratch / "dist"
        command = [str(REPO / "build.sh"), "--handler", self.settings.handler, "--dist", str(dist)]
        for key, value in self.settings.env.items():
            command += ["--env", "%s=%s" % (key, value)]
        say("building the zip: ./build.sh %s" % self.settings.function_dir)
        result = subprocess.run([*command, str(self.settings.function_dir)], stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise DevError("./build.sh failed (exit %d): fix the function and save" % result.returncode)
        task = self._scratch / ("task-%d" % time.monotonic_ns())
        task.mkdir()
        lambda_root.unpack_zip(dist / "bootstrap.zip", task)
        self._tasks.append(task)
        return task

    def _launch_frozen(self, task: Path, runtime_env: Dict[str, str]) -> SubprocessRuntime:
        import lambda_root

        root = lambda_root.LambdaRoot(task)
        env = {**runtime_env, **function_environment(self.settings, "/var/task")}
        return self._start(root.command([root.bootstrap], env, self._scratch), None, None)

    def _launch_source(self, python: str, runtime_env: Dict[str, str]) -> SubprocessRuntime:
        env = developer_aws({**host_environment(), **runtime_env})
        env.update(function_environment(self.settings, str(self.settings.function_dir)))
        return self._start([python, str(REPO / "bootstrap.py")], env, str(self.settings.function_dir))

    def _start(self, argv: List[str], env: Optional[Dict[str, str]], cwd: Optional[str]) -> SubprocessRuntime:
        """The runtime in its own session (the emulator kills its group), its output shown and kept."""
        popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self.logs.follow, args=(popen.stdout,), daemon=True).start()
        return SubprocessRuntime(popen)

    def stop(self) -> None:
        self.venv.stop()
        shutil.rmtree(self._scratch, ignore_errors=True)


# --- serving --------------------------------------------------------------------------------------------


class Invocations:
    """The current emulator, the line printed for each invocation, and the gate a reload closes: the
    switch to a new runtime waits for the invocations in flight, holding new ones back meanwhile, so that
    none runs on a runtime about to be stopped."""

    def __init__(self, logs: LogPump, settings: Settings):
        self.emulator: Optional[RuntimeEmulator] = None  # the current execution environment
        self.logs = logs
        self.memory = settings.memory
        # Every wait is bounded: the emulator ends an invocation at the function timeout; an init may
        # take Lambda's 10 s more, and a slow machine more still.
        self.wait_limit = settings.timeout + 60.0
        self._gate = threading.Condition()
        self._in_flight = 0
        self._reloading = False

    def hold(self) -> None:
        with self._gate:
            if not self._gate.wait_for(lambda: not self._reloading, timeout=self.wait_limit):
                raise TimeoutError("the runtime is still being started again")
            self._in_flight += 1

    def release(self) -> None:
        with self._gate:
            self._in_flight -= 1
            self._gate.notify_all()

    def swap(self, emulator: RuntimeEmulator) -> Optional[RuntimeEmulator]:
        """Send the next invocations to ``emulator``, once those in flight (each bounded by its timeout)
        are done; returns the one they went to before."""
        with self._gate:
            self._reloading = True
            try:
                self._gate.wait_for(lambda: self._in_flight == 0, timeout=self.wait_limit)
                old, self.emulator = self.emulator, emulator
            finally:
                self._reloading = False
                self._gate.notify_all()
        return old

    def start(self, payload: bytes, **options):
        assert self.emulator is not None
        return self.emulator.invoke(payload, **options), self.logs.mark()

    def finish(self, invocation, mark: int, what: str, status: str) -> str:
        """Print the invocation's line (after its log); return its log tail as Lambda gives it (base64,
        the last 4 KB of START, the function's output, END and REPORT)."""
        invocation.wait(timeout=self.wait_limit)
        rid, init, outcome = invocation.request_id, invocation.init_duration_ms, invocation.outcome
        duration = invocation.duration_ms or 0.0
        report = "REPORT RequestId: %s\tDuration: %.2f ms\tMemory Size: %d MB" % (rid, duration, self.memory)
        if init is not None:
            report += "\tInit Duration: %.2f ms" % init
        log = b"START RequestId: %s Version: $LATEST\n" % rid.encode()
        log += self.logs.since(mark) + b"END RequestId: %s\n%s\n" % (rid.encode(), report.encode())
        result = status if outcome == "response" else "%s %s" % (outcome, invocation.error_type)
        line = "%s %s -> %s  %.1f ms" % (rid, what, result, duration)
        if init is not None:
            line += "  (init %.1f ms)" % init
        if outcome == "timeout":
            line += "; the runtime is started again"
        say(line)
        return base64.b64encode(log[-LOG_TAIL_BYTES:]).decode()


class Endpoint(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: Tuple[str, int], invocations: Invocations):
        self.invocations = invocations
        super().__init__(address, Handler)


class ClientGone(Exception):
    """The caller closed its connection."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Endpoint

    def log_message(self, format: str, *args: object) -> None:  # one line per invocation is ours to print
        pass

    def setup(self) -> None:
        super().setup()
        # Each chunk goes out as it is written; Nagle would hold small ones back for the peer's ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.route()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- plumbing

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
                if len(body) > MAX_REQUEST_BYTES:
                    raise ValueError("request body over %d bytes" % MAX_REQUEST_BYTES)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BYTES:
            raise ValueError("request body of %d bytes is over %d" % (length, MAX_REQUEST_BYTES))
        return self.rfile.read(length)

    def send_whole(self, status: int, headers: List[Tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def start_chunked(self, status: int, headers: List[Tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def write_chunk(self, data: bytes) -> None:
        if data and self.command != "HEAD":
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            except OSError as exc:
                raise ClientGone() from exc

    def end_chunked(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")

    def abort(self) -> None:
        """End the response without its last chunk: the caller sees an incomplete body, as from Lambda."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def bad_gateway(self) -> None:
        """What a function URL answers when the function failed, timed out or answered nonsense."""
        self.send_whole(502, [("Content-Type", "application/json")], b'{"Message":"Internal Server Error"}')

    def aws_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self.send_whole(
            status, [("Content-Type", "application/json"), ("X-Amzn-ErrorType", error_type)], body
        )

    def route(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        try:
            body = self.read_body()
        except ValueError as exc:
            self.close_connection = True
            self.aws_error(413, "RequestTooLargeException", str(exc))
            return
        invocations = self.server.invocations
        try:
            invocations.hold()
        except TimeoutError as exc:
            self.aws_error(503, "ServiceException", str(exc))
            return
        try:
            if self.command == "POST" and INVOKE_PATH.match(path):
                self.invoke(body)
            elif self.command == "POST" and STREAM_PATH.match(path):
                self.invoke_with_response_stream(body)
            else:
                self.function_url(body)
        except ClientGone:
            self.close_connection = True
        finally:
            invocations.release()

    def begin_invoke(self, body: bytes, kinds: Tuple[str, ...]):
        """Check an Invoke API request and start its invocation: (kind, invocation, log mark), or None
        once the request has been answered (a DryRun, or a request that is not valid)."""
        kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if kind == "DryRun":
            self.send_whole(204, [("X-Amzn-RequestId", str(uuid.uuid4()))], b"")
            return None
        if kind not in kinds:
            self.aws_error(
                400, "InvalidParameterValueException", "Invocation type %r is not one of %s" % (kind, kinds)
            )
            return None
        options = {}
        context = self.headers.get("X-Amz-Client-Context")
        if context:
            try:
                options["client_context"] = base64.b64decode(context, validate=True).decode("utf-8")
                json.loads(options["client_context"])
            except ValueError:
                self.aws_error(400, "InvalidRequestContentException", "Client context must be base64 JSON")
                return None
        return (kind, *self.server.invocations.start(body, **options))

    # -- the Invoke API

    def invoke(self, body: bytes) -> None:
        started = self.begin_invoke(body, ("RequestResponse", "Event"))
        if started is None:
            return
        kind, invocation, mark = started
        invocations = self.server.invocations
        if kind == "Event":
            self.send_whole(202, [("X-Amzn-RequestId", invocation.request_id)], b"")
            invocations.hold()  # for the thread below, which outlives this request

            def finish_later():
                try:
                    invocations.finish(invocation, mark, "invoke (Event)", "202")
                finally:
                    invocations.release()

            threading.Thread(target=finish_later, daemon=True).start()
            return
        tail = invocations.finish(invocation, mark, "invoke", "200")
        headers = [
            ("Content-Type", invocation.content_type or "application/json"),
            ("X-Amzn-RequestId", invocation.request_id),
            ("X-Amz-Executed-Version", "$LATEST"),
        ]
        if invocation.outcome != "response":
            headers.append(("X-Amz-Function-Error", "Unhandled"))
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            headers.append(("X-Amz-Log-Result", tail))
        self.send_whole(200, headers, invocation.body)

    def invoke_with_response_stream(self, body: bytes) -> None:
        started = self.begin_invoke(body, ("RequestResponse",))
        if started is None:
            return
        _, invocation, mark = started
        invocations = self.server.invocations
        self.start_chunked(
            200,
            [
                ("Content-Type", eventstream.CONTENT_TYPE),
                ("X-Amzn-RequestId", invocation.request_id),
                ("X-Amz-Executed-Version", "$LATEST"),
            ],
        )
        gone = False
        try:
            for piece in invocation.chunks(timeout=invocations.wait_limit):
                if invocation.streamed and not gone:
                    try:
                        for message in eventstream.payload_chunks(piece):
                            self.write_chunk(message)
                    except ClientGone:
                        gone = True  # the invocation still runs to its end, as on Lambda
        finally:
            tail = invocations.finish(invocation, mark, "invoke-with-response-stream", "200 streamed")
        if gone:
            raise ClientGone()
        if invocation.outcome == "response":
            if not invocation.streamed:
                for message in eventstream.payload_chunks(invocation.body):
                    self.write_chunk(message)
            complete = eventstream.invoke_complete(log_result=self._tail_if_asked(tail))
        else:
            details = invocation.error_body if invocation.streamed else invocation.body
            complete = eventstream.invoke_complete(
                invocation.error_type,
                (details or b"").decode("utf-8", "replace"),
                self._tail_if_asked(tail),
            )
        self.write_chunk(complete)
        self.end_chunked()

    def _tail_if_asked(self, tail: str) -> Optional[str]:
        return tail if self.headers.get("X-Amz-Log-Type") == "Tail" else None

    # -- function URLs

    def function_url(self, body: bytes) -> None:
        invocations = self.server.invocations
        request_id = str(uuid.uuid4())
        event = function_url.request_event(
            self.command,
            self.path,
            list(self.headers.items()),
            body,
            request_id=request_id,
            source_ip=self.client_address[0],
        )
        invocation, mark = invocations.start(json.dumps(event).encode())
        what = "%s %s" % (self.command, self.path)
        pieces = invocation.chunks(timeout=invocations.wait_limit)
        first = next(pieces, b"")
        if not invocation.streamed:
            invocation.wait(timeout=invocations.wait_limit)
            status = 502
            if invocation.outcome == "response":
                try:
                    response = function_url.buffered_response(invocation.body)
                    status = response.status
                except function_url.BadFunctionResponse as exc:
                    say(
                        "%s: the function's answer is not an HTTP response: %s" % (invocation.request_id, exc)
                    )
            invocations.finish(invocation, mark, what, str(status))
            if status == 502:
                self.bad_gateway()
            else:
                self.send_whole(response.status, response.headers, response.body)
            return
        self.stream_function_url(invocation, mark, what, first, pieces)

    def stream_function_url(self, invocation, mark: int, what: str, first: bytes, pieces) -> None:
        invocations = self.server.invocations
        headers = [("Content-Type", invocation.content_type or "application/octet-stream")]
        status, head, rest = 200, first, pieces
        bad_prelude = None
        try:
            if invocation.content_type == function_url.HTTP_INTEGRATION_TYPE:
                try:
                    status, headers, head, rest = function_url.read_prelude(_chain(first, pieces))
                except function_url.BadFunctionResponse as exc:
                    bad_prelude = exc
                    say("%s: bad streaming prelude: %s" % (invocation.request_id, exc))
            if bad_prelude is None:
                self.start_chunked(status, headers)
                self.write_chunk(head)
                for piece in rest:
                    self.write_chunk(piece)
        finally:
            invocations.finish(invocation, mark, what, "502" if bad_prelude else "%d streamed" % status)
        if bad_prelude is not None:
            self.bad_gateway()
        elif invocation.outcome == "response":
            self.end_chunked()
        else:
            self.abort()


def _chain(first: bytes, rest):
    yield first
    yield from rest


# --- reloading ------------------------------------------------------------------------------------------


class Reloader:
    """Starts a new execution environment (an emulator and its runtime) for the function as it is, at
    start and after each save: a new venv first when requirements.txt changed, a new zip first with
    --frozen. The new runtime initialises while the old one still serves; then the invocations move
    over, and the old one is stopped. (Each environment has an emulator of its own: one emulator holds one
    runtime, and the new one initialises while the old one still serves.)"""

    def __init__(self, settings: Settings, runtime: Runtime, invocations: Invocations):
        self.settings = settings
        self.runtime = runtime
        self.invocations = invocations
        self.stop_event = threading.Event()
        self.watching = threading.Event()
        self.paths = [settings.function_dir]
        if not settings.frozen:
            self.paths += [p for p in (REPO / "bootstrap.py", REPO / "lambda_bootstrap") if p.exists()]

    def start_runtime(self, why: str) -> bool:
        """A new runtime for the function as it is now; an init error shows at once. False when the
        runtime could not even be prepared (the old one, if any, keeps serving)."""
        started = time.monotonic()
        try:
            launcher = self.runtime.prepare()
        except DevError as exc:
            keeps = " (the runtime of the code before keeps serving)" if self.invocations.emulator else ""
            say("%s%s" % (exc, keeps))
            return False
        settings = self.settings
        emulator = RuntimeEmulator(
            launcher=launcher,
            timeout=settings.timeout,
            concurrency=settings.concurrency,
            function_name=settings.function_name,
            memory_mb=settings.memory,
            handler=settings.handler,
        ).start()
        emulator.start_runtime()
        state = emulator.wait_init(timeout=60)
        old = self.invocations.swap(emulator)
        if old is not None:
            old.stop()
            self.runtime.forget_old_zips()
        if state == "ready":
            say(
                "runtime %s: ready in %.0f ms (init %.1f ms)"
                % (why, (time.monotonic() - started) * 1000, emulator.init_duration_ms or 0.0)
            )
        elif state == "init_error":
            error = emulator.init_error or {}
            say(
                "runtime %s: init failed: %s: %s\n  every request gets this error until the code is fixed "
                "(save to try again)" % (why, error.get("errorType"), error.get("errorMessage"))
            )
        else:
            say("runtime %s: %s during init; save to try again" % (why, state or "no answer in 60 s"))
        return True

    def run(self) -> None:
        import watchfiles

        # yield_on_timeout: the first (empty) yield says the watch is in place, before any change.
        for changes in watchfiles.watch(
            *self.paths,
            stop_event=self.stop_event,
            debounce=50,
            step=20,
            rust_timeout=500,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            self.watching.set()
            if changes:
                names = sorted({os.path.relpath(path, self.settings.function_dir) for _, path in changes})
                try:
                    self.start_runtime("reloaded after a change to %s" % ", ".join(names[:3]))
                except Exception as exc:  # the next save tries again; the old runtime keeps serving
                    say("reload failed: %s: %s" % (type(exc).__name__, exc))

    def stop(self) -> None:
        self.stop_event.set()
        emulator = self.invocations.emulator
        if emulator is not None:
            emulator.stop()


# --- the command line -----------------------------------------------------------------------------------


def parse_args(argv: Optional[List[str]]) -> Settings:
    parser = argparse.ArgumentParser(prog=PROG, add_help=False)
    parser.add_argument("function_dir", nargs="?", default=str(REPO / "example"))
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--handler")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--memory", type=int, default=128)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--env-file", action="append", default=[])
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--function-name", default="function")
    parser.add_argument("--frozen", action="store_true")
    parser.add_argument("--no-reload", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        raise DevError("bad arguments (see ./dev.sh --help)") from exc
    function_dir = Path(args.function_dir).resolve()
    if not function_dir.is_dir():
        raise DevError("%s is not a folder: give the folder of your function's code" % args.function_dir)
    if not 1 <= args.port <= 65535:
        raise DevError("--port must be from 1 to 65535, not %d" % args.port)
    if not 1 <= args.timeout <= 900:
        raise DevError("--timeout is in seconds, from 1 to 900 as on Lambda, not %g" % args.timeout)
    if not 128 <= args.memory <= 10240:
        raise DevError("--memory is in MB, from 128 to 10240 as on Lambda, not %d" % args.memory)
    if args.concurrency < 1:
        raise DevError("--concurrency must be 1 or more")
    env: Dict[str, str] = {}
    for path in args.env_file:
        env.update(read_env_file(Path(path)))
    for pair in args.env:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DevError("--env wants KEY=VALUE, not %r" % pair)
        env[key] = value
    if args.handler is None:
        # As build.sh finds it: a template.yaml, the one obvious handler, else the one web app.
        try:
            found = find_handler(function_dir)
        except HandlerError as exc:
            raise DevError(str(exc)) from exc
        args.handler = found.handler
        say("handler %s: %s%s" % (found.handler, found.how, "" if found.sure else " (give --handler if not)"))
    module, colon, _ = args.handler.partition(":")  # module:app, a web app; else module.function
    module = (module if colon else module.rpartition(".")[0]).replace(".", "/")
    if not module or not (
        (function_dir / (module + ".py")).is_file() or (function_dir / module / "__init__.py").is_file()
    ):
        say("warning: no %s.py in %s for --handler %s" % (module, function_dir, args.handler))
    return Settings(
        function_dir=function_dir,
        handler=args.handler,
        port=args.port,
        timeout=args.timeout,
        memory=args.memory,
        env=env,
        concurrency=args.concurrency,
        frozen=args.frozen,
        watch=not args.no_reload,
        python=os.environ.get("DEV_PYTHON") or sys.executable,
        function_name=args.function_name,
    )


def serve(settings: Settings) -> None:
    logs = LogPump()
    runtime = Runtime(settings, logs)
    invocations = Invocations(logs, settings)
    try:
        endpoint = Endpoint((settings.host, settings.port), invocations)
    except OSError as exc:
        raise DevError(
            "cannot listen on %s:%d (%s): is another dev.sh running? pick another with --port"
            % (settings.host, settings.port, exc.strerror)
        ) from exc
    reloader = Reloader(settings, runtime, invocations)
    try:
        if not reloader.start_runtime("started"):
            raise DevError("the endpoint did not start")
        if settings.watch:
            threading.Thread(target=reloader.run, daemon=True).start()
            if not reloader.watching.wait(timeout=30):
                raise DevError("the file watcher did not start within 30 s")
        say(
            "serving %s on http://%s:%d  (function URL on any path; Invoke API as function %r; Ctrl-C stops)"
            % (settings.function_dir, settings.host, endpoint.server_address[1], settings.function_name)
        )
        endpoint.serve_forever(poll_interval=0.2)
    finally:
        endpoint.server_close()
        reloader.stop()
        runtime.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt()


def main(argv: Optional[List[str]] = None) -> int:
    # SIGTERM (a terminal closed, a supervisor) ends the endpoint as Ctrl-C does, with its processes.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve(parse_args(argv))
    except DevError as exc:
        say("error: %s" % exc)
        return 2
    except KeyboardInterrupt:
        say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
