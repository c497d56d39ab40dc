"""Functions the build must refuse, or warn about: a clear error, and no zip unless it only warns.

* compiled code vendored into the function folder for another platform or Python
  (scripts/check_function.py, before anything is installed or frozen);
* a requirement pip cannot install, and a source distribution that needs a C header or a compiler
  the build machine lacks (pip's output, then scripts/pip_failure.py's reading of it);
* Lambda's size limits (scripts/build_summary.py): over 250 MiB unzipped is an error, over 50 MiB
  zipped a warning with the S3 upload commands.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Dict, Optional

import build_summary
import check_function
import pip_failure
import pytest

REPO = Path(__file__).resolve().parent.parent
HANDLER = "def handler(event, context):\n    return {'ok': True}\n"


def function(root: Path, requirements: str = "") -> Path:
    fn = root / "fn"
    fn.mkdir()
    (fn / "app.py").write_text(HANDLER)
    if requirements:
        (fn / "requirements.txt").write_text(requirements)
    return fn


def build(fn: Path, tmp_path: Path, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "bash",
            str(REPO / "build.sh"),
            "--native",
            "--dist",
            str(tmp_path / "dist"),
            "--work",
            str(tmp_path / "work"),
            str(fn),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **(env or {})},
    )


def slow_build(test):
    """A test that runs build.sh: slow, and only where the build tools are."""
    return pytest.mark.slow(pytest.mark.build(pytest.mark.timeout(900)(test)))


def assert_refused(proc: subprocess.CompletedProcess, tmp_path: Path, *messages: str) -> None:
    """The build failed, said each of messages, and wrote no zip."""
    assert proc.returncode != 0, proc.stderr[-3000:]
    for message in messages:
        assert message in proc.stderr, message
    assert not (tmp_path / "dist" / "bootstrap.zip").exists()


def own_extension_module() -> Path:
    """An extension module of this very Python (ELF, this machine, this Python's tag)."""
    dynload = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    return next(dynload.glob("_json*" + sysconfig.get_config_var("EXT_SUFFIX")))


def elf_for(machine: int) -> bytes:
    """A 64-byte ELF header for another machine."""
    header = bytearray(own_extension_module().read_bytes()[:64])
    struct.pack_into("<H", header, 18, machine)
    return bytes(header)


# --- foreign compiled code in the function folder ---------------------------------------------------


def test_check_function_names_each_foreign_file(tmp_path):
    fn = function(tmp_path)
    other = "%d%d" % (sys.version_info[0], sys.version_info[1] - 1)
    (fn / "mac").mkdir()
    (fn / "mac" / ("_speedups.cpython-%s-darwin.so" % other)).write_bytes(b"\xcf\xfa\xed\xfe" + bytes(60))
    (fn / "arm").mkdir()
    (fn / "arm" / "_core.abi3.so").write_bytes(elf_for(183))
    (fn / "old").mkdir()
    shutil.copyfile(own_extension_module(), fn / "old" / ("_fast.cpython-%s-x86_64-linux-gnu.so" % other))
    (fn / "win.pyd").write_bytes(b"MZ" + bytes(62))
    info = fn / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nTag: cp312-cp312-macosx_11_0_arm64\n")

    found = check_function.findings(fn, "x86_64")

    assert sorted(found) == [
        "arm/_core.abi3.so: built for Linux arm64",
        "mac/_speedups.cpython-%s-darwin.so: built for macOS (a Mach-O binary)" % other,
        "old/_fast.cpython-%s-x86_64-linux-gnu.so: built for CPython %s.%s on x86_64-linux-gnu; this build "
        "freezes Python %d.%d (%s)"
        % (other, other[0], other[1:], *sys.version_info[:2], sysconfig.get_config_var("SOABI")),
        "pkg-1.0.dist-info: a wheel built for cp312-cp312-macosx_11_0_arm64",
        "win.pyd: built for Windows (a PE binary)",
    ]


def test_check_function_accepts_this_pythons_code(tmp_path):
    fn = function(tmp_path)
    shutil.copyfile(own_extension_module(), fn / own_extension_module().name)
    shutil.copyfile(own_extension_module(), fn / "_core.abi3.so")
    shutil.copyfile(own_extension_module(), fn / "libvendored.so.1")
    info = fn / "pkg-1.0.dist-info"
    info.mkdir()
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nTag: py3-none-any\n")
    assert check_function.findings(fn, "x86_64") == []


@slow_build
def test_build_refuses_a_macos_extension_module(tmp_path):
    fn = function(tmp_path)
    (fn / "_speedups.cpython-313-darwin.so").write_bytes(b"\xcf\xfa\xed\xfe" + bytes(60))
    assert_refused(
        build(fn, tmp_path),
        tmp_path,
        "_speedups.cpython-313-darwin.so: built for macOS (a Mach-O binary)",
        "--only-binary=:all: --platform manylinux2014_x86_64",
    )


# --- requirements that cannot install -----------------------------------------------------------------


@slow_build
def test_uninstallable_requirement(tmp_path):
    fn = function(tmp_path, "lambda-bootstrap-no-such-package-x7q==1.0\n")
    assert_refused(
        build(fn, tmp_path),
        tmp_path,
        "ERROR: No matching distribution found for lambda-bootstrap-no-such-package-x7q==1.0",  # pip's
        "no release of lambda-bootstrap-no-such-package-x7q==1.0 installs here",
    )


def source_project(fn: Path, name: str, c_source: str) -> None:
    """A source distribution (a local project) with one C extension, named in requirements.txt."""
    project = fn / "vendor" / name
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (project / "setup.py").write_text(
        "from setuptools import Extension, setup\n"
        "setup(name=%r, version='1.0', ext_modules=[Extension('fastpart', ['fastpart.c'])])\n" % name
    )
    (project / "fastpart.c").write_text(c_source)
    (fn / "requirements.txt").write_text("./vendor/%s\n" % name)


@slow_build
def test_sdist_that_needs_a_missing_header(tmp_path):
    fn = function(tmp_path)
    source_project(fn, "needs-header", "#include <lambda_no_such_header.h>\n")
    assert_refused(
        build(fn, tmp_path),
        tmp_path,
        "fatal error: lambda_no_such_header.h: No such file or directory",  # pip's output
        "needs-header has no wheel for Python",
        "needs the C header lambda_no_such_header.h: install the development package",
    )


@slow_build
def test_sdist_that_needs_a_missing_compiler(tmp_path):
    fn = function(tmp_path)
    source_project(fn, "needs-compiler", "int fastpart_answer(void) { return 42; }\n")
    assert_refused(
        build(fn, tmp_path, env={"CC": "/nonexistent/cc"}),
        tmp_path,
        "needs-compiler has no wheel for Python",
        "needs a C compiler (/nonexistent/cc is missing)",
    )


# --- Lambda's size limits ---------------------------------------------------------------------------


def fake_bundle(tmp_path: Path, payload: int) -> Dict[str, Path]:
    """A bundle with two installed packages and a zip of it; payload bytes of zeros in one of them."""
    contents = tmp_path / "bundle" / "_internal"
    deps = tmp_path / "deps"
    for name, size, version in (("small", 1000, "2.1"), ("big", payload, "1.3")):
        (contents / name).mkdir(parents=True)
        (contents / name / "__init__.pyc").write_bytes(bytes(size))
        info = deps / ("%s-%s.dist-info" % (name, version))
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (name, version))
        (info / "RECORD").write_text("%s/__init__.py,,\n%s/data.bin,,\n" % (name, name))
    zip_path = tmp_path / "bootstrap.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((tmp_path / "bundle").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(tmp_path / "bundle"))
    return {"zip": zip_path, "bundle": tmp_path / "bundle", "deps": deps}


