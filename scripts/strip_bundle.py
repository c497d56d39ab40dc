#!/usr/bin/env python3
"""Strip the symbol tables of the libraries in a onedir bundle that are safe to strip, and no others.

Safe means a byte-for-byte copy of one of these:

* a file of the freezing Python's own installation (its extension modules, libpython) or of the build
  machine's system libraries (OpenSSL, libffi, SQLite, ...): made by an ordinary toolchain;
* a compiled file of the function's requirements that auditwheel left alone: outside
  ``<package>.libs/``, with no DT_RPATH or DT_RUNPATH.

Everything else is left as it came, above all the libraries auditwheel vendors into
``<package>.libs/`` and the extension modules that load them. auditwheel rewrites those with patchelf
(a new soname, renamed DT_NEEDED entries, an RPATH to the .libs folder), and ``strip`` turns such a file
into one the loader refuses (numpy: ``libscipy_openblas64_-....so: ELF load command address/offset not
page-aligned``, at every import). Some wheels ship their own extension modules with debug information
(zstandard 0.25: 22.6 MiB, 1.9 MiB stripped), so those are worth stripping.

Run it with the Python that froze the bundle, before the C library is bundled:

    python scripts/strip_bundle.py --bundle build/native-x86_64/bundle --deps build/.../.work/deps
"""

from __future__ import annotations

import argparse
import filecmp
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Iterable, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import glibc_report

SYSTEM_LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")


def is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == glibc_report.ELF_MAGIC


def known_origins(python_dirs: Iterable[Path], system_dirs: Iterable[Path]) -> Dict[str, List[Path]]:
    """File name -> files of that name in the Python installation and the system library folders."""
    origins: Dict[str, List[Path]] = {}
    for folder in python_dirs:
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file():
                    origins.setdefault(path.name, []).append(path)
    for top in system_dirs:
        if not top.is_dir():
            continue
        # The libraries themselves and one level of multiarch folders (x86_64-linux-gnu/).
        for folder in [top, *(p for p in top.iterdir() if p.is_dir() and p.name.endswith("-linux-gnu"))]:
            for path in folder.iterdir():
                if ".so" in path.name and path.is_file():
                    origins.setdefault(path.name, []).append(path)
    return origins


def python_dirs() -> List[Path]:
    """Where this Python keeps its extension modules and libpython."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    dirs = [stdlib / "lib-dynload"]
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        dirs.append(Path(libdir))
    return dirs


def unpatched_wheel_binaries(deps: Path) -> Dict[str, List[Path]]:
    """File name -> the compiled files of the installed requirements that auditwheel did not rewrite:
    outside <package>.libs/, and with no RPATH or RUNPATH (auditwheel sets one on every file that
    loads a library it vendored)."""
    found: Dict[str, List[Path]] = {}
    for path in sorted(deps.rglob("*")) if deps.is_dir() else []:
        if path.is_symlink() or not path.is_file() or not is_elf(path):
            continue
        if any(part.endswith(".libs") for part in path.relative_to(deps).parts[:-1]):
            continue
        try:
            info = glibc_report.parse_elf(path.read_bytes())
        except (ValueError, struct.error):  # ElfError is a ValueError
            continue
        if not info.rpath and not info.runpath:
            found.setdefault(path.name, []).append(path)
    return found


def safe_to_strip(path: Path, origins: Dict[str, List[Path]]) -> Optional[Path]:
    """The file of known origin that path is a copy of, or None."""
    for candidate in origins.get(path.name, []):
        if filecmp.cmp(path, candidate, shallow=False):
            return candidate
    return None


def strip_bundle(bundle: Path, origins: Dict[str, List[Path]], strip: str = "strip") -> Dict[str, int]:
    """Strips the safe ELF files under bundle/_internal; returns counts and bytes saved."""
    totals = {"stripped": 0, "kept": 0, "saved": 0}
    contents = bundle / "_internal"
    for path in sorted(contents.rglob("*")):
        if path.is_symlink() or not path.is_file() or not is_elf(path):
            continue
        if safe_to_strip(path, origins) is None:
            totals["kept"] += 1
            continue
        before = path.stat().st_size
        subprocess.run([strip, str(path)], check=True)
        totals["stripped"] += 1
        totals["saved"] += before - path.stat().st_size
    return totals


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument("--deps", type=Path, help="where pip installed the function's requirements")
    args = parser.parse_args(argv)
    if not (args.bundle / "_internal").is_dir():
        print("strip_bundle.py: error: %s has no _internal/ folder" % args.bundle, file=sys.stderr)
        return 2
    origins = known_origins(python_dirs(), (Path(p) for p in SYSTEM_LIBRARY_DIRS))
    for name, paths in unpatched_wheel_binaries(args.deps).items() if args.deps else ():
        origins.setdefault(name, []).extend(paths)
    try:
        totals = strip_bundle(args.bundle, origins)
    except (OSError, subprocess.CalledProcessError) as exc:
        print("strip_bundle.py: error: %s" % exc, file=sys.stderr)
        return 1
    print(
        "strip_bundle.py: stripped %d libraries of the Python, the system and the wheels (%.1f MiB less); "
        "left %d others as they came (vendored by auditwheel, or the function's own)"
        % (totals["stripped"], totals["saved"] / 2**20, totals["kept"]),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
