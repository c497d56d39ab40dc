"""A fast fake AWS Lambda Runtime API for benchmarks (loopback only, one process).

It hands out queued events back to back on ``GET /2018-06-01/runtime/invocation/next``
and accepts ``POST .../response`` and ``.../error`` with 202, over keep-alive HTTP/1.1.
It is a raw asyncio ``Protocol`` (no http.server) so that it does not become the
bottleneck; ``python bench/fakeapi.py --ceiling`` measures how many events per
second it can turn for a raw-socket client that does no work of its own.

The benchmark driver (bench.py) steers it through a few ``/_bench/*`` endpoints on
the same port:

* ``POST /_bench/session``  ``{"events": [[kind, count], ...]}``: reset, queue events
* ``POST /_bench/enqueue``  ``{"events": [[kind, count], ...]}``: queue more events
* ``GET  /_bench/idle?timeout=S``: wait until the queue is drained, every event was
  answered and the runtime is parked on ``/next`` again; returns the records
* ``POST /_bench/quit``

Times are ``time.monotonic_ns()`` (CLOCK_MONOTONIC), comparable across processes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import socket
import sys
import time
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
INVOKE_PREFIX = "/2018-06-01/runtime/invocation/"
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:bench"
ACCEPTED = (
    b'HTTP/1.1 202 Accepted\r\nContent-Length: 15\r\nContent-Type: application/json\r\n\r\n{"status":"OK"}'
)
TRACE_ID = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
SMALL_EVENT = b'{"key1": "value1", "key2": "value2", "key3": "value3"}'


def make_big_event(size: int = 1 << 20) -> bytes:
    """A JSON object of about ``size`` bytes, shaped like a batch of records."""
    records = []
    total = 20
    i = 0
    while total < size - 200:
        rec = {
            "id": i,
            "eventSource": "bench:records",
            "awsRegion": "us-east-1",
            "score": i * 0.5,
            "flag": i % 2 == 0,
            "data": "x" * 120,
        }
        records.append(rec)
        total += len(json.dumps(rec)) + 2
        i += 1
    body = json.dumps({"Records": records}).encode()
    pad = size - len(body) - len(', "pad": ""')
    if pad > 0:
        body = body[:-1] + b', "pad": "' + b"p" * pad + b'"}'
    return body


EVENTS = {"small": SMALL_EVENT}


def _extra_event(kind: str) -> str:
    """Other benchmarks' events (bench/web_bench.py): FAKEAPI_EVENTS_DIR/<kind>.json."""
    return os.path.join(os.environ.get("FAKEAPI_EVENTS_DIR", "/nonexistent"), kind + ".json")


def _event_body(kind: str) -> bytes:
    kind = kind.split("_", 1)[0]  # "small_warm" is a small event counted apart
    if kind not in EVENTS:
        if kind == "big":
            EVENTS[kind] = make_big_event()
        elif os.path.isfile(_extra_event(kind)):
            with open(_extra_event(kind), "rb") as f:
                EVENTS[kind] = f.read()
        else:
            raise ValueError(f"unknown event kind {kind!r}")
    return EVENTS[kind]


class State:
    def __init__(self) -> None:
        self.session = 0
        self.queue: collections.deque = collections.deque()
        self.seq = 0
        self.records: list[dict[str, Any]] = []  # one per handed-out event
        self.by_id: dict[str, dict[str, Any]] = {}
        self.first_next_ns: Optional[int] = None
        self.next_count = 0
        self.init_error: Optional[str] = None
        self.parked: Optional[Conn] = None  # a connection whose /next waits
        self.outstanding = 0
        self.idle_waiters: list[asyncio.Future] = []
        self.user_agent: Optional[str] = None

    def reset(self, events: list) -> None:
        self.session += 1
        self.queue.clear()
        self.seq = 0
        self.records = []
        self.by_id = {}
        self.first_next_ns = None
        self.next_count = 0
        self.init_error = None
        self.outstanding = 0
        self.user_agent = None
        # A parked /next from a previous (killed) runtime is dropped with it.
        self.parked = None
        self.add(events)

    def add(self, events: list) -> None:
        for kind, count in events:
            _event_body(kind)
            self.queue.extend([kind] * int(count))
        if self.parked is not None and self.queue:
            conn, self.parked = self.parked, None
            conn.serve_next()

    def is_idle(self) -> bool:
        return not self.queue and self.outstanding == 0 and self.parked is not None

    def check_idle(self) -> None:
        if self.is_idle() or self.init_error is not None:
            waiters, self.idle_waiters = self.idle_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)

    def snapshot(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "first_next_ns": self.first_next_ns,
            "next_count": self.next_count,
            "idle": self.is_idle(),
            "init_error": self.init_error,
            "user_agent": self.user_agent,
            "records": self.records,
        }


