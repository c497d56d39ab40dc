#!/usr/bin/env python3
"""Write the licence notices of everything a bundle ships into the bundle: THIRD-PARTY-NOTICES.txt.

The notices travel in the zip, beside ``bootstrap``. They cover:

* Python (the PSF licence, from the freezing Python's own LICENSE.txt);
* PyInstaller's bootloader (GPL-2.0-or-later with the bootloader exception, from its COPYING.txt);
* every library of the build machine in the bundle (glibc, libxcrypt, libgcc_s, OpenSSL, libffi,
  zlib, SQLite, ...): the system package that owns it, its version, its source package and version
  (where the LGPL's "corresponding source" is), and the package's licence text. Debian: dpkg-query
  and /usr/share/doc/PACKAGE/copyright; Amazon Linux: rpm and the package's licence files;
* every installed distribution in the bundle (the function's requirements, and urllib3 when it
  comes from the build environment), from its metadata and licence files.

Run it with the Python that froze the bundle, after the C library is bundled and before zipping:

    python scripts/notices.py --bundle OUT/bundle --deps OUT/.work/deps
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
from email.message import Message
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional

import strip_bundle

NOTICES = "THIRD-PARTY-NOTICES.txt"
RULE = "=" * 78
LICENCE_FILE_STEMS = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")


class SystemPackage(NamedTuple):
    name: str
    version: str
    source: str  # source package and version
    licence: str  # the licence text, or a line saying where it is not


def owner_debian(path: Path) -> Optional[SystemPackage]:
    """The Debian package that installed a file of this name (dpkg's paths predate the merged /usr)."""
    found = subprocess.run(["dpkg-query", "-S", "*/" + path.name], capture_output=True, text=True)
    if found.returncode != 0:
        return None
    package = found.stdout.split(":", 1)[0].strip()
    fields = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${source:Package}\t${source:Version}", package],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\t")
    copyright_file = Path("/usr/share/doc") / fields[0] / "copyright"
    text = copyright_file.read_text(errors="replace") if copyright_file.is_file() else ""
    return SystemPackage(
        fields[0],
        fields[1],
        "Debian source package %s, version %s (apt-get source %s=%s)"
        % (fields[2], fields[3], fields[2], fields[3]),
        text or "(no %s on the build machine)" % copyright_file,
    )


