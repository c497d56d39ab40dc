"""Graceful-shutdown hooks for tests/test_graceful_shutdown.py (must import on Python 3.9+).

Importing this module registers two hooks with `bootstrap.on_shutdown`, which opts the function in. Each hook
appends its name to the file $SHUTDOWN_MARKER (when set) and prints a line. $SHUTDOWN_HOOK_MODE changes the
newest hook: "raise" makes it fail, "hang" makes it sleep for a minute, "slow" makes it take 200 ms.
"""

import os
import sys
import time

import bootstrap  # the running runtime registers itself under this name
from lambda_bootstrap import shutdown  # the hooks the runtime holds


def _mark(name):
    path = os.environ.get("SHUTDOWN_MARKER")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


@bootstrap.on_shutdown
def first_registered():
    _mark("one")
    # Runs last, and its bytes wait in stdout's buffer: only the flush before the exit gets them out.
    sys.stdout.buffer.write(b"hook one ran, no newline")


@bootstrap.on_shutdown
def second_registered():
    mode = os.environ.get("SHUTDOWN_HOOK_MODE", "")
    if mode == "hang":
        _mark("two-hanging")
        time.sleep(60)
    if mode == "slow":
        time.sleep(0.2)
    _mark("two")
    print("hook two ran")
    if mode == "raise":
        raise RuntimeError("hook two failed")


def handler(event, context):
    print("invoked in pid %d" % os.getpid())
    return {"pid": os.getpid(), "hooks": len(shutdown.hooks)}
