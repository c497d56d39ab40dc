"""Handlers for tests/test_lmi.py (Lambda Managed Instances workers; must import on Python 3.9+)."""

import logging
import os
import sys
import time

logger = logging.getLogger("lmi")
_served = 0  # per process: each worker counts its own events

if os.environ.get("LMI_FAIL_SECOND_IMPORT"):
    # Every worker imports this module: the first creates the file, any later one fails to import.
    try:
        os.close(os.open(os.environ["LMI_FAIL_SECOND_IMPORT"], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        raise ValueError("second import fails") from None


def work(event, context):
    """{"sleep": s, "exit": code, "sys_exit": arg, "raise": msg, "say": text}; returns who served the event."""
    global _served
    _served += 1
    if event.get("say"):
        print("print %s pid=%d" % (event["say"], os.getpid()))
        sys.stderr.write("stderr %s pid=%d\n" % (event["say"], os.getpid()))
        logger.warning("log %s pid=%d", event["say"], os.getpid())
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit") is not None:
        os._exit(event["exit"])
    if "sys_exit" in event:
        sys.exit(event["sys_exit"])
    if event.get("raise"):
        raise RuntimeError(event["raise"])
    return {"pid": os.getpid(), "ppid": os.getppid(), "rid": context.aws_request_id, "served": _served}
