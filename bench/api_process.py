"""The Runtime API of the benchmark's fake-API runs: scripts/runtime_emulator.py in a process of its own.

The driver (bench.py) starts it pinned to the sandbox CPU with the runtime (they share one vCPU, as in a
Lambda sandbox) and steers it with JSON lines on its stdin; each gets one JSON line back on stdout:

* ``{"op": "session", "events": [[kind, count], ...]}``: a fresh emulator on the same port (a /next parked
  by the previous, killed runtime goes with the old one), then these events;
* ``{"op": "enqueue", "events": [[kind, count], ...]}``: more events;
* ``{"op": "define", "kind": kind, "body": text}``: an event kind of the caller's own (its body as UTF-8),
  beside the built-in "small" and "big";
* ``{"op": "idle", "timeout": S}``: wait until every event was answered and the runtime waits in /next
  again (or it posted an init error); returns the session's records;
* ``{"op": "quit"}``.

Times are ``time.monotonic_ns()`` (CLOCK_MONOTONIC), comparable across processes.
``python bench/api_process.py --ceiling`` measures how many events per second it turns for a raw-socket
client that does no work of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from runtime_emulator import INVOCATION_PREFIX, NEXT_PATH, RuntimeEmulator

SMALL_EVENT = b'{"key1": "value1", "key2": "value2", "key3": "value3"}'


def make_big_event(size: int = 1 << 20) -> bytes:
    """A JSON object of about ``size`` bytes, shaped like a batch of records."""
    records = []
    total = 20
    i = 0
    while total < size - 200:
        rec = {"id": i, "eventSource": "bench:records", "awsRegion": "us-east-1", "score": i * 0.5,
               "flag": i % 2 == 0, "data": "x" * 120}  # fmt: skip
        records.append(rec)
        total += len(json.dumps(rec)) + 2
        i += 1
    body = json.dumps({"Records": records}).encode()
    pad = size - len(body) - len(', "pad": ""')
    if pad > 0:
        body = body[:-1] + b', "pad": "' + b"p" * pad + b'"}'
    return body


EVENTS = {"small": SMALL_EVENT}


def event_body(kind: str) -> bytes:
    """The body of an event kind; "small_warm" is a small event counted apart. One bytes object per kind."""
    base = kind.split("_", 1)[0]
    if base not in EVENTS:
        if base != "big":
            raise ValueError(f"unknown event kind {kind!r}")
        EVENTS[base] = make_big_event()
    return EVENTS[base]


class Session:
    """One emulator and the kinds of the events queued on it."""

    def __init__(self, port: int) -> None:
        self.emulator = RuntimeEmulator(port=port)
        self.emulator.keep_bodies = False  # the ledger stays small; bodies are not what is measured
        self.emulator.start()
        self.kinds: Dict[str, str] = {}

    def add(self, events: List[list]) -> None:
        for kind, count in events:
            body = event_body(kind)
            for _ in range(int(count)):
                self.kinds[self.emulator.push_event(body)] = kind

    def idle(self, timeout: float) -> Dict[str, Any]:
        emu = self.emulator

        def settled() -> bool:
            quiet = not emu.pending_events and not emu.in_flight() and emu.waiting_next > 0
            return quiet or emu.init_error is not None

        try:
            emu.wait_for(settled, timeout, "the runtime to answer every event")
            timed_out = False
        except TimeoutError:
            timed_out = True
        records = []
        for key in list(emu.delivery_order):
            inv = emu.invocation(key)
            sent_ns, done_ns = (int(at * 1e9) if at else 0 for at in (inv.served_at, inv.finished_at))
            record = {"id": key, "kind": self.kinds[key], "ok": inv.outcome == "response",
                      "sent_ns": sent_ns, "done_ns": done_ns}  # fmt: skip
            if inv.outcome not in (None, "response"):
                record["error"] = (inv.body or b"")[:2000].decode("utf-8", "replace")
            records.append(record)
        first = emu.first_next
        init_error = json.dumps(emu.init_error)[:4000] if emu.init_error is not None else None
        return {
            "first_next_ns": int(first.started_at * 1e9) if first else None,
            "user_agent": first.headers.get("User-Agent") if first else None,
            "init_error": init_error,
            "records": records,
            "timed_out": timed_out,
        }


def serve(port: int) -> int:
    session = Session(port)
    port = session.emulator.port
    print(json.dumps({"port": port}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "session":
            session.emulator.stop()
            session = Session(port)
            session.add(command["events"])
            answer: Dict[str, Any] = {}
        elif op == "enqueue":
            session.add(command["events"])
            answer = {}
        elif op == "define":
            EVENTS[command["kind"]] = command["body"].encode()
            answer = {}
        elif op == "idle":
            answer = session.idle(float(command["timeout"]))
        elif op == "quit":
            break
        else:
            answer = {"error": "unknown op %r" % op}
        print(json.dumps(answer), flush=True)
    session.emulator.stop()
    return 0


class ApiProcess:
    """The driver's side: starts ``serve`` in a child process (inheriting the caller's CPU affinity)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, start_new_session=True)  # fmt: skip
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the benchmark's Runtime API process did not start")
        self.port = json.loads(line)["port"]
        self.address = f"127.0.0.1:{self.port}"

    def call(self, op: str, **args: Any) -> Dict[str, Any]:
        self.proc.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()  # each op is bounded by its own timeout in the child
        if not line:
            raise RuntimeError(f"the benchmark's Runtime API process died during {op!r}")
        return json.loads(line)

    def session(self, events: List[list]) -> None:
        self.call("session", events=events)

    def enqueue(self, events: List[list]) -> None:
        self.call("enqueue", events=events)

    def define(self, kind: str, body: str) -> None:
        self.call("define", kind=kind, body=body)

    def idle(self, timeout: float) -> Dict[str, Any]:
        return self.call("idle", timeout=timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(b'{"op": "quit"}\n')
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ceiling(seconds: float = 2.0) -> Dict[str, Optional[float]]:
    """Events per second the API process turns for a raw-socket client, and its CPU per event."""
    api = ApiProcess()
    try:
        api.session([["small", int(seconds * 25_000)]])  # more than it can turn in that time
        cpu0 = _cpu_seconds(api.proc.pid)
        s = socket.create_connection(("127.0.0.1", api.port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        get = b"GET " + NEXT_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() < t0 + seconds:
            s.sendall(get)
            head = _read_response(s, want_head=True)
            rid = head.split(b"Lambda-Runtime-Aws-Request-Id: ", 1)[1].split(b"\r\n", 1)[0]
            post = b'POST %s%s/response HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{"ok": true}'
            s.sendall(post % (INVOCATION_PREFIX.encode(), rid))
            _read_response(s)
            n += 1
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds(api.proc.pid) - cpu0
        s.close()
    finally:
        api.close()
    return {"events": n, "seconds": elapsed, "events_per_s": n / elapsed,
            "server_cpu_us_per_event": cpu / n * 1e6 if n else None}  # fmt: skip


def _cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` from /proc (seconds)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_response(sock: socket.socket, want_head: bool = False) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        rest += chunk
    return head if want_head else rest


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--serve", action="store_true", help="serve, steered on stdin (what bench.py starts)")
    mode.add_argument("--ceiling", action="store_true", help="measure this API process's events/s and exit")
    parser.add_argument("--port", type=int, default=0, help="with --serve: the port (0: a free one)")
    args = parser.parse_args(argv)
    if args.ceiling:
        print(json.dumps(ceiling()))
        return 0
    return serve(args.port)


if __name__ == "__main__":
    sys.exit(main())
