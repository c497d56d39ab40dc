#!/usr/bin/env python3
"""Write the licence notices of everything a bundle ships into the bundle: THIRD-PARTY-NOTICES.txt.

The notices travel in the zip, beside ``bootstrap``. They cover:

* Python (the PSF licence, from the freezing Python's own LICENSE.txt);
* PyInstaller's bootloader (GPL-2.0-or-later with the bootloader exception, from its COPYING.txt);
* what CPython compiles into the bundled modules from other projects, whose licences its LICENSE.txt
  does not carry: expat (pyexpat), libmpdec (_decimal), HACL* (hashlib, 3.12+), mimalloc (3.13+);
  the texts are in packaging/licences/;
* every library of the build machine in the bundle (glibc, libxcrypt, libgcc_s, OpenSSL, libffi,
  zlib, SQLite, ...): the system package whose own checksums (dpkg's md5sums, rpm's digests) hold the
  file's bytes, as the inventory found it (never by file name), that package's version, its source
  package and version (where the LGPL's "corresponding source" is), and its licence text. Debian:
  dpkg-query and /usr/share/doc/PACKAGE/copyright; Amazon Linux: rpm and the package's licence files;
* every installed distribution in the bundle (the function's requirements, and urllib3 when it
  comes from the build environment), from its metadata and licence files.

An ELF file of no known origin gets a warning on stderr and a line in the notices saying so.

The function's own files (origin ``function``, at the top of the bundle) are not third-party: no section,
no warning. A file dedup_bundle.py made a link is a link in the inventory, named once.

Run it with the Python that froze the bundle, after the inventory (scripts/inventory.py) and dedup_bundle.py;
``--deps`` is the site-packages of the venv freeze.sh installed the requirements into:

    python scripts/notices.py --bundle OUT/bundle --deps ENV/lib/python3.X/site-packages \\
        --inventory OUT/inventory.json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inventory as inv

NOTICES = "THIRD-PARTY-NOTICES.txt"
CONTENTS = "_internal/"
RULE = "=" * 78
LICENCE_FILE_STEMS = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS")


LICENCES = Path(__file__).resolve().parent.parent / "packaging" / "licences"


class SystemPackage(NamedTuple):
    name: str
    version: str
    source: str  # source package and version
    licence: str  # the licence text, or a line saying where it is not


def package_debian(package: str) -> Optional[SystemPackage]:
    """A Debian package's version, source and copyright file."""
    found = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${source:Package}\t${source:Version}", package],
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        return None
    fields = found.stdout.split("\t")
    copyright_file = Path("/usr/share/doc") / fields[0] / "copyright"
    text = copyright_file.read_text(errors="replace") if copyright_file.is_file() else ""
    return SystemPackage(
        fields[0],
        fields[1],
        "Debian source package %s, version %s (apt-get source %s=%s)"
        % (fields[2], fields[3], fields[2], fields[3]),
        text or "(no %s on the build machine)" % copyright_file,
    )


