"""A sample function: `_HANDLER=app.handler`.

It echoes the event with a few facts from the context, so that a smoke test
can see that the event, the context and the Python version all came through.
"""

import logging
import platform

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    logger.info("got an event with %d keys", len(event) if isinstance(event, dict) else 0)
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError(str(event["fail"]))
    return {
        "ok": True,
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "python": platform.python_version(),
    }
