"""Helpers for the tests that drive bootstrap.py (the script, or the frozen binary) against the emulator
(scripts/runtime_emulator.py) with hostile handlers and injected faults."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, Optional

import frozen

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
BOOTSTRAP = REPO_ROOT / "bootstrap.py"
HOSTILE_DIR = TESTS_DIR / "hostile_handlers"


def call(fn, event=None):
    """The event for a `dispatch` handler: run `fn` with `event`."""
    return {"fn": fn, "event": event or {}}


def assert_ledger(api, rt, exited=False):
    problems = api.check_ledger(exited=exited)
    assert problems == [], "%s\n%s\n%s" % (problems, api.describe(), rt.diag())


def serve_ok(api, rt, payload="after"):
    """One more event must be answered normally: the runtime lives on."""
    key = api.push_event(call("echo", {"v": payload}))
    answer = api.wait_answer(key, 15, alive=rt.alive)
    assert (answer.kind, answer.status, json.loads(answer.body)) == ("response", 202, {"v": payload}), (
        rt.diag()
    )
    return key


class Launcher:
    """Starts runtimes (``flavor`` "script": bootstrap.py on this Python; "binary": the frozen one), each
    in its own session, and kills their process groups at close()."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.procs: list = []

    def __call__(
        self,
        handler: str,
        api_address: str,
        flavor: str = "script",
        env: Optional[Dict[str, Optional[str]]] = None,
        task_root: Path = HOSTILE_DIR,
        stdout_path: Optional[Path] = None,
    ):
        from conftest import runtime_environment, spawn_runtime

        argv = [sys.executable, str(BOOTSTRAP)] if flavor == "script" else [str(frozen.frozen_binary())]
        settings = {
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "LAMBDA_TASK_ROOT": str(task_root),
            "_HANDLER": handler,
        }
        n = len(self.procs)
        out = stdout_path or self.tmp_path / ("rt-%d.stdout" % n)
        err = self.tmp_path / ("rt-%d.stderr" % n)
        cwd = self.tmp_path / ("cwd-%d" % n)
        cwd.mkdir(exist_ok=True)
        rp = spawn_runtime(flavor, argv, runtime_environment(settings, env), cwd, out, err)
        self.procs.append(rp)
        return rp

    def close(self) -> None:
        for p in self.procs:
            p.kill()
