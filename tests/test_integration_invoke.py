"""Integration tests: invocations (contract §3), end to end through the fake Runtime API.

Tests taking ``both`` run against ours and awslambdaric 4.2.2 (the reference) and so
prove that ours matches it; tests taking ``ours`` cover where ours goes further."""

from __future__ import annotations

import json
import math
import time

ERROR_BODY_KEYS = ["errorMessage", "errorType", "requestId", "stackTrace"]
XRAY_HEADER = "lambda-runtime-function-xray-error-cause"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


def _serve(fake_api, rt, rids, timeout=15.0):
    """Wait for one answer per request id and return them in the same order."""
    return [fake_api.wait_answer(rid, timeout, alive=rt.alive) for rid in rids]


def _call(fn, event=None):
    return {"fn": fn, "event": event if event is not None else {}}


# --- invocation errors ---------------------------------------------------------


def test_handler_exception_error_post(fake_api, runtime, both):
    """A handler exception: /error with the four keys, the bare class name, str(exc), a
    stack trace starting in user code, and a valid X-Ray cause header. Ours also sends
    Lambda-Runtime-Function-Error-Type: Function.<ExcName> and keeps the X-Ray cause
    within 64 KiB; awslambdaric sends no error-type header."""
    r1 = fake_api.push_event({})
    r2 = fake_api.push_event({})
    rt = runtime("app.raises", both)
    a1, a2 = _serve(fake_api, rt, [r1, r2])
    assert a1.kind == "error", rt.diag()
    body = a1.json()
    assert list(body) == ERROR_BODY_KEYS
    assert body["errorMessage"] == "boom"
    assert body["errorType"] == "ValueError"
    assert body["requestId"] == r1
    trace = body["stackTrace"]
    assert trace and "app.py" in trace[0] and "in raises" in trace[0], trace
    assert trace[-1].endswith('    raise ValueError("boom")\n'), trace
    assert not any("bootstrap.py" in f or "lambda_bootstrap" in f for f in trace), trace
    assert a1.headers.get("Content-Type", "").startswith("application/json")

    cause_raw = a1.headers.get(XRAY_HEADER)
    assert cause_raw, a1.headers
    cause = json.loads(cause_raw)
    assert isinstance(cause["working_directory"], str) and cause["working_directory"]
    (exc,) = cause["exceptions"]
    assert exc["message"] == "boom" and exc["type"] == "ValueError"
    assert any(
        s["label"] == "raises" and s["path"].endswith("app.py") and isinstance(s["line"], int)
        for s in exc["stack"]
    ), exc
    assert any(p.endswith("app.py") for p in cause["paths"]), cause

    if both == "ours":
        assert a1.headers.get(ERROR_TYPE_HEADER) == "Function.ValueError"
        assert len(cause_raw.encode("utf-8")) <= 64 * 1024
    else:
        assert a1.headers.get(ERROR_TYPE_HEADER) is None
    # the loop goes on after an error
    assert a2.kind == "error" and a2.json()["requestId"] == r2
    assert rt.alive()


def test_error_type_header_ours(fake_api, runtime, ours):
    """Ours only (Our decisions #1): Function.<ExceptionClassName> for user exceptions,
    the Runtime.* type for runtime faults; an empty message is "" in the body."""
    rids = [
        fake_api.push_event(_call("raises_custom")),
        fake_api.push_event(_call("raises_empty")),
        fake_api.push_event(_call("ret_set")),
        fake_api.push_event(b"{not json"),
    ]
    rt = runtime("app.dispatch", ours)
    ans = _serve(fake_api, rt, rids)
    assert [a.kind for a in ans] == ["error"] * 4, rt.diag()
    assert [a.headers.get(ERROR_TYPE_HEADER) for a in ans] == [
        "Function.MyAppError",
        "Function.RuntimeError",
        "Runtime.MarshalError",
        "Runtime.UnmarshalError",
    ]
    assert ans[1].json()["errorMessage"] == ""


