#!/usr/bin/env python3
"""Refuse a function folder that vendors compiled code this build cannot run.

A wheel installed into the function folder by hand (``pip install --target fn/`` on a Mac, or on a
machine with another Python) brings extension modules and libraries built for that machine. Frozen
in, they fail only on Lambda, at import. This check names each such file and what it was built for:

* a Mach-O (macOS) or PE (Windows) binary, or an ELF one for another architecture;
* an extension module tagged for another Python (``.cpython-312-x86_64-linux-gnu.so`` under 3.13,
  ``.cpython-313-darwin.so``);
* an installed wheel (``*.dist-info/WHEEL``) none of whose tags this Python accepts.

Run it with the Python that freezes; exit 1 with the findings, 0 when there are none:

    python scripts/check_function.py --function path/to/fn
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import sysconfig
from pathlib import Path
from typing import Iterator, List, Optional, Set

ELF_MACHINES = {3: "x86 (32-bit)", 40: "ARM (32-bit)", 62: "x86_64", 183: "arm64", 243: "RISC-V"}
HOST_MACHINE = {"x86_64": 62, "aarch64": 183}
MACHO_MAGICS = {
    b"\xfe\xed\xfa\xce",
    b"\xce\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
}
BINARY_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


def binary_kind(head: bytes, machine: str) -> Optional[str]:
    """What a binary was built for, when that is not this machine's Linux; None when it is."""
    if head[:4] == b"\x7fELF":
        byte_order = "<" if head[5:6] == b"\x01" else ">"
        (e_machine,) = struct.unpack_from(byte_order + "H", head, 18)
        if e_machine != HOST_MACHINE.get(machine):
            return "Linux %s" % ELF_MACHINES.get(e_machine, "machine %d" % e_machine)
        return None
    if head[:4] in MACHO_MAGICS:
        return "macOS (a Mach-O binary)"
    if head[:2] == b"MZ":
        return "Windows (a PE binary)"
    return "no known platform (not an ELF binary)"


def extension_tag_problem(name: str) -> Optional[str]:
    """What another Python's extension module tag says, or None when this Python imports the file."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ""
    if not name.endswith(".so") or name.endswith((suffix, ".abi3.so")):
        return None
    parts = name.split(".")
    tag = parts[-2] if len(parts) >= 3 else ""
    if not tag.startswith("cpython-"):
        return None
    fields = tag.split("-")
    version = fields[1] if len(fields) > 1 else "?"
    platform = "-".join(fields[2:]) or "?"
    return "CPython %s.%s on %s; this build freezes Python %d.%d (%s)" % (
        version[:1],
        version[1:],
        platform,
        sys.version_info[0],
        sys.version_info[1],
        suffix.strip(".").rsplit(".", 1)[0],
    )


def wheel_tags(wheel_file: Path) -> List[str]:
    return [
        line.split(":", 1)[1].strip()
        for line in wheel_file.read_text().splitlines()
        if line.startswith("Tag:")
    ]


def accepted_tags() -> Set[str]:
    from packaging.tags import sys_tags  # PyInstaller's dependency: present where freeze.sh runs

    return {str(tag) for tag in sys_tags()}


def function_files(root: Path) -> Iterator[Path]:
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            yield Path(dirpath) / name


def findings(root: Path, machine: str) -> List[str]:
    problems = []
    accepted: Optional[Set[str]] = None
    for path in function_files(root):
        rel = path.relative_to(root)
        if path.name == "WHEEL" and path.parent.name.endswith(".dist-info"):
            tags = wheel_tags(path)
            if accepted is None:
                accepted = accepted_tags()
            if tags and not accepted.intersection(tags):
                problems.append("%s: a wheel built for %s" % (path.parent.relative_to(root), ", ".join(tags)))
            continue
        if not (path.name.endswith(BINARY_SUFFIXES) or ".so." in path.name) or path.is_symlink():
            continue
        with open(path, "rb") as f:
            head = f.read(64)
        built_for = binary_kind(head, machine) or extension_tag_problem(path.name)
        if built_for:
            problems.append("%s: built for %s" % (rel, built_for))
    return problems


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", required=True, type=Path, help="the function's folder")
    args = parser.parse_args(argv)
    machine = os.uname().machine
    problems = findings(args.function, machine)
    if not problems:
        return 0
    print(
        "check_function.py: error: the function folder %s holds compiled code this build cannot run "
        "(it makes Linux %s with Python %d.%d):" % (args.function, machine, *sys.version_info[:2]),
        file=sys.stderr,
    )
    for problem in problems:
        print("  " + problem, file=sys.stderr)
    print(
        "Remove these files and name their packages in the function's requirements.txt: the build "
        "installs them for the Python and machine it freezes for. To vendor them anyway, install "
        "Linux wheels: pip install --target DIR --only-binary=:all: --platform manylinux2014_%s "
        "--python-version %d.%d PACKAGE" % (machine, *sys.version_info[:2]),
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
