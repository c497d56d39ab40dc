"""The HTTP fronts of Lambda: what each one's event says about a request, and the answer each one reads.

Written from the payload formats in AWS's documentation:

- API Gateway REST APIs (payload 1.0): `httpMethod`, `path`, `multiValueHeaders`,
  `multiValueQueryStringParameters` (decoded values), `requestContext.stage` and `requestContext.path`;
  the answer has `statusCode`, `multiValueHeaders`, `body`, `isBase64Encoded`. With
  `responseTransferMode: STREAM` the same event is answered by a streamed prelude instead.
- HTTP APIs and Function URLs (payload 2.0): `rawPath`, `rawQueryString` (as sent), `headers` (repeated
  ones joined with commas), `cookies`, `requestContext.http`; the answer has `statusCode`, `headers`,
  `cookies`, `body`, `isBase64Encoded`.
- Application Load Balancers: `requestContext.elb`, `httpMethod`, `path`, query parameters as the client
  sent them (not decoded), `multiValueHeaders` only when the target group enables them, in which case
  the answer must use them too; the answer also carries `statusDescription`.

A front's request becomes one `HttpRequest`; its `front` then formats the app's answer, whole
(`answer`) or as the metadata that goes before a streamed body (`prelude_metadata`).
"""

import base64
import http
import os
import urllib.parse

PATH_SAFE = "/:@!$&'()*+,;=-._~"
TEXT_MEDIA_TYPES = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/graphql",
    "application/x-ndjson",
)


class NotAnHttpEvent(Exception):
    """The event is not a request from one of Lambda's HTTP fronts."""


class HttpRequest:
    """One request, whatever front it came through. `path` is decoded and includes `root_path` (the stage
    or base path the front puts before the app's routes); `query` is the encoded query string, as bytes."""

    __slots__ = (
        "front",
        "method",
        "path",
        "raw_path",
        "root_path",
        "query",
        "headers",
        "body",
        "scheme",
        "server",
        "client",
    )

    def __init__(self, front, method, path, root_path, query, headers, body, client_ip):
        self.front = front
        self.method = method.upper()
        self.raw_path = path
        self.path = urllib.parse.unquote(path)
        self.root_path = urllib.parse.unquote(root_path)
        self.query = query.encode("utf-8")
        self.headers = headers  # [(lower-case name, value)], repeated headers kept apart
        self.body = body
        self.client = (client_ip, 0) if client_ip else None
        self.scheme = self.header("x-forwarded-proto", "https").split(",")[0].strip() or "https"
        host = self.header("host", "lambda")
        name, colon, port = host.rpartition(":")
        if not (colon and port.isdigit()):  # no port in Host: the one the front names, else the scheme's
            name = host
            port = self.header("x-forwarded-port", "") or ("443" if self.scheme == "https" else "80")
        self.server = (name, int(port) if port.isdigit() else 443)

    def header(self, name, default=None):
        for key, value in self.headers:
            if key == name:
                return value
        return default


# ---------------------------------------------------------------------------
# Telling the fronts apart
# ---------------------------------------------------------------------------


def parse_event(event):
    """The HttpRequest an HTTP front's event describes; NotAnHttpEvent naming what arrived otherwise."""
    if isinstance(event, dict):
        context = event.get("requestContext")
        context = context if isinstance(context, dict) else {}
        if "elb" in context:
            return _alb_request(event, context)
        if event.get("version") == "2.0" and isinstance(context.get("http"), dict):
            return _v2_request(event, context)
        if "httpMethod" in event and "path" in event:
            return _rest_request(event, context)
    raise NotAnHttpEvent(
        "this function serves a web app, and the event is not an HTTP request from API Gateway, a Function "
        "URL or an Application Load Balancer: it is %s. Route such events to an ordinary handler with "
        "LAMBDA_NON_HTTP_HANDLER=module.function (or the wrapper's non_http argument)."
        % describe_event(event)
    )


def describe_event(event):
    """A short name for what arrived: the AWS service of a known event shape, or the keys it has."""
    if not isinstance(event, dict):
        return "a JSON %s, not an object" % type(event).__name__
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        source = records[0].get("eventSource") or records[0].get("EventSource") or "an unknown source"
        return "a batch of %d record(s) from %s" % (len(records), source)
    if event.get("source") and "detail-type" in event:
        return "an EventBridge event (source %r, detail-type %r)" % (event["source"], event["detail-type"])
    context = event.get("requestContext")
    if "version" in event and not (isinstance(context, dict) and "http" in context):
        return "a payload %s event without requestContext.http" % event.get("version")
    keys = sorted(str(key) for key in event)
    shown = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
    return "an object with the keys [%s]" % shown if keys else "an empty object"


def _body(event):
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("the request body is marked isBase64Encoded but is not base64: %s" % exc) from None