STATE = State()


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests are handled strictly in order."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: Optional[asyncio.Transport] = None
        self.busy = False  # a /next is parked or a control call is pending
        self.closed = False
        self._cont = False  # sent "100 Continue" for the request being read
        self.next_arrival_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        if STATE.parked is self:
            STATE.parked = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    def process(self) -> None:
        buf = self.buf
        while not self.busy and not self.closed:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            sp1 = head.find(b" ")
            sp2 = head.find(b" ", sp1 + 1)
            if sp1 <= 0 or sp2 <= sp1:
                self.reply(400, b"bad request line", close=True)
                return
            method = head[:sp1].decode("latin-1")
            target = head[sp1 + 1 : sp2].decode("latin-1")
            lower = head.lower()
            body_start = end + 4
            if (
                method == "GET"
                and b"\r\ncontent-length:" not in lower
                and b"\r\ntransfer-encoding:" not in lower
            ):
                del buf[:body_start]
                self.handle(method, target, head, b"")
                continue
            expect = b"100-continue" in lower
            if re.search(rb"\r\ntransfer-encoding:[ \t]*chunked", lower):
                parsed = _parse_chunked(buf, body_start)
                if parsed is None:
                    self._continue(expect)
                    return
                body, consumed = parsed
                del buf[:consumed]
            else:
                i = lower.find(b"\r\ncontent-length:")
                length = 0
                if i >= 0:
                    j = lower.find(b"\r\n", i + 2)
                    length = int(lower[i + 17 : j if j >= 0 else len(lower)])
                if len(buf) < body_start + length:
                    self._continue(expect)
                    return
                body = bytes(buf[body_start : body_start + length])
                del buf[: body_start + length]
            self._cont = False
            self.handle(method, target, head, body)

    def _continue(self, expect: bool) -> None:
        if expect and not self._cont:
            self._cont = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    # -- responses -----------------------------------------------------------------
    def reply(
        self, status: int, body: bytes = b"", headers: Optional[dict] = None, close: bool = False
    ) -> None:
        reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 404: "Not Found"}.get(status, "X")
        out = [f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"]
        for k, v in (headers or {}).items():
            out.append(f"{k}: {v}\r\n")
        if close:
            out.append("Connection: close\r\n")
        out.append("\r\n")
        self.transport.writelines(["".join(out).encode("latin-1"), body])
        if close:
            self.transport.close()

    def serve_next(self) -> None:
        st = STATE
        kind = st.queue.popleft()
        body = _event_body(kind)
        st.seq += 1
        rid = f"s{st.session}-{st.seq}"
        deadline = int(time.time() * 1000) + 300_000
        head = (
            "HTTP/1.1 200 OK\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Content-Type: application/json\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {rid}\r\n"
            f"Lambda-Runtime-Deadline-Ms: {deadline}\r\n"
            f"Lambda-Runtime-Invoked-Function-Arn: {FUNCTION_ARN}\r\n"
            f"Lambda-Runtime-Trace-Id: {TRACE_ID}\r\n"
            "\r\n"
        ).encode("latin-1")
        rec = {
            "id": rid,
            "kind": kind,
            "next_ns": self.next_arrival_ns,
            "sent_ns": 0,
            "done_ns": 0,
            "ok": None,
        }
        if len(body) < 65536:
            self.transport.write(head + body)
        else:
            self.transport.writelines([head, body])
        rec["sent_ns"] = time.monotonic_ns()
        st.records.append(rec)
        st.by_id[rid] = rec
        st.outstanding += 1
        self.busy = False

    def handle(self, method: str, target: str, head: bytes, body: bytes) -> None:
        now = time.monotonic_ns()
        st = STATE
        path = target.split("?", 1)[0]
        if method == "GET" and path == NEXT_PATH:
            st.next_count += 1
            if st.first_next_ns is None:
                st.first_next_ns = now
                ua = re.search(rb"\r\nuser-agent:[ \t]*([^\r]*)", head, re.IGNORECASE)
                st.user_agent = ua.group(1).decode("latin-1") if ua else None
            self.next_arrival_ns = now
            if st.queue:
                self.serve_next()
            else:
                self.busy = True
                st.parked = self
                st.check_idle()
            return
        if method == "POST" and path.startswith(INVOKE_PREFIX):
            rid, _, what = path[len(INVOKE_PREFIX) :].partition("/")
            rec = st.by_id.get(rid)
            if rec is None or what not in ("response", "error") or rec["done_ns"]:
                self.reply(400, b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}')
                return
            rec["done_ns"] = now
            rec["ok"] = what == "response"
            if what == "error":
                rec["error"] = body[:2000].decode("utf-8", "replace")
            st.outstanding -= 1
            self.transport.write(ACCEPTED)
            return
        if method == "POST" and path == INIT_ERROR_PATH:
            st.init_error = body[:4000].decode("utf-8", "replace") or "(empty init error)"
            self.reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
            st.check_idle()
            return
        if path.startswith("/_bench/"):
            self.control(method, target, path, body)
            return
        self.reply(404, b"not found")

    def control(self, method: str, target: str, path: str, body: bytes) -> None:
        st = STATE
        if path == "/_bench/session":
            st.reset(json.loads(body or b"{}").get("events", []))
            self.reply(200, json.dumps({"session": st.session}).encode())
        elif path == "/_bench/enqueue":
            st.add(json.loads(body or b"{}").get("events", []))
            self.reply(200, b"{}")
        elif path == "/_bench/idle":
            qs = parse_qs(urlsplit(target).query)
            timeout = float(qs.get("timeout", ["30"])[0])
            self.busy = True
            self._waiter = asyncio.ensure_future(self._wait_idle(timeout))
        elif path == "/_bench/state":
            self.reply(200, json.dumps(st.snapshot()).encode())
        elif path == "/_bench/quit":
            self.reply(200, b"{}", close=True)
            asyncio.get_event_loop().call_later(0.05, _stop)
        else:
            self.reply(404, b"unknown control path")

    async def _wait_idle(self, timeout: float) -> None:
        st = STATE
        if not (st.is_idle() or st.init_error is not None):
            fut = asyncio.get_event_loop().create_future()
            st.idle_waiters.append(fut)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(fut, timeout)
        if self.closed:
            return
        snap = st.snapshot()
        snap["timed_out"] = not (st.is_idle() or st.init_error is not None)
        self.busy = False
        self.reply(200, json.dumps(snap).encode(), {"Content-Type": "application/json"})
        self.process()


def _parse_chunked(buf: bytearray, pos: int):
    out = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n", pos)  # no trailers expected; skip the final CRLF
            if end < 0:
                return None
            return bytes(out), end + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


STOP: list = []


def _stop() -> None:
    if STOP and not STOP[0].done():
        STOP[0].set_result(None)


async def serve(host: str, port: int, ready_fd: Optional[int]) -> None:
    loop = asyncio.get_event_loop()
    server = await loop.create_server(Conn, host, port, reuse_address=True, backlog=64)
    actual = server.sockets[0].getsockname()[1]
    if ready_fd is not None:
        os.write(ready_fd, f"{actual}\n".encode())
        os.close(ready_fd)
    else:
        print(f"fake Runtime API on {host}:{actual}", flush=True)
    STOP.append(loop.create_future())
    await STOP[0]
    server.close()


def ceiling(seconds: float = 2.0) -> dict[str, float]:
    """Start a fake API in a child process and drive it from a raw socket: its ceiling."""
    import subprocess

    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, __file__, "--port", "0", "--ready-fd", str(w)], pass_fds=(w,))
    os.close(w)
    port = int(os.read(r, 64).decode().strip())
    os.close(r)
    try:
        ctl = socket.create_connection(("127.0.0.1", port))
        n_events = 200_000

        def call(method: str, path: str, body: bytes = b"") -> bytes:
            ctl.sendall(
                f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            return _read_response(ctl)

        call("POST", "/_bench/session", json.dumps({"events": [["small", n_events]]}).encode())
        cpu0 = _cpu_seconds(proc.pid)
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        get = b"GET " + NEXT_PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        n = 0
        t0 = time.perf_counter()
        end = t0 + seconds
        while n < n_events and time.perf_counter() < end:
            s.sendall(get)
            head = _read_response(s, want_head=True)
            rid = head.split(b"Lambda-Runtime-Aws-Request-Id: ", 1)[1].split(b"\r\n", 1)[0].decode()
            s.sendall(
                f"POST {INVOKE_PREFIX}{rid}/response HTTP/1.1\r\n".encode()
                + b'Host: x\r\nContent-Length: 12\r\n\r\n{"ok": true}'
            )
            _read_response(s)
            n += 1
        elapsed = time.perf_counter() - t0
        cpu = _cpu_seconds(proc.pid) - cpu0
        s.close()
        call("POST", "/_bench/quit")
        ctl.close()
        return {
            "events": n,
            "seconds": elapsed,
            "events_per_s": n / elapsed,
            "server_cpu_us_per_event": cpu / n * 1e6 if n else None,
        }
    finally:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def main(argv: Optional[list] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="listen address (loopback only; default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    ap.add_argument("--ready-fd", type=int, help="write the bound port to this fd, then close it")
    ap.add_argument(
        "--ceiling", action="store_true", help="measure this server's own events/s ceiling and exit"
    )
    args = ap.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        ap.error("loopback addresses only")
    if args.ceiling:
        print(json.dumps(ceiling()))
        return 0
    try:
        import uvloop  # optional: halves this server's own cost per request

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(args.host, args.port, args.ready_fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
