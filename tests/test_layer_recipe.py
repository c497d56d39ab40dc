"""README's layer recipe, as written: a runtime-only layer, and a function shipped as source with a compiled
requirement (orjson), its requirements installed by ``./build.sh --deps-only`` for the layer's Python. The
function answers at /var/task with the layer at /opt, in the Lambda-like root.

Beside it, the failure the recipe guards against: the same function with its requirement installed for
another Python (cp311 wheels under a layer frozen with a newer one) fails at import.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import List

import pytest
from test_function_files import run_build

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
from function_handler import recorded_handler  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.build, pytest.mark.timeout(1500)]

APP = """\
import sys

import orjson


def handler(event, context):
    return {
        "orjson": orjson.dumps({"b": [1, 2]}).decode(),
        "from": orjson.__file__,
        "python": "%d.%d" % sys.version_info[:2],
    }
"""


def build(args: List[str], dist: Path, work: Path) -> subprocess.CompletedProcess:
    proc = run_build(args, dist, work)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc


def invoke(layer: Path, task: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "lambda_root.py"),
            "invoke",
            "--opt",
            str(layer),
            "--task",
            str(task),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """./build.sh --runtime-only, then ./build.sh --deps-only my-fn, into one dist/ as README says."""
    root = tmp_path_factory.mktemp("recipe")
    fn = root / "my-fn"
    fn.mkdir()
    (fn / "app.py").write_text(APP)
    (fn / "requirements.txt").write_text("orjson==3.13.0\n")
    dist, work = root / "dist", root / "build"
    layer_build = build(["--runtime-only"], dist, work)
    deps_build = build(["--deps-only", str(fn)], dist, work)
    return {"fn": fn, "layer": dist / "bootstrap.zip", "function": dist / "function.zip", "root": root,
            "layer_log": layer_build.stdout, "deps_log": deps_build.stdout}  # fmt: skip


def test_the_source_function_answers_on_the_layer(recipe):
    run = invoke(recipe["layer"], recipe["function"])
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    body = json.loads(run.stdout.split("--- response: HTTP 200 ---\n", 1)[1].split("\ninit duration:", 1)[0])
    assert body["orjson"] == '{"b":[1,2]}'
    assert body["from"] == "/var/task/orjson/__init__.py"
    # The summary of the layer's build names its Python, and --deps-only used the same one.
    said = re.search(r"^  Python:    (3\.\d+)\.\d+", recipe["layer_log"], re.M)
    assert said and body["python"] == said.group(1), recipe["layer_log"][-2000:]
    assert "with bytecode for Python %s." % said.group(1) in recipe["deps_log"]
    assert (
        "a function on this layer needs wheels and bytecode for this Python: ./build.sh --deps-only"
        in (recipe["layer_log"])
    )


def pyc_of(source: str, tag: str) -> str:
    folder, _, name = source.rpartition("/")
    return (folder + "/" if folder else "") + "__pycache__/%s.%s.pyc" % (name[:-3], tag)


def test_deps_only_ships_bytecode_for_the_layers_python(recipe):
    with zipfile.ZipFile(recipe["layer"]) as zf:
        (libpython,) = [n for n in zf.namelist() if re.fullmatch(r"_internal/libpython3\.\d+\.so\.1\.0", n)]
    tag = "cpython-3%s" % libpython.split("python3.")[1].split(".")[0]
    with zipfile.ZipFile(recipe["function"]) as zf:
        names = set(zf.namelist())
        sources = sorted(n for n in names if n.endswith(".py"))
        assert "app.py" in sources and "orjson/__init__.py" in sources
        missing = [n for n in sources if pyc_of(n, tag) not in names]
        assert missing == [], missing
        pyc = zf.read("orjson/__pycache__/__init__.%s.pyc" % tag)
    assert int.from_bytes(pyc[4:8], "little") == 0b11  # hash-based: the zip's fixed timestamps do not matter
    assert [n for n in names if re.match(r"orjson/orjson\.cpython-3\d+-x86_64-linux-gnu\.so$", n)], names
    assert "requirements.txt" not in names and "bootstrap" not in names
    # The handler the build found, for ./smoke.sh --task function.zip --opt LAYER.zip (Lambda ignores it).
    assert recorded_handler(recipe["function"]) == "app.handler"
    assert "it records its handler, app.handler, in its comment" in recipe["deps_log"]


def test_requirements_for_another_python_fail_on_the_layer(recipe):
    """The recipe's old wording: cp311 wheels for a layer frozen with another Python."""
    with zipfile.ZipFile(recipe["layer"]) as zf:
        layer_python = next(n for n in zf.namelist() if n.startswith("_internal/libpython3."))
    other = "3.12" if "libpython3.11." in layer_python else "3.11"
    task = recipe["root"] / "old-recipe"
    task.mkdir()
    (task / "app.py").write_text(APP)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(task), "--platform",
         "manylinux2014_x86_64", "--only-binary=:all:", "--python-version", other, "--implementation", "cp",
         "orjson==3.13.0"],
        check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
    )  # fmt: skip
    run = invoke(recipe["layer"], task)
    assert run.returncode != 0
    assert "No module named 'orjson.orjson'" in run.stdout + run.stderr
