#!/usr/bin/env python3
"""Report which C library a frozen bootstrap runs on, and whether it can run on Lambda's provided.al2023.

Pure Python (standard library only, Python 3.8+); no binutils. It reads each ELF file's dynamic
section (DT_NEEDED, DT_VERNEED/.gnu.version_r), so it works on stripped files and on any host.

Accepted inputs (any number):

* a directory: every regular ELF file below it (a onedir bundle: ``bootstrap`` + ``_internal/``);
* an ELF file;
* a ``.zip`` (e.g. ``dist/bootstrap.zip``): every ELF member.

A bundle that brings its own C library (scripts/bundle_libc.py: ``libc.so.6`` and the loader in the
bundle, the executable's ELF interpreter and DT_RPATH pointing at them) needs none from the system:
every file must then need no newer GLIBC than the bundled one. Any other bundle leans on the system's
glibc, and must need no newer GLIBC than the target has.

Exit status: 0, or 1 when ``--max``/``--target`` is given and a file needs a newer GLIBC than
allowed, or 2 on bad input.

    python3 scripts/glibc_report.py dist/bootstrap.zip
    python3 scripts/glibc_report.py --target al2023 build/bundle
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import struct
import sys
import zipfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

# Lambda OS-only runtimes open to new code, and the glibc of their Amazon Linux release. provided.al2 is
# closed to function creates and code updates (2026), so it is not a target any more.
RUNTIMES: Dict[str, Tuple[str, Tuple[int, ...]]] = {
    "al2023": ("provided.al2023", (2, 34)),
}

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

ELF_MAGIC = b"\x7fELF"

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 15, 29
DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF

_VERSION_RE = re.compile(r"^GLIBC_(\d+(?:\.\d+)+)$")


class ElfError(ValueError):
    """Not an ELF file we can read."""


class ElfInfo(NamedTuple):
    interp: Optional[str]  # PT_INTERP (None for shared libraries)
    dynamic: bool  # has a PT_DYNAMIC segment
    needed: List[str]  # DT_NEEDED
    rpath: List[str]  # DT_RPATH entries (searched before LD_LIBRARY_PATH)
    runpath: List[str]  # DT_RUNPATH entries (searched after it)
    versions: Dict[str, Set[str]]  # library file name -> version names needed from it (.gnu.version_r)


def _cstr(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    if end < 0:
        end = len(data)
    return data[off:end].decode("utf-8", "replace")


def parse_elf(data: bytes) -> ElfInfo:
    """Parse the dynamic linking facts of an ELF image held in memory."""
    if len(data) < 52 or data[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2) or ei_data not in (1, 2):
        raise ElfError("unknown ELF class or byte order")
    end = "<" if ei_data == 1 else ">"
    is64 = ei_class == 2
    if is64:
        (e_phoff,) = struct.unpack_from(end + "Q", data, 0x20)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 0x36)
        ph_fmt, dyn_fmt = end + "IIQQQQQQ", end + "qQ"
    else:
        (e_phoff,) = struct.unpack_from(end + "I", data, 0x1C)
        e_phentsize, e_phnum = struct.unpack_from(end + "HH", data, 0x2A)
        ph_fmt, dyn_fmt = end + "IIIIIIII", end + "iI"
    loads: List[Tuple[int, int, int]] = []  # (vaddr, filesz, offset)
    dyn_off = dyn_size = None
    interp = None
    for i in range(e_phnum):
        off = e_phoff + i * e_phentsize
        if off + struct.calcsize(ph_fmt) > len(data):
            raise ElfError("truncated program header table")
        f = struct.unpack_from(ph_fmt, data, off)
        if is64:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = f[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = f[:5]
        if p_type == PT_LOAD:
            loads.append((p_vaddr, p_filesz, p_offset))
        elif p_type == PT_DYNAMIC:
            dyn_off, dyn_size = p_offset, p_filesz
        elif p_type == PT_INTERP:
            interp = _cstr(data, p_offset)

    def v2o(vaddr: int) -> int:
        for base, size, off in loads:
            if base <= vaddr < base + size:
                return off + vaddr - base
        # Some linkers store file offsets already (prelinked images); accept them when in range.
        if 0 <= vaddr < len(data):
            return vaddr
        raise ElfError("address 0x%x is outside every PT_LOAD segment" % vaddr)

    if dyn_off is None:
        return ElfInfo(interp, False, [], [], [], {})
    tags: List[Tuple[int, int]] = []
    step = struct.calcsize(dyn_fmt)
    for off in range(dyn_off, min(dyn_off + dyn_size, len(data)) - step + 1, step):
        tag, val = struct.unpack_from(dyn_fmt, data, off)
        if tag == DT_NULL:
            break
        tags.append((tag, val))
    strtab = next((v for t, v in tags if t == DT_STRTAB), None)
    if strtab is None:
        raise ElfError("dynamic section without DT_STRTAB")
    stroff = v2o(strtab)

    def s(idx: int) -> str:
        return _cstr(data, stroff + idx)

    needed = [s(v) for t, v in tags if t == DT_NEEDED]
    rpath = [p for t, v in tags if t == DT_RPATH for p in s(v).split(":") if p]
    runpath = [p for t, v in tags if t == DT_RUNPATH for p in s(v).split(":") if p]
    versions: Dict[str, Set[str]] = {}
    vn = next((v for t, v in tags if t == DT_VERNEED), None)
    vn_num = next((v for t, v in tags if t == DT_VERNEEDNUM), 0)
    if vn is not None:
        off = v2o(vn)
        for _ in range(vn_num):
            _ver, cnt, vn_file, vn_aux, vn_next = struct.unpack_from(end + "HHIII", data, off)
            lib = s(vn_file)
            aux = off + vn_aux
            for _ in range(cnt):
                _hash, _flags, _other, name, vna_next = struct.unpack_from(end + "IHHII", data, aux)
                versions.setdefault(lib, set()).add(s(name))
                if not vna_next:
                    break
                aux += vna_next
            if not vn_next:
                break
            off += vn_next
    return ElfInfo(interp, True, needed, rpath, runpath, versions)


def version_tuple(text: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def version_text(v: Sequence[int]) -> str:
    return ".".join(str(p) for p in v)


def max_glibc(info: ElfInfo) -> Optional[Tuple[int, ...]]:
    best = None
    for names in info.versions.values():
        for n in names:
            m = _VERSION_RE.match(n)
            if m:
                v = version_tuple(m.group(1))
                if best is None or v > best:
                    best = v
    return best


def glibc_release(libc: bytes) -> Optional[Tuple[int, ...]]:
    """The release of a libc.so.6 image, from the banner glibc compiles into it."""
    match = re.search(rb"release version (\d+\.\d+)", libc)
    return version_tuple(match.group(1).decode()) if match else None


class Finding(NamedTuple):
    path: str
    info: ElfInfo
    glibc: Optional[Tuple[int, ...]]


class Report:
    def __init__(self) -> None:
        self.findings: List[Finding] = []
        self.files = 0
        self.bundled: Set[str] = set()  # basenames of every file in the inputs
        self.bundled_glibc: Optional[Tuple[int, ...]] = None  # release of a libc.so.6 in the inputs

    def add_blob(self, path: str, data: bytes) -> None:
        self.files += 1
        self.bundled.add(os.path.basename(path))
        if data[:4] != ELF_MAGIC:
            return
        try:
            info = parse_elf(data)
        except (ElfError, struct.error) as exc:
            print("warning: %s: cannot parse ELF (%s)" % (path, exc), file=sys.stderr)
            return
        if os.path.basename(path) == "libc.so.6":
            self.bundled_glibc = glibc_release(data)
        self.findings.append(Finding(path, info, max_glibc(info)))

    def add_path(self, path: str) -> None:
        if os.path.isdir(path):
            base = os.path.dirname(os.path.abspath(path).rstrip("/"))
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(root, name)
                    st = os.lstat(full)
                    if stat.S_ISLNK(st.st_mode):
                        self.bundled.add(name)
                        continue
                    if stat.S_ISREG(st.st_mode):
                        with open(full, "rb") as f:
                            self.add_blob(os.path.relpath(full, base), f.read())
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                for zi in sorted(zf.infolist(), key=lambda z: z.filename):
                    if zi.is_dir():
                        continue
                    mode = zi.external_attr >> 16
                    if stat.S_ISLNK(mode):
                        self.bundled.add(os.path.basename(zi.filename))
                        continue
                    self.add_blob(os.path.basename(path) + ":" + zi.filename, zf.read(zi))
        elif os.path.isfile(path):
            with open(path, "rb") as f:
                self.add_blob(path, f.read())
        else:
            raise FileNotFoundError(path)

    # --- summary -----------------------------------------------------------------------------

    def executables(self) -> List[Finding]:
        """Programs to be started (libc.so.6 is one too, but is never started here)."""
        return [f for f in self.findings if f.info.interp and os.path.basename(f.path) not in GLIBC_SONAMES]

    def system_loaders(self) -> List[Finding]:
        """Executables that start with a loader the bundle does not carry, or that search the
        system's libraries before the bundle's (no DT_RPATH into the loader's folder)."""
        result = []
        for f in self.executables():
            folder, loader = os.path.split(f.info.interp or "")
            if loader not in self.bundled or f.info.rpath != [folder]:
                result.append(f)
        return result

    def brings_libc(self) -> bool:
        """The bundle carries its C library and every executable starts with it."""
        return self.bundled_glibc is not None and bool(self.executables()) and not self.system_loaders()

    def max_needed(self) -> Optional[Tuple[int, ...]]:
        vs = [f.glibc for f in self.findings if f.glibc]
        return max(vs) if vs else None

    def too_new(self, limit: Tuple[int, ...]) -> List[Finding]:
        return [f for f in self.findings if f.glibc and f.glibc > limit]

    def external_libs(self) -> List[str]:
        needed: Set[str] = set()
        for f in self.findings:
            needed.update(f.info.needed)
        return sorted(n for n in needed if n not in self.bundled)

    def limit(self) -> Tuple[int, ...]:
        """The newest GLIBC the files may need: the bundled one, or else the target's."""
        if self.brings_libc():
            assert self.bundled_glibc is not None
            return self.bundled_glibc
        return RUNTIMES["al2023"][1]

    def problems(self) -> List[str]:
        """Why the bundle cannot run on provided.al2023 (nothing when it can)."""
        found = []
        limit = self.limit()
        for f in sorted(self.too_new(limit), key=lambda f: (f.glibc, f.path), reverse=True):
            found.append(
                "GLIBC_%-6s %s  TOO NEW (limit %s)" % (version_text(f.glibc), f.path, version_text(limit))
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
    if report.brings_libc():
        assert report.bundled_glibc is not None
        loaders = sorted({f.info.interp for f in report.executables()})
        lines.append(
            "C library: bundled glibc %s (loader %s); needs none from the system"
            % (version_text(report.bundled_glibc), ", ".join(str(x) for x in loaders))
        )
    else:
        lines.append(
            "C library: the system's (provided.al2023 has glibc %s)" % version_text(RUNTIMES["al2023"][1])
        )
        for f in report.system_loaders():
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
    ap.add_argument("paths", nargs="+", help="onedir folder, executable, or bootstrap.zip")
    ap.add_argument(
        "--target", choices=sorted(RUNTIMES), help="fail (exit 1) if the bundle cannot run on provided.TARGET"
    )
    ap.add_argument("--top", type=int, default=5, help="how many files to list (default 5)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the verdict lines")
    args = ap.parse_args(argv)

    report = Report()
    for p in args.paths:
        try:
            report.add_path(p)
        except FileNotFoundError:
            print("glibc_report: %s: no such file or directory" % p, file=sys.stderr)
            return 2
    if not report.findings:
        print("glibc_report: no ELF files found in %s" % " ".join(args.paths), file=sys.stderr)
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
