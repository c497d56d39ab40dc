"""The local endpoint's wire formats, without a runtime: event-stream messages read back by botocore's own
parser, and function URL requests and answers (payload v2, buffered responses, the streaming prelude)."""

import base64
import json

import eventstream
import function_url
import pytest

from lambda_bootstrap import http_front

# build: on the main interpreter only, which has botocore (requirements-dev.txt); test.sh's runtime-only
# venvs for 3.12 and 3.13 do not.
pytestmark = pytest.mark.build


class _Raw:
    """What botocore's EventStream reads from: an object with stream()."""

    def __init__(self, pieces):
        self.pieces = pieces

    def stream(self):
        yield from self.pieces

    def close(self):
        pass


def _botocore_events(data, piece=7):
    """Parse bytes as boto3's invoke_with_response_stream does, fed in small uneven pieces."""
    import botocore.session
    from botocore.parsers import create_parser

    operation = (
        botocore.session.get_session().get_service_model("lambda").operation_model("InvokeWithResponseStream")
    )
    pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
    response = {
        "status_code": 200,
        "headers": {"Content-Type": eventstream.CONTENT_TYPE, "X-Amz-Executed-Version": "$LATEST"},
        "body": _Raw(pieces),
        "context": {"operation_name": operation.name},
    }
    parsed = create_parser("rest-json").parse(response, operation.output_shape)
    assert parsed["ExecutedVersion"] == "$LATEST"
    return list(parsed["EventStream"])


def test_botocore_reads_payload_chunks_and_invoke_complete():
    data = b"".join(eventstream.payload_chunks(b"hello ")) + b"".join(
        eventstream.payload_chunks(b"\0\xffworld")
    )
    data += eventstream.invoke_complete()
    events = _botocore_events(data)
    assert events == [
        {"PayloadChunk": {"Payload": b"hello "}},
        {"PayloadChunk": {"Payload": b"\0\xffworld"}},
        {"InvokeComplete": {}},
    ]


def test_botocore_reads_the_error_of_invoke_complete():
    details = json.dumps({"errorMessage": "boom ü", "errorType": "ValueError"})
    data = eventstream.invoke_complete("Function.ValueError", details, base64.b64encode(b"log").decode())
    (event,) = _botocore_events(data)
    assert event == {
        "InvokeComplete": {"ErrorCode": "Function.ValueError", "ErrorDetails": details, "LogResult": "bG9n"}
    }


def test_headers_and_lengths_as_the_format_says():
    import botocore.eventstream

    message = eventstream.encode_message([(":event-type", "PayloadChunk")], b"abc")
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(message)
    (decoded,) = list(buffer)
    assert decoded.headers == {":event-type": "PayloadChunk"}
    assert decoded.payload == b"abc"
    assert int.from_bytes(message[:4], "big") == len(message)


def test_a_corrupted_message_is_refused_by_botocore():
    """The counterpart: botocore checks both CRCs, so a wrong one in our framing would show."""
    import botocore.eventstream

    message = bytearray(eventstream.invoke_complete())
    message[-1] ^= 1
    with pytest.raises(botocore.eventstream.ChecksumMismatch):
        _botocore_events(bytes(message))
    message = bytearray(eventstream.invoke_complete())
    message[9] ^= 1  # the prelude's own CRC
    with pytest.raises(botocore.eventstream.ChecksumMismatch):
        _botocore_events(bytes(message))


