#!/usr/bin/env python3
"""Zip a bundle folder reproducibly.

    python3 scripts/repro_zip.py OUT.zip BUNDLE_DIR

* Entries are the files below BUNDLE_DIR, relative to it, sorted by their POSIX path
  (bytewise), with no directory entries (Lambda does not need them).
* Every entry gets the same timestamp: SOURCE_DATE_EPOCH (UTC) if set, else 1980-01-01 00:00:00,
  clamped to the 1980..2107 range a zip can hold.
* Modes are normalised: 0755 for ``bootstrap`` and any file with an execute bit, 0644 otherwise;
  unix ``create_system``; no extra fields (no uid/gid, no extended timestamps).
* A symbolic link that points inside the bundle is stored as a link (mode 0120777, the target as
  data), the way ``zip --symlinks`` stores it and Lambda unpacks it; other links are followed.
* Deflate level 9. The same files give the same bytes, whatever their mtimes, owners or umask.

Lambda's size limits are checked afterwards, with the rest of what the build shipped
(scripts/build_summary.py).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
import time
import zipfile
from typing import List, Optional, Sequence, Tuple

DOS_EPOCH = 315532800  # 1980-01-01 00:00:00 UTC
DOS_MAX = 4354819199  # 2107-12-31 23:59:59 UTC


def fixed_date_time() -> Tuple[int, int, int, int, int, int]:
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    epoch = int(raw) if raw.isdigit() else DOS_EPOCH
    epoch = min(max(epoch, DOS_EPOCH), DOS_MAX)
    t = time.gmtime(epoch)
    # A zip holds even seconds only.
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec - t.tm_sec % 2)


def collect(root: str) -> List[Tuple[str, str]]:
    """(archive name, filesystem path) for every file and link below root, sorted bytewise."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        # A symlink to a directory is listed among dirnames; store it as a link, do not descend.
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                dirnames.remove(d)
                filenames.append(d)
        for name in filenames:
            full = os.path.join(dirpath, name)
            arc = os.path.relpath(full, root).replace(os.sep, "/")
            out.append((arc, full))
    out.sort(key=lambda item: item[0].encode("utf-8"))
    return out


def link_inside(root: str, full: str) -> Optional[str]:
    """The link's target text if it is relative and resolves inside root, else None."""
    target = os.readlink(full)
    if os.path.isabs(target):
        return None
    resolved = os.path.realpath(os.path.join(os.path.dirname(full), target))
    real_root = os.path.realpath(root)
    if resolved != real_root and not resolved.startswith(real_root + os.sep):
        return None
    if not os.path.exists(resolved):
        return None
    return target


def build_zip(out: str, root: str) -> Tuple[int, int]:
    """Write the zip; return (number of entries, unzipped bytes)."""
    date_time = fixed_date_time()
    total = 0
    entries = collect(root)
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for arc, full in entries:
            zi = zipfile.ZipInfo(arc, date_time=date_time)
            zi.create_system = 3  # unix, so that external_attr carries the mode
            zi.compress_type = zipfile.ZIP_DEFLATED
            if os.path.islink(full):
                target = link_inside(root, full)
                if target is not None:
                    zi.external_attr = (stat.S_IFLNK | 0o777) << 16
                    zf.writestr(zi, target.encode("utf-8"), compresslevel=9)
                    continue
            st = os.stat(full)
            if not stat.S_ISREG(st.st_mode):
                raise SystemExit("repro_zip: %s is not a regular file" % full)
            executable = arc == "bootstrap" or bool(st.st_mode & 0o111)
            zi.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
            with open(full, "rb") as f:
                data = f.read()
            total += len(data)
            zf.writestr(zi, data, compresslevel=9)
    os.replace(tmp, out)
    return len(entries), total


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Reproducible zip of a Lambda bundle.")
    ap.add_argument("out", help="zip to write (replaced if it exists)")
    ap.add_argument("root", help="folder whose contents become the zip's root (bootstrap at the top)")
    ap.add_argument(
        "--function-code", action="store_true", help="the code of a function on a runtime layer: no bootstrap"
    )
    args = ap.parse_args(argv)
    if not os.path.isdir(args.root):
        print("repro_zip: %s is not a directory" % args.root, file=sys.stderr)
        return 2
    if not args.function_code and not os.path.isfile(os.path.join(args.root, "bootstrap")):
        print("repro_zip: %s has no 'bootstrap' file at its top" % args.root, file=sys.stderr)
        return 2
    count, unzipped = build_zip(args.out, args.root)
    zipped = os.path.getsize(args.out)
    print("zip: %s (%d entries, %d bytes, %d unzipped)" % (args.out, count, zipped, unzipped))
    print("  sha256   %s" % sha256(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
