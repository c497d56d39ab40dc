"""Where a function's files go, each file shipped once, and which requirements pip may build.

* The function's own files are at /var/task with the folders and names they had (scripts/function_files.py):
  a handler opens a data file relative to the working directory, through a variable naming /var/task, from
  LAMBDA_TASK_ROOT, and beside its module's ``__file__``, in the Lambda-like root.
* No two files of a bundle hold the same bytes (scripts/dedup_bundle.py, from the build's inventory; a venv for
  the requirements so that PyInstaller keeps a wheel's libraries beside its package), and the inventory the
  later stages read is the bundle as shipped: links as links, the function's files of origin "function".
* Requirements install from wheels only, unless ``--allow-sdist``.

One build (``--allow-sdist``, a requirement published only as a source distribution) serves the tests that
need a zip; the refusal without the flag stops at pip, before anything is frozen.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import dedup_bundle  # noqa: E402
import function_files  # noqa: E402
import inventory as inv  # noqa: E402

SDIST_NAME = "lambda-bootstrap-sdist-only-x7q"

HANDLER = '''\
import importlib.util
import json
import os
from pathlib import Path

import sdist_only_x7q

import pkg


def pyc_matches(module_file, cached):
    """Whether the bytecode beside a source is this Python's and hash-checked against that source."""
    pyc = Path(cached).read_bytes()
    source = Path(module_file).read_bytes()
    flags = int.from_bytes(pyc[4:8], "little")
    return pyc[:4] == importlib.util.MAGIC_NUMBER and flags == 0b11 and pyc[8:16] == importlib.util.source_hash(source)


def handler(event, context):
    with open("ca.pem") as f:
        relative = f.read()
    with open(os.environ["REQUESTS_CA_BUNDLE"]) as f:
        from_variable = f.read()
    with open(os.environ["LAMBDA_TASK_ROOT"] + "/templates/hello.txt") as f:
        from_task_root = f.read()
    beside = json.loads((Path(__file__).parent / "data" / "prices.json").read_text())
    return {
        "relative": relative,
        "variable": from_variable,
        "task_root": from_task_root,
        "beside_file": beside,
        "package_resource": pkg.resource(),
        "files": [__file__, pkg.__file__, __cached__],
        "cwd": os.getcwd(),
        "pyc_matches": pyc_matches(__file__, __cached__),
        "sdist": sdist_only_x7q.VALUE,
    }
