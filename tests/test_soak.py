"""A short soak (bench/soak.py): 3,000 invocations in one runtime process, then memory, fds, threads and
the ledger compared between checkpoints. The full run (100,000) is `python bench/soak.py`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SOAK = REPO_ROOT / "bench" / "soak.py"


def run_soak(tmp_path, *extra):
    out = tmp_path / "soak.json"
    argv = [sys.executable, str(SOAK), "-n", "3000", "--checkpoints", "1000", "--reference", "1000"]
    argv += ["--json", str(out), "--timeout", "120", "--workdir", str(tmp_path / "work"), *extra]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    return proc, (json.loads(out.read_text()) if out.exists() else None)


def check(proc, results):
    assert results is not None, proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results["failures"] == []
    first, last = results["checkpoints"][0], results["checkpoints"][-1]
    assert [c["invocations"] for c in results["checkpoints"]] == [1000, 3000]
    assert abs(last["rss_kb"] - first["rss_kb"]) < 0.05 * first["rss_kb"]
    assert last["fds"] == first["fds"]
    assert last["threads"] == first["threads"] == 1
    assert results["events_per_s"] > 200


def test_soak_short(tmp_path):
    check(*run_soak(tmp_path))


@pytest.mark.build
@pytest.mark.slow
def test_soak_short_frozen(tmp_path):
    from frozen import frozen_binary

    check(*run_soak(tmp_path, "--binary", str(frozen_binary())))


def test_soak_detects_a_dead_runtime(tmp_path):
    """The soak's own check can fail: a runtime that is not there gives exit 1 and a message."""
    proc, results = run_soak(tmp_path, "--binary", "/bin/true", "--timeout", "5")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and "the runtime exited" in proc.stdout
    assert results["failures"]


def test_soak_help():
    proc = subprocess.run([sys.executable, str(SOAK), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "--invocations" in proc.stdout and "--binary" in proc.stdout
