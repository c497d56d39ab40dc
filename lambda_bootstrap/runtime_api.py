"""The Lambda Runtime API client, and the HTTP/1.1 framing it speaks over one keep-alive connection."""

import contextlib
import sys
import time

from lambda_bootstrap import __version__, phases
from lambda_bootstrap.faults import safe_text

API_VERSION = "2018-06-01"
CONNECT_TIMEOUT_SECONDS = 1.0
BODY_PIECE_BYTES = 1 << 20  # a longer body is read in pieces: an announced length reserves nothing
MAX_LINE_BYTES = 65536
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
NEXT_RETRY_DELAYS = (0.05, 0.2, 0.5)  # bounded retry of /next on connection errors only
# /next answered 204 (no event yet, as cargo-lambda says it): ask again after this, doubled each time, up to
NO_EVENT_DELAYS = (0.01, 0.25)
USER_AGENT = "python-lambda-bootstrap/%s (Python %s)" % (__version__, sys.version.split()[0])


class TransportError(Exception):
    """A request to the Runtime API failed on the wire (refused, reset, cut short). `head`: the answer's
    (status, headers) when only its body was lost."""

    def __init__(self, message, head=None):
        super().__init__(message)
        self.head = head


class BodyLost(ConnectionError):
    """The answer's head arrived, its body did not (in full)."""

    def __init__(self, exc, head):
        super().__init__("%s: %s" % (type(exc).__name__, exc))
        self.head = head


class MalformedAnswer(Exception):
    """The Runtime API answered with something that is not HTTP/1.1 the runtime can frame."""


