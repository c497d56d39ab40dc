"""Extension callbacks for tests/test_extensions.py (`bootstrap --extension NAME ext_callbacks.FUNCTION`)."""

import json
import os


def record(event):
    """Append each event to $EXT_EVENTS (one JSON line) and print it."""
    with open(os.environ["EXT_EVENTS"], "a") as f:
        f.write(json.dumps(event) + "\n")
    print("[record] %s" % event.get("eventType"))


def fails_on_invoke(event):
    if event.get("eventType") == "INVOKE":
        raise ValueError("callback failed on %s" % event.get("requestId"))
