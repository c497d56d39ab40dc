"""Start-up timestamps, for bench/coldstart.py's phase breakdown.

When LAMBDA_BOOTSTRAP_PHASES names a file, each mark appends a line `NAME MONOTONIC_NS` to it
(CLOCK_MONOTONIC, which the benchmark's Runtime API and driver read too). Unset, a mark costs one
dictionary look-up; set, one small append each (a few microseconds). Marks, in start-up order:

  python          the first runtime hook: the interpreter has started (frozen form only)
  runtime         the runtime's own code starts (its package is imported)
  main            the runtime's imports are done, main() starts
  urllib3 / urllib3-done    around the urllib3 import of the Runtime API connection
  handler / handler-done    around the handler's import
"""

import os
import time

_PATH = os.environ.get("LAMBDA_BOOTSTRAP_PHASES")


def mark(name):
    if _PATH:
        fd = os.open(_PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"%s %d\n" % (name.encode(), time.monotonic_ns()))
        finally:
            os.close(fd)
