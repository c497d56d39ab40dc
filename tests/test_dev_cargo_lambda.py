"""Another emulator serves our runtime: cargo-lambda 1.9.2's `watch --only-lambda-apis` (PyPI wheel).

cargo-lambda hands the runtime ``AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:PORT/.rt`` and answers ``/next``
with 204 while it has no event; it serves function URLs at ``/lambda-url/NAME/...``.

What it needs that Lambda does not (read in its source, crates/cargo-lambda-watch/src/trigger_router.rs at
tag v1.9.2, and shown by the first test with a hand-made runtime):

- A streamed answer's JSON prelude must come as one HTTP chunk of its own and the eight NUL bytes as the
  next one, alone: ``create_streaming_response`` parses the first body frame as the whole prelude and
  drops the second as the separator, whatever it holds. The same bytes with the NULs (or body bytes) in
  the prelude's chunk fail to parse: the caller gets 500, and the runtime's POST dies with a broken pipe
  because cargo-lambda drops the request body it was still reading. Body bytes in the NULs' chunk are
  lost. Chunk boundaries carry no meaning in HTTP/1.1 (a proxy may re-chunk them), and Lambda reads the
  prelude from the byte stream; aws-lambda-rust-runtime happens to write the prelude and the NULs as two
  frames, which is why cargo-lambda works with it. Our runtime sends them so too (the same bytes).
- A buffered function URL answer must hold ``isBase64Encoded`` and ``cookies`` (its serde struct has no
  defaults for them); Lambda treats both as optional.
- Its ``Lambda-Runtime-Deadline-Ms`` is ``600000``, a duration, where Lambda gives an epoch time in ms.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dev_server import REPO, free_port

# build: on the main interpreter only, which has cargo-lambda (requirements-dev.txt).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.build,
    pytest.mark.skipif(
        not Path(sys.executable).with_name("cargo-lambda").exists() or shutil.which("cargo") is None,
        reason="cargo-lambda (requirements-dev.txt) runs `cargo metadata` at start: it needs cargo on PATH",
    ),
]

PRELUDE = b'{"statusCode": 201, "headers": {"x-from": "prelude"}, "cookies": ["a=1"]}'


class CargoLambda:
    def __init__(self, project: Path, log: Path):
        self.port = free_port()
        self.runtime_api = "http://127.0.0.1:%d/.rt" % self.port
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("cargo-lambda")), "lambda", "watch", "--only-lambda-apis",
             "-A", "127.0.0.1", "-P", str(self.port)],
            cwd=project, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while "AWS_LAMBDA_RUNTIME_API=%s" % self.runtime_api not in log.read_text(errors="replace"):
            assert self.proc.poll() is None, "cargo-lambda exited:\n" + log.read_text(errors="replace")
            assert time.monotonic() < deadline, "cargo-lambda did not start:\n" + log.read_text(
                errors="replace"
            )
            time.sleep(0.05)
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
                break
            assert time.monotonic() < deadline, "cargo-lambda does not listen"
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def cargo_lambda(tmp_path):
    project = tmp_path / "project"  # cargo-lambda reads a Cargo.toml (`cargo metadata`) before it serves
    (project / "src").mkdir(parents=True)
    (project / "Cargo.toml").write_text('[package]\nname = "fn"\nversion = "0.1.0"\nedition = "2021"\n')
    (project / "src" / "main.rs").write_text("fn main() {}\n")
    server = CargoLambda(project, tmp_path / "cargo-lambda.log")
    yield server
    server.stop()


def call(port: int, path: str, results: list) -> None:
    """A function URL request, as a thread: appends (status, headers, body) or the exception."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        response = conn.getresponse()
        results.append((response.status, dict(response.getheaders()), response.read()))
    except Exception as exc:
        results.append(exc)


