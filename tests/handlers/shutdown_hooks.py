"""Graceful-shutdown hooks for tests/test_graceful_shutdown.py (must import on Python 3.9+).

Importing this module registers two hooks with `bootstrap.on_shutdown`, which opts the function in. Each hook
appends its name to the file $SHUTDOWN_MARKER (when set) and prints a line. $SHUTDOWN_HOOK_MODE changes the
newest hook: "raise" makes it fail, "hang" makes it sleep for a minute.
"""

import os
import sys
import time

import bootstrap  # the running runtime registers itself under this name


def _mark(name):
    path = os.environ.get("SHUTDOWN_MARKER")
    if path:
        with open(path, "a") as f:
            f.write(name + "\n")


@bootstrap.on_shutdown
def first_registered():
    _mark("one")
    print("hook one ran")


@bootstrap.on_shutdown
def second_registered():
    mode = os.environ.get("SHUTDOWN_HOOK_MODE", "")
    if mode == "hang":
        _mark("two-hanging")
        time.sleep(60)
    _mark("two")
    sys.stdout.write("hook two ran, no newline")  # must still be flushed before exit
    if mode == "raise":
        raise RuntimeError("hook two failed")


def handler(event, context):
    print("invoked in pid %d" % os.getpid())
    return {"pid": os.getpid(), "hooks": len(bootstrap._shutdown_hooks)}