def _lower_pairs(single, multi):
    """[(lower-case name, value)] from a multi-value map when there is one, else from the single-value one."""
    if multi:
        return [(str(k).lower(), str(v)) for k, values in multi.items() for v in (values or ())]
    return [(str(k).lower(), str(v)) for k, v in (single or {}).items() if v is not None]


def _rest_request(event, context):
    headers = _lower_pairs(event.get("headers"), event.get("multiValueHeaders"))
    multi_query = event.get("multiValueQueryStringParameters")
    if multi_query:
        query = urllib.parse.urlencode([(k, v) for k, vs in multi_query.items() for v in vs or ()])
    else:
        query = urllib.parse.urlencode(event.get("queryStringParameters") or {})
    path = urllib.parse.quote(event.get("path") or "/", safe=PATH_SAFE)
    # requestContext.path is what the client asked for: the stage (default domain) or the base path
    # (custom domain) before the resource path. That prefix is where the app is mounted.
    asked = urllib.parse.quote(context.get("path") or "", safe=PATH_SAFE)
    mount = asked.rstrip("/") if path == "/" else asked[: -len(path)] if asked.endswith(path) else ""
    root_path = mount if mount.startswith("/") else ""
    path = root_path + path
    identity = context.get("identity") or {}
    client_ip = identity.get("sourceIp")
    method, body = event["httpMethod"], _body(event)
    return HttpRequest(RestFront(), method, path, root_path, query, headers, body, client_ip)


def _v2_request(event, context):
    headers = _lower_pairs(event.get("headers"), None)
    cookies = event.get("cookies")
    if cookies:
        headers = [h for h in headers if h[0] != "cookie"] + [("cookie", "; ".join(cookies))]
    http_context = context["http"]
    path = event.get("rawPath") or http_context.get("path") or "/"
    stage = context.get("stage") or "$default"
    root_path = ""
    if stage != "$default" and (path == "/" + stage or path.startswith("/%s/" % stage)):
        root_path = "/" + stage  # an HTTP API's named stage is part of the path the client asked for
    domain = context.get("domainName") or ""
    front = HttpApiFront() if domain and ".lambda-url." not in domain else FunctionUrlFront()
    query = event.get("rawQueryString") or ""
    method, client_ip = http_context.get("method", "GET"), http_context.get("sourceIp")
    return HttpRequest(front, method, path, root_path, query, headers, _body(event), client_ip)


def _alb_request(event, context):
    multi = "multiValueHeaders" in event
    headers = _lower_pairs(event.get("headers"), event.get("multiValueHeaders"))
    # ALB passes query parameters through as the client encoded them: join them, do not encode them again.
    if multi:
        pairs = [(k, v) for k, vs in (event.get("multiValueQueryStringParameters") or {}).items() for v in vs]
    else:
        pairs = list((event.get("queryStringParameters") or {}).items())
    query = "&".join("%s=%s" % (k, v) if v != "" else k for k, v in pairs)
    client_ip = dict(headers).get("x-forwarded-for", "").split(",")[0].strip()
    method, path, body = event["httpMethod"], event.get("path") or "/", _body(event)
    return HttpRequest(AlbFront(multi), method, path, "", query, headers, body, client_ip)


# ---------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------


def is_text(headers, body):
    """Whether a body can travel as plain text: a textual media type, no content coding, valid UTF-8."""
    media_type = ""
    for name, value in headers:
        lower = name.lower()
        if lower == "content-encoding" and value.strip().lower() not in ("", "identity"):
            return False
        if lower == "content-type":
            media_type = value.split(";")[0].strip().lower()
    if media_type and not (
        media_type.startswith("text/")
        or media_type in TEXT_MEDIA_TYPES
        or media_type.endswith(("+json", "+xml"))
    ):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _body_fields(headers, body):
    if is_text(headers, body):
        return {"body": body.decode("utf-8"), "isBase64Encoded": False}
    return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def _grouped(headers):
    """{name: [values]} in the order the names first appear, names compared without case."""
    grouped, spelling = {}, {}
    for name, value in headers:
        key = spelling.setdefault(name.lower(), name)
        grouped.setdefault(key, []).append(value)
    return grouped


def _joined(headers):
    """{name: value}, repeated headers joined with ", " as HTTP allows for all but Set-Cookie."""
    return {name: ", ".join(values) for name, values in _grouped(headers).items()}