def test_a_large_payload_is_split_into_messages_within_the_limit():
    data = bytes(range(256)) * (eventstream.MAX_CHUNK_BYTES // 256 + 10)
    messages = list(eventstream.payload_chunks(data))
    assert len(messages) == 2
    assert all(len(m) <= eventstream.MAX_MESSAGE_BYTES for m in messages)
    events = _botocore_events(b"".join(messages), piece=1 << 20)
    assert b"".join(e["PayloadChunk"]["Payload"] for e in events) == data


# --- function URLs ---------------------------------------------------------------------------------------


def test_request_event_is_payload_v2():
    event = function_url.request_event(
        "post",
        "/a%20b/c?x=1&x=2&y=",
        [
            ("Host", "localhost:9000"),
            ("Cookie", "a=1; b=2"),
            ("X-Multi", "1"),
            ("x-multi", "2"),
            ("Content-Type", "application/json"),
            ("User-Agent", "curl/8"),
        ],
        b'{"k": "\xc3\xbc"}',
        request_id="rid-1",
        now=1_700_000_000.5,
    )
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/a b/c"
    assert event["rawQueryString"] == "x=1&x=2&y="
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "1,2"
    assert event["body"] == '{"k": "ü"}' and event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http == {
        "method": "POST",
        "path": "/a b/c",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert event["requestContext"]["requestId"] == "rid-1"
    # a function URL's domain, by which the runtime's web adapter knows the front may stream
    assert event["requestContext"]["domainName"] == "local.lambda-url.us-east-1.on.aws"
    assert type(http_front.parse_event(event).front).__name__ == "FunctionUrlFront"
    assert event["requestContext"]["timeEpoch"] == 1_700_000_000_500
    assert event["requestContext"]["time"] == "14/Nov/2023:22:13:20 +0000"


def test_binary_body_is_base64_and_no_query_means_no_parameters():
    event = function_url.request_event(
        "PUT", "/", [("Content-Type", "image/png")], b"\x89PNG\0", request_id="r"
    )
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG\0"
    assert "queryStringParameters" not in event and "cookies" not in event
    empty = function_url.request_event("GET", "/", [], b"", request_id="r")
    assert "body" not in empty and empty["isBase64Encoded"] is False


def test_buffered_response_with_status_headers_cookies_and_base64_body():
    payload = json.dumps(
        {
            "statusCode": 201,
            "headers": {"X-One": "1", "content-type": "image/png"},
            "multiValueHeaders": {"X-Two": ["a", "b"]},
            "cookies": ["s=1; Path=/", "t=2"],
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    ).encode()
    response = function_url.buffered_response(payload)
    assert response.status == 201
    assert response.body == b"\x89PNG"
    assert ("X-One", "1") in response.headers and ("content-type", "image/png") in response.headers
    assert [v for k, v in response.headers if k == "X-Two"] == ["a", "b"]
    assert [v for k, v in response.headers if k == "Set-Cookie"] == ["s=1; Path=/", "t=2"]


def test_json_without_status_code_is_the_body_of_a_200():
    response = function_url.buffered_response(b'{"message": "hi"}')
    assert response == (200, [("Content-Type", "application/json")], b'{"message": "hi"}')


@pytest.mark.parametrize(
    "document",
    [
        {"statusCode": "200"},
        {"statusCode": 42},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
        {"statusCode": 200, "headers": {"X": "a\r\nInjected: 1"}},
        {"statusCode": 200, "cookies": "a=1"},
    ],
)
def test_bad_responses_are_refused_with_a_reason(document):
    with pytest.raises(function_url.BadFunctionResponse):
        function_url.buffered_response(json.dumps(document).encode())


def test_prelude_split_over_chunks_and_glued_to_the_body():
    prelude = json.dumps({"statusCode": 202, "headers": {"X-A": "1"}, "cookies": ["c=1"]}).encode()
    stream = prelude + function_url.PRELUDE_END + b"first"
    chunks = [stream[:5], stream[5 : len(prelude) + 3], stream[len(prelude) + 3 :], b"second"]
    status, headers, head, rest = function_url.read_prelude(chunks)
    assert status == 202
    assert headers == [("X-A", "1"), ("Set-Cookie", "c=1")]
    assert head == b"first" and list(rest) == [b"second"]


def test_prelude_without_its_end_is_refused():
    with pytest.raises(function_url.BadFunctionResponse, match="ended before"):
        function_url.read_prelude([b'{"statusCode": 200}'])
    with pytest.raises(function_url.BadFunctionResponse, match="first"):
        function_url.read_prelude(iter([b" " * 1024] * 20))
