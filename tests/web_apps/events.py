"""Events of Lambda's HTTP fronts, built as AWS documents them, from one description of a request.

`make_event(front, method, path, ...)` gives the event that `front` would send for that request:

- "rest": API Gateway REST API, payload 1.0, on the default domain (stage "prod" in requestContext.path);
- "http": API Gateway HTTP API, payload 2.0, `$default` stage (or `stage=`);
- "url": a Function URL (payload 2.0, domain *.lambda-url.*.on.aws);
- "alb": Application Load Balancer, single-value headers; "alb-multi": with multi-value headers.
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import List, Optional, Sequence, Tuple

FRONTS = ("rest", "http", "url", "alb", "alb-multi")
Pairs = Sequence[Tuple[str, str]]


def _multi(pairs: Pairs):
    grouped = {}
    for k, v in pairs:
        grouped.setdefault(k, []).append(v)
    return grouped


def _body_fields(body: bytes, binary: bool):
    if binary:
        return {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    return {"body": body.decode() if body else None, "isBase64Encoded": False}


def make_event(
    front: str,
    method: str = "GET",
    path: str = "/",
    query: Pairs = (),
    headers: Pairs = (),
    cookies: Sequence[str] = (),
    body: bytes = b"",
    binary: bool = False,
    stage: Optional[str] = None,
):
    """`path` is the app's path (decoded); `query` decoded pairs; `headers` as the client sent them."""
    headers = [("host", _host(front)), ("x-forwarded-proto", "https"), *headers]
    if body:
        headers.append(("content-length", str(len(body))))
    if front == "rest":
        return _rest(method, path, query, headers, cookies, body, binary, stage or "prod")
    if front in ("http", "url"):
        return _v2(front, method, path, query, headers, cookies, body, binary, stage or "$default")
    if front in ("alb", "alb-multi"):
        return _alb(front == "alb-multi", method, path, query, headers, cookies, body, binary)
    raise ValueError(front)


def _host(front: str) -> str:
    return {
        "rest": "abc123.execute-api.us-east-1.amazonaws.com",
        "http": "def456.execute-api.us-east-1.amazonaws.com",
        "url": "ghi789xyz.lambda-url.us-east-1.on.aws",
    }.get(front, "my-alb-1234.us-east-1.elb.amazonaws.com")


def _with_cookie_header(headers: List[Tuple[str, str]], cookies: Sequence[str]):
    return [*headers, ("cookie", "; ".join(cookies))] if cookies else headers


def _rest(method, path, query, headers, cookies, body, binary, stage):
    headers = _with_cookie_header(headers, cookies)
    multi_headers, multi_query = _multi(headers), _multi(query)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {k: vs[-1] for k, vs in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: vs[-1] for k, vs in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abcdef",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": "/%s%s" % (stage, path),
            "stage": stage,
            "domainName": _host("rest"),
            "apiId": "abc123",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "198.51.100.7", "userAgent": "curl/8.5.0"},
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": 1733400000000,
        },
        **_body_fields(body, binary),
    }


def _v2(front, method, path, query, headers, cookies, body, binary, stage):
    joined = {k: ",".join(vs) for k, vs in _multi(headers).items()}
    raw_path = urllib.parse.quote(path if stage == "$default" else "/%s%s" % (stage, path))
    domain = _host(front)
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": urllib.parse.urlencode(list(query), quote_via=urllib.parse.quote),
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012" if front == "http" else "anonymous",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": stage,
            "time": "05/Dec/2026:09:00:00 +0000",
            "timeEpoch": 1733400000000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = {k: ",".join(vs) for k, vs in _multi(query).items()}
    if cookies:
        event["cookies"] = list(cookies)
    if body:
        event.update(_body_fields(body, binary))
    return event


def _alb(multi, method, path, query, headers, cookies, body, binary):
    headers = _with_cookie_header([*headers, ("x-forwarded-for", "198.51.100.7")], cookies)
    # ALB hands the query over as the client encoded it.
    encoded = [(urllib.parse.quote(k), urllib.parse.quote(v)) for k, v in query]
    event = {
        "requestContext": {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/tg/abc"
            }
        },
        "httpMethod": method,
        "path": path,
        **_body_fields(body, binary),
    }
    if event["body"] is None:
        event["body"] = ""
    if multi:
        event["multiValueHeaders"] = _multi(headers)
        event["multiValueQueryStringParameters"] = _multi(encoded)
    else:
        event["headers"] = {k: vs[-1] for k, vs in _multi(headers).items()}
        event["queryStringParameters"] = {k: vs[-1] for k, vs in _multi(encoded).items()}
    return event
