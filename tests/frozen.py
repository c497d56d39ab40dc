"""The frozen bootstraps the tests run, and the runtimes the RIE tests run against.

One runtime-only freeze per test process (scripts/freeze.sh, prefix /opt), used two ways:

* ``frozen_layer()``: the bundle as built, for /opt in a Lambda-like root (scripts/lambda_root.py);
* ``frozen_binary()``: a copy whose C library is bundled for the copy's own folder, so that it runs
  on this machine without a root ($BOOTSTRAP_BINARY replaces it).

The tests that use them are marked `build` (they need PyInstaller, which only the main test venv has).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Union

from lambda_root import Layer

REPO_ROOT = Path(__file__).resolve().parent.parent
AWSLAMBDARIC_WRAPPER = REPO_ROOT / "tests" / "rie_handlers" / "awslambdaric_bootstrap.sh"

_FROZEN: Dict[str, Path] = {}


def frozen_layer() -> Path:
    """The runtime-only bundle built for /opt (bootstrap + _internal/)."""
    if "layer" not in _FROZEN:
        _freeze()
    return _FROZEN["layer"]


def frozen_binary() -> Path:
    """A frozen bootstrap that runs on this machine: $BOOTSTRAP_BINARY when set, else the test run's own."""
    named = os.environ.get("BOOTSTRAP_BINARY")
    if named:
        return Path(named)
    if "host" not in _FROZEN:
        _freeze()
    return _FROZEN["host"] / "bootstrap"


def _run(argv: List[str]) -> None:
    proc = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s" % (argv[1], proc.returncode, proc.stdout[-4000:]))


def _freeze() -> None:
    import atexit
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="frozen-bootstrap-"))
    atexit.register(shutil.rmtree, str(root), True)
    os.chmod(root, 0o755)  # noqa: S103 (the sandbox user of a Lambda-like root reads it)
    function = root / "function"
    function.mkdir()
    out = root / "out"
    _run(
        [
            "bash",
            str(REPO_ROOT / "scripts" / "freeze.sh"),
            "--python",
            sys.executable,
            "--function",
            str(function),
            "--out",
            str(out),
            "--prefix",
            "/opt",
        ]
    )
    host = root / "host"
    shutil.copytree(out / "bundle", host, symlinks=True)
    _run(
        [
            sys.executable,
            str(REPO_ROOT / "scripts" / "bundle_libc.py"),
            "--bundle",
            str(host),
            "--prefix",
            str(host),
        ]
    )
    _FROZEN["layer"] = out / "bundle"
    _FROZEN["host"] = host


# --- the runtimes of the RIE tests ------------------------------------------------------------------------


class RuntimeCommand(NamedTuple):
    """A runtime to test: a pytest id, the bootstrap argv, and the Lambda-like root it runs in (or None)."""

    id: str
    argv: List[str]
    root: Optional[str] = None  # a lambda_root variant: the frozen layer runs at /opt in that root

    @property
    def frozen(self) -> bool:
        return self.id.startswith("frozen")


def runtime_commands(in_roots: bool) -> List[RuntimeCommand]:
    """The runtimes the RIE tests run against.

    * ``script``: ``[sys.executable, <repo>/bootstrap.py]``.
    * ``frozen``: the frozen bootstrap on this machine (``frozen_binary``); with ``in_roots``, instead the
      frozen layer at /opt in a Lambda-like root, in each variant (``frozen-bare``,
      ``frozen-glibc-2.31``), with the test's handlers as source at /var/task. A test whose handlers
      write to this machine's paths cannot run in a root.
    * ``awslambdaric``: AWS's reference client (``python -m awslambdaric $_HANDLER``) when
      ``RIE_WITH_AWSLAMBDARIC=1``; it must be importable by ``sys.executable``.
    * ``custom``: ``$RIE_RUNTIME_CMD`` split like a shell would (any bootstrap, e.g. a broken one
      to check that the tests fail).
    """
    cmds = [RuntimeCommand("script", [sys.executable, str(REPO_ROOT / "bootstrap.py")])]
    if in_roots:
        cmds += [RuntimeCommand("frozen-" + variant, [], root=variant) for variant in ("bare", "glibc-2.31")]
    else:
        cmds.append(RuntimeCommand("frozen", []))
    if os.environ.get("RIE_WITH_AWSLAMBDARIC") == "1":
        cmds.append(RuntimeCommand("awslambdaric", ["/bin/sh", str(AWSLAMBDARIC_WRAPPER), sys.executable]))
    custom = os.environ.get("RIE_RUNTIME_CMD")
    if custom:
        cmds.append(RuntimeCommand("custom", shlex.split(custom)))
    return cmds


def resolve_argv(cmd: RuntimeCommand) -> Union[List[str], Layer]:
    """What RieProcess runs for ``cmd``: an argv, or the frozen layer in a root."""
    if cmd.root is not None:
        return Layer(frozen_layer(), cmd.root)
    if cmd.id == "frozen":
        return [str(frozen_binary())]
    return cmd.argv
