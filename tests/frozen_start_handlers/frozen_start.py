"""A function that uses what PyInstaller's runtime hooks patch, for tests/test_frozen_start.py."""

import sys

# What the runtime had imported before this module: the deferred hooks must not have imported these.
PATCHED_MODULES = ("inspect", "pkgutil", "multiprocessing", "setuptools")
LOADED_AT_IMPORT = sorted(name for name in PATCHED_MODULES if name in sys.modules)


def square(x):
    return x * x


def pool_squares(method):
    import multiprocessing

    try:
        with multiprocessing.get_context(method).Pool(2) as pool:
            return pool.map_async(square, [1, 2, 3]).get(timeout=20)
    except Exception as exc:
        return "%s: %s" % (type(exc).__name__, exc)


def handler(event, context):
    import inspect
    import multiprocessing
    import pkgutil

    return {
        "loaded_at_import": LOADED_AT_IMPORT,
        "source": inspect.getsource(square),
        "getsourcefile": inspect.getsourcefile.__name__,
        "stdlib_listed": sorted({"json", "email", "asyncio"} & {m.name for m in pkgutil.iter_modules()}),
        "pkgutil_knows": sorted(
            c.__name__ for c in pkgutil.iter_importer_modules.registry if c is not object
        ),
        "freeze_support": multiprocessing.freeze_support.__name__,
        "pools": {method: pool_squares(method) for method in event.get("methods", [])},
    }
