import os

os.environ["DOES_NOT_EXIST"]  # raises KeyError at import


def handler(event, context):
    return 1
