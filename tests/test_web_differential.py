"""The same events through the references (Mangum for ASGI, apig-wsgi for WSGI) and through ours: status,
headers and body compared as a client would see them. Every difference that remains is a decision listed in
DECISIONS (and in README's table); a new difference, or a listed one that disappears, fails the test."""

from __future__ import annotations

import base64
import json
import logging
import sys
from pathlib import Path

import apig_wsgi
import mangum
import pytest

from lambda_bootstrap.asgi import AsgiAdapter
from lambda_bootstrap.wsgi import WsgiAdapter

sys.path.insert(0, str(Path(__file__).parent / "web_apps"))
from events import FRONTS, make_event
from probe import asgi_app, wsgi_app

ECHO = dict(
    method="POST",
    path="/echo",
    query=[("tag", "a"), ("tag", "b"), ("q", "x y&z")],
    headers=[("x-multi", "1"), ("x-multi", "2"), ("content-type", "text/plain")],
    cookies=["c1=v1", "c2=v2"],
    body=b"hello",
)
CASES = {
    "cookies": dict(path="/cookies"),
    "binary": dict(path="/binary"),
    "gzip": dict(path="/gzip"),
    "empty-418": dict(path="/status/418"),
    "stream": dict(path="/stream"),
    "fail-before": dict(path="/fail-before"),
    "echo": ECHO,
    "echo-binary-body": dict(ECHO, body=bytes(range(256)), binary=True),
    "echo-named-stage": dict(ECHO, stage="dev"),
}

REST_STAGE = "REST API stage is the root path (ASGI root_path, WSGI SCRIPT_NAME); the reference leaves it out"
HTTP_STAGE = "HTTP API named stage is the root path; the reference routes /dev/echo and finds nothing"
DECISIONS = {
    # (kind, front, case): {what differs: (ours, reference)}, one README row each
    ("asgi", "rest", "echo"): {"request.root_path": ("/prod", ""), "note": REST_STAGE},
    ("asgi", "rest", "echo-binary-body"): {"request.root_path": ("/prod", ""), "note": REST_STAGE},
    ("asgi", "rest", "echo-named-stage"): {"request.root_path": ("/dev", ""), "note": REST_STAGE},
    ("wsgi", "rest", "echo"): {"request.root_path": ("/prod", ""), "note": REST_STAGE},
    ("wsgi", "rest", "echo-binary-body"): {"request.root_path": ("/prod", ""), "note": REST_STAGE},
    ("wsgi", "rest", "echo-named-stage"): {"request.root_path": ("/dev", ""), "note": REST_STAGE},
    ("asgi", "http", "echo-named-stage"): {"status": (200, 404), "note": HTTP_STAGE},
    ("wsgi", "http", "echo-named-stage"): {"status": (200, 404), "note": HTTP_STAGE},
    ("asgi", "http", "empty-418"): {
        "headers": ([], [("content-type", "application/json")]),
        "note": "no Content-Type the app did not send",
    },
    ("asgi", "url", "empty-418"): {
        "headers": ([], [("content-type", "application/json")]),
        "note": "no Content-Type the app did not send",
    },
    ("wsgi", "http", "cookies"): {
        "headers": ([("x-multi", "one")], []),
        "note": "a repeated response header keeps every value (joined with a comma)",
    },
    ("wsgi", "url", "cookies"): {
        "headers": ([("x-multi", "one")], []),
        "note": "a repeated response header keeps every value (joined with a comma)",
    },
    ("wsgi", "alb", "cookies"): {
        "headers": ([("set-cookie", "a=1; Path=/"), ("x-multi", "one")], []),
        "note": "ALB without multi-value headers: every cookie kept (names differing in case), as Mangum does",
    },
}
for _front in FRONTS:
    DECISIONS[("asgi", _front, "fail-before")] = {
        "status": ("ValueError", 500),
        "note": "an exception before the response is the invocation's error, not a 500 answer",
    }


