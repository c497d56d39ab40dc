"""Graceful shutdown (beyond awslambdaric): hooks run at Lambda's SIGTERM, which Lambda sends only when an
extension is registered, so the runtime registers a no-op internal one."""

import contextlib
import logging
import os
import signal
import sys

from lambda_bootstrap import event_loop, logs
from lambda_bootstrap.extensions import ExtensionsApiClient
from lambda_bootstrap.runtime_api import RuntimeApiError, TransportError

SHUTDOWN_EXTENSION_NAME = "_python-bootstrap-graceful-shutdown"
SHUTDOWN_HOOKS_SECONDS = 0.4  # of the 500 ms Lambda gives a runtime with an internal extension
SHUTDOWN_WORKERS_SECONDS = 0.45  # the Managed Instances parent waits this long for its workers' hooks
hooks = []  # what on_shutdown() registered
_extension = None  # kept, so that its connection stays open


def on_shutdown(hook):
    """Run `hook()` when Lambda shuts the environment down. Use as a decorator in the handler module;
    it opts the function in to graceful shutdown, as LAMBDA_GRACEFUL_SHUTDOWN=1 does."""
    hooks.append(hook)
    return hook


def start_shutdown_extension(address):
    """Lambda sends SIGTERM only when an extension is registered: register a no-op internal one before the
    first /next, and leave it waiting in /event/next on its own connection, so that init can complete. No
    thread waits for the answer: it subscribed to nothing, and Managed Instances workers are forked after."""
    global _extension
    extension = ExtensionsApiClient(address)
    try:
        extension.register(SHUTDOWN_EXTENSION_NAME, [])
        extension.ask_next_event()
    except (TransportError, RuntimeApiError, OSError) as exc:
        logs.LOG_SINK.write_runtime_message("graceful shutdown is off: %s" % exc, logging.WARNING)
        return
    _extension = extension


def run_shutdown_hooks():
    import threading

    def run_all():
        for hook in reversed(hooks):
            try:
                hook()
            except Exception:
                logging.getLogger().exception("shutdown hook %r failed", hook)

    worker = threading.Thread(target=run_all, name="shutdown-hooks", daemon=True)
    worker.start()
    worker.join(SHUTDOWN_HOOKS_SECONDS)


def on_sigterm(signum, frame):
    """Lambda sends SIGTERM at shutdown: run the shutdown hooks, flush what is logged, leave cleanly."""
    if event_loop.is_running():
        # The signal interrupted the event loop (an app's work after its answer): a hook that needs the loop
        # (an ASGI app's lifespan shutdown) cannot run it from under itself, so all of them wait for it.
        event_loop.call_when_stopped(lambda: on_sigterm(signum, frame))
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a worker may get it from Lambda and from its parent
    if hooks:
        run_shutdown_hooks()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a handler may have closed them: nothing is left to save
            stream.flush()
    os._exit(0)