def answer_with_chunks(port: int, chunks) -> object:
    """A hand-made runtime: takes one event (asking again on 204) and streams ``chunks`` as the HTTP
    chunks of its /response; returns cargo-lambda's status, or the exception the post died with."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    deadline = time.monotonic() + 30
    while True:
        conn.request("GET", "/.rt/2018-06-01/runtime/invocation/next")
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            break
        assert response.status == 204 and time.monotonic() < deadline
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
    assert response.getheader("Lambda-Runtime-Deadline-Ms") == "600000"  # a duration, not a time
    try:
        conn.putrequest("POST", "/.rt/2018-06-01/runtime/invocation/%s/response" % request_id)
        conn.putheader("Content-Type", "application/vnd.awslambda.http-integration-response")
        conn.putheader("Lambda-Runtime-Function-Response-Mode", "streaming")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for chunk in chunks:
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            time.sleep(0.1)  # separate TCP writes, as a runtime that streams makes them
        conn.send(b"0\r\n\r\n")
        return conn.getresponse().status
    except OSError as exc:
        return exc
    finally:
        conn.close()


def test_cargo_lambda_reads_the_prelude_only_from_a_chunk_of_its_own(cargo_lambda):
    """The evidence: the same bytes, chunked three ways; only the framing with the prelude in a chunk of
    its own and the NULs alone in the next works with cargo-lambda. Lambda reads all three the same."""
    body = [b"one\n", b"two\n"]
    stream_bytes = PRELUDE + b"\0" * 8 + b"".join(body)
    outcomes = {}
    for name, chunks in (
        ("prelude, NULs, body each in chunks of their own", [PRELUDE, b"\0" * 8, *body]),
        ("prelude with the NULs and the first body bytes", [PRELUDE + b"\0" * 8 + body[0], body[1]]),
        ("prelude alone, the NULs with the first body bytes", [PRELUDE, b"\0" * 8 + body[0], body[1]]),
    ):
        assert b"".join(chunks) == stream_bytes
        results: list = []
        caller = threading.Thread(target=call, args=(cargo_lambda.port, "/lambda-url/_/x", results))
        caller.start()
        runtime_side = answer_with_chunks(cargo_lambda.port, chunks)
        caller.join(30)
        outcomes[name] = (results[0], runtime_side)
    (status, headers, got), runtime_side = outcomes["prelude, NULs, body each in chunks of their own"]
    assert (status, got, headers.get("x-from"), headers.get("set-cookie")) == (
        201,
        b"one\ntwo\n",
        "prelude",
        "a=1",
    )
    assert runtime_side == 200
    (status, _, got), runtime_side = outcomes["prelude with the NULs and the first body bytes"]
    assert status == 500 and b"Internal Server Error" in got
    # The runtime's post: cut off (broken pipe / reset) while it still sent, or answered nothing.
    assert isinstance(runtime_side, OSError), runtime_side
    (status, _, got), runtime_side = outcomes["prelude alone, the NULs with the first body bytes"]
    assert (status, got, runtime_side) == (201, b"two\n", 200)  # "one\n" went with the separator


@pytest.fixture
def our_runtime(cargo_lambda, tmp_path):
    """bootstrap.py against cargo-lambda's Runtime API (a scheme and a path prefix, 204 from /next)."""
    function = tmp_path / "fn"
    function.mkdir()
    (function / "app.py").write_text(
        "import bootstrap\n\n"
        "def handler(event, context):\n"
        "    if event['rawPath'] == '/stream':\n"
        "        return bootstrap.HttpStreamingResponse(iter(['one\\n', 'two\\n']), 201, {'x-from': 'prelude'})\n"
        "    # isBase64Encoded and cookies: cargo-lambda refuses an answer without them (Lambda does not)\n"
        "    return {'statusCode': 200, 'headers': {'x-path': event['rawPath']}, 'body': 'buffered',\n"
        "            'isBase64Encoded': False, 'cookies': []}\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_RUNTIME_API": cargo_lambda.runtime_api,
        "AWS_LAMBDA_FUNCTION_NAME": "_",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "_HANDLER": "app.handler",
        "LAMBDA_TASK_ROOT": str(function),
        "AWS_LAMBDA_MAX_CONCURRENCY": "1",  # as cargo-lambda sets it for the functions it runs
    }
    log = tmp_path / "runtime.log"
    with open(log, "wb") as out:
        runtime = subprocess.Popen(
            [sys.executable, str(REPO / "bootstrap.py")], cwd=function, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    yield lambda: log.read_text(errors="replace")
    alive = runtime.poll() is None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(runtime.pid, signal.SIGKILL)
    runtime.wait(timeout=10)
    assert alive, "the runtime exited:\n" + log.read_text(errors="replace")


def test_our_runtime_answers_a_buffered_function_url_request_through_cargo_lambda(cargo_lambda, our_runtime):
    results: list = []
    call(cargo_lambda.port, "/lambda-url/_/buffered", results)
    assert not isinstance(results[0], Exception), (results[0], our_runtime())
    status, headers, body = results[0]
    assert (status, body, headers.get("x-path")) == (200, b"buffered", "/buffered"), our_runtime()


def test_our_runtime_streams_a_function_url_answer_through_cargo_lambda(cargo_lambda, our_runtime):
    results: list = []
    call(cargo_lambda.port, "/lambda-url/_/stream", results)
    assert not isinstance(results[0], Exception), (results[0], our_runtime())
    status, headers, body = results[0]
    assert (status, body, headers.get("x-from")) == (201, b"one\ntwo\n", "prelude"), (
        status,
        body,
        our_runtime(),
    )
