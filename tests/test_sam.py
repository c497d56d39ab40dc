"""AWS SAM: `sam build` on example/template.yaml, with AWS SAM CLI from PyPI, no Docker.

SAM runs example/Makefile (BuildMethod: makefile), which calls build.sh and unpacks its zip into each
resource's folder. What SAM leaves there is what `sam deploy` uploads, so each folder is invoked in the
Lambda-like root, as Lambda would unpack it: the function at /var/task, the layer at /opt under a function
that ships only its source.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import List, NamedTuple

import pytest

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "example" / "template.yaml"
MAKEFILE = REPO / "example" / "Makefile"
LAMBDA_ROOT = REPO / "scripts" / "lambda_root.py"
SAM_REQUIREMENTS = REPO / "tests" / "requirements-sam.txt"
SAM_VENV = REPO / ".venv-sam"

pytestmark = [pytest.mark.slow, pytest.mark.build, pytest.mark.timeout(1800)]


@pytest.fixture(scope="session")
def sam() -> Path:
    """The sam command of .venv-sam, made once and kept while tests/requirements-sam.txt is unchanged."""
    stamp = SAM_VENV / ".requirements.sha256"
    wanted = hashlib.sha256(SAM_REQUIREMENTS.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text().strip() == wanted):
        shutil.rmtree(SAM_VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(SAM_VENV)], check=True, timeout=300)
        subprocess.run(
            [str(SAM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(SAM_REQUIREMENTS)],
            check=True, timeout=1200,
        )  # fmt: skip
        stamp.write_text(wanted + "\n")
    return SAM_VENV / "bin" / "sam"


class SamBuild(NamedTuple):
    returncode: int
    output: str
    build_dir: Path
    seconds: float


def sam_build(sam: Path, template: Path, build_dir: Path, work: Path, **make_vars: str) -> SamBuild:
    """`sam build` from the repository root, as the README says; build.sh's folders go to ``work``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RUNTIME_"))}
    env.update(SAM_CLI_TELEMETRY="0", RUNTIME_WORK=str(work), **make_vars)
    started = time.monotonic()
    proc = subprocess.run(
        [str(sam), "build", "--template-file", str(template), "--build-dir", str(build_dir)],
        cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    return SamBuild(proc.returncode, proc.stdout + proc.stderr, build_dir, time.monotonic() - started)


@pytest.fixture(scope="module")
def example(sam, tmp_path_factory) -> SamBuild:
    tmp = tmp_path_factory.mktemp("sam-example")
    built = sam_build(sam, TEMPLATE, tmp / "build", tmp / "work")
    assert built.returncode == 0, built.output[-6000:]
    return built


def lambda_root(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(LAMBDA_ROOT), *args], capture_output=True, text=True, timeout=180
    )


