"""Benchmark web apps served by the runtime against Mangum on awslambdaric: one FastAPI app, same Python.

- Cold init: spawn to the first /next, and to the first answer (a Function URL GET /hello), in pairs that
  alternate which runtime goes first; medians and the ratio ours / Mangum.
- Warm: Function URL GET /hello requests back to back (requests/s), through the Runtime API emulator in a
  process of its own (bench/api_process.py, as bench.py runs it).
- Work after the response (a BackgroundTasks job of 200 ms): how long the caller waits for the answer.
- Streaming: a route that sends 5 chunks 100 ms apart; the time to the first byte against the time to the
  whole body (ours with LAMBDA_INVOKE_MODE=RESPONSE_STREAM; Mangum buffers, so both are the whole body).

Run it with the dev venv (requirements-dev.txt has FastAPI, Mangum and awslambdaric):
    .venv/bin/python bench/web_bench.py [--pairs N] [--requests N]
It prints a Markdown table and writes bench/web_results.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "scripts"), str(ROOT / "tests" / "web_apps")]
from events import make_event  # noqa: E402
from runtime_emulator import RuntimeEmulator  # noqa: E402

import bench as core  # noqa: E402  (bench/ is not a package)

APP = """
import asyncio
import time

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()


@app.get("/hello")
async def hello():
    return {"message": "hello"}


@app.post("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(time.sleep, 0.2)
    return {"queued": True}


@app.get("/stream")
async def stream():
    async def chunks():
        for i in range(5):
            if i:
                await asyncio.sleep(0.1)
            yield "chunk %d\\n" % i

    return StreamingResponse(chunks(), media_type="text/plain")
"""
MANGUM_HANDLER = "from mangum import Mangum\n\nfrom hello_app import app\n\nhandler = Mangum(app)\n"
SIDES = {
    "ours": ([sys.executable, str(ROOT / "bootstrap.py")], "hello_app:app"),
    "mangum": ([sys.executable, "-m", "awslambdaric"], "mangum_app.handler"),
}


def task_root(tmp: Path) -> Path:
    root = tmp / "task"
    root.mkdir()
    (root / "hello_app.py").write_text(APP)
    (root / "mangum_app.py").write_text(MANGUM_HANDLER)
    return root


def define_events(api) -> None:
    api.define("hello", json.dumps(make_event("url", path="/hello")))
    api.define("bg", json.dumps(make_event("url", "POST", "/background")))


def spawn(side: str, address: str, root: Path, tmp: Path, extra=None) -> subprocess.Popen:
    argv, handler = SIDES[side]
    env = core.runtime_env(address, handler, root, tmp)
    env.update(extra or {})
    with core.pinned():
        return subprocess.Popen(
            [*argv, handler] if side == "mangum" else argv,
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp / ("%s.log" % side), "ab"),
            start_new_session=True,
        )


def cold_and_warm(api, side, root, tmp, requests):
    api.session([["hello", 1]])
    t0 = time.monotonic_ns()
    proc = spawn(side, api.address, root, tmp)
    try:
        state = api.idle(timeout=60)
        if state.get("init_error") or not state["records"] or not state["records"][0]["done_ns"]:
            raise RuntimeError("%s did not answer: %s" % (side, core.tail(tmp / ("%s.log" % side), 800)))
        out = {
            "cold_next_ms": (state["first_next_ns"] - t0) / 1e6,
            "cold_answer_ms": (state["records"][0]["done_ns"] - t0) / 1e6,
        }
        if requests:
            api.enqueue([["hello_warm", 50], ["hello", requests]])
            out["rps"] = core._phase(api.idle(timeout=120)["records"], "hello")["eps"]
            api.enqueue([["bg", 10]])
            out["bg_answer_ms"] = statistics.median(
                core._phase(api.idle(timeout=60)["records"], "bg")["lat_ms"]
            )
        return out
    finally:
        core.stop_tree(proc)


def first_byte(side, root, tmp, reps):
    """Seconds from the event to the first body byte and to the whole body, medians over `reps`."""
    firsts, wholes = [], []
    with RuntimeEmulator() as api:
        proc = spawn(side, api.address, root, tmp, {"LAMBDA_INVOKE_MODE": "RESPONSE_STREAM"})
        try:
            for _ in range(reps + 1):  # the first one warms up
                api.wait_for(lambda: api.waiting_next > 0, timeout=60)
                t0, t0_wall = time.monotonic(), time.time()
                rid = api.push_event(make_event("url", path="/stream"))
                answer = api.wait_answer(rid, timeout=30)
                if answer.chunked:  # chunks 0 and 1 are the prelude and its NULs
                    first, whole = answer.chunks[2].at - t0, answer.chunks[-1].at - t0
                else:  # buffered: the body arrives whole (recorded in wall-clock time)
                    first = whole = answer.received_at - t0_wall
                firsts.append(first)
                wholes.append(whole)
        finally:
            core.stop_tree(proc)
    return statistics.median(firsts[1:]), statistics.median(wholes[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=10, help="cold starts per side (default 10)")
    parser.add_argument("--requests", type=int, default=2000, help="warm requests per side (default 2000)")
    parser.add_argument("--out", type=Path, default=BENCH / "web_results.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="web-bench-") as tmpdir:
        tmp = Path(tmpdir)
        root = task_root(tmp)
        api = core.ApiProcess()
        define_events(api)
        runs = {side: [] for side in SIDES}
        try:
            for i in range(args.pairs):
                for side in list(SIDES) if i % 2 == 0 else list(SIDES)[::-1]:
                    runs[side].append(cold_and_warm(api, side, root, tmp, args.requests if i < 3 else 0))
        finally:
            api.close()
        streams = {side: first_byte(side, root, tmp, 5) for side in SIDES}
    rows = []
    for label, key, unit in [
        ("cold: spawn to first /next", "cold_next_ms", "ms"),
        ("cold: spawn to first answer", "cold_answer_ms", "ms"),
        ("warm requests/s (GET /hello)", "rps", "/s"),
        ("answer with a 200 ms background task", "bg_answer_ms", "ms"),
    ]:
        ours = statistics.median(r[key] for r in runs["ours"] if key in r)
        ref = statistics.median(r[key] for r in runs["mangum"] if key in r)
        # The two runs of a pair met the same load on this shared machine: the median of their ratios.
        paired = [a[key] / b[key] for a, b in zip(runs["ours"], runs["mangum"]) if key in a and key in b]
        rows.append((label, ours, ref, unit, statistics.median(paired)))
    for label, index in (("streamed: first byte", 0), ("streamed: whole body", 1)):
        ours, ref = streams["ours"][index] * 1e3, streams["mangum"][index] * 1e3
        rows.append((label, ours, ref, "ms", ours / ref))
    lines = [
        "| FastAPI hello app (Python %s, %d cold pairs, %d warm requests) | ours | Mangum on awslambdaric "
        "| ours / Mangum (paired) |" % (sys.version.split()[0], args.pairs, args.requests),
        "|---|---|---|---|",
    ]
    for label, ours, ref, unit, ratio in rows:
        lines.append("| %s | %.1f %s | %.1f %s | %.2f\u00d7 |" % (label, ours, unit, ref, unit, ratio))
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
