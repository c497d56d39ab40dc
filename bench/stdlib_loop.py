"""A plain stdlib Lambda runtime loop: the reference row of the benchmark.

http.client on one keep-alive connection, json, importlib; no error-format niceties.
Usage: ``python bench/stdlib_loop.py [module.function]`` (defaults to ``$_HANDLER``).
"""

import http.client
import importlib
import json
import os
import sys
import time


class Context:
    def __init__(self, headers):
        self.aws_request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self._deadline_ms = int(headers.get("Lambda-Runtime-Deadline-Ms") or 0)
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")

    def get_remaining_time_in_millis(self):
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main():
    spec = sys.argv[1] if len(sys.argv) > 1 else os.environ["_HANDLER"]
    root = os.environ.get("LAMBDA_TASK_ROOT")
    if root and root not in sys.path:
        sys.path.insert(0, root)
    modname, fname = spec.rsplit(".", 1)
    handler = getattr(importlib.import_module(modname.replace("/", ".")), fname)
    host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80))
    base = "/2018-06-01/runtime/invocation/"
    json_ct = {"Content-Type": "application/json"}
    while True:
        conn.request("GET", base + "next")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit(f"/next answered {resp.status}")
        headers = resp.headers
        ctx = Context(headers)
        event = json.loads(body) if headers.get("Content-Type", "").startswith("application/json") else body
        try:
            out = json.dumps(handler(event, ctx)).encode()
            path = base + ctx.aws_request_id + "/response"
        except Exception as exc:
            out = json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}).encode()
            path = base + ctx.aws_request_id + "/error"
        conn.request("POST", path, out, json_ct)
        resp = conn.getresponse()
        resp.read()
        if resp.status >= 500:
            sys.exit(f"{path} answered {resp.status}")


if __name__ == "__main__":
    main()
