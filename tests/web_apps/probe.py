"""Plain ASGI and WSGI apps (no framework, nothing Lambda-specific) that answer what they were asked.

Routes, the same in both:
- `/echo`: JSON of what the app saw (method, path, root path, query, headers, body, aws keys present);
- `/cookies`: two Set-Cookie headers and a repeated `X-Multi` header;
- `/binary`: bytes that are not UTF-8, as image/png;
- `/gzip`: a text body with Content-Encoding: gzip;
- `/stream?n=N&sleep=S`: N chunks `chunk-i\\n`, S seconds apart;
- `/fail-before`: raises before any response; `/fail-after`: raises after the first chunk;
- `/status/N`: an empty response with status N.
"""

import asyncio
import gzip
import json
import time
import urllib.parse

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


def _query(raw):
    return urllib.parse.parse_qs(raw, keep_blank_values=True)


def _answer(path, query):
    """(status, headers, [chunks], delay) for a route; the echo route is answered by the caller."""
    if path == "/cookies":
        headers = [
            ("content-type", "text/plain"),
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; HttpOnly"),
            ("x-multi", "one"),
            ("x-multi", "two"),
        ]
        return 200, headers, [b"cookies"], 0
    if path == "/binary":
        return 200, [("content-type", "image/png")], [PNG], 0
    if path == "/gzip":
        return 200, [("content-type", "text/plain"), ("content-encoding", "gzip")], [gzip.compress(b"hi")], 0
    if path == "/stream":
        n = int(query.get("n", ["3"])[0])
        delay = float(query.get("sleep", ["0"])[0])
        return 200, [("content-type", "text/plain")], [b"chunk-%d\n" % i for i in range(n)], delay
    if path.startswith("/status/"):
        return int(path.rsplit("/", 1)[1]), [], [], 0
    return 404, [("content-type", "text/plain")], [b"not found"], 0


def _echo(method, path, root_path, query, headers, body, aws):
    seen = {
        "method": method,
        "path": path,
        "root_path": root_path,
        "query": query,
        "headers": headers,
        "body": body.decode("latin-1"),
        "aws": aws,
    }
    return json.dumps(seen).encode()


async def asgi_app(scope, receive, send):
    if scope["type"] != "http":
        raise RuntimeError("probe: no %s support" % scope["type"])
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"][len(scope["root_path"]) :]
    query = _query(scope["query_string"].decode())
    if path == "/echo":
        headers = [[k.decode(), v.decode()] for k, v in scope["headers"]]
        aws = sorted(k for k in scope if k.startswith("aws."))
        seen = _echo(scope["method"], scope["path"], scope["root_path"], query, headers, body, aws)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": seen})
        return
    if path == "/fail-before":
        raise ValueError("failed before the response")
    status, headers, chunks, delay = _answer(path, query)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in headers],
        }
    )
    for i, chunk in enumerate(chunks):
        if i and delay:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    if path == "/fail-after":
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        raise ValueError("failed after the first chunk")
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def wsgi_app(environ, start_response):
    path = environ["PATH_INFO"].encode("latin-1").decode()
    query = _query(environ["QUERY_STRING"])
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if path == "/echo":
        headers = [[k, v] for k, v in environ.items() if k.startswith("HTTP_") or k.startswith("CONTENT_")]
        aws = sorted(k for k in environ if k.startswith("aws."))
        root = environ["SCRIPT_NAME"].encode("latin-1").decode()
        seen = _echo(environ["REQUEST_METHOD"], root + path, root, query, headers, body, aws)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [seen]
    if path == "/fail-before":
        raise ValueError("failed before the response")
    status, headers, chunks, delay = _answer(path, query)

    def pieces():
        for i, chunk in enumerate(chunks):
            if i and delay:
                time.sleep(delay)
            yield chunk
        if path == "/fail-after":
            yield b"first"
            raise ValueError("failed after the first chunk")

    start_response("%d X" % status, headers)
    return pieces()
