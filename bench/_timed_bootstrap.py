"""Run bootstrap.py as __main__ and note the times of its start-up phases (bench only).

``python bench/_timed_bootstrap.py /path/bootstrap.py [handler]`` with ``BENCH_TIMING_FILE`` set
writes ``start compile_end handler_start handler_end`` (time.monotonic_ns) to that file once the
handler module is imported. It compiles and executes the script the way ``python script.py``
does (source compiled on every start: a __main__ script has no .pyc), importing nothing more.
"""

import time

T0 = time.monotonic_ns()

import builtins  # noqa: E402  (already loaded by the interpreter's start-up)
import importlib  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

_out = os.environ.pop("BENCH_TIMING_FILE")
_marks = [T0]
_import_module = importlib.import_module


def _timed(name, package=None):
    if len(_marks) > 2:
        return _import_module(name, package)
    _marks.append(time.monotonic_ns())
    try:
        return _import_module(name, package)
    finally:
        _marks.append(time.monotonic_ns())
        with open(_out, "w") as f:
            f.write(" ".join(str(m) for m in _marks) + "\n")


importlib.import_module = _timed
sys.argv = sys.argv[1:]
path = os.path.abspath(sys.argv[0])
sys.path[0] = os.path.dirname(path)
with open(path, "rb") as f:
    code = compile(f.read(), path, "exec")
_marks.append(time.monotonic_ns())
main = types.ModuleType("__main__")
main.__file__ = path
main.__builtins__ = builtins
sys.modules["__main__"] = main
exec(code, main.__dict__)  # noqa: S102  (what `python script.py` does)
