"""Two small properties of the build scripts, checked without freezing anything: scripts/freeze.sh puts only
an absolute folder on PATH for its --python, and build.sh leaves no half-written dist/bootstrap.zip.tmp behind
when copying the zip fails. Marked `build`: they run where the build scripts run (bash, binutils)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.build


def _script(path: Path, text: str) -> Path:
    path.write_text("#!/usr/bin/env bash\n" + text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _env(path_dirs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "BOOTSTRAP_PY", "DOCKER")}
    env["PATH"] = os.pathsep.join([str(d) for d in path_dirs] + [os.environ.get("PATH", "/usr/bin:/bin")])
    return env


def test_freeze_sh_puts_no_relative_python_folder_on_path(tmp_path):
    """`--python py3` (a name found on PATH): freeze.sh once added `dirname py3`, which is ".", to PATH, so a
    `py3` in the working directory ran instead. Here that impostor leaves a mark; the real `py3` says it has
    no PyInstaller, which stops freeze.sh before any freezing."""
    if shutil.which("objdump") is None or shutil.which("ldd") is None:
        pytest.fail("binutils and ldd are needed to run scripts/freeze.sh (apt-get install binutils)")
    tools = tmp_path / "tools"
    tools.mkdir()
    _script(
        tools / "py3",
        'for a in "$@"; do [[ "$a" == *"import PyInstaller"* ]] && exit 1; done\nexec "%s" "$@"\n'
        % sys.executable,
    )
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    marker = tmp_path / "impostor-ran"
    _script(workdir / "py3", 'touch "%s"\nexit 1\n' % marker)
    function = tmp_path / "fn"
    function.mkdir()
    (function / "app.py").write_text("def handler(event, context):\n    return 1\n")
    result = subprocess.run(
        [
            *(str(REPO_ROOT / "scripts" / "freeze.sh"), "--python", "py3"),
            *("--function", str(function), "--out", str(tmp_path / "out")),
        ],
        cwd=str(workdir),
        env=_env([tools]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "cannot import PyInstaller" in result.stderr, result.stderr
    assert not marker.exists(), "freeze.sh ran the py3 of its working directory: '.' was on PATH"


def test_build_sh_leaves_no_tmp_zip_when_the_copy_fails(tmp_path):
    """A copy of build.sh in a scratch repository (so its build/ folder is scratch too), a stand-in `docker`
    that "builds" a small zip, and a `cp` that fails half-way when writing *.tmp (a full disk)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy2(REPO_ROOT / "build.sh", repo / "build.sh")
    shutil.copy2(REPO_ROOT / "bootstrap.py", repo / "bootstrap.py")
    shutil.copytree(REPO_ROOT / "scripts", repo / "scripts")  # the handler step (function_handler.py)
    function = tmp_path / "fn"
    function.mkdir()
    (function / "app.py").write_text("def handler(event, context):\n    return 1\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    docker = _script(
        tools / "fake-docker",
        'case "$1 $2" in\n'
        '"info "*|"buildx version") exit 0 ;;\n'
        '"buildx build")\n'
        '  for a in "$@"; do case "$a" in type=local,dest=*) out="${a#type=local,dest=}" ;; esac; done\n'
        '  printf "PK\\005\\006%%018d" 0 >"$out/bootstrap.zip"\n'
        '  printf "C library: bundled glibc 2.34\\nruntimes: provided.al2023\\n" >"$out/glibc-report.txt"\n'
        "  exit 0 ;;\n"
        "esac\nexit 1\n",
    )
    real_cp = shutil.which("cp")
    _script(
        tools / "cp",
        'dest="${*: -1}"\n'
        'if [[ "$dest" == *.tmp ]]; then head -c 7 "${*: -2:1}" >"$dest"; echo "cp: No space left" >&2; exit 1; fi\n'
        'exec "%s" "$@"\n' % real_cp,
    )
    dist = tmp_path / "dist"
    env = _env([tools])
    env["DOCKER"] = str(docker)
    result = subprocess.run(
        [str(repo / "build.sh"), "--docker", "--no-verify", "--dist", str(dist), str(function)],
        cwd=str(repo),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stderr
    assert "No space left" in result.stderr, result.stderr
    assert sorted(p.name for p in dist.iterdir()) == [], "left in dist/: %s" % sorted(dist.iterdir())
