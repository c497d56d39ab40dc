"""Lambda Managed Instances (beyond awslambdaric's own tests): with AWS_LAMBDA_MAX_CONCURRENCY=N the runtime
runs N worker processes, each with its own /next loop and connection. Against the fake Runtime API in its
concurrent mode, which serves several /next at once and accepts an answer for any event in flight."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from typing import Dict, List

import pytest


@pytest.fixture
def lmi_api(fake_api):
    fake_api.concurrency = 64  # more than any test's workers: the runtime sets the pace
    return fake_api


def _start(runtime, n, env=None, handler="lmi.work"):
    full = {"AWS_LAMBDA_MAX_CONCURRENCY": str(n)}
    full.update(env or {})
    return runtime(handler, "ours", env=full)


def _pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def _wait_polling(api, proc, n, timeout=15.0):
    api.wait_for(lambda: api.waiting_next >= n, timeout, "%d workers blocked in /next" % n, proc.alive)


def _answers_by_rid(api, rids) -> Dict[str, List]:
    return {rid: api.answers_for(rid) for rid in rids}


def test_n_workers_poll_concurrently_each_on_its_own_connection(lmi_api, runtime):
    n = 3
    proc = _start(runtime, n)
    _wait_polling(lmi_api, proc, n)
    first_nexts = lmi_api.of_kind("next")
    assert len({r.conn for r in first_nexts}) >= n, lmi_api.describe()
    t0 = time.monotonic()
    rids = [lmi_api.push_event({"sleep": 1.0}) for _ in range(n)]
    lmi_api.wait_for(n, 15, alive=proc.alive)
    elapsed = time.monotonic() - t0
    assert lmi_api.max_in_flight == n, "events in flight at once: %d" % lmi_api.max_in_flight
    assert elapsed < 1.0 * n - 0.5, "%d one-second events took %.1fs: not concurrent" % (n, elapsed)
    bodies = [lmi_api.answers_for(rid)[0].json() for rid in rids]
    pids = {b["pid"] for b in bodies}
    assert len(pids) == n and proc.pid not in pids, bodies
    assert all(b["ppid"] == proc.pid for b in bodies), bodies
    assert [b["rid"] for b in bodies] == rids
    # each answer went back on the connection its worker took the event on
    for rid in rids:
        (answer,) = lmi_api.answers_for(rid)
        assert answer.status == 202
        assert any(r.conn == answer.conn for r in lmi_api.of_kind("next")), answer


def test_every_event_answered_exactly_once(lmi_api, runtime):
    n = 4
    proc = _start(runtime, n)
    _wait_polling(lmi_api, proc, n)
    rids = [lmi_api.push_event({"sleep": 0.02}) for _ in range(40)]
    lmi_api.wait_for(40, 30, alive=proc.alive)
    time.sleep(0.2)  # a duplicate answer would arrive now
    ledger = _answers_by_rid(lmi_api, rids)
    assert all(len(a) == 1 and a[0].kind == "response" and a[0].status == 202 for a in ledger.values()), (
        lmi_api.describe(60)
    )
    assert len(lmi_api.answers) == 40
    pids = {a[0].json()["pid"] for a in ledger.values()}
    assert 1 < len(pids) <= n, pids  # shared among the workers, no more workers than asked
    # each worker counts its own events (module state is per process): the counts add up to 40
    last = {}
    for a in ledger.values():
        body = a[0].json()
        last[body["pid"]] = max(last.get(body["pid"], 0), body["served"])
    assert sum(last.values()) == 40, last
    assert lmi_api.max_in_flight > 1


def test_a_handler_error_stays_in_its_worker(lmi_api, runtime):
    n = 2
    proc = _start(runtime, n)
    _wait_polling(lmi_api, proc, n)
    slow = lmi_api.push_event({"sleep": 1.0})
    bad = lmi_api.push_event({"raise": "only this one"})
    lmi_api.wait_for(2, 15, alive=proc.alive)
    (err,) = lmi_api.answers_for(bad)
    assert err.kind == "error" and err.json()["errorMessage"] == "only this one"
    (ok,) = lmi_api.answers_for(slow)
    assert ok.kind == "response"
    pids_before = {ok.json()["pid"]}
    # the failing worker is still there: the next events are served by the same two processes
    rids = [lmi_api.push_event({"sleep": 0.3}) for _ in range(n)]
    lmi_api.wait_for(4, 15, alive=proc.alive)
    pids_after = {lmi_api.answers_for(r)[0].json()["pid"] for r in rids}
    assert pids_before <= pids_after and len(pids_after) == n


@pytest.mark.slow
def test_a_dead_worker_is_replaced_and_the_others_go_on(lmi_api, runtime):
    n = 3
    proc = _start(runtime, n)
    _wait_polling(lmi_api, proc, n)
    a = lmi_api.push_event({"sleep": 1.0})
    dies = lmi_api.push_event({"sleep": 0.2, "exit": 7})
    c = lmi_api.push_event({"sleep": 1.0})
    lmi_api.wait_for(
        lambda: lmi_api.answers_for(a) and lmi_api.answers_for(c), 15, "the other two answers", proc.alive
    )
    assert lmi_api.answers_for(dies) == [], "a worker that died cannot have answered"
    proc.wait_output("exited with status 7", 10)
    # a replacement polls: n workers wait in /next again
    _wait_polling(lmi_api, proc, n)
    survivors = {lmi_api.answers_for(r)[0].json()["pid"] for r in (a, c)}
    rids = [lmi_api.push_event({"sleep": 0.5}) for _ in range(n)]
    lmi_api.wait_for(lambda: all(lmi_api.answers_for(r) for r in rids), 15, "3 more answers", proc.alive)
    pids = {lmi_api.answers_for(r)[0].json()["pid"] for r in rids}
    assert len(pids) == n and survivors < pids, (survivors, pids)
    assert proc.alive()


@pytest.mark.slow
def test_parent_exits_non_zero_when_workers_keep_dying(lmi_api, runtime):
    n = 2
    proc = _start(runtime, n)
    _wait_polling(lmi_api, proc, n)
    for _ in range(n + 2):
        lmi_api.push_event({"exit": 3})
    code = proc.run_until_exit(20)
    assert code != 0, proc.diag()
    assert "giving up" in proc.output, proc.diag()


@pytest.mark.slow
def test_parent_exits_non_zero_when_workers_cannot_init(lmi_api, runtime):
    """Lambda takes one init error per environment: the first worker that fails reports it, the others only
    log theirs, no worker is started again, and the parent exits 1. Before: one post per worker started (4
    with 2 workers)."""
    proc = _start(runtime, 2, handler="no_such_module.handler")
    code = proc.run_until_exit(20)
    assert code == 1, proc.diag()
    errors = lmi_api.init_errors
    assert len(errors) == 1, lmi_api.describe()
    assert errors[0].json()["errorType"] == "Runtime.ImportModuleError", lmi_api.describe()
    # each worker logs its own
    assert proc.output.count("[ERROR] Runtime.ImportModuleError") == 2, proc.diag()
    assert "starting another" not in proc.output, proc.diag()
    assert _group_members(proc.pid) == [], "workers outlived their parent"


def test_a_worker_that_cannot_init_beside_a_healthy_one(lmi_api, runtime, tmp_path):
    """Only the second worker's import fails: its error is the one reported, the healthy worker is stopped, and
    the parent exits 1 rather than starting workers again."""
    counter = tmp_path / "imports"
    proc = _start(runtime, 2, env={"LMI_FAIL_SECOND_IMPORT": str(counter)}, handler="lmi.work")
    code = proc.run_until_exit(20)
    assert code == 1, proc.diag()
    errors = lmi_api.init_errors
    assert len(errors) == 1 and errors[0].json()["errorMessage"] == "second import fails", lmi_api.describe()
    assert _group_members(proc.pid) == [], "workers outlived their parent"


def test_sigterm_stops_the_workers_and_exits_zero(lmi_api, runtime):
    n = 2
    proc = _start(runtime, n)
    _wait_polling(lmi_api, proc, n)
    rids = [lmi_api.push_event({}) for _ in range(n)]
    lmi_api.wait_for(n, 10, alive=proc.alive)
    workers = {lmi_api.answers_for(r)[0].json()["pid"] for r in rids}
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(10) == 0, proc.diag()
    deadline = time.monotonic() + 5
    while any(_pid_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_pid_alive(p) for p in workers), "workers outlived their parent"


def _group_members(pgid):
    """Live processes of process group `pgid` (the runtime's session: the parent and its workers)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _pid_alive(int(entry)):
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                members.append(int(entry))
    return members


GRACEFUL = {"LAMBDA_GRACEFUL_SHUTDOWN": "1"}


def test_graceful_shutdown_registers_once_from_the_parent_before_the_workers_poll(lmi_api, runtime):
    n = 3
    proc = _start(runtime, n, env=GRACEFUL, handler="shutdown_hooks.handler")
    _wait_polling(lmi_api, proc, n)
    registers = lmi_api.of_kind("ext_register")
    assert [r.status for r in registers] == [200], lmi_api.describe()
    assert registers[0].seq < lmi_api.of_kind("next")[0].seq
    assert lmi_api.extension_named("_python-bootstrap-graceful-shutdown").waiting == 1
    time.sleep(0.2)
    assert "graceful shutdown is off" not in proc.output, proc.diag()


def test_sigterm_waits_for_the_workers_hooks_within_the_grace_period(lmi_api, runtime, tmp_path):
    """Lambda SIGTERMs the runtime (the parent) and SIGKILLs the sandbox 500 ms later: the parent passes the
    signal on and exits only once the workers' hooks (200 ms each here) have run."""
    n = 2
    marker = tmp_path / "marker"
    env = dict(GRACEFUL, SHUTDOWN_MARKER=str(marker), SHUTDOWN_HOOK_MODE="slow")
    proc = _start(runtime, n, env=env, handler="shutdown_hooks.handler")
    _wait_polling(lmi_api, proc, n)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.run_until_exit(5) == 0, proc.diag()
    elapsed = time.monotonic() - t0
    ran = marker.read_text().split() if marker.exists() else []
    assert sorted(ran) == ["one"] * n + ["two"] * n, "hooks done when the parent exited: %s" % ran
    assert elapsed < 0.75, "the parent took %.2fs (Lambda gives 500 ms)" % elapsed
    assert _group_members(proc.pid) == [], "workers outlived their parent"


def test_a_sigterm_right_after_a_fork_reaches_that_worker(lmi_api, tmp_path):
    """A SIGTERM that arrives between fork() and the parent's note of the new worker must still reach it: here
    the parent SIGTERMs itself the moment its first fork returns."""
    from conftest import BOOTSTRAP, HANDLERS_DIR, runtime_environment, spawn_runtime

    wrapper = (
        "import os, runpy, signal, sys\n"
        "fork = os.fork\n"
        "def fork_then_sigterm():\n"
        "    pid = fork()\n"
        "    if pid:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return pid\n"
        "os.fork = fork_then_sigterm\n"
        "sys.argv = [sys.argv[1]]\n"
        "sys.path[0] = os.path.dirname(sys.argv[0])  # as `python bootstrap.py` has it: lambda_bootstrap/ beside\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    settings = {
        "AWS_LAMBDA_RUNTIME_API": lmi_api.address,
        "LAMBDA_TASK_ROOT": str(HANDLERS_DIR),
        "_HANDLER": "lmi.work",
        "AWS_LAMBDA_MAX_CONCURRENCY": "2",
    }
    argv = [sys.executable, "-c", wrapper, str(BOOTSTRAP)]
    env = runtime_environment(settings, None)
    rp = spawn_runtime("ours", argv, env, tmp_path, tmp_path / "out", tmp_path / "err")
    try:
        assert rp.run_until_exit(5) == 0, rp.diag()
        deadline = time.monotonic() + 2
        while _group_members(rp.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _group_members(rp.pid) == [], "a worker forked just before the SIGTERM was left running"
    finally:
        rp.kill()


@pytest.mark.parametrize("arg, status", [(None, 0), (4, 4), ("bye", 1)])
def test_sys_exit_in_a_worker_has_pythons_exit_status(lmi_api, runtime, arg, status):
    """As in one process: sys.exit() is 0, sys.exit(4) is 4, sys.exit("bye") prints "bye" and is 1."""
    proc = _start(runtime, 2)
    _wait_polling(lmi_api, proc, 2)
    lmi_api.push_event({"sys_exit": arg})
    proc.wait_output("exited with status %d; starting another" % status, 10)
    if arg == "bye":
        assert "bye\n" in proc.stderr, proc.diag()


def test_shutdown_hooks_without_opt_in_are_reported_in_lmi(lmi_api, runtime):
    """The parent cannot see hooks that the workers' handler module registers: without the opt-in, nothing
    is registered, and each worker says so."""
    proc = _start(runtime, 2, handler="shutdown_hooks.handler")
    _wait_polling(lmi_api, proc, 2)
    proc.wait_output("LAMBDA_GRACEFUL_SHUTDOWN=1", 5)
    assert lmi_api.of_kind("ext_register") == []


def test_worker_output_goes_to_the_inherited_stdout_without_a_log_socket(lmi_api, runtime):
    n = 2
    proc = _start(runtime, n)
    _wait_polling(lmi_api, proc, n)
    rids = [lmi_api.push_event({"say": "hello-%d" % i, "sleep": 0.3}) for i in range(n)]
    lmi_api.wait_for(n, 10, alive=proc.alive)
    pids = {lmi_api.answers_for(r)[0].json()["pid"] for r in rids}
    out = proc.wait_output("log hello-1", 5)
    for i, rid in enumerate(rids):
        pid = lmi_api.answers_for(rid)[0].json()["pid"]
        assert "print hello-%d pid=%d" % (i, pid) in proc.stdout, out
        assert "stderr hello-%d pid=%d" % (i, pid) in proc.stderr, out
        # TEXT format: [INFO]\ttimestamp\trequest id\tmessage
        assert any(
            line.startswith("[WARNING]\t") and "\t%s\tlog hello-%d" % (rid, i) in line
            for line in out.splitlines()
        ), out
    assert len(pids) == n


class LogSocket:
    """A unix socket server standing in for _LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET: it keeps what each
    connection sends."""

    def __init__(self, path):
        self.path = str(path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(self.path)
        self.server.listen(64)
        self.server.settimeout(0.1)
        self.conns: List[bytearray] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            buf = bytearray()
            with self._lock:
                self.conns.append(buf)
            t = threading.Thread(target=self._read, args=(conn, buf), daemon=True)
            self._threads.append(t)
            t.start()

    def _read(self, conn, buf):
        conn.settimeout(0.1)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                with self._lock:
                    buf += data

    def text(self) -> str:
        with self._lock:
            return b"".join(bytes(b) for b in self.conns).decode("utf-8", "replace")

    def wait_text(self, needle, timeout=10.0, proc=None) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline:
                pytest.fail(
                    "%r not sent to the log socket; it got:\n%s\n%s"
                    % (needle, self.text(), proc.diag() if proc is not None else "")
                )
            time.sleep(0.02)
        return self.text()

    def close(self):
        self._stop.set()
        with contextlib.suppress(OSError):
            self.server.close()
        for t in self._threads:
            t.join(2)


@pytest.fixture
def log_socket(tmp_path):
    # AF_UNIX paths are limited to ~107 bytes: tmp_path can be longer.
    import tempfile

    d = tempfile.mkdtemp(prefix="lmi-")
    s = LogSocket(os.path.join(d, "log.sock"))
    try:
        yield s
    finally:
        s.close()
        with contextlib.suppress(OSError):
            os.unlink(s.path)
            os.rmdir(d)


def test_worker_output_goes_to_the_log_socket(lmi_api, runtime, log_socket):
    n = 2
    proc = _start(runtime, n, env={"_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET": log_socket.path})
    _wait_polling(lmi_api, proc, n)
    rids = [lmi_api.push_event({"say": "sock-%d" % i, "sleep": 0.3}) for i in range(n)]
    lmi_api.wait_for(n, 10, alive=proc.alive)
    log_socket.wait_text("print sock-1", proc=proc)
    assert len(log_socket.conns) >= 2 * n, "stdout and stderr of each worker: %d connections" % len(
        log_socket.conns
    )
    text = log_socket.wait_text("log sock-1", 5, proc=proc)
    for i, rid in enumerate(rids):
        assert "print sock-%d" % i in text and "stderr sock-%d" % i in text
        assert any("\t%s\tlog sock-%d" % (rid, i) in line for line in text.splitlines()), text
    time.sleep(0.2)
    assert "sock-" not in proc.stdout, "worker output leaked to the inherited stdout:\n" + proc.stdout


def test_max_concurrency_1_is_one_process_not_a_pool_of_one(lmi_api, runtime, log_socket):
    """cargo-lambda always sets AWS_LAMBDA_MAX_CONCURRENCY=1: the runtime serves in its own process, no worker
    forked, with its output on the platform's log socket when there is one, as a worker's."""
    proc = _start(runtime, 1, env={"_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET": log_socket.path})
    _wait_polling(lmi_api, proc, 1)
    rid = lmi_api.push_event({"say": "solo"})
    served = lmi_api.wait_answer(rid, 10, alive=proc.alive).json()
    assert served["pid"] == proc.pid, "served by a forked worker"
    assert _group_members(proc.pid) == [proc.pid]
    assert "print solo" in log_socket.wait_text("print solo", proc=proc)
    assert "solo" not in proc.stdout + proc.stderr, proc.diag()


def test_worker_logs_follow_the_json_log_format(lmi_api, runtime, log_socket):
    n = 2
    env = {"_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET": log_socket.path, "AWS_LAMBDA_LOG_FORMAT": "JSON"}
    proc = _start(runtime, n, env=env)
    _wait_polling(lmi_api, proc, n)
    rids = [lmi_api.push_event({"say": "json-%d" % i, "sleep": 0.3}) for i in range(n)]
    lmi_api.wait_for(n, 10, alive=proc.alive)
    text = log_socket.wait_text("log json-1", proc=proc)
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    for i, rid in enumerate(rids):
        (rec,) = [r for r in records if str(r.get("message", "")).startswith("log json-%d " % i)]
        assert rec["level"] == "WARNING" and rec["requestId"] == rid and rec["logger"] == "lmi", rec


POOL_EVENT = "runtime_worker_pool_initializing"
POOL_RECORD_CASES = {
    # name: (log format, log level, telemetry fd, where the record goes: "stdout", "fd" or None)
    "json-debug": ("JSON", "DEBUG", False, "stdout"),
    "text-debug": ("TEXT", "DEBUG", False, "stdout"),
    "json-debug-fd": ("JSON", "DEBUG", True, "fd"),
    "json-info": ("JSON", "INFO", False, None),
}


@pytest.mark.parametrize("case", sorted(POOL_RECORD_CASES))
def test_worker_pool_record_before_the_fork(lmi_api, runtime, both, telemetry_pipe, case):
    """awslambdaric's parent logs one DEBUG record through the root logger before it forks, its message the
    object {"event": "runtime_worker_pool_initializing", "workerCount": N, "executionEnvironmentMaxConcurrency":
    N}: on stdout, or as a frame of the JSON DEBUG type on the telemetry fd; nothing above DEBUG."""
    n = 2
    log_format, level, with_fd, where = POOL_RECORD_CASES[case]
    env = {
        "AWS_LAMBDA_MAX_CONCURRENCY": str(n),
        "AWS_LAMBDA_LOG_FORMAT": log_format,
        "AWS_LAMBDA_LOG_LEVEL": level,
    }
    fds = [telemetry_pipe.fd] if with_fd else []
    if with_fd:
        env["_LAMBDA_TELEMETRY_LOG_FD"] = str(telemetry_pipe.fd)
    proc = runtime("lmi.work", both, env=env, pass_fds=fds)
    telemetry_pipe.close_write_end()
    _wait_polling(lmi_api, proc, n)  # the workers poll: the parent logged before it forked them
    if where == "fd":
        frames = telemetry_pipe.wait_frames(lambda fs: any(POOL_EVENT.encode() in m for _, _, m in fs), 10)
    else:
        time.sleep(0.2)  # the pipe's reader catches up
        frames = telemetry_pipe.frames()
    framed = [(ftype, m.decode()) for ftype, _, m in frames if POOL_EVENT.encode() in m]
    printed = [line for line in proc.stdout.splitlines(keepends=True) if POOL_EVENT in line]
    if where is None:
        assert framed == [] and printed == [], proc.diag()
        return
    if where == "fd":
        assert len(framed) == 1 and printed == [], (framed, printed)
        ((frame_type, text),) = framed
        assert frame_type == 0xA55A000A, hex(frame_type)
    else:
        assert len(printed) == 1 and framed == [], (framed, printed)
        (text,) = printed
    message = {"event": POOL_EVENT, "workerCount": n, "executionEnvironmentMaxConcurrency": n}
    if log_format == "TEXT":
        stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
        assert re.fullmatch(r"\[DEBUG\]\t%s\t\t%s\n" % (stamp, re.escape(str(message))), text), repr(text)
        return
    record = json.loads(text)
    assert list(record) == ["timestamp", "level", "message", "logger", "requestId"], record
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record.pop("timestamp")), text
    assert record == {"level": "DEBUG", "message": message, "logger": "root", "requestId": ""}, record
    assert text.endswith("}\n"), repr(text)


def test_worker_errors_are_logged_to_the_log_socket(lmi_api, runtime, log_socket):
    n = 2
    proc = _start(runtime, n, env={"_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET": log_socket.path})
    _wait_polling(lmi_api, proc, n)
    rid = lmi_api.push_event({"raise": "socket-bound failure"})
    lmi_api.wait_answer(rid, 10, alive=proc.alive)
    text = log_socket.wait_text("socket-bound failure", proc=proc)
    assert "[ERROR] RuntimeError: socket-bound failure" in text, text


def test_fake_concurrent_mode_self_test(lmi_api):
    """The harness itself: two /next outstanding at once get different events; answers are taken for any event
    in flight, once."""
    import http.client

    from runtime_emulator import INVOCATION_PREFIX, NEXT_PATH

    conns = [http.client.HTTPConnection("127.0.0.1", lmi_api.port, timeout=5) for _ in range(2)]
    results = {}

    def poll(i):
        conns[i].request("GET", NEXT_PATH)
        resp = conns[i].getresponse()
        resp.read()
        results[i] = resp.getheader("Lambda-Runtime-Aws-Request-Id")

    threads = [threading.Thread(target=poll, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    lmi_api.wait_for(lambda: lmi_api.waiting_next == 2, 5, "two blocked /next")
    rids = [lmi_api.push_event({}) for _ in range(2)]
    for t in threads:
        t.join(5)
    assert sorted(results.values()) == sorted(rids) and lmi_api.max_in_flight == 2
    statuses = []
    for i, rid in (
        (1, results[0]),
        (0, results[1]),
        (0, results[1]),
        (0, "unknown"),
    ):  # answered out of order
        conns[i].request("POST", INVOCATION_PREFIX + "%s/response" % rid, body=b"1")
        resp = conns[i].getresponse()
        resp.read()
        statuses.append(resp.status)
    assert statuses == [202, 202, 400, 400]
    assert lmi_api.in_flight() == []
