"""./dev.sh started for a test: a function folder of its own, a free port, its output captured, and
stopped with Ctrl-C (SIGINT) at the end, with a check that every process it started is gone."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Tuple

REPO = Path(__file__).resolve().parent.parent
GAP_S = 0.2  # how far apart the test function sends the chunks of "chunks"

# The test function: its answer depends on the path (function URL) or on "action" (Invoke API).
APP = """
import json, os, time

import bootstrap

VERSION = "v1"


def wait_until(ready, seconds):
    deadline = time.monotonic() + seconds
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.01)
    return ready()


def lockstep(folder, patience, n=3):
    # Chunk i+1 goes only once the caller has chunk i (the test then makes the file go-<i+1>).
    for i in range(n):
        if i and not wait_until(lambda: os.path.exists(os.path.join(folder, "go-%%d" %% i)), patience):
            yield "chunk %%d sent unasked\\n" %% i
        else:
            yield "chunk %%d\\n" %% i


def chunks(n, fail=False):
    for i in range(n):
        if i:
            time.sleep(%(gap)r)
        yield "chunk %%d\\n" %% i
    if fail:
        raise ValueError("failed after %%d chunks" %% n)


def handler(event, context):
    action = event.get("action") or event.get("rawPath", "/").strip("/")
    options = {**(event.get("queryStringParameters") or {}), **event}
    print("handling", action or "/")
    if action == "stream":  # a function URL answer: status, headers and cookies first
        return bootstrap.HttpStreamingResponse(
            lockstep(options["dir"], 5), 201, {"content-type": "text/plain", "x-from": "prelude"},
            ["a=1; Path=/", "b=2"],
        )
    if action == "lockstep":
        return lockstep(options["dir"], float(options.get("patience", 5)))
    if action == "rendezvous":  # each waits until n invocations have arrived, or 10 s
        open(os.path.join(options["dir"], str(os.getpid())), "w").close()
        met = wait_until(lambda: len(os.listdir(options["dir"])) >= options["n"], 10)
        return {"met": met, "pid": os.getpid()}
    if action == "stream-fail":
        return bootstrap.HttpStreamingResponse(chunks(2, fail=True), 200, {"content-type": "text/plain"})
    if action == "bad-prelude":
        prelude_type = "application/vnd.awslambda.http-integration-response"
        return bootstrap.StreamingResponse(iter(["not json" + "\\0" * 8, "body"]), prelude_type)
    if action == "chunks":
        return chunks(3, fail=event.get("fail", False))
    if action == "fail":
        raise ValueError("asked to fail")
    if action == "wait-file":  # until the test has seen the log line above, or 5 s
        return {"signalled": wait_until(lambda: os.path.exists(event["path"]), 5)}
    if action == "sleep":
        time.sleep(float(event.get("seconds", 5)))
    if action == "env":
        keys = ("GREETING", "FROM_FILE", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_MAX_CONCURRENCY",
                "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT", "TZ")
        return {"env": {k: os.environ.get(k) for k in keys}, "memory": context.memory_limit_in_mb,
                "remaining_ms": context.get_remaining_time_in_millis(),
                "custom": context.client_context and context.client_context.custom}
    return {"version": VERSION, "pid": os.getpid(), "event": event}
""" % {"gap": GAP_S}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> List[int]:
    """The processes whose parent chain reaches pid (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path("/proc", entry, "stat").read_text()
                parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent]
        found += children
        frontier += children
    return found


class DevServer:
    def __init__(self, function_dir: Path, *args: str, log: Path):
        self.function_dir = function_dir
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "_HANDLER"))}
        env["PYTHON"] = sys.executable
        self.proc = subprocess.Popen(
            [str(REPO / "dev.sh"), str(function_dir), "--port", str(self.port), *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.started: List[int] = []

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_output(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match:
        """Wait for a regex in the output (after character ``start``); fail with the output so far."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern, re.MULTILINE).search(self.output(), start)
            if match:
                return match
            if self.proc.poll() is not None:
                raise AssertionError(
                    "dev.sh exited (%s) before %r:\n%s" % (self.proc.returncode, pattern, self.output())
                )
            if time.monotonic() > deadline:
                raise AssertionError("no %r within %.0f s:\n%s" % (pattern, timeout, self.output()))
            time.sleep(0.05)

    def wait_serving(self, timeout: float = 240.0) -> DevServer:
        # The first run makes the tool venv and the function's venv (pip): minutes on a cold cache.
        self.wait_output(r"dev\.sh: serving ", timeout)
        self.started = descendants(self.proc.pid)
        return self

    def stop(self) -> Tuple[Optional[int], List[int]]:
        """Ctrl-C; returns dev.sh's exit status and the processes it had started that are still alive."""
        before = set(descendants(self.proc.pid)) | set(self.started)
        assert before, "dev.sh had started no process: nothing to check"
        status = None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = self.proc.wait(timeout=20)
        else:
            status = self.proc.returncode
        alive = []
        deadline = time.monotonic() + 5
        for pid in sorted(before):
            while Path("/proc", str(pid)).exists() and _state(pid) not in ("Z", "X"):
                if time.monotonic() > deadline:
                    alive.append(pid)
                    break
                time.sleep(0.02)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()
        return status, alive


def _state(pid: int) -> str:
    try:
        return Path("/proc", str(pid), "stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "X"


def release_chunks(pieces, folder: Path, n: int = 3) -> bytes:
    """Read a lockstep stream as a client gets it (``pieces``: bytes): each time chunk i has arrived,
    let the function send chunk i+1. An endpoint that held chunks back would get "sent unasked" ones."""
    seen, released = b"", 0
    for piece in pieces:
        seen += piece
        while released + 1 < n and b"chunk %d\n" % released in seen:
            released += 1
            (folder / ("go-%d" % released)).touch()
    return seen
