"""A handler module that empties sys.path when it is imported (issue 18, point 8): whatever the runtime needs
after that must already be imported. EMPTIES_SYS_PATH_RAISE=1 makes the import fail afterwards."""

import os
import sys

sys.path[:] = []
if os.environ.get("EMPTIES_SYS_PATH_RAISE") == "1":
    raise ValueError("failed after emptying sys.path")


def handler(event, context):
    return {"sys.path": sys.path, "event": event}


def fails_midstream(event, context):
    """One chunk, then a failure: the error travels in the trailers (base64)."""
    yield "first"
    raise ValueError("mid-stream, with sys.path empty")
