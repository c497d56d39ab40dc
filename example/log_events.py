"""A sample external extension: logs every INVOKE and SHUTDOWN event it receives.

Run by Lambda from /opt/extensions/log-events (see example/extensions/log-events), which starts
`bootstrap --extension log-events log_events.on_event`.
"""

import json
import sys


def on_event(event):
    summary = {k: event.get(k) for k in ("eventType", "requestId", "deadlineMs", "shutdownReason") if k in event}
    sys.stdout.write("[log-events] %s\n" % json.dumps(summary))
