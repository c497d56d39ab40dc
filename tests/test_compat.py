"""Compatibility suite: functions that ship popular compiled wheels, built with ./build.sh and invoked
in the Lambda-like root (scripts/lambda_root.py invoke), each handler computing with its libraries.

The libraries are among the most-downloaded PyPI packages with compiled code that Lambda functions
use (PyPI download statistics), grouped three functions deep to keep the builds few:

* tests/compat/data: numpy (vendored OpenBLAS in numpy.libs/), pandas;
* tests/compat/web: pydantic (pydantic-core), orjson, PyYAML (libyaml), MarkupSafe, msgpack,
  charset-normalizer (mypyc);
* tests/compat/io: cryptography (with cffi), Pillow, lxml, psycopg2-binary (libpq), grpcio with
  protobuf (upb), zstandard;
* tests/compat/arrow: pyarrow alone (its Arrow and Parquet libraries beside the package, over 160 MiB):
  a Parquet round trip.

Every bundle ships each file once: no two files hold the same bytes (scripts/dedup_bundle.py), and a
wheel's own libraries stay beside its package (freeze.sh installs the requirements into a venv).

The wheels come from pip's own cache (~/.cache/pip, kept between runs on a machine), so a second run
fetches only the index pages. Each build prints its zip size; each invoke its init duration (INIT REPORT).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, NamedTuple

import pytest

REPO = Path(__file__).resolve().parent.parent
COMPAT = REPO / "tests" / "compat"
sys.path.insert(0, str(REPO / "scripts"))
import dedup_bundle  # noqa: E402
import inventory as inv  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.build, pytest.mark.timeout(1200)]


class Invoked(NamedTuple):
    answer: dict
    init_ms: float
    zip_path: Path
    work: Path  # build.sh's --work: native-x86_64/{bundle,.work/env} are in it
    build_log: str


_BUILT: Dict[str, Invoked] = {}


@pytest.fixture(scope="module")
def compat(tmp_path_factory):
    """compat(name): tests/compat/NAME built and invoked once per test module."""

    def get(name: str) -> Invoked:
        if name not in _BUILT:
            _BUILT[name] = build_and_invoke(name, tmp_path_factory.mktemp(name))
        return _BUILT[name]

    return get


def build_and_invoke(name: str, tmp_path: Path) -> Invoked:
    dist, work = tmp_path / "dist", tmp_path / "work"
    build = subprocess.run(
        [
            "bash",
            str(REPO / "build.sh"),
            "--native",
            "--dist",
            str(dist),
            "--work",
            str(work),
            str(COMPAT / name),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert build.returncode == 0, "build of %s failed:\n%s" % (name, build.stderr[-6000:])
    zip_path = dist / "bootstrap.zip"
    invoke = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "lambda_root.py"),
            "invoke",
            "--task",
            str(zip_path),
            "--handler",
            "app.handler",
            "--event",
            "{}",
            "--timeout",
            "60",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert invoke.returncode == 0, "invoke of %s failed:\n%s\n%s" % (
        name,
        invoke.stdout[-6000:],
        invoke.stderr,
    )
    body = invoke.stdout.split("--- response: HTTP 200 ---\n", 1)[1].split("\ninit duration:", 1)[0]
    init = re.search(r"^init duration: ([\d.]+) ms", invoke.stdout, re.MULTILINE)
    assert init, invoke.stdout
    result = Invoked(json.loads(body), float(init.group(1)), zip_path, work, build.stderr)
    print("compat %s: zip %.1f MiB, init %.0f ms" % (name, zip_path.stat().st_size / 2**20, result.init_ms))
    return result


def test_data_numpy_pandas(compat):
    result = compat("data")
    answer = result.answer
    # 3x + y = 9, x + 2y = 8
    assert answer["numpy"] == [2.0, 3.0]
    assert answer["numpy_blas"] == "scipy-openblas"
    assert answer["pandas"] == {"Lyon": 4, "Paris": 8}
    assert answer["pandas_json"] == '[["Paris",3],["Lyon",4],["Paris",5]]'
    assert answer["versions"] == {"numpy": "2.4.6", "pandas": "3.1.1"}
    # The vendored OpenBLAS, and the extension module auditwheel patched to load it, went into the zip
    # byte for byte as the wheel shipped them.
    (vendored,) = (deps_of(result) / "numpy.libs").glob("libscipy_openblas64_*.so")
    assert bundled(result, vendored).read_bytes() == vendored.read_bytes()
    (umath,) = (deps_of(result) / "numpy" / "_core").glob("_multiarray_umath.*.so")
    assert bundled(result, umath).read_bytes() == umath.read_bytes()


def deps_of(result: Invoked) -> Path:
    """The site-packages of the venv the build installed the requirements into."""
    (site_packages,) = (result.work / "native-x86_64" / ".work" / "env" / "lib").glob(
        "python3.*/site-packages"
    )
    return site_packages


def bundle_of(result: Invoked) -> Path:
    return result.work / "native-x86_64" / "bundle"


def bundled(result: Invoked, installed: Path) -> Path:
    """The bundle's copy of a file pip installed: at the same place under _internal/."""
    return bundle_of(result) / "_internal" / installed.relative_to(deps_of(result))


