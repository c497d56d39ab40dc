#!/usr/bin/env python3
"""One look at every file of a bundle, made once per build, that the later stages read.

For each file below the bundle: its path, size and sha256; for an ELF file its interpreter, needed
libraries, DT_RPATH and DT_RUNPATH, and the newest GLIBC symbol version it needs (read from the dynamic
section, so stripped files and any host work); and its origin, found by content, never by name:

* ``wheel``: a file whose sha256 a distribution's RECORD lists (the function's requirements, or the build
  environment for urllib3);
* ``python``: a byte-for-byte copy of a file of the freezing Python's installation (libpython, lib-dynload);
* ``system``: a file whose checksum the build machine's package manager holds (dpkg's
  ``/var/lib/dpkg/info/*.md5sums``, rpm's file digests), so a ``libz.so.1`` holding other bytes is not
  zlib's;
* ``function``: outside ``_internal/``, where scripts/function_files.py puts the function's files, a copy of
  a file of the function's folder, or the bytecode made from one (its PEP 552 header holds its source's
  hash);
* ``bootloader``: ``bootstrap`` itself, PyInstaller's bootloader with the archive appended.

The function's files are looked for only outside ``_internal/`` and the other origins only inside it, so an
empty ``__init__.py`` of the function does not claim every empty file of a wheel. Everything else has no
origin, which the notices warn about for ELF files. A symbolic link is recorded as one (its path and target),
not as a second copy of the file it points to. strip_bundle.py, host_paths.py, dedup_bundle.py, notices.py,
glibc_report.py and build_summary.py read the JSON; a stage that changes a file (strip, patchelf, a copy made
a link) records its new facts with ``refresh``.

    python scripts/inventory.py --bundle OUT/bundle --deps ENV/lib/python3.X/site-packages --function FN \\
        --out OUT/inventory.json
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

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


# --- origins, by content -----------------------------------------------------------------------------

FileEntry = Dict[str, Any]  # one file's record, as in the JSON (see describe())
CONTENTS = "_internal/"  # PyInstaller's folder: the runtime, its Python and the requirements
SOURCE_HASH = "pyc-source-hash:"  # a key of function_origins' table for a source's PEP 552 hash


class Origin(NamedTuple):
    kind: str  # wheel, python, system, function, bootloader
    package: str  # distribution, system package, "CPython", "PyInstaller", "function"
    version: str
    file: str  # where the same bytes are on the build machine ("" when unknown)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel_origins(deps: Optional[Path]) -> Dict[str, Origin]:
    """sha256 -> the distribution whose RECORD lists it: the function's requirements first, then the
    build environment's own (urllib3 comes from there when the function does not pin it)."""
    found: Dict[str, Origin] = {}
    dists: List[importlib.metadata.Distribution] = []
    if deps is not None and deps.is_dir():
        dists += [importlib.metadata.PathDistribution(p) for p in sorted(deps.glob("*.dist-info"))]
    dists += list(importlib.metadata.distributions())
    for dist in dists:
        name, version = dist.metadata["Name"], dist.version  # each access parses METADATA again
        for file in dist.files or []:  # RECORD's rows
            if file.hash is not None and file.hash.mode == "sha256":
                value = file.hash.value
                digest = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
                found.setdefault(digest, Origin("wheel", name, version, file.as_posix()))
    return found


