import requests_not_here  # noqa: F401


def handler(event, context):
    return 1