def test_summary_lists_packages_largest_first(tmp_path):
    paths = fake_bundle(tmp_path, 3 * 2**20)
    lines, fits = build_summary.summary(
        paths["zip"], paths["bundle"], paths["deps"], tmp_path / "none", "/var/task"
    )
    assert fits
    at = lines.index("  the function's packages, largest first:")
    assert [line.split()[:3] for line in lines[at + 1 :]] == [["big", "1.3", "3.0"], ["small", "2.1", "0.0"]]
    assert not any(line.startswith(("error", "warning")) for line in lines)


def test_summary_over_the_unzipped_limit_is_an_error(tmp_path, monkeypatch):
    paths = fake_bundle(tmp_path, 3 * 2**20)
    monkeypatch.setattr(build_summary, "UNZIPPED_LIMIT", 2 * 2**20)
    lines, fits = build_summary.summary(
        paths["zip"], paths["bundle"], paths["deps"], tmp_path / "none", "/var/task"
    )
    assert not fits
    assert lines[-1].startswith(
        "error: unzipped, the bundle is 3.0 MiB: 1.0 MiB over Lambda's limit of 2.0 MiB"
    )


@slow_build
def test_build_over_250_mib_unzipped_writes_no_zip(tmp_path):
    fn = function(tmp_path)
    with open(fn / "model.bin", "wb") as f:
        f.truncate(251 * 2**20)  # zeros: small zipped, too big unzipped
    assert_refused(
        build(fn, tmp_path),
        tmp_path,
        "over Lambda's limit of 250.0 MiB (function and layers together)",
        "a layer does not help",
    )


