"""What a Lambda function URL does around the function: an HTTP request becomes a payload-v2 event, and
the function's answer becomes the HTTP response (AWS's "Invoking Lambda function URLs" page).

- The event: ``rawPath``, ``rawQueryString``, ``headers`` (lower-case names, repeated ones joined with
  commas), ``cookies`` (the Cookie header split on "; ", and taken out of ``headers``),
  ``queryStringParameters`` (repeated ones joined with commas), ``requestContext.http`` and the body,
  base64-encoded (``isBase64Encoded``) unless it is text.
- A buffered answer: a JSON object with ``statusCode`` is read as ``statusCode``, ``headers``,
  ``multiValueHeaders``, ``cookies`` (each a Set-Cookie header), ``body`` and ``isBase64Encoded``; any other
  JSON is the body of a 200 ``application/json`` response.
- A streamed answer of type ``application/vnd.awslambda.http-integration-response``: a JSON prelude with
  the same status, headers and cookies, eight NUL bytes, then the body. Other streams pass through as
  the body of a 200 response with their own content type.

Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import urllib.parse
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

HTTP_INTEGRATION_TYPE = "application/vnd.awslambda.http-integration-response"
PRELUDE_END = b"\0" * 8
# API Gateway wants the prelude within the first 16 KB of a stream; a function URL is no kinder.
MAX_PRELUDE_BYTES = 16 * 1024
# A function URL's own domain, as Lambda names it in the event (the Host header keeps the local address).
# Web adapters tell a function URL, which can stream, from an HTTP API, which cannot, by ".lambda-url.".
LOCAL_URL_DOMAIN = "local.lambda-url.us-east-1.on.aws"
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")
_TEXT_SUFFIXES = ("+json", "+xml")

Headers = List[Tuple[str, str]]


class BadFunctionResponse(ValueError):
    """The function's answer is not a response a function URL can send; the message says why."""


class HttpResponse(NamedTuple):
    status: int
    headers: Headers
    body: bytes


def _is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return (
        media.startswith(_TEXT_TYPES)
        or media.endswith(_TEXT_SUFFIXES)
        or media == ("application/x-www-form-urlencoded")
    )


def request_event(
    method: str,
    target: str,
    headers: Sequence[Tuple[str, str]],
    body: bytes,
    *,
    request_id: str,
    source_ip: str = "127.0.0.1",
    domain: str = LOCAL_URL_DOMAIN,
    now: Optional[float] = None,
) -> dict:
    """The payload-v2 event Lambda gives a function for this request (``target``: path and query)."""
    now = time.time() if now is None else now
    path, _, query = target.partition("?")
    joined: Dict[str, str] = {}
    cookies: List[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
            continue
        joined[name] = joined[name] + "," + value if name in joined else value
    event: dict = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": urllib.parse.unquote(path) or "/",
        "rawQueryString": query,
        "headers": joined,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        parameters: Dict[str, str] = {}
        for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            parameters[key] = parameters[key] + "," + value if key in parameters else value
        event["queryStringParameters"] = parameters
    event["requestContext"] = {
        "accountId": "anonymous",
        "apiId": domain.split(".")[0],
        "domainName": domain,
        "domainPrefix": domain.split(".")[0],
        "http": {
            "method": method.upper(),
            "path": event["rawPath"],
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if body:
        if _is_text(joined.get("content-type", "")):
            try:
                event["body"] = body.decode("utf-8")
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                pass
        if "body" not in event:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


def _header_lines(document: dict) -> Headers:
    """Headers, multiValueHeaders and cookies of a response document or prelude, as header lines."""
    lines: Headers = []
    single = document.get("headers") or {}
    multi = document.get("multiValueHeaders") or {}
    cookies = document.get("cookies") or []
    if not isinstance(single, dict) or not isinstance(multi, dict) or not isinstance(cookies, list):
        raise BadFunctionResponse("headers and multiValueHeaders must be objects and cookies a list")
    for name, value in single.items():
        if name.lower() not in {key.lower() for key in multi}:
            lines.append((str(name), str(value)))
    for name, values in multi.items():
        for value in values if isinstance(values, list) else [values]:
            lines.append((str(name), str(value)))
    lines += [("Set-Cookie", str(cookie)) for cookie in cookies]
    for name, value in lines:
        if any(c in name + value for c in "\r\n\0") or not name:
            raise BadFunctionResponse("header %r: names and values may not hold CR, LF or NUL" % name)
    return lines


def _status(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise BadFunctionResponse("statusCode must be a whole number from 100 to 599, not %r" % (value,))
    return value


def buffered_response(payload: bytes) -> HttpResponse:
    """The HTTP response for a function's buffered answer."""
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if not (isinstance(document, dict) and "statusCode" in document):
        return HttpResponse(200, [("Content-Type", "application/json")], payload)
    headers = _header_lines(document)
    body = document.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise BadFunctionResponse("body must be a string, not %s" % type(body).__name__)
    elif document.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise BadFunctionResponse("isBase64Encoded is true but body is not base64 (%s)" % exc) from exc
    else:
        data = body.encode("utf-8")
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return HttpResponse(_status(document["statusCode"]), headers, data)


def read_prelude(chunks: Iterable[bytes]) -> Tuple[int, Headers, bytes, Iterator[bytes]]:
    """Split an http-integration stream: (status, headers, the body bytes read with the prelude, the
    rest of the chunks). The prelude may arrive split over chunks or together with body bytes."""
    iterator = iter(chunks)
    head = b""
    while PRELUDE_END not in head:
        if len(head) > MAX_PRELUDE_BYTES:
            raise BadFunctionResponse(
                "no prelude end (8 NUL bytes) in the first %d bytes" % MAX_PRELUDE_BYTES
            )
        chunk = next(iterator, None)
        if chunk is None:
            raise BadFunctionResponse("the stream ended before its prelude did (8 NUL bytes)")
        head += chunk
    prelude, _, rest = head.partition(PRELUDE_END)
    try:
        document = json.loads(prelude) if prelude.strip() else {}
    except ValueError as exc:
        raise BadFunctionResponse("the prelude is not JSON (%s)" % exc) from exc
    if not isinstance(document, dict):
        raise BadFunctionResponse("the prelude must be a JSON object")
    return _status(document.get("statusCode", 200)), _header_lines(document), rest, iterator
