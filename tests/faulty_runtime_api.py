"""A fault-injecting fake of the Lambda Runtime API on raw sockets, for the reliability tests.

http.server cannot reset a connection in the middle of a response head or cut a body short, so this
fake speaks HTTP/1.1 itself. It binds 127.0.0.1 on a free port; every wait in it is bounded; stop()
unblocks and closes everything it opened.

Scripting:

- ``push_event(body, ...)`` queues an event; ``raw_headers`` adds header lines as raw bytes (for
  non-ASCII values), ``request_id=None`` leaves Lambda-Runtime-Aws-Request-Id out.
- ``script_next(Fault)`` replaces what the next ``GET /next`` gets (in order, one fault per call):
  ``reset`` (RST, nothing sent), ``reset_mid_headers``, ``reset_after_headers``, ``truncate`` (half the
  body, then FIN), ``huge_length`` (a Content-Length of 1 GiB, half the body, a wait, then FIN), ``stall``
  (wait, then serve the next event), ``stall_body`` (head, wait, body), ``status`` (an HTTP error instead
  of an event), ``raw`` (``body`` sent as the whole answer, a wait, then FIN; no event is taken).
  Faults that serve the event in full another way: ``interim`` (1xx answers first), ``close``
  (``Connection: close``, then FIN), ``chunked`` (the body in chunks, with an extension and a trailer).
- ``script_post(kind, Fault)`` answers the next ``/response`` or ``/error`` post: ``status``, or
  ``reset`` / ``truncate`` on the reply.
- ``refuse_until(seconds)``: the port is bound but not listening until then (connection refused).

An event whose body was cut after its head ("partial") counts as handed out, as RAPID sees it: it must be
answered, with an error.

Without a script the fake behaves like RAPID: 202 for the first answer to the current event, 403 for a
second one, 400 for an unknown request id, 413 for a /response over ``payload_limit``, and, when
``enforce_deadline`` is set, 410 InvokeTimeout for an answer that arrives after the event's deadline.

The ledger (``ledger``, ``check_ledger()``) records, per request id, how the event was delivered
("full" or "partial") and every answer posted for it, with the status the fake replied.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import struct
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple, Union

import frozen

PREFIX = b"/2018-06-01/runtime"
NEXT_FAULTS_WITH_EVENT = (
    "reset_after_headers", "truncate", "huge_length", "stall", "stall_body", "interim", "close", "chunked",
)  # fmt: skip
INTERIM_ANSWERS = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-Progress: yes\r\n\r\n"
NEXT_PATH = PREFIX + b"/invocation/next"
INVOCATION_PREFIX = PREFIX + b"/invocation/"
INIT_ERROR_PATH = PREFIX + b"/init/error"
RAPID_PAYLOAD_LIMIT = 6 * 1024 * 1024 + 100

BODIES = {
    202: b'{"status":"OK"}',
    400: b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}',
    403: b'{"errorType":"InvalidStateTransition","errorMessage":"State transition is not allowed"}',
    410: b'{"errorMessage":"Invoke timeout","errorType":"InvokeTimeout"}',
    413: b'{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).",'
    b'"errorType":"RequestEntityTooLarge"}',
    500: b'{"errorMessage":"Internal container error","errorType":"ContainerError"}',
}
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 410: "Gone"}
REASONS.update({413: "Payload Too Large", 500: "Internal Server Error"})

HeaderValue = Union[str, bytes]


@dataclass
class Fault:
    """One scripted fault. ``kind``: see the module docstring."""

    kind: str
    status: int = 500
    body: Optional[bytes] = None
    seconds: float = 0.0


@dataclass
class Answer:
    kind: str  # response | error
    status: int  # what the fake replied (0: the connection was reset instead)
    body: bytes
    headers: Dict[str, str]
    trailers: Dict[str, str]
    at: float


@dataclass
class Entry:
    """One event in the ledger."""

    key: str  # the request id, or a generated key when the event had none
    request_id: Optional[str]
    delivered: str = ""  # "" (not yet), "partial" (the connection broke inside it), "full"
    deadline_ms: Optional[int] = None
    answers: List[Answer] = field(default_factory=list)

    @property
    def accepted(self) -> List[Answer]:
        return [a for a in self.answers if 200 <= a.status < 300]


@dataclass
class _Event:
    body: bytes
    headers: List[Tuple[str, HeaderValue]]
    entry: Entry


class FaultyRuntimeAPI:
    def __init__(self, payload_limit: int = RAPID_PAYLOAD_LIMIT, keep_bodies: bool = True):
        """``keep_bodies=False``: answers are recorded without body or headers (soak runs)."""
        self.payload_limit = payload_limit
        self.keep_bodies = keep_bodies
        self.enforce_deadline = False
        self._cond = threading.Condition()
        self._events: Deque[_Event] = collections.deque()
        self._next_faults: Deque[Fault] = collections.deque()
        self._post_faults: Dict[str, Deque[Fault]] = {
            "response": collections.deque(),
            "error": collections.deque(),
        }
        self.ledger: Dict[str, Entry] = {}
        self.delivery_order: List[str] = []
        self.next_calls = 0
        self.answer_count = 0  # every /response and /error post
        self.init_errors: List[bytes] = []
        self.other_requests: List[Tuple[str, str]] = []
        self._current: Optional[str] = None
        self._waiting_next = 0
        self._stopping = False
        self._conns: set = set()
        self._threads: List[threading.Thread] = []
        self._listening = False
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port

    # -- lifecycle ---------------------------------------------------------
    def start(self, listen_after: float = 0.0) -> FaultyRuntimeAPI:
        """Serve; with ``listen_after`` the port refuses connections for that many seconds first."""
        thread = threading.Thread(target=self._accept_loop, args=(listen_after,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        for thread in list(self._threads):
            thread.join(5)

    def __enter__(self) -> FaultyRuntimeAPI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- scripting ---------------------------------------------------------
    def push_event(
        self,
        body: Any = b"{}",
        *,
        request_id: Optional[str] = "",
        deadline_ms: Any = "",
        content_type: Optional[str] = "application/json",
        headers: Sequence[Tuple[str, HeaderValue]] = (),
    ) -> str:
        """Queue an event; returns its ledger key (its request id when it has one).

        ``request_id``: "" generates one, None sends none. ``deadline_ms``: "" is now + 300 s, None sends
        none, anything else is sent as given (an int, or text such as "soon")."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode("utf-8")
        if request_id == "":
            request_id = str(uuid.uuid4())
        key = request_id if request_id is not None else "no-id-%s" % uuid.uuid4()
        if deadline_ms == "":
            deadline_ms = int(time.time() * 1000) + 300_000
        head: List[Tuple[str, HeaderValue]] = []
        if request_id is not None:
            head.append(("Lambda-Runtime-Aws-Request-Id", request_id))
        if deadline_ms is not None:
            head.append(("Lambda-Runtime-Deadline-Ms", str(deadline_ms)))
        head.append(
            ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:f")
        )
        if content_type is not None:
            head.append(("Content-Type", content_type))
        head.extend(headers)
        numeric = deadline_ms if isinstance(deadline_ms, int) else None
        entry = Entry(key, request_id, deadline_ms=numeric)
        with self._cond:
            self.ledger[key] = entry
            self._events.append(_Event(body, head, entry))
            self._cond.notify_all()
        return key

    def script_next(self, *faults: Fault) -> None:
        with self._cond:
            self._next_faults.extend(faults)
            self._cond.notify_all()

    def script_post(self, kind: str, *faults: Fault) -> None:
        with self._cond:
            self._post_faults[kind].extend(faults)

    # -- queries -----------------------------------------------------------
    def entry(self, key: str) -> Entry:
        with self._cond:
            return self.ledger[key]

    def answers(self, key: str) -> List[Answer]:
        with self._cond:
            return list(self.ledger[key].answers)

    @property
    def answered_count(self) -> int:
        with self._cond:
            return sum(1 for e in self.ledger.values() if e.answers)

    @property
    def waiting_next(self) -> int:
        with self._cond:
            return self._waiting_next

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "condition", alive=None) -> Any:
        """Wait (bounded) until predicate() is truthy; fails early when ``alive()`` turns False."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "timed out after %.1fs waiting for %s\n%s" % (timeout, what, self.describe())
                )
            if alive is not None and not alive():
                value = predicate()
                if value:
                    return value
                raise TimeoutError("the runtime exited while waiting for %s\n%s" % (what, self.describe()))
            with self._cond:
                self._cond.wait(0.05)

    def wait_answer(self, key: str, timeout: float = 10.0, alive=None) -> Answer:
        def got():
            with self._cond:
                answers = self.ledger[key].answers
                return answers[0] if answers else None

        return self.wait_for(got, timeout, "an answer for %s" % key, alive)

    def wait_answers(self, key: str, n: int, timeout: float = 10.0, alive=None) -> List[Answer]:
        def got():
            with self._cond:
                answers = self.ledger[key].answers
                return list(answers) if len(answers) >= n else None

        return self.wait_for(got, timeout, "%d answers for %s" % (n, key), alive)

    def wait_idle(self, timeout: float = 10.0, alive=None) -> None:
        """Until no event is queued and the runtime waits in /next."""

        def idle():
            with self._cond:
                return not self._events and self._waiting_next > 0

        self.wait_for(idle, timeout, "the runtime to wait in /next with no event left", alive)

    def check_ledger(self, exited: bool = False) -> List[str]:
        """Problems with the run's ledger; [] when every event was answered exactly once.

        An answer is one /response or /error; the only second post allowed for an event is the /error
        that follows a /response refused with 413. An event handed out (in full, or its head and part of
        its body) but never answered is a problem unless ``exited`` (the runtime exited by design) and it is
        the last event delivered; a partial one can only be answered with an /error.
        """
        problems = []
        with self._cond:
            entries = dict(self.ledger)
            order = list(self.delivery_order)
        last = order[-1] if order else None
        for key, entry in entries.items():
            kinds = [(a.kind, a.status) for a in entry.answers]
            if entry.answers and not entry.delivered:
                problems.append("%s: answered %s but never delivered" % (key, kinds))
            if entry.delivered == "partial" and any(kind != "error" for kind, _ in kinds):
                problems.append("%s: half-received, yet answered %s" % (key, kinds))
            if len(entry.accepted) > 1:
                problems.append("%s: accepted twice: %s" % (key, kinds))
            if len(entry.answers) > 2 or (
                len(entry.answers) == 2 and not (kinds[0] == ("response", 413) and kinds[1][0] == "error")
            ):
                problems.append("%s: answered more than once: %s" % (key, kinds))
            if entry.delivered and not entry.answers and not (exited and key == last):
                problems.append("%s: delivered (%s) but never answered" % (key, entry.delivered))
        return problems

    def describe(self, limit: int = 20) -> str:
        with self._cond:
            entries = list(self.ledger.values())[-limit:]
            lines = ["next calls: %d; ledger (last %d):" % (self.next_calls, len(entries))]
            for e in entries:
                answers = ["%s:%d:%r" % (a.kind, a.status, a.body[:120]) for a in e.answers]
                lines.append("  %s delivered=%r answers=%s" % (e.key, e.delivered, answers))
        return "\n".join(lines)

    # -- server ------------------------------------------------------------
    def _accept_loop(self, listen_after: float) -> None:
        end = time.monotonic() + listen_after
        while time.monotonic() < end:
            if self._stopping:
                return
            time.sleep(0.01)
        try:
            self._sock.listen(64)
            self._sock.settimeout(0.1)
        except OSError:
            return
        self._listening = True
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._cond:
                if self._stopping:
                    conn.close()
                    return
                self._conns.add(conn)
            thread = threading.Thread(target=self._serve_conn, args=(conn,), daemon=True)
            thread.start()
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _serve_conn(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while not self._stopping:
                request = self._read_request(reader)
                if request is None:
                    return
                if not self._dispatch(conn, reader, *request):
                    return
        except (OSError, ValueError):
            return
        finally:
            with self._cond:
                self._conns.discard(conn)
            with contextlib.suppress(OSError):
                reader.close()
                conn.close()

    @staticmethod
    def _read_request(reader) -> Optional[Tuple[bytes, bytes, Dict[str, str], bytes, Dict[str, str]]]:
        line = reader.readline(65537)
        if not line:
            return None
        method, path, _ = line.split(b" ", 2)
        headers: Dict[str, str] = {}
        while True:
            line = reader.readline(1 << 20)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise ValueError("closed inside the request head")
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
        trailers: Dict[str, str] = {}
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(reader.readline(65537).split(b";", 1)[0], 16)
                if size == 0:
                    break
                parts.append(reader.read(size))
                reader.readline(65537)
            while True:
                line = reader.readline(1 << 20)
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.partition(b":")
                trailers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
            body = b"".join(parts)
        else:
            length = int(headers.get("content-length") or 0)
            body = reader.read(length) if length else b""
            if len(body) != length:
                raise ValueError("closed inside the request body")
        return method, path, headers, body, trailers

    @staticmethod
    def _head(status: int, headers: Sequence[Tuple[str, HeaderValue]], length: Optional[int]) -> bytes:
        """The answer's head; ``length`` None: no Content-Length (the headers say how the body ends)."""
        out = b"HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Status").encode())
        for name, value in headers:
            out += (
                name.encode()
                + b": "
                + (value if isinstance(value, bytes) else value.encode("utf-8"))
                + b"\r\n"
            )
        if length is None:
            return out + b"\r\n"
        return out + b"Content-Length: %d\r\n\r\n" % length

    @staticmethod
    def _reset(conn: socket.socket, reader) -> None:
        """Close with RST (SO_LINGER 0) rather than FIN."""
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            reader.close()
            conn.close()

    def _dispatch(self, conn, reader, method, path, headers, body, trailers) -> bool:
        """Answer one request; False when the connection is finished."""
        if method == b"GET" and path == NEXT_PATH:
            return self._serve_next(conn, reader)
        if method == b"POST" and path.startswith(INVOCATION_PREFIX):
            rid, _, kind = path[len(INVOCATION_PREFIX) :].decode("utf-8", "replace").rpartition("/")
            if kind in ("response", "error"):
                return self._serve_answer(conn, reader, kind, rid, headers, body, trailers)
        if method == b"POST" and path == INIT_ERROR_PATH:
            with self._cond:
                self.init_errors.append(body)
            conn.sendall(self._head(202, [], len(BODIES[202])) + BODIES[202])
            return True
        with self._cond:
            self.other_requests.append((method.decode(), path.decode("latin-1")))
        conn.sendall(self._head(404, [], 0))
        return True

    def _serve_next(self, conn, reader) -> bool:
        with self._cond:
            self.next_calls += 1
            self._waiting_next += 1
            self._cond.notify_all()
            try:
                while True:
                    if self._stopping:
                        return False
                    if self._next_faults:
                        fault = self._next_faults.popleft()
                        event = None
                        if fault.kind in NEXT_FAULTS_WITH_EVENT:
                            if not self._events:  # these need an event: wait for one
                                self._next_faults.appendleft(fault)
                                self._cond.wait(0.05)
                                continue
                            event = self._events.popleft()
                        break
                    if self._events:
                        fault, event = None, self._events.popleft()
                        break
                    self._cond.wait(0.05)
            finally:
                self._waiting_next -= 1
                self._cond.notify_all()
        if fault is None or fault.kind == "stall":
            if fault is not None:
                self._sleep(fault.seconds)
            return self._send_event(conn, event, "full")
        if fault.kind == "status":
            body = fault.body if fault.body is not None else BODIES.get(fault.status, b"")
            conn.sendall(self._head(fault.status, [("Content-Type", "application/json")], len(body)) + body)
            return True
        if fault.kind == "reset":
            self._reset(conn, reader)
            return False
        if fault.kind == "raw":
            conn.sendall(fault.body or b"")
            self._sleep(fault.seconds)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            return False
        if fault.kind == "reset_mid_headers":
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: partial-head\r\nLambda-Runtime-Dea"
            )
            time.sleep(0.05)
            self._reset(conn, reader)
            return False
        assert event is not None
        head = self._head(200, event.headers, len(event.body))
        if fault.kind == "interim":
            conn.sendall(INTERIM_ANSWERS)
            return self._send_event(conn, event, "full")
        if fault.kind == "close":
            self._mark(event, "full")
            conn.sendall(
                self._head(200, [*event.headers, ("Connection", "close")], len(event.body)) + event.body
            )
            time.sleep(0.05)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            return False
        if fault.kind == "chunked":
            self._mark(event, "full")
            head = self._head(200, [*event.headers, ("Transfer-Encoding", "chunked")], None)
            third = max(1, len(event.body) // 3)
            pieces = [event.body[i : i + third] for i in range(0, len(event.body), third)]
            chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces)
            conn.sendall(head + chunks + b"0\r\nX-Checksum: none\r\n\r\n")
            return True
        if fault.kind == "stall_body":
            conn.sendall(head)
            self._sleep(fault.seconds)
            conn.sendall(event.body)
            self._mark(event, "full")
            return True
        self._mark(event, "partial")
        if fault.kind == "reset_after_headers":
            conn.sendall(head)
            time.sleep(0.05)
            self._reset(conn, reader)
            return False
        if fault.kind in ("truncate", "huge_length"):
            if fault.kind == "huge_length":
                head = self._head(200, event.headers, 1 << 30)
            conn.sendall(head + event.body[: len(event.body) // 2])
            self._sleep(fault.seconds or 0.05)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)  # FIN: the body ends early
            return False
        raise AssertionError("unknown /next fault %r" % fault.kind)

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self._stopping:
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))

    def _mark(self, event: _Event, how: str) -> None:
        with self._cond:
            event.entry.delivered = how
            self.delivery_order.append(event.entry.key)
            self._current = event.entry.request_id
            self._cond.notify_all()

    def _send_event(self, conn, event: _Event, how: str) -> bool:
        self._mark(event, how)
        conn.sendall(self._head(200, event.headers, len(event.body)) + event.body)
        return True

    def _serve_answer(self, conn, reader, kind, rid, headers, body, trailers) -> bool:
        with self._cond:
            faults = self._post_faults[kind]
            fault = faults.popleft() if faults else None
            entry = self.ledger.get(rid)
            if fault is not None and fault.kind == "status":
                status = fault.status
            elif fault is not None:
                status = 0
            elif entry is None or rid != self._current:
                status = 400
            elif entry.accepted or any(a.status == 413 for a in entry.answers):
                status = 403
            elif (
                self.enforce_deadline
                and entry.deadline_ms is not None
                and time.time() * 1000 > entry.deadline_ms
            ):
                status = 410
            elif kind == "response" and len(body) > self.payload_limit:
                status = 413
            else:
                status = 202
            if self.keep_bodies:
                answer = Answer(kind, status, body, headers, trailers, time.time())
            else:  # long runs: keep the ledger small
                answer = Answer(kind, status, b"", {}, {}, 0.0)
            self.answer_count += 1
            if entry is None:
                entry = self.ledger.setdefault(rid, Entry(rid, rid, delivered=""))
            entry.answers.append(answer)
            self._cond.notify_all()
        if fault is not None and fault.kind == "reset":
            self._reset(conn, reader)
            return False
        reply = fault.body if fault is not None and fault.body is not None else BODIES.get(status, b"{}")
        if fault is not None and fault.kind == "truncate":
            conn.sendall(self._head(202, [], len(reply) + 100) + reply)
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            return False
        conn.sendall(self._head(status, [("Content-Type", "application/json")], len(reply)) + reply)
        return "chunked" not in headers.get("transfer-encoding", "")