def python_origins() -> Dict[str, Origin]:
    """sha256 -> the file of the freezing Python's installation with those bytes."""
    folders = [Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"]
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir:
        folders.append(Path(libdir))
    found: Dict[str, Origin] = {}
    version = sys.version.split()[0]
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.is_file() and not path.is_symlink():
                    found.setdefault(
                        _sha256(path.read_bytes()), Origin("python", "CPython", version, str(path))
                    )
    return found


def function_origins(function: Optional[Path]) -> Dict[str, Origin]:
    """sha256 -> the file of the function's folder with those bytes (a link to a file counts as the file:
    function_files.py ships it so); the bytecode made from a Python source is found by its source hash."""
    found: Dict[str, Origin] = {}
    if function is None or not function.is_dir():
        return found
    for path in sorted(function.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            origin = Origin("function", "function", "", path.relative_to(function).as_posix())
            found.setdefault(_sha256(data), origin)
            if path.suffix == ".py":
                found.setdefault(SOURCE_HASH + importlib.util.source_hash(data).hex(), origin)
    return found


def pyc_source_hash(data: bytes) -> Optional[str]:
    """The source hash a hash-based .pyc of this Python holds (PEP 552), or None."""
    if len(data) < 16 or data[:4] != importlib.util.MAGIC_NUMBER:
        return None
    if not int.from_bytes(data[4:8], "little") & 0b1:
        return None  # timestamp-based
    return data[8:16].hex()


DPKG_INFO = Path("/var/lib/dpkg/info")


def dpkg_origins(info_dir: Path = DPKG_INFO) -> Dict[str, Origin]:
    """md5 -> the Debian package that installed a file with those bytes (from dpkg's own md5sums)."""
    found: Dict[str, Origin] = {}
    for md5sums in sorted(info_dir.glob("*.md5sums")) if info_dir.is_dir() else []:
        package = md5sums.name[: -len(".md5sums")].split(":")[0]
        for line in md5sums.read_text(errors="replace").splitlines():
            digest, _, path = line.partition("  ")
            if path:
                found.setdefault(digest, Origin("system", package, "", "/" + path))
    return found


def rpm_origins() -> Dict[str, Origin]:
    """sha256 -> the RPM package (Amazon Linux) that installed a file with those bytes."""
    if not shutil.which("rpm"):
        return {}
    listing = subprocess.run(
        ["rpm", "-qa", "--qf", "[%{FILEDIGESTS}\t%{NAME}\t%{FILENAMES}\n]"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    found: Dict[str, Origin] = {}
    for line in listing.splitlines():
        digest, _, rest = line.partition("\t")
        name, _, path = rest.partition("\t")
        if len(digest) == 64:  # sha256, as AL2023's rpm records; other digests are not comparable
            found.setdefault(digest, Origin("system", name, "", path))
    return found


class Origins:
    """Every known origin, looked up by a file's digests: the function's for a file at the top of the bundle,
    the others (the first kind listed wins) for one under _internal/."""

    def __init__(self, deps: Optional[Path], function: Optional[Path]) -> None:
        self.function = function_origins(function)
        self.by_sha256: List[Dict[str, Origin]] = [wheel_origins(deps), python_origins(), rpm_origins()]
        self.by_md5 = dpkg_origins()

    def find(self, path: str, data: bytes) -> Optional[Origin]:
        sha = _sha256(data)
        if not path.startswith(CONTENTS):
            source_hash = pyc_source_hash(data) if "__pycache__/" in path else None
            found = self.function.get(sha)
            if found is None and source_hash is not None:
                found = self.function.get(SOURCE_HASH + source_hash)
            return found
        for table in self.by_sha256:
            if sha in table:
                return table[sha]
        return self.by_md5.get(hashlib.md5(data).hexdigest()) if self.by_md5 else None  # noqa: S324


# --- the inventory -----------------------------------------------------------------------------------

BOOTLOADER = "bootstrap"


def describe(path: str, data: bytes, mode: int = 0o644) -> FileEntry:
    """One regular file's record: path (relative, POSIX), size, sha256, executable bit, ELF facts."""
    entry: FileEntry = {
        "path": path,
        "size": len(data),
        "sha256": _sha256(data),
        "executable": bool(mode & 0o111),
    }
    if data[:4] == ELF_MAGIC:
        try:
            info = parse_elf(data)
        except (ElfError, struct.error) as exc:
            entry["elf_error"] = str(exc)
        else:
            glibc = max_glibc(info)
            entry["elf"] = {
                "interp": info.interp,
                "dynamic": info.dynamic,
                "needed": info.needed,
                "rpath": info.rpath,
                "runpath": info.runpath,
                "glibc": version_text(glibc) if glibc else None,
            }
            if os.path.basename(path) == "libc.so.6":
                release = glibc_release(data)
                entry["elf"]["glibc_release"] = version_text(release) if release else None
    return entry


def elf_info(entry: FileEntry) -> ElfInfo:
    """The ElfInfo of a record (versions reduced to the newest GLIBC one, all the report needs)."""
    elf = entry["elf"]
    versions = {"libc.so.6": {"GLIBC_" + elf["glibc"]}} if elf.get("glibc") else {}
    return ElfInfo(elf["interp"], elf["dynamic"], elf["needed"], elf["rpath"], elf["runpath"], versions)


class Inventory:
    def __init__(self, files: List[FileEntry]) -> None:
        self.files = files

    # --- reading ---
    def regular(self) -> List[FileEntry]:
        return [f for f in self.files if "link" not in f]

    def elf(self) -> List[FileEntry]:
        return [f for f in self.files if "elf" in f]

    def by_path(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry["path"] == path:
                return entry
        raise KeyError(path)

    def names(self) -> Set[str]:
        """Base names of every file and link: what the loader can find in the bundle."""
        return {os.path.basename(f["path"]) for f in self.files}

    def bundled_glibc(self) -> Optional[Tuple[int, ...]]:
        for entry in self.elf():
            release = entry["elf"].get("glibc_release")
            if release:
                return version_tuple(release)
        return None

    # --- writing ---
    def refresh(self, bundle: Path, path: str) -> None:
        """Read one file again after a stage changed it; its origin stays (it was found on the
        bytes as they came). A file a stage made a link is recorded as a link."""
        full = bundle / path
        if full.is_symlink():
            new: FileEntry = {"path": path, "link": os.readlink(full)}
        else:
            new = describe(path, full.read_bytes(), full.stat().st_mode)
        for i, entry in enumerate(self.files):
            if entry["path"] == path:
                if "origin" in entry and "link" not in new:
                    new["origin"] = entry["origin"]
                self.files[i] = new
                return
        self.files.append(new)
        self.files.sort(key=lambda f: f["path"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"files": self.files}, indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Inventory:
        return cls(json.loads(path.read_text())["files"])


def walk(bundle: Path) -> Iterator[Tuple[str, Path]]:
    """(relative POSIX path, path) of every file and link below bundle, sorted; a link to a folder is
    listed as a link, not followed (as repro_zip.py stores it)."""
    for root, dirs, files in os.walk(bundle):
        dirs.sort()
        links = [d for d in dirs if (Path(root) / d).is_symlink()]
        dirs[:] = [d for d in dirs if d not in links]
        for name in sorted(files + links):
            full = Path(root) / name
            yield full.relative_to(bundle).as_posix(), full


def make(bundle: Path, deps: Optional[Path] = None, function: Optional[Path] = None) -> Inventory:
    origins = Origins(deps, function)
    files: List[FileEntry] = []
    bootloader = Origin("bootloader", "PyInstaller", importlib.metadata.version("pyinstaller"), "")
    for rel, full in walk(bundle):
        st = full.lstat()
        if stat.S_ISLNK(st.st_mode):
            files.append({"path": rel, "link": os.readlink(full)})
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        data = full.read_bytes()
        entry = describe(rel, data, st.st_mode)
        origin = bootloader if rel == BOOTLOADER else origins.find(rel, data)
        if origin is not None:
            entry["origin"] = origin._asdict()
        files.append(entry)
    return Inventory(files)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument("--deps", type=Path, help="the site-packages pip installed the requirements into")
    parser.add_argument("--function", type=Path, help="the function's folder")
    parser.add_argument("--out", required=True, type=Path, help="the JSON to write (beside the bundle)")
    args = parser.parse_args(argv)
    if not (args.bundle / "_internal").is_dir():
        print("inventory.py: error: %s has no _internal/ folder" % args.bundle, file=sys.stderr)
        return 2
    inventory = make(args.bundle, args.deps, args.function)
    inventory.save(args.out)
    known = sum(1 for f in inventory.regular() if "origin" in f)
    print(
        "inventory.py: %d files (%d ELF), %d of known origin: %s"
        % (len(inventory.regular()), len(inventory.elf()), known, args.out),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
