"""The frozen start: PyInstaller's runtime hooks run at their module's first import
(packaging/hooks/pyi_rth_deferred.py), and multiprocessing's children of a frozen function are no runtime."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import bootstrap

HOOK = Path(__file__).resolve().parent.parent / "packaging" / "hooks" / "pyi_rth_deferred.py"
HANDLERS = Path(__file__).resolve().parent / "frozen_start_handlers"

DEFERRED_PROBE = """
import sys
sys._MEIPASS = sys.argv[1]
exec(compile(open(sys.argv[2]).read(), sys.argv[2], "exec"), {"__name__": "__main__"})
before = "pkgutil" in sys.modules
import pkgutil
print({"before": before, "patched": getattr(pkgutil, "PATCHED", 0), "loader": type(pkgutil.__loader__).__name__,
       "spec_loader": type(pkgutil.__spec__.loader).__name__, "walk": callable(pkgutil.walk_packages)})
import importlib; importlib.reload(pkgutil)
print(getattr(pkgutil, "PATCHED", 0))
"""


def test_a_deferred_hook_runs_once_at_its_modules_first_import(tmp_path):
    folder = tmp_path / "deferred_rthooks"
    folder.mkdir()
    # Stands in for PyInstaller's hook: it counts its runs on the module it patches.
    (folder / "pyi_rth_pkgutil.py").write_text(
        "import pkgutil\npkgutil.PATCHED = getattr(pkgutil, 'PATCHED', 0) + 1\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", DEFERRED_PROBE, str(tmp_path), str(HOOK)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    first = eval(out[0])  # noqa: S307 (our own probe's dict)
    # Not imported at start; patched once, right at its import; the module keeps its own loader.
    assert first == {
        "before": False,
        "patched": 1,
        "loader": "SourceFileLoader",
        "spec_loader": "SourceFileLoader",
        "walk": True,
    }
    assert out[1] == "1"  # a reload is no first import: the hook does not run again (it would count 2)


def test_the_hook_names_only_pyinstallers_hooks_and_leaves_main_clean(tmp_path):
    names = {"__name__": "__main__"}
    exec(compile(HOOK.read_text(), str(HOOK), "exec"), names)  # noqa: S102 (as the bootloader runs it)
    # Runtime hooks share __main__ with the runtime's script: nothing of the hook is left there.
    assert [n for n in names if not n.startswith("__")] == []
    assert "pkgutil" not in names and "inspect" not in names


@pytest.mark.parametrize(
    ("argv", "child"),
    [
        (["bootstrap", "--multiprocessing-fork", "tracker_fd=5", "pipe_handle=7"], True),
        (["bootstrap", "-B", "-s", "-c", "from multiprocessing.resource_tracker import main;main(5)"], True),
        (["bootstrap", "-c", "from multiprocessing.forkserver import main; main(3, 4, [])"], True),
        (["bootstrap", "app.handler"], False),
        (["bootstrap", "--extension", "name", "ext.main"], False),
        (["bootstrap"], False),
    ],
)
def test_multiprocessing_children_are_told_from_handlers(argv, child):
    assert bootstrap.is_multiprocessing_child(argv) is child


@pytest.mark.build
@pytest.mark.slow
def test_frozen_function_imports_patched_modules_only_when_it_uses_them(api, launch):
    rt = launch("frozen_start.handler", api.address, "binary", task_root=HANDLERS)
    key = api.push_event({"methods": ["fork", "spawn", "forkserver"]})
    answer = api.wait_answer(key, 120, alive=rt.alive)
    assert answer.kind == "response", rt.diag()
    result = json.loads(answer.body)
    # Pools of every start method: their children start the frozen program again, which must serve them.
    assert result["pools"] == {"fork": [1, 4, 9], "spawn": [1, 4, 9], "forkserver": [1, 4, 9]}, rt.diag()
    # Nothing the runtime started with imported them...
    assert result["loaded_at_import"] == [], rt.diag()
    # ...and once the function imports them, PyInstaller's patches are in place and work.
    assert "def square(x):" in result["source"]
    assert result["getsourcefile"] == "_pyi_getsourcefile"
    assert result["stdlib_listed"] == ["asyncio", "email", "json"]
    assert "PyiFrozenFinder" in result["pkgutil_knows"]
    assert result["freeze_support"] == "_freeze_support"
    # The children took no event: the one event was answered by the runtime, once.
    assert api.check_ledger() == [], api.describe()


@pytest.mark.parametrize("own", [None, (5000, 20, 20)])
def test_init_raises_the_collectors_threshold_for_the_import_only(monkeypatch, own):
    import gc

    original = gc.get_threshold()
    seen = []

    def load_handler(name):
        seen.append(gc.get_threshold())
        if own:
            gc.set_threshold(*own)  # the function sets its own: the runtime leaves it
        return print

    frozen = []
    monkeypatch.setattr(bootstrap, "load_handler", load_handler)
    monkeypatch.setattr(
        gc, "freeze", lambda: frozen.append(True)
    )  # the test process's objects stay as they are
    config = bootstrap.RuntimeConfig({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}, ["x", "m.f"])
    gc.set_threshold(700, 9, 8)
    try:
        assert bootstrap.init(config, client=None) is print
        assert seen == [(bootstrap.IMPORT_GC_THRESHOLD, 9, 8)]
        assert gc.get_threshold() == (own or (700, 9, 8))
        assert frozen == [True]
    finally:
        gc.set_threshold(*original)
