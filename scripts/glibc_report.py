#!/usr/bin/env python3
"""Report the highest GLIBC symbol version a frozen bootstrap needs, and where Lambda can run it.

Pure Python (standard library only, Python 3.8+); no binutils. It reads each ELF file's dynamic
section (DT_NEEDED, DT_VERNEED/.gnu.version_r), so it works on stripped files and on any host.

Accepted inputs (any number):

* a directory: every regular ELF file below it (a onedir bundle: ``bootstrap`` + ``_internal/``);
* an ELF file: the file itself and, if it is a PyInstaller onefile executable, every ELF member
  of its embedded archive (``NAME!member`` in the report);
* a ``.zip`` (e.g. ``dist/bootstrap.zip``): every ELF member, and onefile archives inside them.

A statically linked executable (no ELF interpreter, no DT_NEEDED; what staticx produces) needs
no libc from the system: it is reported as static and fits every runtime.

Exit status: 0, or 1 when ``--max``/``--target`` is given and a file needs a newer GLIBC than
allowed, or 2 on bad input.

    python3 scripts/glibc_report.py dist/bootstrap.zip
    python3 scripts/glibc_report.py --target al2 build/bundle
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import struct
import sys
import zipfile
import zlib
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

# Lambda OS-only runtimes and the glibc of their Amazon Linux release.
RUNTIMES: Dict[str, Tuple[str, Tuple[int, ...]]] = {
    "al2023": ("provided.al2023", (2, 34)),
    "al2": ("provided.al2", (2, 26)),
}

# Libraries every Lambda runtime image provides (glibc's own sonames).
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
PYI_COOKIE = b"MEI\014\013\012\013\016"

PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_STRSZ, DT_RPATH, DT_RUNPATH = 0, 1, 5, 10, 15, 29
DT_VERNEED, DT_VERNEEDNUM = 0x6FFFFFFE, 0x6FFFFFFF

_VERSION_RE = re.compile(r"^GLIBC_(\d+(?:\.\d+)+)$")


class ElfError(ValueError):
    """Not an ELF file we can read."""


class ElfInfo(NamedTuple):
    interp: Optional[str]  # PT_INTERP (None for static executables and shared libraries)
    dynamic: bool  # has a PT_DYNAMIC segment
    needed: List[str]  # DT_NEEDED
    runpath: List[str]  # DT_RPATH + DT_RUNPATH entries
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
        return ElfInfo(interp, False, [], [], {})
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
    runpath: List[str] = []
    for t, v in tags:
        if t in (DT_RPATH, DT_RUNPATH):
            runpath += [p for p in s(v).split(":") if p]
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
    return ElfInfo(interp, True, needed, runpath, versions)


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


def pyinstaller_members(data: bytes) -> Iterator[Tuple[str, bytes]]:
    """(name, bytes) of the binary members of a PyInstaller onefile archive inside ``data``."""
    pos = data.rfind(PYI_COOKIE)
    if pos < 0:
        return
    fmt = "!8sIIII64s"
    if pos + struct.calcsize(fmt) > len(data):
        return
    _magic, pkg_len, toc_off, toc_len, _pyver, _pylib = struct.unpack_from(fmt, data, pos)
    start = pos + struct.calcsize(fmt) - pkg_len
    if start < 0:
        return
    toc = data[start + toc_off : start + toc_off + toc_len]
    i = 0
    entry_fmt = "!IIIIBc"
    head = struct.calcsize(entry_fmt)
    while i + head <= len(toc):
        elen, off, clen, _ulen, compressed, typecode = struct.unpack_from(entry_fmt, toc, i)
        if elen < head:
            break
        name = toc[i + head : i + elen].rstrip(b"\0").decode("utf-8", "replace")
        i += elen
        if typecode not in (b"b", b"x", b"d"):  # binaries and data files; not code, options or PYZ
            continue
        blob = data[start + off : start + off + clen]
        if compressed:
            try:
                blob = zlib.decompress(blob)
            except zlib.error:
                continue
        yield name, blob


class Finding(NamedTuple):
    path: str
    info: ElfInfo
    glibc: Optional[Tuple[int, ...]]


class Report:
    def __init__(self) -> None:
        self.findings: List[Finding] = []
        self.files = 0
        self.bundled: Set[str] = set()  # basenames of every file in the inputs
        self.onefile: List[str] = []

    def add_blob(self, path: str, data: bytes) -> None:
        self.files += 1
        self.bundled.add(os.path.basename(path.split("!")[-1]))
        if data[:4] != ELF_MAGIC:
            return
        try:
            info = parse_elf(data)
        except (ElfError, struct.error) as exc:
            print("warning: %s: cannot parse ELF (%s)" % (path, exc), file=sys.stderr)
            return
        self.findings.append(Finding(path, info, max_glibc(info)))
        members = list(pyinstaller_members(data))
        if members:
            self.onefile.append(path)
            for name, blob in members:
                self.add_blob(path + "!" + name, blob)

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

    def static_executables(self) -> List[Finding]:
        return [f for f in self.findings if f.info.interp is None and not f.info.dynamic]

    def dynamic_findings(self) -> List[Finding]:
        return [f for f in self.findings if f.info.dynamic or f.info.interp]

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

    def runpaths(self) -> List[Finding]:
        return [f for f in self.findings if f.info.runpath]


def allowed_runtimes(report: Report) -> List[str]:
    mx = report.max_needed()
    return [name for _key, (name, lim) in RUNTIMES.items() if mx is None or mx <= lim]


def render(report: Report, limit: Optional[Tuple[int, ...]], limit_name: str, top: int) -> List[str]:
    lines: List[str] = []
    elves = report.findings
    static = report.static_executables()
    lines.append(
        "glibc report: %d files, %d ELF%s"
        % (
            report.files,
            len(elves),
            (" (onefile archive inside %s)" % ", ".join(report.onefile)) if report.onefile else "",
        )
    )
    mx = report.max_needed()
    if static and not report.dynamic_findings():
        lines.append(
            "  %s: statically linked (no ELF interpreter, no shared libraries): it carries its own libc"
            % ", ".join(f.path for f in static)
        )
        lines.append(
            "  (staticx: the program and its libraries, glibc included, are unpacked and run with the bundled"
        )
        lines.append("  loader), so the host's glibc version does not matter.")
    elif static:
        lines.append("  static executables: %s" % ", ".join(f.path for f in static))
    if mx is None:
        lines.append("max needed: no GLIBC symbol versions at all")
    else:
        worst = [f for f in elves if f.glibc == mx]
        lines.append("max needed: GLIBC_%s, by %s" % (version_text(mx), ", ".join(f.path for f in worst)))
        ranked = sorted((f for f in elves if f.glibc), key=lambda f: (f.glibc, f.path), reverse=True)
        floor = min(lim for _n, lim in RUNTIMES.values())
        shown = [f for f in ranked if f.glibc > floor] or ranked[:top]
        if len(shown) < top:
            shown = ranked[:top]
        lines.append("files needing the most (GLIBC version, file):")
        for f in shown:
            lines.append("  GLIBC_%-6s %s" % (version_text(f.glibc), f.path))
    ext = report.external_libs()
    if ext:
        non_glibc = [n for n in ext if n not in GLIBC_SONAMES]
        lines.append("needed from the target system: %s" % " ".join(ext))
        if non_glibc:
            lines.append(
                "  not part of glibc, must exist on the target: %s (check in the provided.* image)"
                % " ".join(non_glibc)
            )
    rp = report.runpaths()
    if rp:
        lines.append(
            "note: %d file(s) carry an RPATH/RUNPATH (harmless at run time; staticx refuses them): %s"
            % (len(rp), ", ".join(f.path for f in rp[:5]))
        )
    for _key, (name, lim) in RUNTIMES.items():
        bad = report.too_new(lim)
        verdict = "OK" if not bad else "NO: %d file(s) need a newer GLIBC" % len(bad)
        lines.append("%-16s (glibc %s): %s" % (name, version_text(lim), verdict))
    allowed = allowed_runtimes(report)
    lines.append("runtimes: %s" % (" ".join(allowed) if allowed else "none"))
    if limit is not None:
        bad = report.too_new(limit)
        if bad:
            lines.append(
                "FAIL: %s allows GLIBC %s; %d file(s) need more:"
                % (limit_name, version_text(limit), len(bad))
            )
            for f in sorted(bad, key=lambda f: (f.glibc, f.path), reverse=True):
                lines.append("  GLIBC_%-6s %s  TOO NEW" % (version_text(f.glibc), f.path))
        else:
            lines.append("PASS: everything fits %s (GLIBC <= %s)" % (limit_name, version_text(limit)))
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description="Highest GLIBC version a frozen bootstrap needs (onedir folder, onefile binary or zip).",
    )
    ap.add_argument("paths", nargs="+", help="onedir folder, executable, or bootstrap.zip")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--max", metavar="X.Y", help="fail (exit 1) if any file needs a GLIBC newer than X.Y")
    g.add_argument(
        "--target", choices=sorted(RUNTIMES), help="fail (exit 1) if the bundle cannot run on provided.TARGET"
    )
    ap.add_argument("--top", type=int, default=5, help="how many files to list at least (default 5)")
    ap.add_argument("-q", "--quiet", action="store_true", help="print only the verdict lines")
    args = ap.parse_args(argv)

    limit = None
    limit_name = ""
    if args.max:
        if not re.match(r"^\d+\.\d+$", args.max):
            ap.error("--max wants a version like 2.26, not %r" % args.max)
        limit, limit_name = version_tuple(args.max), "the limit"
    elif args.target:
        limit_name, limit = RUNTIMES[args.target]

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
    lines = render(report, limit, limit_name, args.top)
    if args.quiet:
        lines = [
            ln
            for ln in lines
            if ln.startswith(("max needed", "runtimes", "FAIL", "PASS")) or ln.endswith("TOO NEW")
        ]
    print("\n".join(lines))
    if limit is not None and report.too_new(limit):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
