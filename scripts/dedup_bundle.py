#!/usr/bin/env python3
"""Ship each file's bytes once: a file identical to another of the bundle becomes a relative symlink to it.

    python scripts/dedup_bundle.py --bundle OUT/bundle --inventory OUT/inventory.json

A wheel cannot hold symlinks, so some wheels ship a library under each of its names as separate copies
(pyarrow 26: ``libarrow_python.so``, ``.so.2600`` and ``.so.2600.1.0``, 2.4 MiB each), or the same
headers in two folders. Lambda unpacks symlinks from a zip, and the loader and ``open()`` follow them,
so one copy is enough. The copy kept is the one whose path sorts first; the others point at it. Empty
files are left alone (nothing to share), and so is a copy whose executable bit differs from the kept
one's (a link has its target's mode).

Which files are identical comes from the build's inventory (scripts/inventory.py), not from reading the
files again: run it after the stages that change files and record their new checksums there (strip,
host_paths), and before the notices, the zip, the glibc report and the summary. The copies it links are
recorded in the inventory as links, so those stages count each file once.

(The duplicates PyInstaller made from a ``pip install --target`` folder, a wheel's libraries both beside
its package and at the top of ``_internal/``, no longer arise: freeze.sh installs into a venv, and
PyInstaller links the top-level names to the package's copies itself.)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inventory as inv


def identical_files(inventory: inv.Inventory) -> List[List[str]]:
    """Groups of two or more regular, non-empty files with the same bytes and executable bit (paths, each
    group sorted), the largest files first."""
    by_content: Dict[Tuple[int, str, bool], List[str]] = defaultdict(list)
    for entry in inventory.regular():
        if entry["size"] > 0:
            by_content[(entry["size"], entry["sha256"], entry["executable"])].append(entry["path"])
    groups = [sorted(paths) for paths in by_content.values() if len(paths) > 1]
    sizes = {entry["path"]: entry["size"] for entry in inventory.regular()}
    return sorted(groups, key=lambda group: (-sizes[group[0]], group[0]))


def link_duplicates(bundle: Path, inventory: inv.Inventory) -> Tuple[int, int]:
    """Replace every duplicate by a symlink to its group's first file, in the bundle and in the inventory;
    (files replaced, bytes saved)."""
    replaced = saved = 0
    for kept, *copies in identical_files(inventory):
        for copy in copies:
            path = bundle / copy
            size = inventory.by_path(copy)["size"]
            path.unlink()
            path.symlink_to(os.path.relpath(bundle / kept, path.parent))
            inventory.refresh(bundle, copy)
            replaced += 1
            saved += size
    return replaced, saved


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="the unpacked bundle")
    parser.add_argument("--inventory", required=True, type=Path, help="the bundle's inventory.json")
    args = parser.parse_args(argv)
    inventory = inv.Inventory.load(args.inventory)
    try:
        replaced, saved = link_duplicates(args.bundle, inventory)
    except OSError as exc:
        print("dedup_bundle.py: error: %s" % exc, file=sys.stderr)
        return 1
    inventory.save(args.inventory)
    print(
        "dedup_bundle.py: %d duplicate files made symlinks to their first copy (%.1f MiB less)"
        % (replaced, saved / 2**20),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