def package_rpm(package: str) -> Optional[SystemPackage]:
    """An RPM package's (Amazon Linux) version, source RPM and licence files."""
    found = subprocess.run(
        ["rpm", "-q", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{SOURCERPM}\t%{LICENSE}", package],
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


def system_package(name: str) -> SystemPackage:
    found = None
    if shutil.which("dpkg-query"):
        found = package_debian(name)
    elif shutil.which("rpm"):
        found = package_rpm(name)
    return found or SystemPackage(name, "", "(the package manager does not know it)", "(no licence found)")


def in_contents(path: str) -> str:
    """A bundle path as the notices name it: relative to _internal/, where the libraries are."""
    return path[len(CONTENTS) :] if path.startswith(CONTENTS) else path


def files_by_origin(inventory: inv.Inventory, kind: str) -> Dict[str, List[str]]:
    """Package -> the bundle's files whose bytes that package of the given kind installed."""
    found: Dict[str, List[str]] = {}
    for entry in inventory.regular():
        origin = entry.get("origin") or {}
        if origin.get("kind") == kind:
            found.setdefault(origin["package"], []).append(in_contents(entry["path"]))
    return found


def unknown_elf(inventory: inv.Inventory) -> List[str]:
    return [in_contents(e["path"]) for e in inventory.elf() if not e.get("origin")]


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


# What CPython compiles into its own modules from other projects: (licence file, what, the bundled
# modules that hold it, the build option that uses the system's copy instead, the first Python with it).
INCORPORATED = [
    ("expat.txt", "expat (XML parser)", ("pyexpat",), "--with-system-expat", (3, 0)),
    ("libmpdec.txt", "libmpdec (decimal arithmetic)", ("_decimal",), "--with-system-libmpdec", (3, 3)),
    (
        "hacl-star.txt",
        "HACL* (hash functions)",
        ("_md5", "_sha1", "_sha2", "_sha3"),
        "",
        (3, 12),
    ),
    ("mimalloc.txt", "mimalloc (memory allocator)", ("libpython",), "", (3, 13)),
]


def incorporated_sections(inventory: inv.Inventory) -> List[str]:
    """The licences of the code CPython compiled into the bundled modules and libpython."""
    modules = {Path(e["path"]).name.split(".")[0] for e in inventory.elf()}
    modules |= {"libpython" for m in list(modules) if m.startswith("libpython")}
    config_args = sysconfig.get_config_var("CONFIG_ARGS") or ""
    lines: List[str] = []
    for filename, what, holders, system_option, since in INCORPORATED:
        held = sorted(modules & set(holders))
        if not held or sys.version_info[:2] < since or (system_option and system_option in config_args):
            continue
        lines += section(
            "%s, compiled into Python's %s" % (what, ", ".join(held)),
            [
                "source: the CPython %s release" % sys.version.split()[0],
                "",
                (LICENCES / filename).read_text().rstrip(),
            ],
        )
    return lines


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


def notices(bundle: Path, deps: Path, inventory: inv.Inventory) -> str:
    contents = bundle / "_internal"
    lines = [
        "Third-party software in this bundle, with its licences and where its source is.",
        "This file is written by the build (scripts/notices.py) from what it bundled.",
    ]
    lines += python_section()
    lines += incorporated_sections(inventory)
    lines += pyinstaller_section()
    for name, files in sorted(files_by_origin(inventory, "system").items()):
        package = system_package(name)
        lines += section(
            "%s %s (system library of the build machine)" % (package.name, package.version),
            ["files: " + ", ".join(files), "source: " + package.source, "", package.licence.rstrip()],
        )
    for dist_info in installed_distributions(contents, deps):
        lines += distribution_section(dist_info)
    unknown = unknown_elf(inventory)
    if unknown:
        lines += section(
            "Compiled files of no known origin",
            [
                "The build could not tell where these came from (no package's checksums hold their bytes);",
                "their licences are not listed above:",
                *("  " + path for path in unknown),
            ],
        )
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path, help="onedir bundle: bootstrap + _internal/")
    parser.add_argument(
        "--deps", required=True, type=Path, help="the site-packages pip installed the requirements into"
    )
    parser.add_argument("--inventory", required=True, type=Path, help="the bundle's inventory.json")
    args = parser.parse_args(argv)
    inventory = inv.Inventory.load(args.inventory)
    text = notices(args.bundle, args.deps, inventory)
    (args.bundle / NOTICES).write_text(text)
    inventory.refresh(args.bundle, NOTICES)
    inventory.save(args.inventory)
    for path in unknown_elf(inventory):
        print(
            "notices.py: warning: _internal/%s: no package's checksums hold its bytes; its licence is unknown"
            % path,
            file=sys.stderr,
        )
    print("notices.py: wrote %s (%d KiB)" % (NOTICES, len(text.encode()) // 1024), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