def test_web_serialisation_and_validation(compat):
    answer = compat("web").answer
    assert answer["pydantic"] == [7, ["a", "b"], "2026-11-30", "int_parsing"]
    assert answer["orjson"] == '{"id":"00000000-0000-0000-0000-000000000001","when":"2026-11-30T12:00:00"}'
    assert answer["yaml"] == {"a": [1, 2], "b": {"c": True}}
    assert answer["markupsafe"] == "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
    assert answer["markupsafe_speedups"] is True
    # fixmap(2) + "n" + fixarray(3) of 3 fixints + "s" + str(2 bytes): 1 + 2 + 4 + 2 + 3 bytes
    assert answer["msgpack"] == [12, {"n": [1, 2, 3], "s": "é"}]
    assert answer["msgpack_c"] == "msgpack._cmsgpack"
    assert answer["charset_normalizer"] == "Grüße aus Köln, schöne Straße"  # decoded from cp1252 bytes
    assert answer["charset_normalizer_compiled"] is True


def test_io_crypto_imaging_xml_db_rpc_compression(compat):
    answer = compat("io").answer
    crypto = answer["cryptography"]
    # Both deterministic: computed with the same cryptography release installed normally (not frozen).
    assert crypto["ed25519"] == "F1CBD943C2DFCFF8"
    assert crypto["aesgcm"] == "BDC2234F2814BF22204FCE9CC1EB393A162E7D3657B1"
    for fmt in ("PNG", "JPEG", "WEBP"):
        assert answer["pillow"][fmt] == [[40, 30], True, True], fmt
    assert answer["lxml"] == {
        "xpath": 3.0,
        "xslt": "<o>ab</o>",
        "legacy": {"windows-1252": "caf\u00e9 \u20ac", "Shift_JIS": "\u65e5\u672c\u8a9e"},
    }
    assert answer["psycopg2"] == {"adapt": "ARRAY[1,'o''k']", "libpq": True, "refused": True}
    assert answer["grpc"] == {"reply": "HELLO", "protobuf": "upb"}
    assert answer["zstandard"] == {"ratio_over_50": True, "roundtrip": True, "backend": "cext"}


def test_arrow_parquet_round_trip(compat):
    result = compat("arrow")
    assert result.answer == {
        "rows": [4, 3],
        "codec": "ZSTD",
        "totals": {"Lyon": 4, "Nice": 6, "Paris": 5},
        "roundtrip": True,
        "parquet_bytes_over_100": True,
        "version": "26.0.1",
    }
    with zipfile.ZipFile(result.zip_path) as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
    print(
        "compat arrow: zip %.1f MiB, unzipped %.1f MiB"
        % (result.zip_path.stat().st_size / 2**20, unzipped / 2**20)
    )
    assert unzipped < 250 * 2**20  # 338 MiB when its libraries shipped twice
    # The libraries are beside the package; the top of _internal/ only links to them.
    contents = bundle_of(result) / "_internal"
    assert (contents / "pyarrow" / "libarrow.so.2600").is_file()
    assert not (contents / "pyarrow" / "libarrow.so.2600").is_symlink()
    assert os.readlink(contents / "libarrow.so.2600") == "pyarrow/libarrow.so.2600"


@pytest.mark.parametrize("name", ["data", "web", "io", "arrow"])
def test_every_file_ships_once(compat, name):
    result = compat(name)
    assert dedup_bundle.identical_files(inv.make(bundle_of(result))) == []
    if name == "data":
        # numpy's OpenBLAS sits in numpy.libs/, where auditwheel's RPATH points, with a link at the top.
        (openblas,) = (bundle_of(result) / "_internal" / "numpy.libs").glob("libscipy_openblas64_*.so")
        assert not openblas.is_symlink()
        top = bundle_of(result) / "_internal" / openblas.name
        assert os.readlink(top) == "numpy.libs/" + openblas.name


