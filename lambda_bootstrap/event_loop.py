"""Async handlers (beyond awslambdaric): awaited on one event loop kept for the life of the process."""

_event_loop = None


def run_awaitable(awaitable):
    """Await an async handler's result on one event loop kept for the life of the process."""
    global _event_loop
    if _event_loop is None:
        import asyncio

        _event_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_event_loop)

    async def wrap():
        return await awaitable

    return _event_loop.run_until_complete(wrap())
