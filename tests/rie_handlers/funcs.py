"""Handlers for tests/test_rie_e2e.py (LAMBDA_TASK_ROOT=tests/rie_handlers)."""

import os
import time

_count = 0


class CustomError(Exception):
    pass


def pid(event, context):
    """The process id and how many times this process has been invoked (state kept warm)."""
    global _count
    _count += 1
    return {"pid": os.getpid(), "count": _count, "request_id": context.aws_request_id}


def boom(event, context):
    raise CustomError("boom: " + str(event.get("msg", "")))


def remaining(event, context):
    return {
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
    }


def sleep(event, context):
    time.sleep(float(event.get("seconds", 0)))
    return {"slept": event.get("seconds", 0), "pid": os.getpid()}
