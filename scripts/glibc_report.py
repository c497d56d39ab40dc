#!/usr/bin/env python3
"""Report which C library a frozen bootstrap runs on, and whether it can run on Lambda's provided.al2023.

Pure Python (standard library only, Python 3.8+); no binutils. It reads each ELF file's dynamic
section (DT_NEEDED, DT_VERNEED/.gnu.version_r), so it works on stripped files and on any host.

Accepted inputs (any number):

* a directory: every regular ELF file below it (a onedir bundle: ``bootstrap`` + ``_internal/``);
* an ELF file;
* a ``.zip`` (e.g. ``dist/bootstrap.zip``): every ELF member.

* ``--inventory OUT/inventory.json``: the build's inventory (scripts/inventory.py), read as it is.

Each ELF file is judged by the loader it will run with. A bundle that brings its own C library
(scripts/bundle_libc.py: ``libc.so.6`` and the loader in the bundle, the bootloader's ELF interpreter
and DT_RPATH pointing at them) runs the bootloader and every library it loads on that C library: they
may need up to the bundled GLIBC. A separate executable in the bundle (a wheel's helper program) that
starts with the system's loader runs on the target's C library when the function starts it: it may
need up to the target's GLIBC (2.34). A bundle without its own C library runs wholly on the target's.

Exit status: 0, or 1 when ``--max``/``--target`` is given and a file needs a newer GLIBC than
allowed, or 2 on bad input.

    python3 scripts/glibc_report.py dist/bootstrap.zip
    python3 scripts/glibc_report.py --target al2023 build/bundle
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The ELF reader lives in the inventory; its names stay importable from here.
from inventory import (
    ELF_MAGIC,
    ElfError,
    ElfInfo,
    FileEntry,
    Inventory,
    describe,
    elf_info,
    glibc_release,
    max_glibc,
    parse_elf,
    version_text,
    version_tuple,
    walk,
)

__all__ = ["ELF_MAGIC", "ElfError", "ElfInfo", "glibc_release", "max_glibc", "parse_elf", "version_text"]

# Lambda OS-only runtimes open to new code, and the glibc of their Amazon Linux release. provided.al2 is
# closed to function creates and code updates (2026), so it is not a target any more.
RUNTIMES: Dict[str, Tuple[str, Tuple[int, ...]]] = {
    "al2023": ("provided.al2023", (2, 34)),
}

LOADERS = {"ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
# glibc's own sonames.
GLIBC_SONAMES = {
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libcrypt.so.1",
    "libnsl.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
}


class Finding(NamedTuple):
    path: str
    info: ElfInfo
    glibc: Optional[Tuple[int, ...]]


class Report:
    def __init__(self) -> None:
        self.findings: List[Finding] = []
        self.files = 0
        self.bundled: Set[str] = set()  # basenames of every file in the inputs
        self.bundled_paths: Set[str] = set()  # their paths inside the bundle
        self.bundled_glibc: Optional[Tuple[int, ...]] = None  # release of a libc.so.6 in the inputs

    def add_entry(self, path: str, entry: FileEntry) -> None:
        self.bundled.add(os.path.basename(path))
        self.bundled_paths.add(entry["path"])
        if "link" in entry:  # found by the loader under its name; its target is counted itself
            return
        self.files += 1
        if "elf_error" in entry:
            print("warning: %s: cannot parse ELF (%s)" % (path, entry["elf_error"]), file=sys.stderr)
        if "elf" not in entry:
            return
        release = entry["elf"].get("glibc_release")
        if release:
            self.bundled_glibc = version_tuple(release)
        info = elf_info(entry)
        self.findings.append(Finding(path, info, max_glibc(info)))

    def add_inventory(self, inventory: Inventory) -> None:
        for entry in inventory.files:
            self.add_entry(entry["path"], entry)

    def add_path(self, path: str) -> None:
        if os.path.isdir(path):
            top = os.path.basename(os.path.abspath(path).rstrip("/"))
            for rel, full in walk(Path(path)):
                st = full.lstat()
                if stat.S_ISLNK(st.st_mode):
                    self.add_entry(top + "/" + rel, {"path": rel, "link": os.readlink(full)})
                elif stat.S_ISREG(st.st_mode):
                    self.add_entry(top + "/" + rel, describe(rel, full.read_bytes(), st.st_mode))
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for zi in sorted(zf.infolist(), key=lambda z: z.filename):
                    if zi.is_dir():
                        continue
                    mode = zi.external_attr >> 16
                    name = os.path.basename(path) + ":" + zi.filename
                    if stat.S_ISLNK(mode):
                        self.add_entry(name, {"path": zi.filename, "link": zf.read(zi).decode()})
                    else:
                        self.add_entry(name, describe(zi.filename, zf.read(zi), mode))
        elif os.path.isfile(path):
            with open(path, "rb") as f:
                self.add_entry(path, describe(os.path.basename(path), f.read()))
        else:
            raise FileNotFoundError(path)

    # --- who runs with which loader ----------------------------------------------------------------

    def executables(self) -> List[Finding]:
        """Programs to be started (libc.so.6 and the loader have an interpreter too, but are not)."""
        return [f for f in self.findings if f.info.interp and os.path.basename(f.path) not in GLIBC_SONAMES]

    def starts_with_bundled_loader(self, finding: Finding) -> bool:
        """Its ELF interpreter is the bundle's own loader, where the bundle is unpacked
        (/var/task/_internal/ld-linux-x86-64.so.2 for _internal/ld-linux-x86-64.so.2)."""
        interp = finding.info.interp or ""
        if self.bundled_glibc is None or os.path.basename(interp) not in LOADERS:
            return False
        return any(interp.endswith("/" + p) for p in self.bundled_paths if os.path.basename(p) in LOADERS)

    def bundled_loader_executables(self) -> List[Finding]:
        return [f for f in self.executables() if self.starts_with_bundled_loader(f)]

    def system_executables(self) -> List[Finding]:
        """Separate programs that start with a loader the bundle does not carry: the system's."""
        return [f for f in self.executables() if not self.starts_with_bundled_loader(f)]

    def brings_libc(self) -> bool:
        """The bundle carries its C library and a program of it (the bootloader) starts with it."""
        return bool(self.bundled_loader_executables())

    def on_bundled_libc(self, finding: Finding) -> bool:
        """Whether a file runs on the bundled C library: the programs that start with its loader, and
        every library, which the bootloader's process loads."""
        if not self.brings_libc():
            return False
        if finding in self.executables():
            return self.starts_with_bundled_loader(finding)
        return True

    def limit_for(self, finding: Finding) -> Tuple[int, ...]:
        """The newest GLIBC a file may need: the bundled one, or else the target's."""
        if self.on_bundled_libc(finding):
            assert self.bundled_glibc is not None
            return self.bundled_glibc
        return RUNTIMES["al2023"][1]

    def max_needed(self) -> Optional[Tuple[int, ...]]:
        vs = [f.glibc for f in self.findings if f.glibc]
        return max(vs) if vs else None

    def too_new(self) -> List[Finding]:
        return [f for f in self.findings if f.glibc and f.glibc > self.limit_for(f)]

    def external_libs(self) -> List[str]:
        """Libraries needed by the files on the bundled C library that the bundle does not carry."""
        needed: Set[str] = set()
        for f in self.findings:
            if not self.brings_libc() or self.on_bundled_libc(f):
                needed.update(f.info.needed)
        return sorted(n for n in needed if n not in self.bundled)

    def problems(self) -> List[str]:
        """Why the bundle cannot run on provided.al2023 (nothing when it can)."""
        found = []
        for f in sorted(self.too_new(), key=lambda f: (f.glibc, f.path), reverse=True):
            assert f.glibc is not None
            found.append(
                "GLIBC_%-6s %s  TOO NEW (limit %s%s)"
                % (
                    version_text(f.glibc),
                    f.path,
                    version_text(self.limit_for(f)),
                    ", the system's: it starts with %s" % f.info.interp
                    if f in self.system_executables()
                    else "",
                )
            )
        for f in self.bundled_loader_executables():
            folder = os.path.dirname(f.info.interp or "")
            if f.info.rpath != [folder]:
                found.append(
                    "%s starts with the bundled loader but searches %s first: the system's older libc "
                    "would be loaded beside it (it needs DT_RPATH=%s)"
                    % (f.path, f.info.rpath or "the system", folder)
                )
        if self.brings_libc():
            for name in self.external_libs():
                found.append(
                    "%s is needed but not bundled: a bare Lambda root has no system libraries" % name
                )
        return found


