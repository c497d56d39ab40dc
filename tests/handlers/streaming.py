"""Streaming handlers for tests/test_streaming.py (must import on Python 3.9+).

Events are JSON objects; the keys each handler reads are in its docstring.
"""

import asyncio
import os
import sys
import time

import bootstrap  # the running runtime registers itself under this name

MIB = 1024 * 1024


def chunk_of(i, size=MIB):
    """The i-th chunk of a big stream: deterministic, so the test can hash what it expects."""
    return (b"%08d" % i) * (size // 8)


def pieces(event, context):
    """{"chunks": [...], "sleep": s, "as": "bytes"|"str"}: yield each chunk, sleeping before all but the first."""
    encode = event.get("as", "str") == "bytes"

    def body():
        for i, chunk in enumerate(event["chunks"]):
            if i and event.get("sleep"):
                time.sleep(event["sleep"])
            yield chunk.encode("utf-8") if encode else chunk

    return body()


def gated(event, context):
    """{"gate": path}: yield "first", then wait (at most 15 s) for the file `gate` before yielding "second".
    Only a runtime that sends "first" before the handler goes on lets the test create the gate in time."""

    def body():
        yield "first"
        deadline = time.monotonic() + 15
        while not os.path.exists(event["gate"]):
            if time.monotonic() > deadline:
                yield "|gate never opened"
                return
            time.sleep(0.01)
        yield "second"

    return body()


def async_pieces(event, context):
    """Like `pieces`, as an async generator that awaits between chunks."""

    async def body():
        for i, chunk in enumerate(event["chunks"]):
            if i and event.get("sleep"):
                await asyncio.sleep(event["sleep"])
            yield chunk

    return body()


async def async_handler_returning_generator(event, context):
    """An `async def` handler whose result is an async generator."""
    await asyncio.sleep(0)
    return async_pieces(event, context)


def fails_midstream(event, context):
    """{"after": n}: yield n chunks "c0".."c{n-1}", then raise ValueError("mid-stream failure")."""

    def body():
        for i in range(event.get("after", 2)):
            yield "c%d" % i
        raise ValueError("mid-stream failure")

    return body()


def fails_midstream_at_depth(event, context):
    """{"depth": d, "message_size": n}: yield "c0", then raise, `d` frames deep, a ValueError whose message
    is n characters long ("m0123456789..." repeated)."""

    def down(n):
        if n == 0:
            raise ValueError(("m0123456789" * (event["message_size"] // 11 + 1))[: event["message_size"]])
        down(n - 1)

    def body():
        yield "c0"
        down(event["depth"])

    return body()


def exits_midstream(event, context):
    """{"how": "exit" | "interrupt" | "generator_exit", "code": n}: yield "c0", then leave that way."""

    def body():
        yield "c0"
        if event["how"] == "exit":
            sys.exit(event.get("code", 0))
        if event["how"] == "interrupt":
            raise KeyboardInterrupt
        raise GeneratorExit("leaving")

    return body()


def one_chunk(event, context):
    """{"mib": n}: a single chunk of n MiB, made by the handler."""

    def body():
        yield b"z" * (event["mib"] * MIB)

    return body()


def bad_content_type(event, context):
    return bootstrap.StreamingResponse(iter(["x"]), content_type="text/plain\r\nX-Injected: yes")


def fails_at_once(event, context):
    """A generator that raises before its first chunk: an ordinary invocation error."""

    def body():
        raise KeyError("before the first chunk")
        yield "never"  # pragma: no cover

    return body()


def bad_chunk(event, context):
    """{"good": n}: yields n chunks "ok" (one when not given), then an int, which is not a chunk."""

    def body():
        for _ in range(event.get("good", 1)):
            yield "ok"
        yield 42

    return body()


def with_empty_chunks(event, context):
    def body():
        yield "a"
        yield ""
        yield b""
        yield "b"

    return body()


def empty_generator(event, context):
    def body():
        return
        yield  # pragma: no cover

    return body()


def http_response(event, context):
    """A function-URL response: status 201, headers and cookies, then the body in two chunks."""

    def body():
        yield "<html>"
        yield "</html>"

    return bootstrap.HttpStreamingResponse(
        body(),
        status_code=event.get("status", 201),
        headers={"content-type": "text/html", "x-custom": "yes"},
        cookies=["a=1; Path=/", "b=2"],
    )


def custom_type(event, context):
    return bootstrap.StreamingResponse(iter(["x,y\n", "1,2\n"]), content_type="text/csv")


def big(event, context):
    """{"mib": n}: stream n MiB in 1 MiB chunks, each made when it is asked for."""

    def body():
        for i in range(event["mib"]):
            yield chunk_of(i)

    return body()
