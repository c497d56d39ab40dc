"""A handler module that uses bootstrap.ExtensionsApiClient at import, as an internal extension, for the RIE
end-to-end test in tests/test_extensions.py (must import on Python 3.9+).

At import it asks to register "probe-shutdown" for INVOKE and SHUTDOWN (internal extensions may not have
SHUTDOWN: the answer is kept), then registers "probe" for INVOKE and polls its events in a thread, appending
each to $EXT_EVENTS.
"""

import json
import os
import threading

import bootstrap

_address = os.environ["AWS_LAMBDA_RUNTIME_API"]
refused = None
try:
    bootstrap.ExtensionsApiClient(_address).register("probe-shutdown", ["INVOKE", "SHUTDOWN"])
except Exception as exc:
    refused = "%s: %s" % (type(exc).__name__, exc)

client = bootstrap.ExtensionsApiClient(_address)
registered = client.register("probe", ["INVOKE"])


def _poll():
    while True:
        event = client.next_event()
        with open(os.environ["EXT_EVENTS"], "a") as f:
            f.write(json.dumps(event) + "\n")


threading.Thread(target=_poll, daemon=True).start()


def handler(event, context):
    return {
        "refused": refused,
        "registered": registered,
        "identifier": client.identifier,
        "request_id": context.aws_request_id,
    }