def owner_rpm(path: Path) -> Optional[SystemPackage]:
    """The RPM package (Amazon Linux) that owns a file."""
    found = subprocess.run(
        ["rpm", "-q", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{SOURCERPM}\t%{LICENSE}", "-f", str(path)],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        return None
    name, version, source_rpm, licence = found.stdout.split("\t")
    files = subprocess.run(["rpm", "-qL", name], capture_output=True, text=True).stdout.split()
    texts = [Path(f).read_text(errors="replace") for f in files if Path(f).is_file()]
    return SystemPackage(
        name,
        version,
        "source RPM %s (dnf download --source %s)" % (source_rpm, name),
        "\n".join(texts) or "licence: %s (the build machine has no licence files installed for it)" % licence,
    )


def system_owner(path: Path) -> Optional[SystemPackage]:
    if shutil.which("dpkg-query"):
        return owner_debian(path)
    if shutil.which("rpm"):
        return owner_rpm(path)
    return None


def system_libraries(contents: Path) -> Dict[Optional[SystemPackage], List[str]]:
    """Package -> the bundle's files that are libraries of that package of the build machine. Files of
    the Python installation's own lib folder and unknown owners are under None."""
    origins = strip_bundle.known_origins([], (Path(p) for p in strip_bundle.SYSTEM_LIBRARY_DIRS))
    python_lib = Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent")
    owners: Dict[Optional[SystemPackage], List[str]] = {}
    for path in sorted(contents.iterdir()):
        if path.is_symlink() or not path.is_file() or not strip_bundle.is_elf(path):
            continue
        if path.name.startswith("libpython"):
            continue
        candidates = origins.get(path.name) or []
        if candidates:
            owners.setdefault(system_owner(candidates[0]), []).append(path.name)
        elif (python_lib / path.name).is_file():
            owners.setdefault(None, []).append(path.name)
    return owners


def distribution_licence(metadata: Message, files: List[Path]) -> List[str]:
    licence = metadata.get("License-Expression") or (metadata.get("License") or "").strip()
    classifiers = [
        c.split(" :: ")[-1] for c in metadata.get_all("Classifier") or [] if c.startswith("License ::")
    ]
    lines = ["licence: %s" % (licence.splitlines()[0] if licence else ", ".join(classifiers) or "not stated")]
    for path in files:
        lines += ["", "--- %s ---" % path.name, path.read_text(errors="replace").rstrip()]
    return lines


def licence_files(dist_info: Path) -> List[Path]:
    found = [
        p
        for p in sorted(dist_info.rglob("*"))
        if p.is_file() and p.name.upper().startswith(LICENCE_FILE_STEMS)
    ]
    return found


def section(title: str, lines: List[str]) -> List[str]:
    return ["", RULE, title, RULE, *lines]


def python_section() -> List[str]:
    licence = Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt"
    text = (
        licence.read_text(errors="replace")
        if licence.is_file()
        else "(no LICENSE.txt in %s)" % licence.parent
    )
    return section(
        "Python %s (libpython, the standard library): PSF License Version 2" % sys.version.split()[0],
        ["source: the CPython %s release" % sys.version.split()[0], "", text.rstrip()],
    )


def pyinstaller_section() -> List[str]:
    dist = importlib.metadata.distribution("pyinstaller")
    copying = next((Path(dist.locate_file(f)) for f in dist.files or [] if f.name == "COPYING.txt"), None)
    text = copying.read_text(errors="replace") if copying and copying.is_file() else "(COPYING.txt not found)"
    return section(
        "PyInstaller %s bootloader (the bootstrap executable): GPL-2.0-or-later with the bootloader "
        "exception, which allows distributing it with any program" % dist.version,
        ["source: PyInstaller %s, bootloader/" % dist.version, "", text.rstrip()],
    )


def installed_distributions(contents: Path, deps: Path) -> List[Path]:
    """dist-info folders of the distributions in the bundle: the requirements, and urllib3 from the
    build environment when the function does not bring its own."""
    found = sorted(deps.glob("*.dist-info")) if deps.is_dir() else []
    names = {p.name.split("-")[0].lower() for p in found}
    if "urllib3" not in names and (contents / "urllib3").is_dir():
        dist = importlib.metadata.distribution("urllib3")
        found.append(Path(dist.locate_file("")) / ("urllib3-%s.dist-info" % dist.version))
    return found


def distribution_section(dist_info: Path) -> List[str]:
    metadata = importlib.metadata.PathDistribution(dist_info).metadata
    return section(
        "%s %s (Python package)" % (metadata["Name"], metadata["Version"]),
        distribution_licence(metadata, licence_files(dist_info)),
    )


def notices(bundle: Path, deps: Path) -> str:
    contents = bundle / "_internal"
    lines = [
        "Third-party software in this bundle, with its licences and where its source is.",
        "This file is written by the build (scripts/notices.py) from what it bundled.",
    ]
    lines += python_section()
    lines += pyinstaller_section()
    owners = system_libraries(contents)
    for package, files in sorted(owners.items(), key=lambda kv: kv[0].name if kv[0] else "~"):
        if package is None:
            lines += section(
                "Libraries of the Python installation (%s)" % sysconfig.get_config_var("LIBDIR"),
                ["files: " + ", ".join(files), "licence: see the Python section; these came with its build"],
            )
            continue
        lines += section(
            "%s %s (system library of the build machine)" % (package.name, package.version),
            ["files: " + ", ".join(files), "source: " + package.source, "", package.licence.rstrip()],
        )
    for dist_info in installed_distributions(contents, deps):
        lines += distribution_section(dist_info)
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument("--deps", required=True, type=Path, help="where pip installed the requirements")
    args = parser.parse_args(argv)
    text = notices(args.bundle, args.deps)
    (args.bundle / NOTICES).write_text(text)
    print("notices.py: wrote %s (%d KiB)" % (NOTICES, len(text.encode()) // 1024), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
