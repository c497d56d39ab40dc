"""The Lambda Extensions API client, and external extensions run as
`bootstrap --extension NAME MODULE.FUNCTION` (beyond awslambdaric)."""

import json

from lambda_bootstrap.errors import header_name
from lambda_bootstrap.faults import RuntimeFault, safe_str
from lambda_bootstrap.runtime_api import KeepAliveConnection, RuntimeApiError


class ExtensionsApiClient:
    """The Lambda Extensions API (register, next event, init error, exit error), for the graceful-shutdown
    helper and for extensions run with `bootstrap --extension NAME MODULE.FUNCTION`."""

    def __init__(self, address):
        self._conn = KeepAliveConnection(address)
        self.base = self._conn.prefix + "/2020-01-01/extension"
        self.identifier = None

    def _call(self, method, path, body=None, headers=()):
        headers = list(headers)
        if self.identifier is not None:
            headers.append(("Lambda-Extension-Identifier", self.identifier))
        return self._conn.request(method, self.base + path, body, headers)

    def register(self, name, events):
        """Register as extension `name` for `events` (e.g. ["INVOKE", "SHUTDOWN"]); returns the body."""
        body = json.dumps({"events": list(events)}).encode()
        status, headers, answer = self._call("POST", "/register", body, [("Lambda-Extension-Name", name)])
        if status != 200:
            raise RuntimeApiError.answered("POST", self.base + "/register", status, answer)
        self.identifier = headers.get("lambda-extension-identifier")
        return json.loads(answer or b"{}")

    def ask_next_event(self):
        """Send /event/next and leave its answer unread: for an extension subscribed to no event."""
        self._conn.send_head(
            "GET", self.base + "/event/next", [("Lambda-Extension-Identifier", self.identifier)]
        )

    def next_event(self):
        """Block until the next event: {"eventType": "INVOKE" | "SHUTDOWN", ...}."""
        status, _, answer = self._call("GET", "/event/next")
        if status != 200:
            raise RuntimeApiError.answered("GET", self.base + "/event/next", status, answer)
        return json.loads(answer)

    def init_error(self, error_type, message):
        return self._report("/init/error", error_type, message)

    def exit_error(self, error_type, message):
        return self._report("/exit/error", error_type, message)

    def _report(self, path, error_type, message):
        body = json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()
        return self._call("POST", path, body, [("Lambda-Extension-Function-Error-Type", error_type)])[0]


def run_extension(config, name, target, load_handler):
    """`bootstrap --extension NAME MODULE.FUNCTION`: an external extension that calls FUNCTION(event) for
    each event it receives, and leaves at SHUTDOWN. `load_handler` loads FUNCTION as a handler is loaded."""
    extension = ExtensionsApiClient(config.api_address)
    extension.register(name, ["INVOKE", "SHUTDOWN"])
    try:
        callback = load_handler(target)
    except Exception as exc:
        error_type = exc.error_type if isinstance(exc, RuntimeFault) else header_name(exc) or "Unhandled"
        extension.init_error("Extension.%s" % error_type.rpartition(".")[2], safe_str(exc))
        return 1
    while True:
        event = extension.next_event()
        try:
            callback(event)
        except Exception as exc:
            extension.exit_error("Extension.%s" % (header_name(exc) or "Unhandled"), safe_str(exc))
            return 1
        if str(event.get("eventType", "")).upper() == "SHUTDOWN":
            return 0
