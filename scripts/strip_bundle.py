#!/usr/bin/env python3
"""Strip the symbol tables of the libraries in a onedir bundle that are safe to strip, and no others.

Safe means: a byte-for-byte copy of a file of the freezing Python's own installation (its extension
modules, libpython) or of the build machine's system libraries (OpenSSL, libffi, SQLite, ...). Those
come from an ordinary toolchain and have always been stripped here.

Everything else is left as it came: the function's own files and the wheels of its requirements,
above all the libraries auditwheel vendors into ``<package>.libs/``. auditwheel rewrites those with
patchelf, and ``strip`` turns such a file into one the loader refuses (numpy:
``libscipy_openblas64_-....so: ELF load command address/offset not page-aligned``, at every import).
Wheels on PyPI ship their binaries stripped already, so leaving them alone costs little (measured: see
README, Build).

Run it with the Python that froze the bundle, before the C library is bundled:

    python scripts/strip_bundle.py --bundle build/native-x86_64/bundle
"""

from __future__ import annotations

import argparse
import filecmp
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Iterable, List, Optional

ELF_MAGIC = b"\x7fELF"
SYSTEM_LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib")


def is_elf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == ELF_MAGIC


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
    args = parser.parse_args(argv)
    if not (args.bundle / "_internal").is_dir():
        print("strip_bundle.py: error: %s has no _internal/ folder" % args.bundle, file=sys.stderr)
        return 2
    origins = known_origins(python_dirs(), (Path(p) for p in SYSTEM_LIBRARY_DIRS))
    try:
        totals = strip_bundle(args.bundle, origins)
    except (OSError, subprocess.CalledProcessError) as exc:
        print("strip_bundle.py: error: %s" % exc, file=sys.stderr)
        return 1
    print(
        "strip_bundle.py: stripped %d libraries of the Python and the system (%.1f MiB less); "
        "left %d others (the function's and its wheels') as they came"
        % (totals["stripped"], totals["saved"] / 2**20, totals["kept"]),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
