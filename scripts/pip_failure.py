#!/usr/bin/env python3
"""Say, from pip's output, why a function's requirements could not install: which package, and what
it needed that this build does not have.

pip's own message is long and ends in "This is an issue with the package mentioned above, not
pip": the useful line (a missing C header, compiler, or tool) sits inside the output of a build of a
source distribution. freeze.sh runs this on pip's log after pip failed, and prints pip's output
first.

    python scripts/pip_failure.py build/.../pip.log [--wheels-only]

``--wheels-only`` says pip ran with ``--only-binary :all:`` (freeze.sh's default): then a release that
exists only as a source distribution looks to pip like no release at all, and the hint says so.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import List, Optional, Tuple

# (pattern in pip's output, what the package needs)
NEEDS: List[Tuple[str, str]] = [
    (
        r"fatal error: ([\w./+-]+\.h): No such file or directory",
        "the C header {0}: install the development package that has it (Debian: lib...-dev, "
        "Amazon Linux: ...-devel)",
    ),
    (
        r"pg_config executable not found",
        "PostgreSQL's pg_config (Debian: libpq-dev, Amazon Linux: libpq-devel); or require psycopg2-binary, "
        "which ships libpq in its wheel",
    ),
    (
        r"command '([^']+)' failed: No such file or directory|unable to execute '([^']+)'|"
        r"No such file or directory: '([^']*(?:cc|gcc|g\+\+|clang|c\+\+))'|"
        r"([\w.+-]*(?:gcc|cc|g\+\+|clang)): (?:command )?not found",
        "a C compiler ({0} is missing): install gcc (Debian: build-essential, Amazon Linux: gcc)",
    ),
    (
        r"can't find Rust compiler|cargo: (?:command )?not found|rustc: (?:command )?not found",
        "a Rust compiler (rustc and cargo, from rustup.rs or the system's rust/cargo packages)",
    ),
]
FAILED_PACKAGE = [
    r"Failed building wheel for ([\w.-]+)",
    r"Failed to build ([\w.-]+)",
    r"Failed to build installable wheels for some pyproject\.toml based projects \(([\w., -]+)\)",
    r"Running setup\.py install for ([\w.-]+) \.\.\. error",
]
SOURCE_DOWNLOAD = (
    r"(?:Downloading|Using cached|Processing) .*?([A-Za-z0-9_.-]+?)-[\d][^/\s]*\.(?:tar\.gz|zip)\b"
)
NO_DISTRIBUTION = r"No matching distribution found for ([^\s]+)"


def failed_package(log: str) -> Optional[str]:
    for pattern in FAILED_PACKAGE:
        found = re.findall(pattern, log)
        if found:
            return found[-1].strip()
    # A source distribution that failed before its wheel build (metadata, build requirements): the
    # last one pip fetched is the one it was working on.
    found = re.findall(SOURCE_DOWNLOAD, log)
    if found and re.search(r"subprocess-exited-with-error|metadata-generation-failed", log):
        return found[-1]
    local = re.findall(r"Processing (\S+)", log)
    return local[-1] if local and "subprocess-exited-with-error" in log else None


def explain(log: str, python: str, wheels_only: bool = False) -> List[str]:
    lines = []
    missing = re.findall(NO_DISTRIBUTION, log)
    if missing:
        lines.append(
            "no release of %s installs here: check the name and version, and that it has a release for "
            "Python %s on Linux" % (", ".join(sorted(set(missing))), python)
        )
        if wheels_only:
            lines.append(
                "only wheels are installed, so a release published only as a source distribution counts "
                "as none: pin a release with a manylinux wheel for Python %s, or build with --allow-sdist, "
                "which compiles it on this machine (./build.sh --help says what that risks)" % python
            )
    package = failed_package(log)
    needs = []
    for pattern, need in NEEDS:
        match = re.search(pattern, log)
        if match:
            needs.append(need.format(next((g for g in match.groups() if g), "")))
    if package or needs:
        lines.append(
            "%s has no wheel for Python %s on this platform, and building it from source needs %s. "
            "Pin a version that ships a manylinux wheel for this Python (see its 'Download files' page "
            "on PyPI), or install what it needs and build again"
            % (package or "a requirement", python, "; and ".join(needs) or "what pip's output above says")
        )
    return lines


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="pip's output")
    parser.add_argument("--wheels-only", action="store_true", help="pip ran with --only-binary :all:")
    args = parser.parse_args(argv)
    log = args.log.read_text(errors="replace")
    python = "%d.%d" % sys.version_info[:2]
    for line in explain(log, python, args.wheels_only):
        print("freeze.sh: %s" % line, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
