"""The acceptance test of web apps: a FastAPI app that streams server-sent events and a Flask app, each with
nothing Lambda-specific in its code, built by README's command (`./build.sh DIR`, which finds `main:app` itself), answer
in the Lambda-like root: buffered under the RIE, and streamed to a Runtime API that times each chunk."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lambda_root
import pytest
from conftest import REPO_ROOT
from function_handler import recorded_handler
from runtime_emulator import RuntimeEmulator

WEB_APPS = Path(__file__).parent / "web_apps"
sys.path.insert(0, str(WEB_APPS))
from events import make_event  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.build, pytest.mark.timeout(1500)]
APPS = {"fastapi": WEB_APPS / "fastapi_sse", "flask": WEB_APPS / "flask_app"}


@pytest.fixture(scope="module")
def web_zips(tmp_path_factory):
    """Each app built once per module, as a user builds it."""
    built = {}

    def get(name):
        if name not in built:
            out = tmp_path_factory.mktemp("web-build-" + name)
            proc = subprocess.run(
                ["bash", str(REPO_ROOT / "build.sh"), "--dist", str(out / "dist"),
                 "--work", str(out / "work"), str(APPS[name])],
                cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
            built[name] = out / "dist" / "bootstrap.zip"
            assert recorded_handler(built[name]) == "main:app", proc.stderr[-2000:]
        return built[name]

    return get


def invoke_under_rie(zip_path, event, *env):
    """The answer's bytes, as the RIE hands them to its caller."""
    env_args = [arg for pair in env for arg in ("--env", pair)]
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "lambda_root.py"), "invoke", "--task", str(zip_path),
         "--event", json.dumps(event), *env_args],
        cwd=str(REPO_ROOT), stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-3000:] + proc.stderr[-3000:]).decode(errors="replace")
    return proc.stdout.split(b"--- response: HTTP 200 ---\n", 1)[1].rsplit(b"\ninit duration:", 1)[0]


def streamed_in_root(zip_path, event, tmp_path):
    """The zip unpacked as Lambda does, its bootstrap started in the root against the Runtime API emulator on
    this machine with LAMBDA_INVOKE_MODE=RESPONSE_STREAM: the recorded answer, chunk by chunk."""
    (tmp_path / "task").mkdir()  # unpack_zip fills a folder, it does not make it
    task = lambda_root.unpack_zip(zip_path, tmp_path / "task")
    root = lambda_root.LambdaRoot(task)
    with RuntimeEmulator() as api, tempfile.TemporaryDirectory(prefix="web-root-") as scratch:
        env = {
            "_HANDLER": "main:app",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "LAMBDA_INVOKE_MODE": "RESPONSE_STREAM",
        }
        log = open(tmp_path / "runtime.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            root.command([root.bootstrap], env, Path(scratch)),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            rid = api.push_event(event)
            return api.wait_answer(rid, 60, alive=lambda: proc.poll() is None)
        finally:
            proc.kill()
            proc.wait(10)
            log.close()


def test_fastapi_app_answers_buffered_under_the_rie(web_zips):
    answer = json.loads(
        invoke_under_rie(web_zips("fastapi"), make_event("url", path="/items/7", query=[("q", "x")]))
    )
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"item_id": 7, "q": "x", "tags": []}


def test_fastapi_sse_streams_in_the_root_with_each_event_on_time(web_zips, tmp_path):
    event = make_event("url", path="/events", query=[("n", "4"), ("interval", "0.4")])
    started = time.monotonic()
    a = streamed_in_root(web_zips("fastapi"), event, tmp_path)
    assert (
        a.chunked and a.headers.get("Content-Type") == "application/vnd.awslambda.http-integration-response"
    )
    metadata, nuls, body = a.body.partition(b"\0" * 8)
    assert nuls and json.loads(metadata)["headers"]["content-type"].startswith("text/event-stream")
    events = a.chunks[2:]  # after the prelude and its NULs
    assert body.count(b"event: tick") == 4 and len(events) == 4, a.chunks
    gaps = [later.at - earlier.at for earlier, later in zip(events, events[1:])]
    assert all(g >= 0.3 for g in gaps), gaps  # each event reached the Runtime API when the app sent it
    assert a.chunks[0].at - started < a.chunks[-1].at - started - 1.0  # the prelude came long before the end


def test_a_streamed_answer_reaches_a_buffering_caller_as_prelude_nuls_and_body(web_zips):
    """What the RIE (which buffers every stream, as a plain Invoke of a streaming function is answered whole)
    hands its caller: the prelude, eight NULs and the body, as one payload. Hence stream mode only for fronts
    that stream."""
    event = make_event("url", path="/events", query=[("n", "2"), ("interval", "0")])
    payload = invoke_under_rie(web_zips("fastapi"), event, "LAMBDA_INVOKE_MODE=RESPONSE_STREAM")
    metadata, nuls, body = payload.partition(b"\0" * 8)
    assert nuls and json.loads(metadata)["statusCode"] == 200
    assert body.count(b"event: tick") == 2


def test_flask_app_answers_buffered_under_the_rie(web_zips):
    answer = json.loads(invoke_under_rie(web_zips("flask"), make_event("rest", path="/hello")))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"message": "hello", "url": "/prod/hello"}


def test_flask_generator_streams_in_the_root(web_zips, tmp_path):
    event = make_event("url", path="/stream", query=[("n", "3"), ("interval", "0.4")])
    a = streamed_in_root(web_zips("flask"), event, tmp_path)
    lines = a.chunks[2:]
    assert a.body.partition(b"\0" * 8)[2].count(b"line ") == 3 and len(lines) == 3, a.chunks
    gaps = [later.at - earlier.at for earlier, later in zip(lines, lines[1:])]
    assert all(g >= 0.3 for g in gaps), gaps
