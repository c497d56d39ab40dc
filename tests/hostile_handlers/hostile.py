"""Handlers that misbehave on purpose (the reliability tests). Standard library only, Python 3.9+, so that
the frozen bootstrap can load them too.

``dispatch`` calls the handler named by event["fn"] with event.get("event", {}): one runtime process
serves a sequence of hostile invocations.
"""

import asyncio
import concurrent.futures
import io
import json
import logging
import multiprocessing.pool
import os
import sys
import threading
import time

logger = logging.getLogger()


def dispatch(event, context):
    return globals()[event["fn"]](event.get("event", {}), context)


def echo(event, context):
    return event


def ok(event, context):
    return "ok"


def raise_message(event, context):
    raise ValueError(event["message"])


def info(event, context):
    """What the runtime handed over: the context's header-derived fields and the event's type."""
    cc = context.client_context
    return {
        "rid": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "tenant": context.tenant_id,
        "remaining": context.get_remaining_time_in_millis(),
        "deadline": context._epoch_deadline_time_in_ms,
        "custom": cc.custom if cc is not None else None,
        "cognito": context.identity.cognito_identity_id,
        "event_type": type(event).__name__,
        "event": event.decode("latin-1") if isinstance(event, bytes) else event,
    }


def event_summary(event, context):
    """Describe a big event without sending it back."""
    data = event if isinstance(event, (bytes, str)) else json.dumps(event)
    return {"type": type(event).__name__, "len": len(data)}


# -- exceptions that are hard to report ------------------------------------


class BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


def str_raises(event, context):
    raise BadStr("hidden")


def deep_recursion(event, context):
    """Recurse 10,000 deep: past the default recursion limit, so RecursionError."""

    def down(n):
        return n if n == 0 else down(n - 1) + 1

    return down(10_000)


def deep_stack_error(event, context):
    """A ValueError raised under 10,000 frames (the recursion limit raised to allow it)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 12_000))

    def down(n):
        if n == 0:
            raise ValueError("bottom of a 10000-frame stack")
        return down(n - 1)

    try:
        down(10_000)
    finally:
        sys.setrecursionlimit(old)


def circular_cause(event, context):
    a = ValueError("first")
    b = KeyError("second")
    a.__cause__ = b
    b.__cause__ = a
    raise a


class Ünicode(Exception):  # a class name that is not ASCII
    pass


def non_ascii_exception_class(event, context):
    raise Ünicode("a class name that is not ASCII")


# -- results that are hard to encode ---------------------------------------


def huge_class_name(event, context):
    """An exception class whose name alone is 70,000 characters."""
    raise type("E" * 70_000, (Exception,), {})("a huge class name")


def ret_nan(event, context):
    return float("nan")


def ret_infinity(event, context):
    return {"inf": float("inf"), "-inf": float("-inf")}


def ret_big_int(event, context):
    return 10 ** event.get("digits", 100)


def ret_self_ref(event, context):
    d = {"a": 1}
    d["self"] = d
    return d


def ret_generator(event, context):
    return (part for part in ("one,", "two,", "three"))


def ret_bad_generator(event, context):
    return iter_numbers()


def iter_numbers():
    yield 1
    yield 2


def ret_failing_generator(event, context):
    def parts():
        yield b"first chunk;"
        raise ValueError("failed mid-stream")

    return parts()


def ret_set(event, context):
    return {1, 2, 3}


class BrokenRepr:
    def __repr__(self):
        raise RuntimeError("no repr")

    __str__ = __repr__


def ret_broken_repr(event, context):
    return {"thing": BrokenRepr()}


# -- leaving the process ---------------------------------------------------


def sys_exit(event, context):
    sys.exit(event.get("code", 0))


def os_exit(event, context):
    os._exit(event.get("code", 1))


def keyboard_interrupt(event, context):
    raise KeyboardInterrupt


class CustomBase(BaseException):
    pass


def base_exception(event, context):
    raise CustomBase("not an Exception")


# -- damaging the process --------------------------------------------------


def close_stdout(event, context):
    sys.stdout.close()
    return "closed"


def close_fd1(event, context):
    os.close(1)
    return "fd 1 closed"


def replace_stdout(event, context):
    sys.stdout = io.StringIO()
    sys.stderr = io.StringIO()
    return "replaced"


def print_line(event, context):
    print(event.get("text", "printed"))
    return "printed"


def log_line(event, context):
    logger.warning(event.get("text", "logged"))
    context.log(event.get("text", "logged") + " via context.log")
    return "logged"


def write_50mb(event, context):
    line = "z" * 1023 + "\n"
    sys.stdout.write(line * (50 * 1024))
    return "wrote 50 MB"


def chdir_to(event, context):
    os.chdir(event["path"])
    return os.getcwd()


def chdir_removed(event, context):
    path = event["path"]
    os.makedirs(path, exist_ok=True)
    os.chdir(path)
    os.rmdir(path)
    raise ValueError("cwd is gone")


def getcwd(event, context):
    try:
        return os.getcwd()
    except OSError as exc:
        return "getcwd failed: %s" % exc


def environ_clear(event, context):
    os.environ.clear()
    return "cleared"


def environ_set(event, context):
    os.environ.update(event)
    return "set"


def environ_get(event, context):
    return {
        "function_name": context.function_name,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "keys": sorted(os.environ)[:50],
    }


def pyinstaller_environ(event, context):
    """The variables PyInstaller's bootloader sets (_PYI_*, _MEI*), as the handler and a child process see
    them."""
    import subprocess

    child = subprocess.run(
        ["/usr/bin/env"], stdout=subprocess.PIPE, text=True, check=True
    ).stdout.splitlines()
    return {
        "handler": sorted(k for k in os.environ if k.startswith(("_PYI_", "_MEI"))),
        "child": sorted(line.split("=", 1)[0] for line in child if line.startswith(("_PYI_", "_MEI"))),
    }


def syspath_clear(event, context):
    sys.path[:] = []
    return "sys.path cleared"


def syspath_replace(event, context):
    sys.path = ["/nonexistent"]
    return "sys.path replaced"


def thread_logs_later(event, context):
    def later():
        time.sleep(event.get("delay", 0.3))
        logger.warning("late thread speaking")

    threading.Thread(target=later, daemon=True).start()
    return "returned"


_pools = {}


def pooled_logs(event, context):
    """{"pool": "executor" | "threadpool" | "default_executor", "tag": t}: log "pooled <t>" from a worker thread
    of a pool made at the first call and kept (a concurrent.futures.ThreadPoolExecutor, a
    multiprocessing.pool.ThreadPool, or asyncio's default executor behind run_in_executor)."""
    kind, tag = event["pool"], event["tag"]
    if kind == "default_executor":

        async def in_executor():
            await asyncio.get_running_loop().run_in_executor(None, logger.warning, "pooled %s", tag)
            return "logged"

        return in_executor()
    if kind not in _pools:
        _pools[kind] = (
            concurrent.futures.ThreadPoolExecutor(max_workers=1)
            if kind == "executor"
            else multiprocessing.pool.ThreadPool(1)
        )
    pool = _pools[kind]
    if kind == "executor":
        pool.submit(logger.warning, "pooled %s", tag).result()
    else:
        pool.apply(logger.warning, ("pooled %s", tag))
    return "logged"


def sleeps(event, context):
    time.sleep(event.get("seconds", 1))
    return {"slept": event.get("seconds", 1), "remaining": context.get_remaining_time_in_millis()}
