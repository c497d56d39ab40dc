"""A sample external extension: logs every INVOKE and SHUTDOWN event it receives.

Run by Lambda from /opt/extensions/log-events (see example/extensions/log-events), which starts
`bootstrap --extension log-events log_events.on_event`.
"""

import json
import sys


def on_event(event):
    keys = ("eventType", "requestId", "deadlineMs", "shutdownReason")
    summary = {k: event[k] for k in keys if k in event}
    sys.stdout.write("[log-events] %s\n" % json.dumps(summary))