def merged_headers(answer):
    """[(name, value)] as the front hands them to the client: API Gateway merges `headers` into
    `multiValueHeaders` (the latter wins for a name in both); names differing only in case are one header."""
    multi = {k.lower(): list(vs) for k, vs in (answer.get("multiValueHeaders") or {}).items()}
    single = {}
    for k, v in (answer.get("headers") or {}).items():
        single.setdefault(k.lower(), []).append(v)
    pairs = [(k, v) for k, vs in {**single, **multi}.items() for v in vs]
    pairs += [("set-cookie", c) for c in answer.get("cookies") or ()]
    split = []
    for name, value in pairs:  # "one, two" and "one,two" are the same two values to a client
        values = [value] if name == "set-cookie" else [p.strip() for p in value.split(",")]
        split += [(name, v) for v in values]
    return sorted(split)


def view(answer):
    """What a client sees: status, headers, body; and for the echo route, what the app saw."""
    if isinstance(answer, Exception):
        return {"status": type(answer).__name__}
    body = answer.get("body") or ""
    body = base64.b64decode(body) if answer.get("isBase64Encoded") else body.encode()
    seen = {"status": answer["statusCode"], "headers": merged_headers(answer), "body": body}
    if answer["statusCode"] == 200 and seen["headers"] == [("content-type", "application/json")]:
        request = json.loads(body)
        seen.pop("body")
        for key in ("method", "root_path", "query", "body"):
            seen["request." + key] = request[key]
        seen["request.path"] = request["path"][len(request["root_path"]) :]
        seen["request.headers"] = request_headers(request["headers"])
    return seen


def request_headers(pairs):
    """The request headers the app saw, as (lower name, value) with joined values split apart."""
    out = []
    for name, value in pairs:
        name = name.lower()
        if name.startswith("http_") or name.startswith("content_"):
            name = name.removeprefix("http_").replace("_", "-")
        sep = ";" if name == "cookie" else ","
        out += [(name, v.strip()) for v in value.split(sep)]
    return sorted(set(out))  # apig-wsgi repeats Content-Length as HTTP_CONTENT_LENGTH: counted once


def call(handler, event):
    try:
        return handler(event, object())
    except Exception as exc:
        return exc


def difference(ours, reference):
    diff = {}
    for key in sorted(set(ours) | set(reference)):
        a, b = ours.get(key), reference.get(key)
        if a == b:
            continue
        if key == "headers" and a is not None and b is not None:
            a, b = [h for h in a if h not in b], [h for h in b if h not in a]
        diff[key] = (a, b)
    return diff


@pytest.fixture(scope="module")
def handlers():
    logging.getLogger("mangum").setLevel(logging.CRITICAL)
    return {
        "asgi": (AsgiAdapter(asgi_app, lifespan="off"), mangum.Mangum(asgi_app, lifespan="off")),
        "wsgi": (WsgiAdapter(wsgi_app), apig_wsgi.make_lambda_handler(wsgi_app, binary_support=True)),
    }


COMBINATIONS = [
    (kind, front, case)
    for kind in ("asgi", "wsgi")
    for front in FRONTS
    for case in CASES
    if "stage" not in CASES[case] or front in ("rest", "http")  # only API Gateway has stages
]


@pytest.mark.parametrize(("kind", "front", "case"), COMBINATIONS)
def test_same_answer_as_the_reference_or_a_documented_decision(handlers, kind, front, case):
    event = make_event(front, **CASES[case])
    ours, reference = handlers[kind]
    diff = difference(view(call(ours, event)), view(call(reference, event)))
    expected = dict(DECISIONS.get((kind, front, case), {}))
    expected.pop("note", None)
    if "status" in expected:  # a different status: the rest of the answers cannot be compared
        diff = {"status": diff.get("status")}
    assert diff == expected


def test_every_decision_is_a_case_that_runs():
    assert set(DECISIONS) <= set(COMBINATIONS)
