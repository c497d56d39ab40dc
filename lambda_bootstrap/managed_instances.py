"""Lambda Managed Instances (beyond awslambdaric): several worker processes, each with its own /next loop."""

import contextlib
import logging
import os
import signal
import sys
import time
import traceback

from lambda_bootstrap import logs
from lambda_bootstrap.shutdown import SHUTDOWN_WORKERS_SECONDS, on_sigterm, start_shutdown_extension

WORKER_RESTART_WINDOW_SECONDS = 30.0
INIT_ERROR_GRACE_SECONDS = 1.0  # after a worker's init error, how long the other workers get to exit
_init_error_token = None  # with workers: a pipe holding one byte until a worker reports an init error


def claim_init_error():
    """Whether this process reports its init error: Lambda takes one per environment. A single process
    always does; of several workers, the first to fail (it takes the pipe's byte); the others only log."""
    if _init_error_token is None:
        return True
    try:
        return os.read(_init_error_token[0], 1) == b"."
    except BlockingIOError:
        return False


def init_error_claimed():
    import select

    return not select.select([_init_error_token[0]], [], [], 0)[0]


def run_workers(config, count, serve):
    """N worker processes, each running `serve(config)`: its own /next loop and connection. A worker that
    dies is replaced; when they keep dying, or one could not initialise, the parent stops with exit 1."""
    global _init_error_token
    # awslambdaric's parent announces the pool once, before it forks (seen at DEBUG only).
    logging.getLogger().debug(
        {
            "event": "runtime_worker_pool_initializing",
            "workerCount": count,
            "executionEnvironmentMaxConcurrency": count,
        }
    )
    workers, deaths = {}, []
    _init_error_token = os.pipe()  # the write end stays open, so that an empty pipe is not readable
    os.write(_init_error_token[1], b".")
    os.set_blocking(_init_error_token[0], False)
    if config.graceful_shutdown:  # once, before any worker polls: registration closes when init completes
        start_shutdown_extension(config.api_address)

    def start(slot):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # held until the new worker is noted
        try:
            pid = os.fork()
            if pid == 0:
                os._exit(worker_main(config, serve))
            workers[pid] = slot
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def stop_all(signum=None, frame=None):
        if signum is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
        if signum is not None:  # Lambda's SIGTERM: the workers' hooks run before the parent leaves
            reap(workers, SHUTDOWN_WORKERS_SECONDS)
            on_sigterm(signum, frame)

    signal.signal(signal.SIGTERM, stop_all)
    for slot in range(count):
        start(slot)
    while True:
        pid, status = os.wait()
        slot = workers.pop(pid, None)
        if slot is None:
            continue
        now = time.monotonic()
        deaths = [t for t in deaths if now - t < WORKER_RESTART_WINDOW_SECONDS] + [now]
        code = os.waitstatus_to_exitcode(status)
        if init_error_claimed():
            # Lambda restarts the environment after an init error: no new worker. The one reporting it may
            # still be posting: the workers get a moment to exit before they are stopped.
            logs.LOG_SINK.write_runtime_message(
                "a worker could not initialise (worker %d: status %d); stopping" % (slot, code)
            )
            reap(workers, INIT_ERROR_GRACE_SECONDS)
            stop_all()
            return 1
        if len(deaths) > count:
            logs.LOG_SINK.write_runtime_message(
                "workers keep exiting (worker %d: status %d); giving up" % (slot, code)
            )
            stop_all()
            return 1
        logs.LOG_SINK.write_runtime_message(
            "worker %d exited with status %d; starting another" % (slot, code)
        )
        start(slot)


def reap(workers, seconds):
    """Wait, at most `seconds`, for the workers to exit."""
    deadline = time.monotonic() + seconds
    while workers and time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            workers.pop(pid, None)
        else:
            time.sleep(0.005)


def worker_main(config, serve):
    """One LMI worker: its output to the platform's log socket when there is one, then the usual loop."""
    signal.signal(signal.SIGTERM, on_sigterm)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by the parent around the fork
    try:
        if config.log_socket:
            send_output_to(config.log_socket)
        return serve(config)
    except SystemExit as exc:
        return exit_status(exc)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()


def send_output_to(log_socket):
    """stdout and stderr to the platform's log socket (Managed Instances): a connection each."""
    import socket

    for fd in (1, 2):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(log_socket)
        os.dup2(sock.fileno(), fd)
        sock.close()
    logs.LOG_SINK.write_to(logs.own_stdout())  # its copy of fd 1 was made before


def exit_status(exc):
    """Python's status for an uncaught SystemExit: None is 0, an int is itself, anything else is printed and
    is 1."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    sys.stderr.write("%s\n" % (exc.code,))
    return 1