# ---------------------------------------------------------------------------
# Launching runtimes (the script or the frozen binary) against this fake
# ---------------------------------------------------------------------------

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
BOOTSTRAP = REPO_ROOT / "bootstrap.py"
HOSTILE_DIR = TESTS_DIR / "hostile_handlers"


def call(fn, event=None):
    """The event for a `dispatch` handler: run `fn` with `event`."""
    return {"fn": fn, "event": event or {}}


def assert_ledger(api, rt, exited=False):
    problems = api.check_ledger(exited=exited)
    assert problems == [], "%s\n%s\n%s" % (problems, api.describe(), rt.diag())


def serve_ok(api, rt, payload="after"):
    """One more event must be answered normally: the runtime lives on."""
    key = api.push_event(call("echo", {"v": payload}))
    answer = api.wait_answer(key, 15, alive=rt.alive)
    assert (answer.kind, answer.status, json.loads(answer.body)) == ("response", 202, {"v": payload}), (
        rt.diag()
    )
    return key


class Launcher:
    """Starts runtimes (``flavor`` "script": bootstrap.py on this Python; "binary": the frozen one), each
    in its own session, and kills their process groups at close()."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: list = []

    def __call__(
        self,
        handler: str,
        api_address: str,
        flavor: str = "script",
        env: Optional[Dict[str, Optional[str]]] = None,
        task_root: Path = HOSTILE_DIR,
        stdout_path: Optional[Path] = None,
    ):
        from conftest import runtime_environment, spawn_runtime

        argv = [sys.executable, str(BOOTSTRAP)] if flavor == "script" else [str(frozen.frozen_binary())]
        settings = {
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "LAMBDA_TASK_ROOT": str(task_root),
            "_HANDLER": handler,
        }
        n = len(self.procs)
        out = stdout_path or self.tmp_path / ("rt-%d.stdout" % n)
        err = self.tmp_path / ("rt-%d.stderr" % n)
        cwd = self.tmp_path / ("cwd-%d" % n)
        cwd.mkdir(exist_ok=True)
        rp = spawn_runtime(flavor, argv, runtime_environment(settings, env), cwd, out, err)
        self.procs.append(rp)
        return rp

    def close(self) -> None:
        for p in self.procs:
            p.kill()
