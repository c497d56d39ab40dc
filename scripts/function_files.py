#!/usr/bin/env python3
"""Put a function's own files where Lambda puts a zip's files: at the top of the bundle (/var/task), with
the folders and names they had, each .py beside its bytecode for the Python that runs it.

    python scripts/function_files.py --function FN --into BUNDLE [--prefix /var/task]

On every managed runtime a function's files are at /var/task, which is also the working directory, so
``open("ca.pem")``, ``REQUESTS_CA_BUNDLE=/var/task/ca.pem``, ``os.environ["LAMBDA_TASK_ROOT"] +
"/templates"`` and paths taken from a module's ``__file__`` all find them. The runtime puts
LAMBDA_TASK_ROOT first on sys.path, so the function's modules are imported from there, as source files
with their ``__pycache__/*.cpython-3XY.pyc``:

* ``__file__`` is /var/task/app.py, and a traceback shows the source lines;
* a frozen interpreter never writes bytecode, so the bytecode is made here, with the Python that is
  frozen (run this script with it). It is hash-based and checked against the source (PEP 552): a zip's
  timestamps are fixed, so a timestamp-based .pyc would never match and every module would be compiled
  at every cold start; a checked hash also stays right if someone edits a source in the unpacked bundle.

Left out: dotfiles, ``__pycache__`` and stray ``.pyc`` (for whatever Python made them), and the files at
the top that describe the build rather than the function (BUILD_FILES). A name the bundle itself uses
(``bootstrap``, ``_internal``, the notices) is refused: the function's file would replace the runtime's.
Exit 1 with what is wrong, 0 when the files are in place.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import py_compile
import shutil
import sys
from pathlib import Path
from typing import List, Optional

# Files at the top of a function folder that describe its build, not its data: pip's requirements, and what
# `sam build` reads (template, Makefile, samconfig). They are not shipped.
BUILD_FILES = {
    "requirements.txt", "Makefile", "template.yaml", "template.yml", "samconfig.toml", "samconfig.yaml",
}  # fmt: skip
# What the bundle holds at its top besides the function's files.
BUNDLE_NAMES = {"bootstrap", "_internal", "THIRD-PARTY-NOTICES.txt"}


def function_files(function: Path) -> List[Path]:
    """The function's files to ship, relative to its folder, sorted; ValueError for what cannot be shipped."""
    found = []
    for dirpath, dirs, files in os.walk(function):
        here = Path(dirpath)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for d in dirs:
            if (here / d).is_symlink():
                raise ValueError(
                    "%s is a link to a folder: put the folder itself in the function folder"
                    % (here / d).relative_to(function)
                )
        for name in sorted(files):
            rel = (here / name).relative_to(function)
            if name.startswith(".") or name.endswith(".pyc"):
                continue
            if rel.parent == Path(".") and name in BUILD_FILES:
                continue
            found.append(rel)
    clashes = sorted({rel.parts[0] for rel in found} & BUNDLE_NAMES)
    if clashes:
        raise ValueError(
            "the function folder holds %s, a name the bundle itself uses at /var/task; rename it"
            % ", ".join(clashes)
        )
    return found


def install(function: Path, bundle: Path, prefix: str) -> List[str]:
    """Copy the files into the bundle, compile the .py ones; return warnings (sources that do not compile)."""
    warnings = []
    for rel in function_files(function):
        target = bundle / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(function / rel, target)  # a link to a file ships as the file it points to
        shutil.copymode(function / rel, target)
        if rel.suffix != ".py":
            continue
        try:
            py_compile.compile(
                str(target),
                cfile=importlib.util.cache_from_source(str(target)),
                dfile=os.path.join(prefix, *rel.parts),
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
        except py_compile.PyCompileError as exc:
            warnings.append(
                "warning: %s does not compile with Python %s, shipped as source only (importing it fails): %s"
                % (rel, sys.version.split()[0], exc.msg.strip().splitlines()[-1])
            )
    return warnings


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--function", required=True, type=Path, help="the function's folder")
    parser.add_argument("--into", required=True, type=Path, help="the bundle's top folder")
    parser.add_argument("--prefix", default="/var/task", help="where Lambda unpacks the zip")
    args = parser.parse_args(argv)
    try:
        warnings = install(args.function, args.into, args.prefix)
    except ValueError as exc:
        print("function_files.py: error: %s" % exc, file=sys.stderr)
        return 1
    for line in warnings:
        print(line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