def test_wheels_stripped_only_where_auditwheel_left_them_alone(compat):
    result = compat("io")
    deps = deps_of(result)
    # zstandard ships its extension modules with debug information and no RPATH: stripped.
    (backend,) = (deps / "zstandard").glob("backend_c.*.so")
    assert bundled(result, backend).stat().st_size < backend.stat().st_size // 4
    # Pillow's _imaging loads the libraries in pillow.libs/ (auditwheel patched it): as it came.
    (imaging,) = (deps / "PIL").glob("_imaging.*.so")
    assert bundled(result, imaging).read_bytes() == imaging.read_bytes()
    for vendored in (deps / "pillow.libs").iterdir():
        assert bundled(result, vendored).read_bytes() == vendored.read_bytes(), vendored.name


def summary_lines(build_log: str) -> List[str]:
    return build_log.split("build summary\n", 1)[1].splitlines()


def test_build_summary_says_what_shipped(compat):
    result = compat("data")
    lines = summary_lines(result.build_log)
    fields = dict(line.strip().split(":", 1) for line in lines[:5])
    assert fields["target"].strip() == "provided.al2023 (x86_64), unpacked at /var/task"
    frozen_python = next(result.work.glob("native-x86_64/bundle/_internal/libpython3.*.so.1.0")).name
    assert fields["Python"].strip().startswith(frozen_python[len("libpython") : -len(".so.1.0")] + ".")
    assert fields["C library"].strip().startswith("bundled glibc 2.")
    with zipfile.ZipFile(result.zip_path) as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
    assert fields["zip"].strip().startswith("%.1f MiB" % (result.zip_path.stat().st_size / 2**20))
    assert fields["unzipped"].strip().startswith("%.1f MiB" % (unzipped / 2**20))
    assert lines[5].strip() == "the function's packages, largest first:"
    rows = [
        re.match(r"^    (\S+) (\S+) +([\d.]+) MiB$", line) for line in lines[6:] if line.startswith("    ")
    ]
    assert all(rows), lines
    listed = {row.group(1): row.group(2) for row in rows}
    assert listed["numpy"] == "2.4.6" and listed["pandas"] == "3.1.1"
    sizes = [float(row.group(3)) for row in rows]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > 10
    # numpy's size counts its vendored OpenBLAS (over 20 MiB by itself), which lives outside numpy/.
    assert float(next(r.group(3) for r in rows if r.group(1) == "numpy")) > 40


def current_pythons_here() -> List[str]:
    """The current Python releases this machine has, on PATH or under pyenv."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for version in ("3.11", "3.12", "3.13", "3.14"):
        candidates = [shutil.which("python" + version), *pyenv.glob(version + ".*/bin/python3")]
        if any(
            c and subprocess.run([str(c), "-c", "pass"], capture_output=True).returncode == 0
            for c in candidates
        ):
            found.append(version)
    return found


def test_build_freezes_the_newest_current_python_and_says_so(compat):
    log = compat("data").build_log
    said = re.search(r"freezing with Python (3\.\d+)\.\d+ \(.*\): the newest current Python found", log)
    assert said, log[:2000]
    assert said.group(1) == current_pythons_here()[-1]
    assert "  Python:    %s." % said.group(1) in log  # the summary's line


def test_zip_carries_notices_and_no_readline(compat):
    result = compat("data")
    with zipfile.ZipFile(result.zip_path) as zf:
        names = zf.namelist()
        notices = zf.read("THIRD-PARTY-NOTICES.txt").decode()
    for text in (
        "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2",
        "PyInstaller 6.22.3 bootloader",
        "Bootloader Exception",
        "GCC RUNTIME LIBRARY EXCEPTION",
        "numpy 2.4.6 (Python package)",
        "pandas 3.1.1 (Python package)",
        "urllib3 2.8.0 (Python package)",
    ):
        assert text in notices, text
    sources = dict(re.findall(r"^files: (.*)\nsource: (.*)$", notices, re.MULTILINE))
    by_file = {name: source for files, source in sources.items() for name in files.split(", ")}
    for library in ("libc.so.6", "libcrypt.so.1", "libgcc_s.so.1", "libssl.so.3", "libffi.so.8", "libz.so.1"):
        assert library in by_file, library
    if shutil.which("dpkg-query"):
        assert by_file["libc.so.6"].startswith("Debian source package glibc, version 2.")
        assert by_file["libcrypt.so.1"].startswith("Debian source package libxcrypt, version ")
        assert by_file["libssl.so.3"].startswith("Debian source package openssl, version 3.")
        assert by_file["libsqlite3.so.0"].startswith("Debian source package sqlite3, version 3.")
    # GNU readline (GPL-3) and what a function never runs are left out.
    assert "libreadline" not in notices
    left_out = [
        n
        for n in names
        if re.search(r"(^|/)(readline\.cpython|libreadline|tkinter/|idlelib/|ensurepip/|turtledemo/)", n)
    ]
    assert left_out == []
