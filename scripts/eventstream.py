"""AWS event-stream messages (``application/vnd.amazon.eventstream``), written for InvokeWithResponseStream.

A message is a prelude (total length, headers length, both big-endian uint32, and the CRC32 of those 8
bytes), the headers, the payload and the CRC32 of everything before it. A header is its name's length
(uint8), the name, a value type (7: a string) and, for a string, its length (uint16) and UTF-8 bytes.
Lambda's response stream is ``PayloadChunk`` events (the function's bytes) ended by one ``InvokeComplete``
event (JSON: ``ErrorCode``, ``ErrorDetails``, ``LogResult``, each only when there is one).

Standard library only. Only the encoder: the tests read these messages with botocore's own parser.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Optional, Sequence, Tuple

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")
# The format's own limits (as AWS's parsers enforce them): 16 MiB a message, 128 KiB of headers.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_HEADERS_BYTES = 128 * 1024


def _header(name: str, value: str) -> bytes:
    name_bytes, value_bytes = name.encode("utf-8"), value.encode("utf-8")
    if len(name_bytes) > 255:
        raise ValueError("event-stream header name over 255 bytes: %r" % name)
    if len(value_bytes) > 0xFFFF:
        raise ValueError("event-stream header %r: value over 65535 bytes" % name)
    return (
        bytes([len(name_bytes)])
        + name_bytes
        + bytes([_STRING])
        + struct.pack(">H", len(value_bytes))
        + value_bytes
    )


def encode_message(headers: Sequence[Tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message with string headers."""
    header_bytes = b"".join(_header(name, value) for name, value in headers)
    if len(header_bytes) > MAX_HEADERS_BYTES:
        raise ValueError("event-stream headers over %d bytes" % MAX_HEADERS_BYTES)
    total = _PRELUDE.size + _CRC.size + len(header_bytes) + len(payload) + _CRC.size
    if total > MAX_MESSAGE_BYTES:
        raise ValueError(
            "event-stream message of %d bytes is over the %d-byte limit" % (total, MAX_MESSAGE_BYTES)
        )
    prelude = _PRELUDE.pack(total, len(header_bytes))
    head = prelude + _CRC.pack(zlib.crc32(prelude)) + header_bytes
    return head + payload + _CRC.pack(zlib.crc32(payload, zlib.crc32(head)))


def _event(event_type: str, content_type: str, payload: bytes) -> bytes:
    headers = [(":event-type", event_type), (":content-type", content_type), (":message-type", "event")]
    return encode_message(headers, payload)


# What one PayloadChunk carries at most: the message limit less the prelude, headers and CRCs.
MAX_CHUNK_BYTES = MAX_MESSAGE_BYTES - 1024


def payload_chunks(data: bytes):
    """``PayloadChunk`` events for ``data``: one, or several when it is over one message's limit."""
    for start in range(0, len(data), MAX_CHUNK_BYTES):
        yield _event("PayloadChunk", "application/octet-stream", data[start : start + MAX_CHUNK_BYTES])


def invoke_complete(
    error_code: Optional[str] = None, error_details: Optional[str] = None, log_result: Optional[str] = None
) -> bytes:
    """The ``InvokeComplete`` event that ends a response stream."""
    fields = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    body = json.dumps({key: value for key, value in fields.items() if value is not None}).encode()
    return _event("InvokeComplete", "application/json", body)
