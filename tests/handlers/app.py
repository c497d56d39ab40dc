"""Fixture handlers for the integration tests (must import on Python 3.9+)."""

import asyncio
import decimal
import logging
import os
import sys
import threading
import time

# Count imports (init runs once per process): append our pid to $IMPORT_LOG.
if os.environ.get("IMPORT_LOG"):
    with open(os.environ["IMPORT_LOG"], "a") as _f:
        _f.write("%d\n" % os.getpid())

logger = logging.getLogger()

not_callable = "i am not callable"


class MyAppError(Exception):
    pass


def echo(event, context):
    return event


def describe_event(event, context):
    """Return the event's Python type and value (bytes as latin-1 text)."""
    value = event.decode("latin-1") if isinstance(event, (bytes, bytearray)) else event
    return {"type": type(event).__name__, "value": value}


def event_len(event, context):
    return {"len": len(event["data"]), "head": event["data"][:10]}


def big_response(event, context):
    return "y" * event["n"]


def raises(event, context):
    raise ValueError("boom")


def raises_custom(event, context):
    raise MyAppError("custom failure")


def raises_empty(event, context):
    raise RuntimeError()


def raises_big(event, context):
    """An exception with a long message and a deep stack (a big X-Ray cause)."""

    def recurse(n):
        if n == 0:
            raise ValueError("x" * event.get("msg_len", 200000))
        return recurse(n - 1)

    return recurse(event.get("depth", 50))


def raises_chained(event, context):
    try:
        {}["inner"]
    except KeyError as e:
        raise ValueError("outer") from e


def context_dump(event, context):
    cc = context.client_context
    client = cc.client if cc is not None else None
    ident = context.identity
    return {
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "function_name": context.function_name,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "memory_limit_in_mb_type": type(context.memory_limit_in_mb).__name__,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "tenant_id": context.tenant_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "remaining_ms_type": type(context.get_remaining_time_in_millis()).__name__,
        "identity_is_none": ident is None,
        "cognito_identity_id": getattr(ident, "cognito_identity_id", "MISSING"),
        "cognito_identity_pool_id": getattr(ident, "cognito_identity_pool_id", "MISSING"),
        "client_context_is_none": cc is None,
        "custom": getattr(cc, "custom", "MISSING") if cc is not None else None,
        "env": getattr(cc, "env", "MISSING") if cc is not None else None,
        "client_is_none": client is None,
        "client": (
            {
                k: getattr(client, k, "MISSING")
                for k in (
                    "installation_id",
                    "app_title",
                    "app_version_name",
                    "app_version_code",
                    "app_package_name",
                )
            }
            if client is not None
            else None
        ),
        "cc_has_w3c": cc is not None and hasattr(cc, "w3c"),
        "w3c": context.w3c(),
    }


def trace_env(event, context):
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID"), "rid": context.aws_request_id}


def env_get(event, context):
    return {k: os.environ.get(k) for k in event["names"]}


def ret_decimal(event, context):
    return {"d": decimal.Decimal("3.14159"), "t": decimal.Decimal("1.10"), "big": decimal.Decimal("1e400")}


def ret_bytes(event, context):
    return b"\x00\x01binary\xff"


def ret_none(event, context):
    return None


def ret_nan(event, context):
    return {"n": float("nan"), "dn": decimal.Decimal("NaN"), "inf": float("inf")}


def ret_set(event, context):
    return {1, 2}


def ret_unicode(event, context):
    return {"price": "\u00a31.00", "snow": "\u2603", "emoji": "\U0001f600"}


def ret_nested(event, context):
    return {"a": 1, "b": [1, 2, {"c": None}], "t": (1, "x")}


_loop_seen = []


async def async_handler(event, context):
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    _loop_seen.append(id(loop))
    return {"awaited": True, "loop_ids": sorted(set(_loop_seen)), "n": len(_loop_seen)}


def log_info(event, context):
    logger.info(event.get("msg", "info msg"))
    return "ok"


def log_levels(event, context):
    logger.debug("debug msg")
    logger.info("info msg")
    logger.warning("warning msg")
    logger.error("error msg")
    return "ok"


def log_json_variants(event, context):
    logger.info({"dict": "message", "n": 1})
    logger.info("with extra", extra={"customKey": "v"})
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("caught it")
    return "ok"


def log_exception_then_info(event, context):
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logger.exception("caught it")
    logger.info("after the exception")
    return "ok"


def log_from_thread(event, context):
    t = threading.Thread(target=lambda: logger.info("from thread"))
    t.start()
    t.join(10)
    return "ok"


_parked = {}


def log_from_thread_later(event, context):
    """First call: park a thread that logs when released. Second call: release it."""
    if event.get("release"):
        ev, t = _parked.pop("t")
        ev.set()
        t.join(10)
        logger.info("released by the next invocation")
        return "released"
    ev = threading.Event()

    def later():
        ev.wait(10)
        logger.info("parked thread speaking")

    t = threading.Thread(target=later)
    t.start()
    _parked["t"] = (ev, t)
    return "parked"


def context_log(event, context):
    """{"messages": [...]}: each through context.log(), then a CRITICAL record (kept at every level)."""
    for message in event["messages"]:
        context.log(message)
    logger.critical("after context.log")
    return "ok"


def printer(event, context):
    print("printed line")
    return "ok"


def sleeps(event, context):
    time.sleep(event.get("seconds", 1))
    return "slept"


def exits(event, context):
    sys.exit(event.get("code", 3))


def dispatch(event, context):
    """Call the handler named by event["fn"] with event.get("event", {}): one process
    can then serve many kinds of invocation."""
    return globals()[event["fn"]](event.get("event", {}), context)
