#!/usr/bin/env python3
"""Strip the symbol tables of the libraries in a onedir bundle that are safe to strip, and no others.

Safe means, by the build's inventory (scripts/inventory.py, which finds each file's origin by its bytes):

* a file of the freezing Python's own installation (its extension modules, libpython) or of the build
  machine's system packages (OpenSSL, libffi, SQLite, ...): made by an ordinary toolchain;
* a compiled file of the function's requirements that auditwheel left alone: outside
  ``<package>.libs/``, with no DT_RPATH or DT_RUNPATH.

Everything else is left as it came, above all the libraries auditwheel vendors into
``<package>.libs/`` and the extension modules that load them. auditwheel rewrites those with patchelf
(a new soname, renamed DT_NEEDED entries, an RPATH to the .libs folder), and ``strip`` turns such a file
into one the loader refuses (numpy: ``libscipy_openblas64_-....so: ELF load command address/offset not
page-aligned``, at every import). Some wheels ship their own extension modules with debug information
(zstandard 0.25: 22.6 MiB, 1.9 MiB stripped), so those are worth stripping. The bootloader
(``bootstrap``) carries PyInstaller's archive after its ELF image and is never touched.

Run it after the inventory; it records the stripped files' new size and checksum there:

    python scripts/strip_bundle.py --bundle OUT/bundle --inventory OUT/inventory.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inventory as inv


def safe_to_strip(entry: inv.FileEntry) -> bool:
    origin = entry.get("origin") or {}
    if "elf" not in entry or not entry["path"].startswith("_internal/"):
        return False
    if origin.get("kind") in ("python", "system"):
        return True
    if origin.get("kind") == "wheel":
        in_libs = any(part.endswith(".libs") for part in origin["file"].split("/")[:-1])
        return not in_libs and not entry["elf"]["rpath"] and not entry["elf"]["runpath"]
    return False


def strip_bundle(bundle: Path, inventory: inv.Inventory, strip: str = "strip") -> Dict[str, int]:
    """Strips the safe ELF files of the bundle; returns counts and bytes saved."""
    totals = {"stripped": 0, "kept": 0, "saved": 0}
    for entry in inventory.elf():
        if not safe_to_strip(entry):
            totals["kept"] += 1
            continue
        path = bundle / entry["path"]
        before = path.stat().st_size
        subprocess.run([strip, str(path)], check=True)
        inventory.refresh(bundle, entry["path"])
        totals["stripped"] += 1
        totals["saved"] += before - path.stat().st_size
    return totals


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument("--inventory", required=True, type=Path, help="the bundle's inventory.json")
    args = parser.parse_args(argv)
    if not (args.bundle / "_internal").is_dir():
        print("strip_bundle.py: error: %s has no _internal/ folder" % args.bundle, file=sys.stderr)
        return 2
    inventory = inv.Inventory.load(args.inventory)
    try:
        totals = strip_bundle(args.bundle, inventory)
    except (OSError, subprocess.CalledProcessError) as exc:
        print("strip_bundle.py: error: %s" % exc, file=sys.stderr)
        return 1
    inventory.save(args.inventory)
    print(
        "strip_bundle.py: stripped %d libraries of the Python, the system and the wheels (%.1f MiB less); "
        "left %d others as they came (vendored by auditwheel, the bootloader, or of no known origin)"
        % (totals["stripped"], totals["saved"] / 2**20, totals["kept"]),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
