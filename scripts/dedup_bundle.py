#!/usr/bin/env python3
"""Ship each file's bytes once: a file identical to another of the bundle becomes a relative symlink to it.

    python scripts/dedup_bundle.py --bundle OUT/bundle

A wheel cannot hold symlinks, so some wheels ship a library under each of its names as separate copies
(pyarrow 26: ``libarrow_python.so``, ``.so.2600`` and ``.so.2600.1.0``, 2.4 MiB each), or the same
headers in two folders. Lambda unpacks symlinks from a zip, and the loader and ``open()`` follow them,
so one copy is enough. The copy kept is the one whose path sorts first; the others point at it. Empty
files are left alone (nothing to share). Run it after the libraries are stripped (stripping can make two
files differ or agree) and before the zip is made.

(The duplicates PyInstaller made from a ``pip install --target`` folder, a wheel's libraries both beside
its package and at the top of ``_internal/``, no longer arise: freeze.sh installs into a venv, and
PyInstaller links the top-level names to the package's copies itself.)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def identical_files(bundle: Path) -> List[List[Path]]:
    """Groups of two or more regular, non-empty files with the same bytes, each sorted, largest first."""
    by_size: Dict[int, List[Path]] = defaultdict(list)
    for dirpath, _dirs, files in os.walk(bundle):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink() and path.is_file() and path.stat().st_size > 0:
                by_size[path.stat().st_size].append(path)
    groups = []
    for size in sorted(by_size, reverse=True):
        if len(by_size[size]) < 2:
            continue
        by_digest: Dict[Tuple[int, str], List[Path]] = defaultdict(list)
        for path in by_size[size]:
            by_digest[(size, hashlib.sha256(path.read_bytes()).hexdigest())].append(path)
        groups += [sorted(paths) for paths in by_digest.values() if len(paths) > 1]
    return groups


def link_duplicates(bundle: Path) -> Tuple[int, int]:
    """Replace every duplicate by a symlink to its group's first file; (files replaced, bytes saved)."""
    replaced = saved = 0
    for kept, *copies in identical_files(bundle):
        for copy in copies:
            size = copy.stat().st_size
            copy.unlink()
            copy.symlink_to(os.path.relpath(kept, copy.parent))
            replaced += 1
            saved += size
    return replaced, saved


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="the unpacked bundle")
    args = parser.parse_args(argv)
    replaced, saved = link_duplicates(args.bundle)
    print(
        "dedup_bundle.py: %d duplicate files made symlinks to their first copy (%.1f MiB less)"
        % (replaced, saved / 2**20),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
