"""The frozen bootstrap the tests run: $BOOTSTRAP_BINARY, or one frozen once per test process.

The tests that use it are marked `build` (they need PyInstaller, which only the main test venv has).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

REPO_ROOT = Path(__file__).resolve().parent.parent

_FROZEN: Dict[str, Optional[Path]] = {}


def frozen_binary() -> Optional[Path]:
    """The frozen bootstrap to test: $BOOTSTRAP_BINARY when set, else one frozen from the current
    bootstrap.py with scripts/freeze.sh (runtime only, onedir), once per test process, into a temporary
    folder removed at exit. None when this interpreter has no PyInstaller."""
    named = os.environ.get("BOOTSTRAP_BINARY")
    if named:
        return Path(named)
    if "binary" not in _FROZEN:
        _FROZEN["binary"] = _freeze()
    return _FROZEN["binary"]


def _freeze() -> Optional[Path]:
    import atexit
    import importlib.util
    import shutil
    import tempfile

    if importlib.util.find_spec("PyInstaller") is None:
        return None
    root = Path(tempfile.mkdtemp(prefix="faults-frozen-"))
    atexit.register(shutil.rmtree, str(root), True)
    function = root / "function"
    function.mkdir()
    argv = ["bash", str(REPO_ROOT / "scripts" / "freeze.sh"), "--python", sys.executable]
    argv += ["--function", str(function), "--out", str(root / "out")]
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
        check=False,
    )
    binary = root / "out" / "bundle" / "bootstrap"
    if proc.returncode != 0 or not binary.exists():
        raise RuntimeError(
            "freezing bootstrap.py failed (exit %d):\n%s" % (proc.returncode, proc.stdout[-4000:])
        )
    return binary