'''


def write_function(fn: Path, sdists: Path) -> None:
    (fn / "app.py").write_text(HANDLER)
    (fn / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nnot a real one\n")
    (fn / "templates").mkdir()
    (fn / "templates" / "hello.txt").write_text("hello {name}\n")
    (fn / "data").mkdir()
    (fn / "data" / "prices.json").write_text('{"tea": 3}')
    (fn / "pkg" / "res").mkdir(parents=True)
    (fn / "pkg" / "__init__.py").write_text(
        "from pathlib import Path\n\n\ndef resource():\n"
        '    return (Path(__file__).parent / "res" / "x.txt").read_text()\n'
    )
    (fn / "pkg" / "res" / "x.txt").write_text("package data")
    (fn / "requirements.txt").write_text("--find-links %s\n%s==1.0\n" % (sdists, SDIST_NAME))


def write_sdist(folder: Path) -> None:
    """A pure-Python project published only as a source distribution (no wheel anywhere)."""
    base = "%s-1.0" % SDIST_NAME.replace("-", "_")
    files = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "%s"\nversion = "1.0"\n\n[tool.setuptools]\npy-modules = ["sdist_only_x7q"]\n'
        % SDIST_NAME,
        "PKG-INFO": "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % SDIST_NAME,
        "sdist_only_x7q.py": 'VALUE = "built from source"\n',
    }
    folder.mkdir(parents=True)
    with tarfile.open(folder / (base + ".tar.gz"), "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("%s/%s" % (base, name))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def run_build(args: List[str], dist: Path, work: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(REPO / "build.sh"), "--native", "--dist", str(dist), "--work", str(work), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def function(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fn-files")
    write_sdist(root / "sdists")
    fn = root / "fn"
    fn.mkdir()
    write_function(fn, root / "sdists")
    return fn


@pytest.fixture(scope="module")
def built(function, tmp_path_factory) -> Path:
    """The function built with --allow-sdist: its zip."""
    out = tmp_path_factory.mktemp("fn-files-build")
    proc = run_build(["--allow-sdist", str(function)], out / "dist", out / "work")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "--allow-sdist: a requirement without a wheel" in proc.stdout
    return out / "dist" / "bootstrap.zip"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(1200)
def test_the_function_reads_its_files_at_var_task(built):
    invoke = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "lambda_root.py"), "invoke", "--task", str(built),
         "--env", "REQUESTS_CA_BUNDLE=/var/task/ca.pem"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert invoke.returncode == 0, invoke.stdout[-4000:] + invoke.stderr[-2000:]
    body = json.loads(
        invoke.stdout.split("--- response: HTTP 200 ---\n", 1)[1].split("\ninit duration:", 1)[0]
    )
    pem = "-----BEGIN CERTIFICATE-----\nnot a real one\n"
    assert body["relative"] == pem and body["variable"] == pem
    assert body["task_root"] == "hello {name}\n"
    assert body["beside_file"] == {"tea": 3}
    assert body["package_resource"] == "package data"
    python_tag = body["files"][2].rsplit(".", 2)[1]
    assert body["files"] == [
        "/var/task/app.py",
        "/var/task/pkg/__init__.py",
        "/var/task/__pycache__/app.%s.pyc" % python_tag,
    ]
    assert body["cwd"] == "/var/task"
    assert body["pyc_matches"] is True, "the bytecode shipped beside app.py is this Python's and valid"
    assert body["sdist"] == "built from source"


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(1200)
def test_the_zip_holds_the_functions_files_once_with_their_names(built):
    with zipfile.ZipFile(built) as zf:
        names = set(zf.namelist())
    for name in (
        "app.py",
        "ca.pem",
        "templates/hello.txt",
        "data/prices.json",
        "pkg/__init__.py",
        "pkg/res/x.txt",
    ):
        assert name in names, name
        assert "_internal/" + name not in names, name
    assert not [n for n in names if n.startswith("_internal/") and n.split("/")[-1] in ("app.pyc", "ca.pem")]
    assert [n for n in names if n.startswith("__pycache__/app.cpython-3")], names
    assert "requirements.txt" not in names  # describes the build, not the function
    # The requirement went into _internal/, frozen, like every other.
    assert [n for n in names if n.startswith("_internal/sdist_only_x7q.")], names


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(1200)
def test_no_two_files_of_the_bundle_are_identical(built):
    bundle = built.parent.parent / "work" / "native-x86_64" / "bundle"
    assert (bundle / "bootstrap").is_file()
    assert dedup_bundle.identical_files(inv.make(bundle)) == []


def facts(inventory: inv.Inventory) -> dict:
    return {e["path"]: e.get("link") or (e["size"], e["sha256"]) for e in inventory.files}


@pytest.mark.slow
@pytest.mark.build
@pytest.mark.timeout(1200)
def test_the_inventory_is_the_bundle_as_shipped(built, function):
    out = built.parent.parent / "work" / "native-x86_64"
    recorded = inv.Inventory.load(out / "inventory.json")
    # What strip, host_paths and dedup changed is recorded: a fresh look at the bundle finds the same.
    assert facts(recorded) == facts(inv.make(out / "bundle"))
    origins = {e["path"]: e.get("origin") or {} for e in recorded.files}
    (app_pyc,) = (out / "bundle" / "__pycache__").glob("app.*.pyc")
    tag = app_pyc.name.split(".")[1]  # the frozen Python's, not this one's
    for path, source in [
        ("app.py", "app.py"),
        ("ca.pem", "ca.pem"),
        ("templates/hello.txt", "templates/hello.txt"),
        ("pkg/res/x.txt", "pkg/res/x.txt"),
        ("__pycache__/app.%s.pyc" % tag, "app.py"),  # by the source hash its header holds
        ("pkg/__pycache__/__init__.%s.pyc" % tag, "pkg/__init__.py"),
    ]:
        assert (origins[path].get("kind"), origins[path].get("file")) == ("function", source), path
    assert not [p for p, o in origins.items() if p.startswith("_internal/") and o.get("kind") == "function"]
    summary = (out / "build-summary.txt").read_text()
    own = len([p for p, o in origins.items() if o.get("kind") == "function"])
    assert "  function:  %d files, " % own in summary and " at /var/task as in its folder" in summary
    notices = (out / "bundle" / "THIRD-PARTY-NOTICES.txt").read_text()
    assert "ca.pem" not in notices and "app.py" not in notices  # the function's own: not third-party


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_requirement_without_a_wheel_is_refused_by_default(function, tmp_path):
    proc = run_build([str(function)], tmp_path / "dist", tmp_path / "work")
    assert proc.returncode != 0
    assert "No matching distribution found for %s==1.0" % SDIST_NAME in proc.stdout  # pip's
    assert "only wheels are installed, so a release published only as a source distribution" in proc.stdout
    assert "--allow-sdist" in proc.stdout
    assert not (tmp_path / "dist" / "bootstrap.zip").exists()
    assert "freezing with PyInstaller" not in proc.stdout


# --- the two steps on their own (no build) -------------------------------------------------------------


def test_function_files_go_to_the_top_as_they_were(tmp_path):
    fn = tmp_path / "fn"
    (fn / "templates" / "sub").mkdir(parents=True)
    (fn / "__pycache__").mkdir()
    (fn / "app.py").write_text("X = 1\n")
    (fn / "templates" / "sub" / "template.yaml").write_text("kept: a template the function reads\n")
    (fn / "template.yaml").write_text("Resources: {}\n")  # SAM's, at the top: describes the build
    (fn / "requirements.txt").write_text("six\n")
    (fn / ".env").write_text("SECRET=1\n")
    (fn / "__pycache__" / "app.cpython-39.pyc").write_bytes(b"old")
    (fn / "run.sh").write_text("#!/bin/sh\n")
    (fn / "run.sh").chmod(0o755)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    assert function_files.install(fn, bundle, "/var/task") == []
    shipped = sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file())
    tag = sys.implementation.cache_tag
    assert shipped == ["__pycache__/app.%s.pyc" % tag, "app.py", "run.sh", "templates/sub/template.yaml"]
    assert os.access(bundle / "run.sh", os.X_OK)
    pyc = (bundle / "__pycache__" / ("app.%s.pyc" % tag)).read_bytes()
    assert int.from_bytes(pyc[4:8], "little") == 0b11  # hash-based, checked against the source


def test_function_files_refuse_the_bundles_own_names(tmp_path):
    fn = tmp_path / "fn"
    (fn / "_internal").mkdir(parents=True)
    (fn / "_internal" / "x.txt").write_text("x")
    (fn / "bootstrap").write_text("#!/bin/sh\n")
    (fn / "app.py").write_text("")
    with pytest.raises(ValueError, match=r"holds _internal, bootstrap, a name the bundle itself uses"):
        function_files.function_files(fn)


def test_a_source_that_does_not_compile_ships_with_a_warning(tmp_path):
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (fn / "py2_tool.py").write_text("print 'hello'\n")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (warning,) = function_files.install(fn, bundle, "/var/task")
    assert warning.startswith(
        "warning: py2_tool.py does not compile with Python %d.%d" % sys.version_info[:2]
    )
    assert (bundle / "py2_tool.py").is_file() and (bundle / "app.py").is_file()


@pytest.mark.build  # the inventory reads PyInstaller's own metadata: the build's venv only
def test_identical_files_become_links_to_one_copy(tmp_path, monkeypatch):
    bundle = tmp_path / "bundle"
    (bundle / "_internal" / "pyarrow").mkdir(parents=True)
    library = os.urandom(4096)
    for name in ("libarrow_python.so", "libarrow_python.so.2600", "libarrow_python.so.2600.1.0"):
        (bundle / "_internal" / "pyarrow" / name).write_bytes(library)
    (bundle / "_internal" / "other.so").write_bytes(library[:-1] + b"x")  # same size, other bytes
    (bundle / "_internal" / "a.typed").write_bytes(b"")
    (bundle / "_internal" / "b.typed").write_bytes(b"")
    (bundle / "_internal" / "tool").write_bytes(library)
    (bundle / "_internal" / "tool").chmod(0o755)  # the same bytes, but a link would lose its x bit
    inventory = inv.make(bundle)
    (group,) = dedup_bundle.identical_files(inventory)
    assert group == [
        "_internal/pyarrow/libarrow_python.so",
        "_internal/pyarrow/libarrow_python.so.2600",
        "_internal/pyarrow/libarrow_python.so.2600.1.0",
    ]

    def read_again(path):
        raise AssertionError("dedup_bundle read %s again: the inventory has its checksum" % path)

    with monkeypatch.context() as patch:
        patch.setattr(Path, "read_bytes", read_again)
        assert dedup_bundle.link_duplicates(bundle, inventory) == (2, 2 * 4096)
    pyarrow = bundle / "_internal" / "pyarrow"
    assert not (pyarrow / "libarrow_python.so").is_symlink()
    for name in ("libarrow_python.so.2600", "libarrow_python.so.2600.1.0"):
        assert os.readlink(pyarrow / name) == "libarrow_python.so"
        assert (pyarrow / name).read_bytes() == library
        # The inventory says so: the notices, the glibc report and the summary see a link, not a copy.
        assert inventory.by_path("_internal/pyarrow/" + name) == {
            "path": "_internal/pyarrow/" + name,
            "link": "libarrow_python.so",
        }
    assert facts(inventory) == facts(inv.make(bundle))
    assert dedup_bundle.identical_files(inventory) == []
    assert not (bundle / "_internal" / "b.typed").is_symlink()  # empty: nothing to share
    assert not (bundle / "_internal" / "tool").is_symlink()


@pytest.mark.build  # the inventory reads PyInstaller's own metadata: the build's venv only
def test_the_inventory_finds_the_functions_files_at_the_top_only(tmp_path):
    fn = tmp_path / "fn"
    (fn / "pkg").mkdir(parents=True)
    (fn / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (fn / "pkg" / "__init__.py").write_bytes(b"")
    (fn / "rates.csv").write_text("a,1\n")
    bundle = tmp_path / "bundle"
    (bundle / "_internal" / "somepkg").mkdir(parents=True)
    (bundle / "_internal" / "wheel.libs").mkdir()
    function_files.install(fn, bundle, "/var/task")
    (bundle / "_internal" / "somepkg" / "py.typed").write_bytes(b"")  # a wheel's: as empty as pkg/__init__.py
    (bundle / "_internal" / "somepkg" / "rates.csv").write_text("a,1\n")
    (bundle / "_internal" / "libs").symlink_to("wheel.libs")  # a link to a folder
    found = {e["path"]: e for e in inv.make(bundle, function=fn).files}
    tag = sys.implementation.cache_tag
    for path, source in [
        ("app.py", "app.py"),
        ("rates.csv", "rates.csv"),
        ("pkg/__init__.py", "pkg/__init__.py"),
        ("__pycache__/app.%s.pyc" % tag, "app.py"),
    ]:
        assert found[path]["origin"]["kind"] == "function", path
        assert found[path]["origin"]["file"] == source, path
    for path in ("_internal/somepkg/py.typed", "_internal/somepkg/rates.csv"):
        assert (found[path].get("origin") or {}).get("kind") != "function", path
    assert found["_internal/libs"] == {"path": "_internal/libs", "link": "wheel.libs"}