def render(report: Report, top: int) -> List[str]:
    lines: List[str] = []
    lines.append("glibc report: %d files, %d ELF" % (report.files, len(report.findings)))
    target_glibc = version_text(RUNTIMES["al2023"][1])
    if report.brings_libc():
        assert report.bundled_glibc is not None
        loaders = sorted({f.info.interp for f in report.bundled_loader_executables()})
        lines.append(
            "C library: bundled glibc %s (loader %s); needs none from the system"
            % (version_text(report.bundled_glibc), ", ".join(str(x) for x in loaders))
        )
        helpers = report.system_executables()
        if helpers:
            lines.append(
                "separate programs on the system's C library (provided.al2023 has glibc %s), when the "
                "function starts them:" % target_glibc
            )
            for f in helpers:
                lines.append(
                    "  %s starts with %s, needs GLIBC_%s"
                    % (f.path, f.info.interp, version_text(f.glibc) if f.glibc else "-")
                )
    else:
        lines.append("C library: the system's (provided.al2023 has glibc %s)" % target_glibc)
        for f in report.executables():
            lines.append(
                "  %s starts with %s and searches %s" % (f.path, f.info.interp, f.info.rpath or "the system")
            )
    mx = report.max_needed()
    if mx is None:
        lines.append("max needed: no GLIBC symbol versions at all")
    else:
        worst = [f for f in report.findings if f.glibc == mx]
        lines.append("max needed: GLIBC_%s, by %s" % (version_text(mx), ", ".join(f.path for f in worst[:3])))
        ranked = sorted(
            (f for f in report.findings if f.glibc), key=lambda f: (f.glibc, f.path), reverse=True
        )
        lines.append("files needing the most (GLIBC version, file):")
        for f in ranked[:top]:
            assert f.glibc is not None
            lines.append("  GLIBC_%-6s %s" % (version_text(f.glibc), f.path))
    ext = report.external_libs()
    if ext:
        lines.append("needed from the target system: %s" % " ".join(ext))
    problems = report.problems()
    name = RUNTIMES["al2023"][0]
    lines.append("%s: %s" % (name, "OK" if not problems else "NO"))
    lines.append("runtimes: %s" % (name if not problems else "none"))
    for problem in problems:
        lines.append("  " + problem)
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Which C library a frozen bootstrap runs on, and whether provided.al2023 can run it.",
    )
    ap.add_argument("paths", nargs="*", help="onedir folder, executable, or bootstrap.zip")
    ap.add_argument("--inventory", type=Path, help="the build's inventory.json (scripts/inventory.py)")
    ap.add_argument(
        "--target", choices=sorted(RUNTIMES), help="fail (exit 1) if the bundle cannot run on provided.TARGET"
    )
    ap.add_argument("--top", type=int, default=5, help="how many files to list (default 5)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the verdict lines")
    args = ap.parse_args(argv)
    if not args.paths and args.inventory is None:
        ap.error("give a bundle, a zip or an ELF file, or --inventory")

    report = Report()
    if args.inventory is not None:
        try:
            report.add_inventory(Inventory.load(args.inventory))
        except (OSError, ValueError, KeyError) as exc:
            print("glibc_report: %s: cannot read the inventory (%s)" % (args.inventory, exc), file=sys.stderr)
            return 2
    for p in args.paths:
        try:
            report.add_path(p)
        except FileNotFoundError:
            print("glibc_report: %s: no such file or directory" % p, file=sys.stderr)
            return 2
    if not report.findings:
        print(
            "glibc_report: no ELF files found in %s" % " ".join(args.paths or [str(args.inventory)]),
            file=sys.stderr,
        )
        return 2
    lines = render(report, args.top)
    if args.quiet:
        lines = [ln for ln in lines if ln.startswith(("C library", "max needed", "runtimes", "  "))]
    print("\n".join(lines))
    if args.target and report.problems():
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