def test_xray_cause_capped_at_64k_ours(fake_api, runtime, ours):
    """Ours only (Our decisions #10): a huge cause (200 kB message, deep stack) is trimmed
    to at most 64 KiB of valid JSON, not dropped."""
    rid = fake_api.push_event(_call("raises_big", {"msg_len": 200000, "depth": 200}))
    rt = runtime("app.dispatch", ours)
    (a,) = _serve(fake_api, rt, [rid])
    assert a.kind == "error", rt.diag()
    raw = a.headers.get(XRAY_HEADER)
    assert raw, "X-Ray cause header missing"
    assert len(raw.encode("utf-8")) <= 64 * 1024
    cause = json.loads(raw)
    assert cause["exceptions"][0]["type"] == "ValueError"
    assert a.json()["errorType"] == "ValueError"


def test_runtime_faults(fake_api, runtime, both):
    """MarshalError, UnmarshalError, LambdaContextUnmarshalError (client context and
    cognito): exact messages, empty stack trace, LambdaValidationError X-Ray cause."""
    cases = [
        (
            fake_api.push_event(_call("ret_set")),
            "Runtime.MarshalError",
            "Unable to marshal response: Object of type set is not JSON serializable",
        ),
        (
            fake_api.push_event(b"not json"),
            "Runtime.UnmarshalError",
            "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)",
        ),
        (
            fake_api.push_event(_call("echo"), client_context="not json"),
            "Runtime.LambdaContextUnmarshalError",
            "Unable to parse Client Context JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        (
            fake_api.push_event(_call("echo"), cognito_identity="{bad"),
            "Runtime.LambdaContextUnmarshalError",
            "Unable to parse Cognito Identity JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
    ]
    ok = fake_api.push_event(_call("echo", {"still": "alive"}))
    rt = runtime("app.dispatch", both)
    ans = _serve(fake_api, rt, [c[0] for c in cases] + [ok])
    for (rid, etype, msg), a in zip(cases, ans):
        assert a.kind == "error", (etype, a, rt.diag())
        body = a.json()
        assert list(body) == ERROR_BODY_KEYS
        assert (body["errorType"], body["errorMessage"]) == (etype, msg)
        assert body["requestId"] == rid
        assert body["stackTrace"] == []
        cause = json.loads(a.headers[XRAY_HEADER])
        assert cause["exceptions"][0]["type"] == "LambdaValidationError"
        assert cause["exceptions"][0]["message"] == msg
    assert ans[-1].kind == "response" and ans[-1].json() == {"still": "alive"}


def test_invalid_utf8_json_event_is_unmarshal_error(fake_api, runtime, both):
    rid = fake_api.push_event(b'{"a": "\xff\xfe"}')
    rt = runtime("app.echo", both)
    (a,) = _serve(fake_api, rt, [rid])
    assert a.kind == "error"
    assert a.json()["errorType"] == "Runtime.UnmarshalError"
    assert a.json()["errorMessage"].startswith("Unable to unmarshal input: ")


# --- context ------------------------------------------------------------------


def test_context_attributes(fake_api, runtime, both):
    """Every context attribute and its type; identity is always an object; client
    context slots; w3c() keeps only string traceparent/tracestate/baggage."""
    deadline = int(time.time() * 1000) + 60_000
    client_context = {
        "custom": {"k": "v"},
        "env": {"platform": "x"},
        "client": {
            "installation_id": "i1",
            "app_title": "title",
            "app_version_name": "vn",
            "app_version_code": "vc",
            "app_package_name": "pkg",
        },
        "w3c": {"traceparent": "00-abc-def-01", "tracestate": 7, "baggage": "b=2", "other": "x"},
    }
    full = fake_api.push_event(
        {},
        deadline_ms=deadline,
        function_arn="arn:aws:lambda:eu-west-1:1:function:f:alias",
        client_context=client_context,
        cognito_identity={"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pid"},
        tenant_id="blue",
    )
    bare = fake_api.push_event({})
    partial = fake_api.push_event({}, client_context={"client": {"app_title": "t"}}, deadline_ms=1000)
    rt = runtime("app.context_dump", both)
    a_full, a_bare, a_partial = (a.json() for a in _serve(fake_api, rt, [full, bare, partial]))

    assert a_full["aws_request_id"] == full
    assert a_full["log_group_name"] == "/aws/lambda/test-fn"
    assert a_full["log_stream_name"] == "2026/11/29/[$LATEST]0123456789abcdef"
    assert a_full["function_name"] == "test-fn"
    assert a_full["memory_limit_in_mb"] == "128" and a_full["memory_limit_in_mb_type"] == "str"
    assert a_full["function_version"] == "$LATEST"
    assert a_full["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:1:function:f:alias"
    assert a_full["tenant_id"] == "blue"
    assert a_full["remaining_ms_type"] == "int"
    assert 50_000 < a_full["remaining_ms"] <= 60_000
    assert a_full["identity_is_none"] is False
    assert (a_full["cognito_identity_id"], a_full["cognito_identity_pool_id"]) == ("cid", "pid")
    assert a_full["client_context_is_none"] is False
    assert a_full["custom"] == {"k": "v"} and a_full["env"] == {"platform": "x"}
    assert a_full["client"] == {
        "installation_id": "i1",
        "app_title": "title",
        "app_version_name": "vn",
        "app_version_code": "vc",
        "app_package_name": "pkg",
    }
    assert a_full["w3c"] == {"traceparent": "00-abc-def-01", "baggage": "b=2"}
    assert a_full["cc_has_w3c"] is False

    assert a_bare["aws_request_id"] == bare
    assert a_bare["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:test-fn"
    assert a_bare["tenant_id"] is None
    assert a_bare["identity_is_none"] is False
    assert (a_bare["cognito_identity_id"], a_bare["cognito_identity_pool_id"]) == (None, None)
    assert a_bare["client_context_is_none"] is True
    assert a_bare["w3c"] == {}

    assert a_partial["client_context_is_none"] is False
    assert a_partial["custom"] is None and a_partial["env"] is None
    assert a_partial["client"] == {
        "installation_id": None,
        "app_title": "t",
        "app_version_name": None,
        "app_version_code": None,
        "app_package_name": None,
    }
    assert a_partial["remaining_ms"] == 0  # deadline in the past


def test_context_function_env_read_per_invoke(fake_api, runtime, both):
    """Unset function variables give None attributes."""
    rid = fake_api.push_event({})
    rt = runtime(
        "app.context_dump",
        both,
        env={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": None, "AWS_LAMBDA_FUNCTION_VERSION": None},
    )
    (a,) = _serve(fake_api, rt, [rid])
    d = a.json()
    assert d["memory_limit_in_mb"] is None and d["function_version"] is None
    assert d["function_name"] == "test-fn"


def test_tenant_id_empty_header_ours(fake_api, runtime, ours):
    """Ours: an empty Lambda-Runtime-Aws-Tenant-Id gives "" and a missing one None
    (contract §3a). awslambdaric's C++ client drops empty header values, so over the
    wire it reports None for both (observed); RAPID never sends the header empty."""
    empty = fake_api.push_event({}, tenant_id="")
    missing = fake_api.push_event({})
    rt = runtime("app.context_dump", ours)
    a_empty, a_missing = (a.json() for a in _serve(fake_api, rt, [empty, missing]))
    assert a_empty["tenant_id"] == ""
    assert a_missing["tenant_id"] is None


# --- trace id, invocation id ------------------------------------------------------


def test_xray_trace_env_set_and_removed(fake_api, runtime, both):
    """_X_AMZN_TRACE_ID is set from Lambda-Runtime-Trace-Id and deleted for an event
    without one."""
    tid = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    r1 = fake_api.push_event({}, trace_id=tid)
    r2 = fake_api.push_event({})
    r3 = fake_api.push_event({}, trace_id="Root=1-2-3")
    rt = runtime("app.trace_env", both, env={"_X_AMZN_TRACE_ID": "from-the-start"})
    a1, a2, a3 = (a.json() for a in _serve(fake_api, rt, [r1, r2, r3]))
    assert a1 == {"trace": tid, "rid": r1}
    assert a2 == {"trace": None, "rid": r2}
    assert a3 == {"trace": "Root=1-2-3", "rid": r3}


def test_invocation_id_echoed_only_when_sent(fake_api, runtime, both):
    """Lambda-Runtime-Invocation-Id is echoed on /response and /error only when /next
    sent one."""
    r_ok_id = fake_api.push_event(_call("echo"), invocation_id="inv-ok-1")
    r_ok = fake_api.push_event(_call("echo"))
    r_err_id = fake_api.push_event(_call("raises"), invocation_id="inv-err-2")
    r_err = fake_api.push_event(_call("raises"))
    rt = runtime("app.dispatch", both)
    a = _serve(fake_api, rt, [r_ok_id, r_ok, r_err_id, r_err])
    assert [x.kind for x in a] == ["response", "response", "error", "error"], rt.diag()
    assert a[0].headers.get_all("Lambda-Runtime-Invocation-Id") == ["inv-ok-1"]
    assert a[1].headers.get_all("Lambda-Runtime-Invocation-Id") == []
    assert a[2].headers.get_all("Lambda-Runtime-Invocation-Id") == ["inv-err-2"]
    assert a[3].headers.get_all("Lambda-Runtime-Invocation-Id") == []


# --- encoding -------------------------------------------------------------------


def test_result_encoding(fake_api, runtime, both):
    """Decimal as exact text, bytes as application/unknown, None as null, NaN/Infinity
    literals, tuples as arrays, ", "/": " separators; unicode parses to the same JSON
    (raw bytes: ours unescaped UTF-8, awslambdaric \\u escapes)."""
    fns = ["ret_decimal", "ret_bytes", "ret_none", "ret_nan", "ret_nested", "ret_unicode"]
    rids = [fake_api.push_event(_call(fn)) for fn in fns]
    rt = runtime("app.dispatch", both)
    res = dict(zip(fns, _serve(fake_api, rt, rids)))
    assert all(a.kind == "response" for a in res.values()), rt.diag()

    assert res["ret_decimal"].body == b'{"d": 3.14159, "t": 1.10, "big": 1E+400}'
    assert res["ret_decimal"].headers.get("Content-Type") == "application/json"

    assert res["ret_bytes"].body == b"\x00\x01binary\xff"
    assert res["ret_bytes"].headers.get("Content-Type") == "application/unknown"

    assert res["ret_none"].body == b"null"
    assert res["ret_nan"].body == b'{"n": NaN, "dn": NaN, "inf": Infinity}'
    nan = json.loads(res["ret_nan"].body)
    assert math.isnan(nan["n"]) and math.isinf(nan["inf"])
    assert res["ret_nested"].body == b'{"a": 1, "b": [1, 2, {"c": null}], "t": [1, "x"]}'

    uni = res["ret_unicode"]
    assert json.loads(uni.body) == {"price": "\u00a31.00", "snow": "\u2603", "emoji": "\U0001f600"}
    if both == "ours":
        assert uni.body == '{"price": "\u00a31.00", "snow": "\u2603", "emoji": "\U0001f600"}'.encode()
    else:
        assert uni.body == b'{"price": "\\u00a31.00", "snow": "\\u2603", "emoji": "\\ud83d\\ude00"}'
    for a in res.values():
        assert a.headers.get("Content-Length") == str(len(a.body))
        assert not a.chunked


def test_event_content_types(fake_api, runtime, both):
    """application/json decodes (floats as float, big ints exact); text/plain gives bytes for
    both; `application/json; charset=utf-8` decodes as JSON for ours (Our decisions #3)
    while awslambdaric hands the handler bytes."""
    r_json = fake_api.push_event(b'{"f": 1.10, "big": 123456789012345678901234567890}')
    r_text = fake_api.push_event(b"hello", content_type="text/plain")
    r_charset = fake_api.push_event(b'{"a": 1}', content_type="application/json; charset=utf-8")
    r_octet = fake_api.push_event(b"\x00\x01", content_type="application/octet-stream")
    rt = runtime("app.describe_event", both)
    ans = _serve(fake_api, rt, [r_json, r_text, r_charset, r_octet])
    assert [a.kind for a in ans] == ["response"] * 4, ans
    a_json, a_text, a_charset, a_octet = (a.json() for a in ans)
    assert a_json["type"] == "dict"
    assert a_json["value"]["f"] == 1.1 and a_json["value"]["big"] == 123456789012345678901234567890
    assert a_text == {"type": "bytes", "value": "hello"}
    assert a_octet == {"type": "bytes", "value": "\x00\x01"}
    if both == "ours":
        assert a_charset == {"type": "dict", "value": {"a": 1}}
    else:
        assert a_charset == {"type": "bytes", "value": '{"a": 1}'}


def test_five_megabyte_event_and_response(fake_api, runtime, both):
    """A 5 MB event reaches the handler whole; a 5 MB response is posted whole."""
    n = 5 * 1024 * 1024
    r_event = fake_api.push_event(json.dumps(_call("event_len", {"data": "x" * n})).encode())
    r_resp = fake_api.push_event(_call("big_response", {"n": n}))
    rt = runtime("app.dispatch", both)
    a_event, a_resp = _serve(fake_api, rt, [r_event, r_resp], timeout=30)
    assert a_event.json() == {"len": n, "head": "x" * 10}
    assert a_resp.kind == "response" and a_resp.status == 202
    assert len(a_resp.body) == n + 2
    assert a_resp.body == b'"' + b"y" * n + b'"'


# --- warm invocations, async ----------------------------------------------------------


def test_hundred_warm_invocations(fake_api, runtime, both, tmp_path):
    """One process serves 100 invocations with init run once. Ours also uses exactly one
    TCP connection for every /next and /response (Our decisions #11)."""
    import_log = tmp_path / "imports.log"
    rids = [fake_api.push_event({"i": i}) for i in range(100)]
    rt = runtime("app.echo", both, env={"IMPORT_LOG": str(import_log)})
    ans = _serve(fake_api, rt, rids, timeout=60)
    assert [a.json() for a in ans] == [{"i": i} for i in range(100)]
    assert [a.kind for a in ans] == ["response"] * 100
    assert len(import_log.read_text().split()) == 1
    fake_api.wait_idle(10, alive=rt.alive)
    nexts = fake_api.of_kind("next")
    assert len(nexts) == 101  # 100 served plus the one now waiting
    if both == "ours":
        conns = {r.conn for r in fake_api.snapshot() if r.kind in ("next", "response")}
        assert len(conns) == 1, conns
    assert rt.alive()


def test_async_handler_awaited_on_one_loop(fake_api, runtime, ours):
    """Ours only (Our decisions #6): an async def handler is awaited and the same event
    loop is reused across invocations."""
    rids = [fake_api.push_event({}) for _ in range(3)]
    rt = runtime("app.async_handler", ours)
    ans = [a.json() for a in _serve(fake_api, rt, rids)]
    assert [a["awaited"] for a in ans] == [True] * 3
    assert [a["n"] for a in ans] == [1, 2, 3]
    assert len(ans[-1]["loop_ids"]) == 1, ans


def test_async_handler_ric_marshal_error(fake_api, runtime, ric):
    """Reference behaviour (documented difference): awslambdaric does not await, so the
    coroutine fails to marshal."""
    rid = fake_api.push_event({})
    rt = runtime("app.async_handler", ric)
    (a,) = _serve(fake_api, rt, [rid])
    assert a.kind == "error"
    assert a.json()["errorType"] == "Runtime.MarshalError"
    assert (
        a.json()["errorMessage"]
        == "Unable to marshal response: Object of type coroutine is not JSON serializable"
    )
