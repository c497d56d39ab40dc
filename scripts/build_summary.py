#!/usr/bin/env python3
"""What a build shipped, against Lambda's size limits: the summary freeze.sh writes and build.sh prints.

It says the target, the Python frozen in, the C library line of the glibc report, the zip's size and
its unzipped size against Lambda's limits, the function's packages with their versions and their
size in the bundle, largest first, and, from the build's inventory, the function's own files (at the top of
the bundle: /var/task) and the count of files, each counted once (a link is not a file).

Lambda's limits (its quotas say "50 MB" and "250 MB"; they are 52,428,800 and 262,144,000 bytes):

* over 250 MiB unzipped (the function's zip and its layers together) Lambda refuses the function:
  an error (exit 1), with the size against the limit and ways to get under it;
* over 50 MiB zipped only a direct upload is refused: a warning, and the S3 upload commands.

Run it with the Python that froze the bundle:

    python scripts/build_summary.py --zip OUT/bootstrap.zip --bundle OUT/bundle \\
        --deps ENV/lib/python3.X/site-packages --inventory OUT/inventory.json \\
        --glibc-report OUT/glibc-report.txt --prefix /var/task
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import List, NamedTuple, Optional, Set

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inventory as inv

MIB = 2**20
UNZIPPED_LIMIT = 250 * MIB
ZIPPED_DIRECT_UPLOAD_LIMIT = 50 * MIB
TARGET = "provided.al2023"
LAYER_PYTHON = " (a function on this layer needs wheels and bytecode for this Python: ./build.sh --deps-only)"


class Package(NamedTuple):
    name: str
    version: str
    size: int  # bytes its files take in the bundle


def mib(size: int) -> str:
    return "%.1f MiB" % (size / MIB)


def bundled_file(record_path: str, contents: Path) -> Optional[Path]:
    """Where one file of a wheel's RECORD ended up in the bundle: where it was in site-packages (.py as
    .pyc; a library a wheel vendors stays in <pkg>.libs/, with a link at the top of _internal/), unless it
    is missing or a link (the bytes are counted where they are)."""
    rel = Path(record_path)
    found = contents / (rel.with_suffix(".pyc") if rel.suffix == ".py" else rel)
    return found if found.is_file() and not found.is_symlink() else None


def packages(deps: Path, contents: Path) -> List[Package]:
    found = []
    if not deps.is_dir():
        return found
    for info in sorted(deps.glob("*.dist-info")):
        metadata = HeaderParser().parsestr((info / "METADATA").read_text(errors="replace"))
        counted: Set[Path] = set()
        record = info / "RECORD"
        if record.is_file():
            with open(record, newline="") as f:
                for row in csv.reader(f):
                    if row and not row[0].startswith(".."):
                        path = bundled_file(row[0], contents)
                        if path is not None:
                            counted.add(path)
        found.append(Package(metadata["Name"], metadata["Version"], sum(p.stat().st_size for p in counted)))
    return sorted(found, key=lambda p: (-p.size, p.name.lower()))


def zip_sizes(zip_path: Path) -> tuple[int, int]:
    with zipfile.ZipFile(zip_path) as zf:
        return os.path.getsize(zip_path), sum(i.file_size for i in zf.infolist())


def c_library_line(report: Path) -> str:
    if report.is_file():
        for line in report.read_text().splitlines():
            if line.startswith("C library: "):
                return line[len("C library: ") :]
    return "unknown (no glibc report)"


def function_line(inventory: inv.Inventory, prefix: str) -> str:
    """The function's own files (origin "function": its folder's files and their bytecode), at the prefix."""
    own = [e for e in inventory.regular() if (e.get("origin") or {}).get("kind") == "function"]
    if not own:
        return "none"
    size = sum(e["size"] for e in own)
    shown = mib(size) if size >= MIB else "%.1f KiB" % (size / 1024)
    return "%d files, %s, at %s as in its folder" % (len(own), shown, prefix)


def files_line(inventory: inv.Inventory) -> str:
    elf = inventory.elf()
    unknown = [e for e in elf if not e.get("origin")]
    line = "%d (%d compiled)" % (len(inventory.regular()), len(elf))
    if unknown:
        line += "; %d compiled of no known origin, see THIRD-PARTY-NOTICES.txt" % len(unknown)
    return line


def summary(
    zip_path: Path,
    bundle: Path,
    deps: Path,
    report: Path,
    prefix: str,
    inventory: Optional[inv.Inventory] = None,
) -> tuple[List[str], bool]:
    """The summary's lines, and whether the zip is within the unzipped limit."""
    zipped, unzipped = zip_sizes(zip_path)
    lines = [
        "build summary",
        "  target:    %s (%s), unpacked at %s" % (TARGET, os.uname().machine, prefix),
        "  Python:    %s%s" % (sys.version.split()[0], LAYER_PYTHON if prefix == "/opt" else ""),
        "  C library: %s" % c_library_line(report),
        "  zip:       %s (Lambda: %s for a direct upload)" % (mib(zipped), mib(ZIPPED_DIRECT_UPLOAD_LIMIT)),
        "  unzipped:  %s (Lambda: %s, function and layers together)" % (mib(unzipped), mib(UNZIPPED_LIMIT)),
    ]
    shipped = packages(deps, bundle / "_internal")
    if shipped:
        lines.append("  the function's packages, largest first:")
        width = max(len("%s %s" % (p.name, p.version)) for p in shipped)
        lines += ["    %-*s %10s" % (width, "%s %s" % (p.name, p.version), mib(p.size)) for p in shipped]
    else:
        lines.append("  the function's packages: none")
    if inventory is not None:
        lines.append("  function:  %s" % function_line(inventory, prefix))
        lines.append("  files:     %s" % files_line(inventory))
    fits = unzipped <= UNZIPPED_LIMIT
    if not fits:
        lines += [
            "error: unzipped, the bundle is %s: %s over Lambda's limit of %s (function and layers "
            "together), so Lambda would refuse it. No zip was written. To get under it: drop the "
            "packages the function never imports (the largest are listed above), keep large data in S3 "
            "or EFS and load it at run time, or ship the function as a container image (up to 10 GiB); "
            "a layer does not help, it counts toward the same limit"
            % (mib(unzipped), mib(unzipped - UNZIPPED_LIMIT), mib(UNZIPPED_LIMIT)),
        ]
    elif zipped > ZIPPED_DIRECT_UPLOAD_LIMIT:
        lines += [
            "warning: the zip is %s, over the %s Lambda takes in a direct upload; upload it to S3 and "
            "point the function at it:" % (mib(zipped), mib(ZIPPED_DIRECT_UPLOAD_LIMIT)),
            "  aws s3 cp %s s3://BUCKET/%s" % (zip_path.name, zip_path.name),
            "  aws lambda update-function-code --function-name NAME --s3-bucket BUCKET --s3-key %s"
            % zip_path.name,
            "  (or create-function ... --code S3Bucket=BUCKET,S3Key=%s)" % zip_path.name,
        ]
    return lines, fits


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", required=True, type=Path)
    parser.add_argument(
        "--bundle", required=True, type=Path, help="the unpacked bundle: bootstrap + _internal/"
    )
    parser.add_argument(
        "--deps", required=True, type=Path, help="the site-packages pip installed the requirements into"
    )
    parser.add_argument("--inventory", type=Path, help="the bundle's inventory.json (scripts/inventory.py)")
    parser.add_argument("--glibc-report", required=True, type=Path)
    parser.add_argument("--prefix", required=True, help="where Lambda unpacks the zip")
    args = parser.parse_args(argv)
    inventory = inv.Inventory.load(args.inventory) if args.inventory else None
    lines, fits = summary(args.zip, args.bundle, args.deps, args.glibc_report, args.prefix, inventory)
    print("\n".join(lines))
    return 0 if fits else 1


if __name__ == "__main__":
    sys.exit(main())