@slow_build
def test_build_over_50_mib_zipped_warns_and_writes_the_zip(tmp_path):
    fn = function(tmp_path)
    (fn / "noise.bin").write_bytes(os.urandom(52 * 2**20))  # random: the zip stays over 50 MiB
    proc = build(fn, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning: the zip is " in proc.stderr
    assert "over the 50.0 MiB Lambda takes in a direct upload" in proc.stderr
    assert "aws s3 cp bootstrap.zip s3://BUCKET/bootstrap.zip" in proc.stderr
    assert "--s3-bucket BUCKET --s3-key bootstrap.zip" in proc.stderr
    assert (tmp_path / "dist" / "bootstrap.zip").stat().st_size > 50 * 2**20


# pip's output when a source build fails before its wheel step: what psycopg2 2.9 and an old cryptography
# print without pg_config or Rust (their messages, abridged as pip shows them).
PSYCOPG2_WITHOUT_PG_CONFIG = """Collecting psycopg2==2.9.13
  Downloading psycopg2-2.9.13.tar.gz (378 kB)
  Installing build dependencies: started
  Getting requirements to build wheel: finished with status 'error'
  error: subprocess-exited-with-error

  \u00d7 Getting requirements to build wheel did not run successfully.
  ╰─> [21 lines of output]
      Error: pg_config executable not found.

      pg_config is required to build psycopg2 from source.
"""
CRYPTOGRAPHY_WITHOUT_RUST = """Collecting cryptography==3.4.8
  Using cached cryptography-3.4.8.tar.gz (546 kB)
  error: subprocess-exited-with-error
      error: can't find Rust compiler
  ERROR: Failed building wheel for cryptography
"""


def test_pip_failure_names_the_sdist_and_what_it_needs():
    (psycopg2,) = pip_failure.explain(PSYCOPG2_WITHOUT_PG_CONFIG, "3.13")
    assert psycopg2.startswith("psycopg2 has no wheel for Python 3.13 on this platform")
    assert "needs PostgreSQL's pg_config (Debian: libpq-dev" in psycopg2
    assert "or require psycopg2-binary" in psycopg2
    (cryptography,) = pip_failure.explain(CRYPTOGRAPHY_WITHOUT_RUST, "3.13")
    assert cryptography.startswith("cryptography has no wheel for Python 3.13")
    assert "needs a Rust compiler" in cryptography