class RuntimeApiError(Exception):
    """The Runtime API answered with an unexpected status, or could not be reached."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status

    @classmethod
    def answered(cls, method, path, status, body):
        return cls("%s %s answered %d: %s" % (method, path, status, safe_text(body)), status)


class Invocation:
    """One event from /next: the body and the headers that describe it."""

    __slots__ = (
        "request_id", "body", "content_type", "deadline_ms", "function_arn", "trace_id",
        "client_context", "cognito_identity", "tenant_id", "invocation_id", "read_error",
    )  # fmt: skip

    def __init__(self, headers, body, read_error=None):
        """`headers`: lower-case names. `read_error`: why the body could not be read, if it could not."""
        self.request_id = headers.get("lambda-runtime-aws-request-id")
        self.body = body
        self.read_error = read_error
        self.content_type = headers.get("content-type") or "application/json"
        try:
            self.deadline_ms = int(headers.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            self.deadline_ms = 0
        self.function_arn = headers.get("lambda-runtime-invoked-function-arn")
        self.trace_id = headers.get("lambda-runtime-trace-id") or None
        self.client_context = headers.get("lambda-runtime-client-context")
        self.cognito_identity = headers.get("lambda-runtime-cognito-identity")
        self.tenant_id = headers.get("lambda-runtime-aws-tenant-id")
        self.invocation_id = headers.get("lambda-runtime-invocation-id")


class KeepAliveConnection:
    """One HTTP/1.1 connection to the Runtime API, opened once and kept for every call.

    urllib3 opens the socket (TCP_NODELAY and a connect timeout, the same on urllib3 1.26 and 2.x). The
    runtime frames requests and responses itself: the endpoint is fixed and local, and http.client's
    email-based header parsing took more than a quarter of the runtime's own time per event.
    """

    def __init__(self, address):
        """`address`: AWS_LAMBDA_RUNTIME_API (see parse_address)."""
        self.address = address
        self.host, self.port, self.prefix, self.authority = parse_address(address)
        self.sock = self._reader = None
        # Imported here, not at the first connect: the runtime makes its clients before it loads the handler,
        # and a handler may leave sys.path unusable. By now sys.path holds the function's folders, so a
        # function that brings its own urllib3 has it used.
        import socket

        phases.mark("urllib3")
        from urllib3.util.connection import create_connection

        phases.mark("urllib3-done")
        "".encode("idna")  # urllib3 encodes the host so: the codec's module is imported at its first use
        self._create_connection = create_connection
        self._socket_options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

    def close(self):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self._reader.close()
                self.sock.close()
        self.sock = self._reader = None

    def request(self, method, path, body=None, headers=()):
        """(status, headers with lower-case names, body). Any failure on the wire: TransportError; an answer
        that cannot be framed: RuntimeApiError (the API is local and trusted: waiting for more could hang)."""
        try:
            self.send_head(method, path, headers, body)
            return self.read_response()
        except MalformedAnswer as exc:
            self.close()
            raise RuntimeApiError(
                "%s %s: the Runtime API's answer cannot be read: %s" % (method, path, exc)
            ) from exc
        except Exception as exc:
            raise self.broken(exc) from exc

    def broken(self, exc):
        self.close()
        return TransportError("%s: %s" % (type(exc).__name__, exc), getattr(exc, "head", None))

    def send_head(self, method, path, headers, body=None):
        if self.sock is None:
            sock = self._create_connection(
                (self.host, self.port), CONNECT_TIMEOUT_SECONDS, socket_options=self._socket_options
            )
            sock.settimeout(None)  # /next may wait for minutes, across freezes of the sandbox
            self.sock, self._reader = sock, sock.makefile("rb")
        head = "%s %s HTTP/1.1\r\nHost: %s\r\n" % (method, path, self.authority)
        head += "User-Agent: %s\r\n" % USER_AGENT
        head += frame_headers(headers)
        if body is not None:
            head += "Content-Length: %d\r\n" % len(body)
        head = (head + "\r\n").encode("utf-8")
        if body and len(body) <= 65536:
            self.sock.sendall(head + body)  # one segment for the common small post
        else:
            self.sock.sendall(head)
            if body:
                self.sock.sendall(body)

    def send(self, data):
        self.sock.sendall(data)

    def send_chunk(self, chunk):
        """One chunk of a chunked body; a large one goes out as it is, not copied into its frame."""
        if len(chunk) <= 65536:
            self.sock.sendall(b"%X\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.sock.sendall(b"%X\r\n" % len(chunk))
            self.sock.sendall(chunk)
            self.sock.sendall(b"\r\n")

    def read_response(self):
        status = 100
        while 100 <= status < 200:  # skip interim responses
            status, headers = self._read_head()
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length = headers.get("content-length")
        if not chunked and length is None and status not in (204, 304):
            raise MalformedAnswer("a %d answer with neither Content-Length nor chunked encoding" % status)
        try:
            body = self._read_chunked() if chunked else self._read_exactly(int(length or 0))
        except Exception as exc:
            raise BodyLost(exc, (status, headers)) from exc
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _read_head(self):
        readline = self._reader.readline
        line = readline(MAX_LINE_BYTES + 1)
        if not line:
            raise ConnectionError("the Runtime API closed the connection")
        parts = line.split(None, 2)
        if (
            len(parts) < 2
            or not parts[0].startswith(b"HTTP/1.")
            or len(parts[1]) != 3
            or not parts[1].isdigit()
        ):
            raise MalformedAnswer("status line %r" % line[:100])
        headers = {}
        while True:
            line = readline(MAX_LINE_BYTES + 1)
            if line in (b"\r\n", b"\n"):
                return int(parts[1]), headers
            if line[-1:] != b"\n":
                if len(line) > MAX_LINE_BYTES:
                    raise MalformedAnswer("a header line over %d bytes" % MAX_LINE_BYTES)
                raise ConnectionError("the connection closed inside the response headers")
            name, colon, value = line.partition(b":")
            if not colon or not name or name.strip() != name:
                raise MalformedAnswer(
                    "a header line that is folded or has no colon after a name: %r" % line[:100]
                )
            name = name.lower().decode("latin-1")
            value = _header_value(value.strip())
            if name == "content-length" and (name in headers or not is_decimal(value)):
                raise MalformedAnswer("a duplicate or non-decimal Content-Length %r" % value)
            headers[name] = value

    def _read_line(self):
        """A line of a chunked body."""
        line = self._reader.readline(MAX_LINE_BYTES + 1)
        if len(line) > MAX_LINE_BYTES:
            raise ValueError("a line over %d bytes" % MAX_LINE_BYTES)
        return line

    def _read_exactly(self, size):
        if size <= BODY_PIECE_BYTES:
            data = self._reader.read(size)
        else:
            pieces, left = [], size
            while left:
                piece = self._reader.read(min(left, BODY_PIECE_BYTES))
                if not piece:
                    break
                pieces.append(piece)
                left -= len(piece)
            data = b"".join(pieces)
        if len(data) != size:
            raise ConnectionError("the body was cut short: %d of %d bytes" % (len(data), size))
        return data

    def _read_chunked(self):
        parts = []
        while True:
            size = self._read_line().split(b";", 1)[0].strip()
            if not size or not set(size) <= HEX_DIGITS:
                raise ValueError("a chunk size line %r" % size[:100])
            size = int(size, 16)
            if size == 0:
                break
            parts.append(self._read_exactly(size))
            if self._read_line() not in (b"\r\n", b"\n"):
                raise ValueError("a chunk not followed by CRLF")
        while self._read_line() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(parts)


def parse_address(address):
    """(host, port, path prefix, host:port) of AWS_LAMBDA_RUNTIME_API: host:port as Lambda sets it ([::1]:port
    for IPv6), or an http:// URL with a port and a path that every API path goes under, as other emulators
    give it (cargo-lambda: http://127.0.0.1:9000/.rt). Anything else: ValueError, with the message to show."""
    authority, prefix = address, ""
    scheme, sep, rest = address.partition("://")
    if sep:
        authority, slash, path = rest.partition("/")
        prefix = ("/" + path).rstrip("/") if slash else ""
    host, colon, port = authority.rpartition(":")
    valid = (
        (not sep or scheme.lower() == "http")
        and colon
        and host
        and is_decimal(port)
        and 0 < int(port) < 65536
        and "/" not in authority
        and all(c.isascii() and c.isprintable() and c not in " ?#" for c in address)
    )
    if not valid:
        raise ValueError(
            "AWS_LAMBDA_RUNTIME_API must be host:port or http://host:port/path, not %r (Lambda sets it to "
            "host:port; other emulators may give a URL with a path prefix)" % address
        )
    return host.strip("[]"), int(port), prefix, authority


def frame_headers(headers):
    """Header (or trailer) lines. A value with CR, LF, another control character or non-ASCII would forge
    or break the head: refused, whatever it was built from."""
    for name, value in headers:
        if not (value.isascii() and value.isprintable()):
            raise ValueError("the %s header cannot be sent: %r" % (name, value[:100]))
    return "".join("%s: %s\r\n" % pair for pair in headers)


def is_decimal(text):
    """Digits 0-9 only: int() also takes signs, underscores, blanks and other scripts' digits."""
    return text.isascii() and text.isdigit()


def _header_value(raw):
    """The Runtime API sends header values as UTF-8 (client context may hold any text)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class RuntimeApiClient:
    """The Runtime API calls, all over one KeepAliveConnection."""

    def __init__(self, address):
        self._conn = KeepAliveConnection(address)
        self.base = "%s/%s/runtime" % (self._conn.prefix, API_VERSION)

    def next_invocation(self):
        path = self.base + "/invocation/next"
        delay, most = NO_EVENT_DELAYS
        while True:
            status, headers, body, lost = self._ask_next(path)
            if status != 204:
                break
            # No event yet, and none taken: ask again, less often the longer nothing comes.
            time.sleep(delay)
            delay = min(delay * 2, most)
        if status != 200:
            raise RuntimeApiError.answered("GET", path, status, body)
        invocation = Invocation(headers, body, lost)
        if invocation.request_id is None:
            raise RuntimeApiError(
                "/next sent an event without Lambda-Runtime-Aws-Request-Id: it cannot be answered"
            )
        return invocation

    def _ask_next(self, path):
        """(status, headers, body, why the body was lost or None); connection failures retried, boundedly."""
        for delay in (*NEXT_RETRY_DELAYS, None):
            try:
                return (*self._conn.request("GET", path), None)
            except TransportError as exc:
                # An event whose head arrived was handed out: it gets an answer, the error invoke() raises.
                if exc.head is not None:
                    return (*exc.head, b"", exc)
                if delay is None:  # nothing was taken: asking again cannot take an event twice
                    raise RuntimeApiError(
                        "cannot reach the Runtime API at %s: %s" % (self._conn.address, exc)
                    ) from exc
                time.sleep(delay)

    def post_response(self, invocation, body, content_type):
        headers = [("Content-Type", content_type)]
        return self._post("/invocation/%s/response" % invocation.request_id, body, headers, invocation)

    def post_error(self, invocation, error):
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Function-Error-Type", error.header_type),
            ("Lambda-Runtime-Function-XRay-Error-Cause", error.xray_cause),
        ]
        body = error.json().encode("ascii")
        return self._post("/invocation/%s/error" % invocation.request_id, body, headers, invocation)

    def post_init_error(self, error):
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Function-Error-Type", error.header_type),
        ]
        return self._post("/init/error", error.json().encode("ascii"), headers, None)

    def post_stream(self, invocation, stream):
        """A streamed response: chunked, each chunk sent as soon as it is produced. A failure after the
        first byte travels in HTTP trailers, which the platform reads; /error is no longer allowed then."""
        path = self.base + "/invocation/%s/response" % invocation.request_id
        headers = [
            ("Content-Type", stream.content_type),
            ("Lambda-Runtime-Function-Response-Mode", "streaming"),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body"),
        ]
        self._add_invocation_id(headers, invocation)
        conn = self._conn
        sent = started = False
        try:
            conn.send_head("POST", path, headers)
            started = True
            for chunk in stream:
                if chunk:  # an empty chunk would end the body
                    conn.send_chunk(chunk)
            conn.send(b"0\r\n" + frame_headers(stream.trailers()).encode("ascii") + b"\r\n")
            sent = True
            status, _, answer = conn.read_response()
        except Exception as exc:
            failure = conn.broken(exc)
            # Once the response has begun nothing may be posted again for it: (None, what happened). A stream
            # cut short (the connection closed under it, as for a caller that went away) is not a reason to
            # stop: the next /next, on a new connection, tells whether the Runtime API is still there.
            if sent:
                return None, "was sent; its answer was lost (%s)" % failure
            if started:
                return None, "was cut short: %s" % failure
            raise RuntimeApiError("POST %s failed: %s" % (path, failure)) from exc
        conn.close()  # the platform asks for a new connection after a streamed response
        return status, answer

    @staticmethod
    def _add_invocation_id(headers, invocation):
        if invocation is not None and invocation.invocation_id is not None:
            headers.append(("Lambda-Runtime-Invocation-Id", invocation.invocation_id))

    def _post(self, path, body, headers, invocation):
        self._add_invocation_id(headers, invocation)
        try:
            status, _, answer = self._conn.request("POST", self.base + path, body, headers)
        except TransportError as exc:  # the post may have arrived: sending it again could answer twice
            raise RuntimeApiError("POST %s failed: %s" % (path, exc)) from exc
        if status >= 500:
            raise RuntimeApiError.answered("POST", path, status, answer)
        return status, answer
