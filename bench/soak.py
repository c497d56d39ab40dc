#!/usr/bin/env python3
"""Soak test: many invocations through the fault-injecting fake Runtime API in ONE runtime process.

At each checkpoint the feeding pauses until the runtime has answered every event and waits in /next;
then its resident memory (VmRSS), open file descriptors and threads are read from /proc. The run fails
(exit 1) when RSS at the last checkpoint differs from RSS at the reference checkpoint by --max-rss-growth
percent or more, when the fd or thread count changed between them, or when the ledger shows an event
not answered exactly once.

The mix per 100 invocations: 1 streamed response (a new connection each time), 10 handler errors,
2 that log (logger + context.log), the rest echo a ~150-byte event.

Examples:
  .venv/bin/python bench/soak.py                       # 100,000 invocations, checkpoints 1k 10k 100k
  .venv/bin/python bench/soak.py -n 3000 --checkpoints 1000,3000 --reference 1000
  .venv/bin/python bench/soak.py --binary dist/bootstrap/bootstrap --json soak.json
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT / "scripts")]  # tests/frozen.py imports lambda_root

from runtime_emulator import RuntimeEmulator  # noqa: E402

HANDLERS = REPO_ROOT / "tests" / "hostile_handlers"


def event_for(i: int) -> dict:
    if i % 100 == 99:
        return {"fn": "ret_generator"}
    if i % 10 == 5:
        return {"fn": "raise_message", "event": {"message": "soak error %d" % i}}
    if i % 50 == 17:
        return {"fn": "log_line", "event": {"text": "soak log %d" % i}}
    return {"fn": "echo", "event": {"i": i, "pad": "x" * 120}}


def proc_stats(pid: int) -> dict:
    status = Path("/proc/%d/status" % pid).read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir("/proc/%d/fd" % pid)),
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-n", "--invocations", type=int, default=100_000, help="total invocations (default 100000)"
    )
    parser.add_argument(
        "--checkpoints",
        default="1000,10000",
        help="comma-separated counts to measure at; the total is always one",
    )
    parser.add_argument(
        "--reference", type=int, default=10_000, help="checkpoint the last one is compared with"
    )
    parser.add_argument("--max-rss-growth", type=float, default=5.0, help="percent (default 5)")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter for bootstrap.py (default: this one)"
    )
    parser.add_argument("--binary", help="run this frozen bootstrap instead of bootstrap.py")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="seconds for the whole run (default 1800)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary")
    parser.add_argument("--workdir", help="for the runtime's cwd and log (default: a temporary folder)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    total = args.invocations
    checkpoints = sorted(
        {int(c) for c in args.checkpoints.split(",") if c.strip() and int(c) < total} | {total}
    )
    if args.reference not in checkpoints:
        print(
            "soak: --reference %d is not a checkpoint (%s)" % (args.reference, checkpoints), file=sys.stderr
        )
        return 2
    api = RuntimeEmulator()
    api.keep_bodies = False
    api.start()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    argv_rt = [args.binary] if args.binary else [args.python, str(REPO_ROOT / "bootstrap.py")]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "_HANDLER": "hostile.dispatch",
        "LAMBDA_TASK_ROOT": str(HANDLERS),
        "AWS_LAMBDA_FUNCTION_NAME": "soak",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    log_path = workdir / "runtime.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv_rt,
            env=env,
            cwd=str(workdir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + args.timeout
    results = {"invocations": total, "runtime": argv_rt, "checkpoints": []}
    failures = []
    try:
        sent = 0
        started = time.monotonic()
        last_time, last_count = started, 0
        for checkpoint in checkpoints:
            while sent < checkpoint:
                api.push_event(event_for(sent))
                sent += 1
                if sent % 500 == 0:  # keep the queue short: the fake's memory is not what is measured
                    while (
                        api.answer_count < sent - 1000 and proc.poll() is None and time.monotonic() < deadline
                    ):
                        time.sleep(0.002)
            # every event answered once (a streamed one once, an error once): answers == events
            api.wait_for(
                lambda checkpoint=checkpoint: api.answer_count >= checkpoint,
                max(1.0, deadline - time.monotonic()),
                "%d answers" % checkpoint,
                alive=lambda: proc.poll() is None,
            )
            api.wait_idle(30, alive=lambda: proc.poll() is None)
            now = time.monotonic()
            stats = proc_stats(proc.pid)
            stats.update(
                invocations=checkpoint,
                elapsed_s=round(now - started, 2),
                events_per_s=round((checkpoint - last_count) / max(now - last_time, 1e-9), 1),
            )
            last_time, last_count = time.monotonic(), checkpoint
            results["checkpoints"].append(stats)
            if not args.quiet:
                print(
                    "%8d invocations  rss %7d kB  fds %3d  threads %2d  %8.1f events/s  (%.1f s)"
                    % (
                        checkpoint,
                        stats["rss_kb"],
                        stats["fds"],
                        stats["threads"],
                        stats["events_per_s"],
                        stats["elapsed_s"],
                    ),
                    flush=True,
                )
        results["events_per_s"] = round(total / (time.monotonic() - started), 1)
    except TimeoutError as exc:
        failures.append("the run did not finish: %s" % str(exc).splitlines()[0])
    finally:
        alive = proc.poll() is None
        if alive:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        api.stop()
    if not alive:
        failures.append("the runtime exited (status %s); log: %s" % (proc.returncode, log_path))
    problems = api.check_ledger()
    if problems:
        failures.append("ledger: %d problems, first: %s" % (len(problems), problems[:3]))
    points = {c["invocations"]: c for c in results["checkpoints"]}
    if args.reference in points and total in points:
        ref, last = points[args.reference], points[total]
        growth = 100.0 * (last["rss_kb"] - ref["rss_kb"]) / ref["rss_kb"]
        results["rss_growth_percent"] = round(growth, 2)
        if abs(growth) >= args.max_rss_growth:
            failures.append("RSS %d kB -> %d kB (%+.2f%%)" % (ref["rss_kb"], last["rss_kb"], growth))
        for key in ("fds", "threads"):
            if last[key] != ref[key]:
                failures.append("%s %d -> %d" % (key, ref[key], last[key]))
    results["failures"] = failures
    results["log"] = str(log_path) if failures else None
    if not failures and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(
        "soak: %d invocations, %s events/s, RSS %s kB at %d -> %s kB at %d (%s%%), fds %s, threads %s: %s"
        % (
            total,
            results.get("events_per_s"),
            points.get(args.reference, {}).get("rss_kb"),
            args.reference,
            points.get(total, {}).get("rss_kb"),
            total,
            results.get("rss_growth_percent"),
            [c["fds"] for c in results["checkpoints"]],
            [c["threads"] for c in results["checkpoints"]],
            "FAILED: " + "; ".join(failures) if failures else "ok",
        )
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
