"""Runtime APIs other than Lambda's (issue 17, point 3): cargo-lambda gives the runtime
AWS_LAMBDA_RUNTIME_API=http://127.0.0.1:9000/.rt and answers /next with 204 while it has no event.

`emulator` below is such an API in front of the fake Runtime API: it serves everything under a path prefix
(404 elsewhere), answers /next with 204 until it is told an event may go through, and forwards the rest.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time

import pytest

import bootstrap
from lambda_bootstrap import runtime_api

PREFIX = "/.rt"
NEXT_PATH = "/2018-06-01/runtime/invocation/next"


class _PrefixedEmulator(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.lock = threading.Lock()
        self.paths: list = []  # every request path as it arrived
        self.no_event_at: list = []  # monotonic times of the 204s answered
        self.events_allowed = threading.Event()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d%s" % (self.server_address[1], PREFIX)


class _Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _serve(self):
        server = self.server
        with server.lock:
            server.paths.append(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if not self.path.startswith(PREFIX + "/"):
            return self._answer(404, [], b'{"errorMessage":"not under the prefix"}')
        path = self.path[len(PREFIX) :]
        if path == NEXT_PATH and not server.events_allowed.is_set():
            with server.lock:
                server.no_event_at.append(time.monotonic())
            self.send_response(204)
            return self.end_headers()
        upstream = http.client.HTTPConnection(server.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            upstream.request(self.command, path, body, headers)
            reply = upstream.getresponse()
            keep = [
                (k, v) for k, v in reply.getheaders() if k.lower() not in ("content-length", "connection")
            ]
            self._answer(reply.status, keep, reply.read())
        except (OSError, http.client.HTTPException):
            self.close_connection = True  # the fake stopped, or the runtime went away: the test is over
        finally:
            upstream.close()

    def _answer(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _serve


@pytest.fixture
def emulator(fake_api):
    server = _PrefixedEmulator(fake_api.address)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# --- the address ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "host", "port", "prefix", "authority"),
    [
        ("127.0.0.1:9001", "127.0.0.1", 9001, "", "127.0.0.1:9001"),
        ("[::1]:9001", "::1", 9001, "", "[::1]:9001"),
        ("http://127.0.0.1:9000/.rt", "127.0.0.1", 9000, "/.rt", "127.0.0.1:9000"),
        ("HTTP://localhost:9000/a/b/", "localhost", 9000, "/a/b", "localhost:9000"),
        ("http://[::1]:9000", "::1", 9000, "", "[::1]:9000"),
        ("http://127.0.0.1:9000/", "127.0.0.1", 9000, "", "127.0.0.1:9000"),
    ],
)
def test_an_address_with_a_scheme_and_a_path_prefix(address, host, port, prefix, authority):
    conn = runtime_api.KeepAliveConnection(address)
    assert (conn.host, conn.port, conn.prefix, conn.authority) == (host, port, prefix, authority)
    assert runtime_api.RuntimeApiClient(address).base == prefix + "/2018-06-01/runtime"
    assert bootstrap.ExtensionsApiClient(address).base == prefix + "/2020-01-01/extension"


@pytest.mark.parametrize(
    "address",
    [
        "localhost",
        "host:abc",
        "127.0.0.1:",
        ":9001",
        "127.0.0.1:99999",
        "127.0.0.1:\u00b2",
        "https://127.0.0.1:9000/.rt",
        "http://127.0.0.1/.rt",
        "http://127.0.0.1:9000/.rt?x=1",
        "http://127.0.0.1:9000/a b",
        "127.0.0.1:9001/.rt",
        "ftp://127.0.0.1:21",
    ],
)
def test_a_bad_address_is_a_clear_start_error(address, capsys):
    """Before: a ValueError traceback from int(), or a request line that the API could not route."""
    assert bootstrap.main(["bootstrap"], {"AWS_LAMBDA_RUNTIME_API": address, "_HANDLER": "app.echo"}) == 1
    err = capsys.readouterr().err
    assert "AWS_LAMBDA_RUNTIME_API must be host:port or http://host:port/path, not %r" % address in err, err


# --- served through the emulator --------------------------------------------------------------------------


def test_every_call_goes_under_the_path_prefix(fake_api, emulator, runtime):
    """An event is served and the graceful-shutdown extension registered, all under the prefix; nothing
    reaches the emulator outside it (it would answer 404)."""
    emulator.events_allowed.set()
    rt = runtime("app.echo", "ours", env={"LAMBDA_GRACEFUL_SHUTDOWN": "1"}, runtime_api=emulator.url)
    rid = fake_api.push_event({"hello": "there"})
    assert json.loads(fake_api.wait_answer(rid, 15, alive=rt.alive).body) == {"hello": "there"}, rt.diag()
    paths = list(emulator.paths)
    assert paths[0] == PREFIX + "/2020-01-01/extension/register", paths  # before anything else
    assert set(paths) == {
        PREFIX + "/2020-01-01/extension/register",
        PREFIX + "/2020-01-01/extension/event/next",
        PREFIX + NEXT_PATH,
        PREFIX + "/2018-06-01/runtime/invocation/%s/response" % rid,
    }, paths


def test_an_init_error_goes_under_the_prefix(fake_api, emulator, runtime):
    rt = runtime("no_such_module.handler", "ours", runtime_api=emulator.url)
    assert rt.run_until_exit(15) == 1, rt.diag()
    assert fake_api.init_errors[0].json()["errorType"] == "Runtime.ImportModuleError"
    assert emulator.paths == [PREFIX + "/2018-06-01/runtime/init/error"], emulator.paths


def test_204_from_next_means_ask_again_with_a_bounded_backoff(fake_api, emulator, runtime):
    """While the emulator has no event, /next answers 204: the runtime asks again, more slowly each time up to
    a bound (no busy loop), takes no event and answers nothing; the first real event is served once."""
    rt = runtime("app.echo", "ours", runtime_api=emulator.url)
    deadline = time.monotonic() + 15
    while len(emulator.no_event_at) < 8 and time.monotonic() < deadline and rt.alive():
        time.sleep(0.02)
    asked = list(emulator.no_event_at)
    assert len(asked) >= 8, rt.diag()
    gaps = [b - a for a, b in zip(asked, asked[1:8])]
    assert asked[7] - asked[0] >= 0.5, gaps  # backing off: not a busy loop
    assert gaps[-1] >= 0.15, gaps
    assert max(gaps) <= 0.6, gaps  # bounded: an event is picked up soon after it comes
    assert fake_api.answers == [] and fake_api.of_kind("next") == [], fake_api.describe()
    rid = fake_api.push_event({"n": 1})
    emulator.events_allowed.set()
    assert json.loads(fake_api.wait_answer(rid, 15, alive=rt.alive).body) == {"n": 1}, rt.diag()
    rid = fake_api.push_event({"n": 2})
    assert json.loads(fake_api.wait_answer(rid, 15, alive=rt.alive).body) == {"n": 2}, rt.diag()
    assert [len(fake_api.answers_for(a.request_id)) for a in fake_api.answers] == [1, 1]
