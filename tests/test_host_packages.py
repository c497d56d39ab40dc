"""scripts/host_packages.sh: what build.sh and test.sh need from the system, installed when it can be.

The package managers are stand-ins on a PATH of their own (they record what they are asked and make
the programs appear), so that nothing is installed on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List

import pytest

REPO = Path(__file__).resolve().parent.parent
HOST_PACKAGES = REPO / "scripts" / "host_packages.sh"
BUILD_SH = REPO / "build.sh"
BASH = shutil.which("bash") or "/bin/bash"

MANAGER = """#!{bash}
echo "${{0##*/}} $*" >>"{log}"
if [[ " $* " == *" install "* ]]; then
    for package in "$@"; do
        case "$package" in
        bubblewrap) tools="bwrap" ;; binutils) tools="objdump objcopy strip" ;; shellcheck | ShellCheck) tools=shellcheck ;;
        *) continue ;;
        esac
        for tool in $tools; do printf '#!{bash}\\n' >"{bin}/$tool" && chmod +x "{bin}/$tool"; done
    done
fi
"""


def machine(
    tmp_path: Path, managers: List[str], base: List[str] = ("env", "mktemp", "cat", "rm", "chmod")
) -> Dict[str, str]:
    """An environment whose PATH holds only ``base`` programs and stand-ins for ``managers``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in base:
        program = Path(name) if name.startswith("/") else shutil.which(name)
        (bin_dir / Path(name).name).symlink_to(program)
    for name in managers:
        path = bin_dir / name
        path.write_text(MANAGER.format(bash=BASH, log=tmp_path / "calls.log", bin=bin_dir))
        path.chmod(0o755)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def run(env: Dict[str, str], *args: str, as_user: bool = False) -> subprocess.CompletedProcess:
    prefix = (
        [shutil.which("setpriv") or "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if as_user
        else []
    )
    return subprocess.run([*prefix, BASH, str(HOST_PACKAGES), *args], env=env, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def calls(tmp_path: Path) -> List[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_nothing_missing_nothing_installed(tmp_path):
    env = machine(tmp_path, ["apt-get"], base=["env", "mktemp", "cat", "rm", "chmod", "make", "unzip"])
    r = run(env, "--for", "x", "make", "unzip")
    assert (r.returncode, r.stderr) == (0, "")
    assert calls(tmp_path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root; this machine's tests run as root")
def test_missing_programs_are_installed_with_apt_get_and_said(tmp_path):
    env = machine(tmp_path, ["apt-get", "dnf"])
    r = run(env, "--for", "./test.sh", "bwrap", "objdump", "strip", "shellcheck")
    assert r.returncode == 0, r.stderr
    assert (
        "./test.sh needs bwrap objdump strip shellcheck: installing bubblewrap binutils shellcheck with apt-get"
        in r.stderr
    )
    assert calls(tmp_path) == [
        "apt-get update -q",
        "apt-get install -y -q --no-install-recommends bubblewrap binutils shellcheck",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="installing needs root; this machine's tests run as root")
def test_dnf_gets_its_own_package_names(tmp_path):
    env = machine(tmp_path, ["dnf"])
    r = run(env, "--for", "x", "shellcheck", "bwrap")
    assert r.returncode == 0, r.stderr
    assert calls(tmp_path) == ["dnf install -y -q ShellCheck bubblewrap"]


@pytest.mark.skipif(os.geteuid() != 0, reason="setpriv to another user needs root")
def test_not_root_stops_with_what_to_install():
    # Somewhere the other user can reach (pytest's own folders are root's only).
    with tempfile.TemporaryDirectory(prefix="host-packages-") as name:
        folder = Path(name)
        os.chmod(folder, 0o755)  # noqa: S103
        r = run(machine(folder, ["apt-get"]), "--for", "./build.sh", "bwrap", as_user=True)
        assert calls(folder) == []
    assert r.returncode == 2
    assert "./build.sh needs bwrap, missing here, and installs nothing (this is not root)" in r.stderr
    assert "apt-get install bubblewrap" in r.stderr


def test_no_package_manager_stops_with_what_to_install(tmp_path):
    r = run(machine(tmp_path, []), "--for", "x", "make", "tzdata")
    assert r.returncode == 2
    assert "neither apt-get nor dnf is here" in r.stderr and "install the packages make" in r.stderr


def test_checks_only_when_told(tmp_path):
    env = {**machine(tmp_path, ["apt-get"]), "HOST_PACKAGES": "no"}
    r = run(env, "--for", "x", "unzip")
    assert r.returncode == 2 and "HOST_PACKAGES=no" in r.stderr
    assert calls(tmp_path) == []


def test_unknown_need_is_a_usage_error(tmp_path):
    r = run(machine(tmp_path, ["apt-get"]), "--for", "x", "bwrap", "gcc")
    assert r.returncode == 2 and "unknown need 'gcc'" in r.stderr


def test_build_sh_asks_for_bubblewrap_through_it(tmp_path):
    """build.sh stops before any work on a machine without bubblewrap that cannot install it."""
    everything = {p.name: str(p) for d in ("/bin", "/usr/bin") for p in Path(d).iterdir()}
    left_out = ("bwrap", "apt-get", "dnf")
    env = machine(
        tmp_path, [], base=[path for name, path in sorted(everything.items()) if name not in left_out]
    )
    r = subprocess.run([BASH, str(BUILD_SH), "--dist", str(tmp_path / "d"), "--work", str(tmp_path / "w")], env=env,
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "build.sh's check in a Lambda-like root (--no-verify skips it) needs bwrap" in r.stderr
    assert "install the packages bubblewrap" in r.stderr
