#!/usr/bin/env python3
"""Take the build machine's paths out of a bundle, so that the zip says nothing of where it was built.

Two places name them (measured on a pyenv Python):

* DT_RUNPATH/DT_RPATH entries of ELF files: pyenv builds libpython and every ``lib-dynload`` module with
  ``RUNPATH=$HOME/.pyenv/versions/X/lib``. In the bundle they are useless (the bootloader's DT_RPATH and
  PyInstaller's LD_LIBRARY_PATH lead to ``_internal``) and on Lambda they point nowhere. Every absolute
  entry outside the folder the bundle runs from is dropped; ``$ORIGIN`` entries (auditwheel's, which
  the vendored libraries need) and the bundle's own folder stay.
* ``_sysconfigdata_*.pyc``: the freezing Python's configuration, with its installation prefix in about a
  dozen values (prefix, LIBDIR, CONFIG_ARGS, ...). The prefix becomes the one the frozen interpreter has
  on Lambda (``/var/task/_internal``, ``/opt/_internal`` for a layer).

libpython keeps its compiled-in default prefix (getpath's fallback, unused by a frozen interpreter): the
linker shares string tails, and in CPython 3.13 ``sys.version``'s "3.13.0" is the tail of that very string,
so it cannot be overwritten.

Run it after the inventory, with the prefix the bundle is unpacked at; it records the changed files there:

    python scripts/host_paths.py --bundle OUT/bundle --inventory OUT/inventory.json --prefix /var/task
"""

from __future__ import annotations

import argparse
import importlib.util
import marshal
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inventory as inv
from bundle_libc import BundleError, patchelf_command

PYC_HEADER = 16  # magic, flags, and two words of source information (PEP 552)


def foreign(entry: str, run_dir: str) -> bool:
    """An RPATH/RUNPATH entry that names the build machine: absolute, and outside the bundle's folder."""
    return entry.startswith("/") and not (entry == run_dir or entry.startswith(run_dir + "/"))


def drop_foreign_search_paths(bundle: Path, inventory: inv.Inventory, run_dir: str) -> List[str]:
    """Rewrites the RPATH/RUNPATH of every ELF file that names a build-machine folder; returns their paths."""
    changed = []
    for entry in inventory.elf():
        elf = entry["elf"]
        for tag, option in (("rpath", ["--force-rpath"]), ("runpath", [])):
            values = elf[tag]
            if not any(foreign(v, run_dir) for v in values):
                continue
            kept = [v for v in values if not foreign(v, run_dir)]
            path = str(bundle / entry["path"])
            # patchelf overwrites the old string when it sets a new one; removing the entry alone would
            # leave the build machine's path in the string table.
            subprocess.run([patchelf_command(), *option, "--set-rpath", ":".join(kept), path], check=True)
            if not kept:
                subprocess.run([patchelf_command(), "--remove-rpath", path], check=True)
            changed.append(entry["path"])
    for path in changed:
        needed = inventory.by_path(path)["elf"]["needed"]
        inventory.refresh(bundle, path)
        # patchelf overwrites the old string in place; a name sharing its tail would be hit too.
        if inventory.by_path(path)["elf"]["needed"] != needed:
            raise ValueError("patchelf changed the needed libraries of %s" % path)
    return changed


def _replace_in_code(code: types.CodeType, old: str, new: str) -> types.CodeType:
    def fix(value):
        if isinstance(value, str):
            return value.replace(old, new)
        if isinstance(value, tuple):
            return tuple(fix(v) for v in value)
        if isinstance(value, frozenset):
            return frozenset(fix(v) for v in value)
        if isinstance(value, types.CodeType):
            return _replace_in_code(value, old, new)
        return value

    return code.replace(co_consts=tuple(fix(c) for c in code.co_consts))


def rewrite_sysconfigdata(bundle: Path, inventory: inv.Inventory, host_prefix: str, prefix: str) -> List[str]:
    """Puts ``prefix`` for the build Python's installation prefix in its frozen _sysconfigdata modules."""
    changed = []
    for entry in inventory.regular():
        name = os.path.basename(entry["path"])
        if not (name.startswith("_sysconfigdata_") and name.endswith(".pyc")):
            continue
        path = bundle / entry["path"]
        data = path.read_bytes()
        if data[:4] != importlib.util.MAGIC_NUMBER or host_prefix.encode() not in data:
            continue
        # The build's own bytecode, compiled by this very Python moments ago.
        code = _replace_in_code(marshal.loads(data[PYC_HEADER:]), host_prefix, prefix)  # noqa: S302
        path.write_bytes(data[:PYC_HEADER] + marshal.dumps(code))
        inventory.refresh(bundle, entry["path"])
        changed.append(entry["path"])
    return changed


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument("--inventory", required=True, type=Path, help="the bundle's inventory.json")
    parser.add_argument("--prefix", required=True, help="where the bundle is unpacked: /var/task or /opt")
    args = parser.parse_args(argv)
    run_dir = args.prefix.rstrip("/") + "/_internal"
    inventory = inv.Inventory.load(args.inventory)
    totals: Dict[str, List[str]] = {}
    try:
        totals["elf"] = drop_foreign_search_paths(args.bundle, inventory, run_dir)
        totals["sysconfig"] = rewrite_sysconfigdata(args.bundle, inventory, sys.base_prefix, run_dir)
    except (OSError, BundleError, subprocess.CalledProcessError, ValueError) as exc:
        print("host_paths.py: error: %s" % exc, file=sys.stderr)
        return 1
    inventory.save(args.inventory)
    print(
        "host_paths.py: dropped build-machine RPATH/RUNPATH entries from %d files; %s -> %s in %d "
        "_sysconfigdata" % (len(totals["elf"]), sys.base_prefix, run_dir, len(totals["sysconfig"])),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