def header_text(raw):
    """A header's bytes as text for the front's JSON: UTF-8 when they are, else each byte one character."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _split_cookies(headers):
    cookies = [value for name, value in headers if name.lower() == "set-cookie"]
    return [(n, v) for n, v in headers if n.lower() != "set-cookie"], cookies


class Front:
    """How one front wants its answer. `name` goes into the docs and the error messages."""

    name = "?"
    streams = True  # the front can call InvokeWithResponseStream

    def answer(self, status, headers, body):
        raise NotImplementedError

    def prelude_metadata(self, status, headers):
        """The JSON that goes before a streamed body (then eight NUL bytes), as Lambda reads it for Function
        URLs and API Gateway: statusCode, headers, multiValueHeaders, cookies."""
        others, cookies = _split_cookies(headers)
        return {"statusCode": status, "headers": _joined(others), "cookies": cookies}


class RestFront(Front):
    name = "API Gateway REST API"

    def answer(self, status, headers, body):
        return {"statusCode": status, "multiValueHeaders": _grouped(headers), **_body_fields(headers, body)}

    def prelude_metadata(self, status, headers):
        return {"statusCode": status, "multiValueHeaders": _grouped(headers)}


class HttpApiFront(Front):
    name = "API Gateway HTTP API"
    streams = False

    def answer(self, status, headers, body):
        others, cookies = _split_cookies(headers)
        answer = {"statusCode": status, "headers": _joined(others), **_body_fields(headers, body)}
        if cookies:
            answer["cookies"] = cookies
        return answer


class FunctionUrlFront(HttpApiFront):
    name = "Function URL"
    streams = True


class AlbFront(Front):
    name = "Application Load Balancer"
    streams = False

    def __init__(self, multi_value):
        self.multi_value = multi_value

    def answer(self, status, headers, body):
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        answer = {"statusCode": status, "statusDescription": "%d %s" % (status, phrase)}
        if self.multi_value:
            answer["multiValueHeaders"] = _grouped(headers)
        else:
            others, cookies = _split_cookies(headers)
            answer["headers"] = _joined(others)
            # One value per name: several cookies go out under names that differ only in case, which
            # clients read as the same header. Enabling multi-value headers on the target group avoids this.
            for cookie, spelling in zip(cookies, _case_variants("set-cookie")):
                answer["headers"][spelling] = cookie
        answer.update(_body_fields(headers, body))
        return answer


def _case_variants(name):
    """Spellings of `name` that differ only in letter case, as many as its letters allow."""
    letters = [i for i, c in enumerate(name) if c.isalpha()]
    for n in range(1 << len(letters)):
        chars = list(name)
        for bit, index in enumerate(letters):
            if n >> bit & 1:
                chars[index] = chars[index].upper()
        yield "".join(chars)


# ---------------------------------------------------------------------------
# What the ASGI and WSGI adapters share
# ---------------------------------------------------------------------------

INVOKE_MODES = ("BUFFERED", "RESPONSE_STREAM")


def chosen_invoke_mode(value=None):
    """The invoke mode, in the words of a Function URL's InvokeMode: the argument, else LAMBDA_INVOKE_MODE,
    else BUFFERED. The event does not say which mode the caller used, so the function must be told."""
    mode = (value or os.environ.get("LAMBDA_INVOKE_MODE") or "BUFFERED").strip().upper()
    if mode not in INVOKE_MODES:
        raise ValueError(
            "invoke mode %r: it is BUFFERED or RESPONSE_STREAM (as a Function URL's InvokeMode)" % mode
        )
    return mode


class WebAdapter:
    """A Lambda handler that serves a web app: `adapter(event, context)`. Subclasses serve one request
    (`serve`); this class picks the front, the invoke mode, and the handler for events that are not HTTP."""

    def __init__(self, app, invoke_mode=None, non_http=None):
        self.app = app
        self.invoke_mode = chosen_invoke_mode(invoke_mode)
        self.non_http = non_http

    def __call__(self, event, context):
        try:
            request = parse_event(event)
        except NotAnHttpEvent:
            handler = self.non_http or self._named_non_http()
            if handler is None:
                raise
            return handler(event, context)
        # ALB and HTTP APIs call Invoke, never InvokeWithResponseStream: their answer is always whole.
        stream = self.invoke_mode == "RESPONSE_STREAM" and request.front.streams
        return self.serve(request, event, context, stream)

    def _named_non_http(self):
        """LAMBDA_NON_HTTP_HANDLER, loaded when first needed: it may live in the module that makes this
        adapter, which is not fully imported yet when the adapter is made."""
        name = os.environ.get("LAMBDA_NON_HTTP_HANDLER")
        if name:
            import bootstrap  # the runtime's handler loading, as for _HANDLER

            self.non_http = bootstrap.load_handler(name)
        return self.non_http

    def serve(self, request, event, context, stream):
        raise NotImplementedError

    def finish(self):
        """Called by the runtime once the answer is posted and before it asks for the next event: the work an
        app does after its response (background tasks) ends here, while the sandbox is not frozen yet."""


def streamed(front, status, headers, chunks):
    """The runtime's streamed HTTP response: `front`'s prelude (status, headers, cookies), then `chunks`."""
    from lambda_bootstrap.streaming import HttpStreamingResponse

    response = HttpStreamingResponse(chunks, status)
    response.metadata = front.prelude_metadata(status, headers)
    return response
