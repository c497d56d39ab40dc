"""Async handlers (beyond awslambdaric): awaited on one event loop kept for the life of the process."""

_event_loop = None
_when_stopped = []  # callbacks that need the loop and found it running under them (a signal handler's)


def is_running():
    """Whether the loop is running now: a signal handler that finds it so has interrupted it."""
    return _event_loop is not None and _event_loop.is_running()


def call_when_stopped(callback):
    """Call ``callback`` as soon as the running loop returns control (see ``is_running``)."""
    _when_stopped.append(callback)


def run_awaitable(awaitable):
    """Await an async handler's result on one event loop kept for the life of the process."""
    global _event_loop
    if _event_loop is None:
        import asyncio

        _event_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_event_loop)

    async def wrap():
        return await awaitable

    try:
        return _event_loop.run_until_complete(wrap())
    finally:
        while _when_stopped:
            _when_stopped.pop(0)()
