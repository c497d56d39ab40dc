"""The trivial benchmark handler: `_HANDLER=trivial_app.handler`."""


def handler(event, context):
    return {"ok": True}