def response_of(proc: subprocess.CompletedProcess) -> dict:
    """The JSON answer that `lambda_root.py invoke` prints after its response header."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("--- response: HTTP 200"))
    return json.loads(lines[header + 1])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_sam_build_runs_build_sh_and_proves_each_zip(example):
    assert "Build Succeeded" in example.output
    # build.sh's log shows in SAM's output, with its check in the Lambda-like root: the function at
    # /var/task, the layer at /opt.
    assert "bootstrap at /var/task" in example.output and "bootstrap at /opt" in example.output
    assert example.output.count("init done") == 2, example.output[-6000:]
    built = example.build_dir / "template.yaml"
    assert built.exists()
    sizes = {name: folder_bytes(example.build_dir / name) for name in ("ExampleFunction", "RuntimeLayer")}
    print("sam build: %.0f s; unpacked: %s" % (example.seconds, sizes))


def test_sam_folders_hold_an_executable_bootstrap(example):
    function = example.build_dir / "ExampleFunction"
    layer = example.build_dir / "RuntimeLayer"
    source = example.build_dir / "SourceFunction"
    for folder in (function, layer):
        bootstrap = folder / "bootstrap"
        assert bootstrap.is_file() and os.access(bootstrap, os.X_OK), folder
        assert (folder / "_internal").is_dir()
    # The layer's bootstrap sits at the layer's root, which Lambda unpacks at /opt: /opt/bootstrap.
    assert not (layer / "opt").exists() and not (layer / "python").exists()
    # The source-only function ships its handler and no bootstrap: Lambda then runs the layer's.
    assert (source / "app.py").read_text() == (REPO / "example" / "app.py").read_text()
    assert not (source / "bootstrap").exists()
    # build.sh --deps-only: with bytecode for the layer's Python, which never writes its own.
    (libpython,) = (layer / "_internal").glob("libpython3.*.so.1.0")
    tag = "cpython-3" + libpython.name.split(".")[1]
    assert (source / "__pycache__" / ("app.%s.pyc" % tag)).is_file()


def test_sam_function_answers_in_lambda_root(example):
    proc = lambda_root(
        "invoke", "--task", str(example.build_dir / "ExampleFunction"), "--event", '{"via": "sam"}'
    )
    answer = response_of(proc)
    assert answer["ok"] is True and answer["event"] == {"via": "sam"}


def test_sam_layer_runs_the_source_only_function(example):
    proc = lambda_root(
        "invoke", "--opt", str(example.build_dir / "RuntimeLayer"),
        "--task", str(example.build_dir / "SourceFunction"), "--handler", "app.handler",
        "--event", '{"via": "layer"}',
    )  # fmt: skip
    assert "exec '/opt/bootstrap'" in proc.stdout, proc.stdout + proc.stderr
    answer = response_of(proc)
    assert answer["ok"] is True and answer["event"] == {"via": "layer"}


def test_sam_deploy_zip_keeps_bootstrap_executable(example, tmp_path):
    """What `sam deploy` uploads: each folder zipped by SAM's own packager, then unpacked by mode."""
    script = (
        "import sys; from samcli.lib.package.utils import make_zip_with_lambda_permissions as z; "
        "print(z(sys.argv[1], sys.argv[2]))"
    )
    zips = {}
    for name in ("ExampleFunction", "RuntimeLayer", "SourceFunction"):
        out = subprocess.run(
            [str(SAM_VENV / "bin" / "python"), "-c", script, str(tmp_path / name), str(example.build_dir / name)],
            capture_output=True, text=True, timeout=300, check=True,
        ).stdout.strip()  # fmt: skip
        zips[name] = out
    for name in ("ExampleFunction", "RuntimeLayer"):
        with zipfile.ZipFile(zips[name]) as archive:
            assert (archive.getinfo("bootstrap").external_attr >> 16) & 0o777 == 0o755, name
    proc = lambda_root("invoke", "--opt", zips["RuntimeLayer"], "--task", zips["SourceFunction"])
    assert response_of(proc)["ok"] is True
    assert response_of(lambda_root("invoke", "--task", zips["ExampleFunction"]))["ok"] is True


REFUSING_BACKEND = """def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("this package refuses to build (on purpose)")
"""


def broken_project(root: Path) -> Path:
    """A SAM project outside this checkout whose function requires a package that cannot build."""
    function = root / "fn"
    (function / "refuses").mkdir(parents=True)
    (function / "app.py").write_text("def handler(event, context):\n    return event\n")
    (function / "requirements.txt").write_text("./refuses\n")
    # An in-tree build backend with no requirements: pip fails without reaching any index.
    (function / "refuses" / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "refuses"\nversion = "1"\n'
    )
    (function / "refuses" / "backend.py").write_text(REFUSING_BACKEND)
    shutil.copy(MAKEFILE, function / "Makefile")
    template: List[str] = [
        "Transform: AWS::Serverless-2016-10-31",
        "Resources:",
        "  ExampleFunction:",
        "    Type: AWS::Serverless::Function",
        "    Properties: {CodeUri: fn, Handler: app.handler, Runtime: provided.al2023, Architectures: [x86_64]}",
        "    Metadata: {BuildMethod: makefile}",
    ]
    (root / "template.yaml").write_text("\n".join(template) + "\n")
    return root / "template.yaml"


def test_sam_build_fails_when_requirements_cannot_install(sam, tmp_path):
    template = broken_project(tmp_path / "project")
    # A project outside this checkout names it with RUNTIME_DIR, as the README says.
    built = sam_build(sam, template, tmp_path / "build", tmp_path / "work", RUNTIME_DIR=str(REPO))
    assert built.returncode != 0
    assert "Build Failed" in built.output, built.output[-6000:]
    # The project's own error, and pip's reason under it, show in SAM's output.
    assert "this package refuses to build (on purpose)" in built.output
    assert "build.sh: error" in built.output, built.output[-6000:]
    assert not (tmp_path / "build" / "ExampleFunction" / "bootstrap").exists()
