"""Cold start: where the frozen start's time goes, and the four targets of issue 20, from one run.

    .venv/bin/python bench/coldstart.py [--reps N] [--extra NAME=PATH ...]

Run it with the dev venv (requirements-dev.txt: awslambdaric, Mangum, FastAPI, boto3). It

* freezes bench/coldstart_function/ (three handlers; boto3, FastAPI and Mangum from its requirements.txt)
  with scripts/freeze.sh, in a build venv of requirements.lock made from this same Python
  (.venv-coldstart-build/), the C library bundled for the folder it lands in (.cache/coldstart/frozen/);
  again only when the runtime, the spec, the build scripts, the function or the Python change;
* installs the same requirements with `pip install --target` into a task root for the runtimes that run
  from source: ours as `python bootstrap.py`, and awslambdaric (same Python);
* spawns, in every repetition and in an order that rotates (reversed every other repetition), each
  runtime with each handler (trivial; boto3 with an S3 client at import; a FastAPI hello app, which
  awslambdaric serves through Mangum) against the project's Runtime API emulator
  (bench/api_process.py), and times spawn -> first /next (init), CLOCK_MONOTONIC on both sides;
  resident memory (VmRSS) of the trivial function after one invoke, parked on /next;
* in the same rotation, spawns ours again with LAMBDA_BOOTSTRAP_PHASES set (lambda_bootstrap/phases.py)
  for the phase breakdown, and once per repetition under `perf record` (when perf works) to split the
  time before the first Python code between the dynamic loader, the kernel and libpython.

Marked and perf runs are kept out of the targets: a mark costs a few microseconds, perf a few percent.
Figures are medians over repetitions with [min-max]; ratios are per repetition (same load), then median.
Writes bench/coldstart_results.md and .json. `--extra NAME=PATH` adds a runtime (a frozen `bootstrap`
or a `bootstrap.py`) to compare paired with the others, e.g. a build of another commit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
from api_process import ApiProcess  # noqa: E402

import bench as core  # noqa: E402  (bench/ is not a package: runtime_env, proc_status, stop_tree)

FUNCTION = BENCH / "coldstart_function"
CACHE = ROOT / ".cache" / "coldstart"
FROZEN = CACHE / "frozen"
TASK_ROOT = CACHE / "taskroot"
BUILD_VENV = ROOT / ".venv-coldstart-build"
# What the frozen function is made of: when one of these (or the Python) changes, it is frozen again.
FREEZE_INPUTS = [
    "bootstrap.py",
    "requirements.lock",
    "scripts/freeze.sh",
    "scripts/bundle_libc.py",
    "scripts/strip_bundle.py",
    "scripts/host_paths.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lambda_bootstrap").glob("*.py")),
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "packaging").rglob("*") if p.is_file()),
    *sorted(str(p.relative_to(ROOT)) for p in FUNCTION.iterdir() if p.is_file()),
]
# handler -> (ours, awslambdaric)
HANDLERS = {
    "trivial": ("trivial_app.handler", "trivial_app.handler"),
    "boto3": ("boto_app.handler", "boto_app.handler"),
    "fastapi": ("fastapi_app:app", "fastapi_app.handler"),
}
# Phases between consecutive marks (lambda_bootstrap/phases.py); "start": the spawn, "next": the first /next.
PHASES = [
    ("start", "python", "exec to the first Python code: loader, libpython's relocations, interpreter start"),
    ("python", "runtime", "runtime hooks"),
    ("runtime", "main", "the runtime's own imports"),
    ("main", "urllib3", "configuration, logging"),
    ("urllib3", "urllib3-done", "urllib3 import (the Runtime API connection)"),
    ("urllib3-done", "handler", "the Runtime API client"),
    ("handler", "handler-done", "the handler's import"),
    ("handler-done", "next", "to the first /next"),
]
TARGETS = [
    ("frozen trivial init / script-mode init", "frozen", "script", "trivial", "init", 1.0),
    ("boto3 init, frozen / awslambdaric", "frozen", "awslambdaric", "boto3", "init", 0.9),
    ("FastAPI init, frozen / Mangum on awslambdaric", "frozen", "awslambdaric", "fastapi", "init", 1.0),
    ("trivial RSS after one invoke, frozen / awslambdaric", "frozen", "awslambdaric", "trivial", "rss", 1.5),
]


def log(msg: str) -> None:
    print(f"coldstart: {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# what is run


class Runtime:
    def __init__(self, name: str, argv: List[str], task_root: Path, ours: bool = True):
        self.name, self.argv, self.task_root, self.ours = name, argv, task_root, ours

    def handler(self, hname: str) -> str:
        return HANDLERS[hname][0 if self.ours else 1]


def _stamp() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for name in FREEZE_INPUTS:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    return digest.hexdigest()


def _run(argv: List[str], what: str, timeout: float, cwd: Path = ROOT) -> None:
    log(what)
    res = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=timeout, check=False)
    if res.returncode != 0:
        sys.stderr.write(
            res.stdout.decode(errors="replace")[-3000:] + res.stderr.decode(errors="replace")[-3000:]
        )
        raise SystemExit(f"coldstart: {what} failed (exit {res.returncode})")


def build_python() -> Path:
    """A venv of requirements.lock on this very Python: the frozen side runs the Python the references run."""
    py = BUILD_VENV / "bin" / "python"
    want = hashlib.sha256(sys.version.encode() + (ROOT / "requirements.lock").read_bytes()).hexdigest()
    stamp = BUILD_VENV / ".coldstart-stamp"
    if not (py.exists() and stamp.is_file() and stamp.read_text() == want):
        shutil.rmtree(BUILD_VENV, ignore_errors=True)
        base = getattr(sys, "_base_executable", None) or sys.executable
        _run([base, "-m", "venv", str(BUILD_VENV)], f"making {BUILD_VENV.name}", 300)
        _run(
            [
                str(py),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "-r",
                str(ROOT / "requirements.lock"),
            ],
            "installing requirements.lock",
            900,
        )
        stamp.write_text(want)
    return py


def freeze(no_build: bool) -> Path:
    stamp = FROZEN / "stamp"
    want = _stamp()
    if not (stamp.is_file() and stamp.read_text() == want):
        if no_build:
            raise SystemExit(f"coldstart: {FROZEN} is missing or not current, and --no-build was given")
        shutil.rmtree(FROZEN, ignore_errors=True)
        _run(
            [
                "bash",
                str(ROOT / "scripts" / "freeze.sh"),
                "--python",
                str(build_python()),
                "--function",
                str(FUNCTION),
                "--out",
                str(FROZEN),
                "--prefix",
                str(FROZEN / "bundle"),
            ],
            "freezing bench/coldstart_function with scripts/freeze.sh",
            1800,
        )
        stamp.write_text(want)
    return FROZEN / "bundle" / "bootstrap"


def freeze_revision(rev: str) -> Path:
    """The same function frozen by another commit's runtime and build (for paired comparisons against it)."""
    sha = subprocess.run(
        ["git", "rev-parse", "--verify", rev + "^{commit}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    inputs = hashlib.sha256(sys.version.encode())
    for f in sorted(FUNCTION.iterdir()):
        inputs.update(f.name.encode() + b"\0" + f.read_bytes())
    key = f"rev-{sha[:12]}-{inputs.hexdigest()[:12]}"  # the revision, the function and the Python
    out, src = CACHE / key, CACHE / (key + "-src")
    binary = out / "bundle" / "bootstrap"
    if not binary.is_file():
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        archive = subprocess.run(
            [
                "git",
                "archive",
                sha,
                "bootstrap.py",
                "lambda_bootstrap",
                "packaging",
                "scripts",
                "requirements.lock",
            ],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
        _run(
            [
                "bash",
                str(src / "scripts" / "freeze.sh"),
                "--python",
                str(build_python()),
                "--function",
                str(FUNCTION),
                "--out",
                str(out),
                "--prefix",
                str(out / "bundle"),
            ],
            f"freezing bench/coldstart_function with {rev} ({sha[:12]})",
            1800,
        )
    return binary


def task_root() -> Path:
    want = (FUNCTION / "requirements.txt").read_bytes() + sys.version.encode()
    stamp = TASK_ROOT / ".stamp"
    if not (stamp.is_file() and stamp.read_bytes() == want):
        shutil.rmtree(TASK_ROOT, ignore_errors=True)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(TASK_ROOT),
                "-r",
                str(FUNCTION / "requirements.txt"),
            ],
            "installing the function's requirements into the task root",
            900,
        )
        stamp.write_bytes(want)
    for handler in FUNCTION.glob("*.py"):
        shutil.copy2(handler, TASK_ROOT / handler.name)
    return TASK_ROOT


def runtimes(args: argparse.Namespace) -> List[Runtime]:
    root = task_root()
    wanted = args.runtimes.split(",") if args.runtimes else ["frozen"]
    frozen = freeze(args.no_build) if "frozen" in wanted else Path("not-built")
    rts = [
        Runtime("frozen", [str(frozen)], frozen.parent),
        Runtime("script", [sys.executable, str(ROOT / "bootstrap.py")], root),
        Runtime("awslambdaric", [sys.executable, "-m", "awslambdaric"], root, ours=False),
    ]
    if args.runtimes:
        rts = [rt for rt in rts if rt.name in args.runtimes.split(",")]
    if args.against:
        binary = freeze_revision(args.against)
        rts.append(Runtime(args.against, [str(binary)], binary.parent))
    for extra in args.extra:
        name, _, path = extra.partition("=")
        path = Path(path).resolve()
        if path.suffix == ".py":
            rts.append(Runtime(name, [sys.executable, str(path)], root))
        else:
            rts.append(Runtime(name, [str(path)], path.parent))
    return rts


# ----------------------------------------------------------------------------------------------
# one spawn


class Failure(Exception):
    pass


def spawn(
    api: ApiProcess,
    rt: Runtime,
    hname: str,
    tmp: Path,
    *,
    marks: bool = False,
    perf: Optional[Path] = None,
    invoke: bool = False,
) -> Dict:
    """Start the runtime, wait for its first /next (and, with ``invoke``, one answered event): init in ms,
    VmRSS in KiB, and the phase marks (ms since the spawn) when asked."""
    env = core.runtime_env(api.address, rt.handler(hname), rt.task_root, tmp)
    marks_file = tmp / "marks"
    marks_file.unlink(missing_ok=True)
    if marks or perf:
        env["LAMBDA_BOOTSTRAP_PHASES"] = str(marks_file)
    argv = [*rt.argv, rt.handler(hname)]
    if perf:
        argv = [
            "perf",
            "record",
            "--quiet",
            "-e",
            "cpu-clock",
            "-F",
            "10000",
            "-k",
            "CLOCK_MONOTONIC",
            "-o",
            str(perf),
            "--",
            *argv,
        ]
    api.session([["small", 1]] if invoke else [])
    logf = tmp / "runtime.log"
    with open(logf, "wb") as out:
        t0 = time.monotonic_ns()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=rt.task_root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        st = api.idle(timeout=60)
        if st.get("init_error") or st.get("timed_out") or not st.get("first_next_ns"):
            raise Failure(f"{rt.name}/{hname}: no first /next: {st.get('init_error')} {core.tail(logf, 600)}")
        if invoke and not (st["records"] and st["records"][0]["ok"]):
            raise Failure(f"{rt.name}/{hname}: the event was not answered: {st['records']}")
        res = {"init": (st["first_next_ns"] - t0) / 1e6, "t0": t0, "next_ns": st["first_next_ns"]}
        if invoke:
            res["rss"] = core.proc_status(proc.pid).get("VmRSS")
        if marks_file.is_file():
            # The first of each: a later client (the shutdown extension's, say) marks urllib3 again.
            res["marks"] = {}
            for line in marks_file.read_text().splitlines():
                name, ns = line.split()
                res["marks"].setdefault(name, (int(ns) - t0) / 1e6)
        return res
    finally:
        core.stop_tree(proc)


def warm(api: ApiProcess, rt: Runtime, tmp: Path, events: int, invokes: int) -> Dict:
    """The trivial function warm: events/s through the fake API (``events`` small ones back to back, after a
    warm-up), and the p50 of ``invokes`` sequential invokes through the RIE (after a warm-up)."""
    env = core.runtime_env(api.address, rt.handler("trivial"), rt.task_root, tmp)
    api.session([["small_warm", 200], ["small", events]])
    with open(tmp / "warm.log", "wb") as out:
        proc = subprocess.Popen(
            [*rt.argv, rt.handler("trivial")],
            env=env,
            cwd=rt.task_root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        st = api.idle(timeout=120)
        small = [r for r in st["records"] if r["kind"] == "small"]
        if st.get("timed_out") or len(small) != events or not all(r["ok"] for r in small):
            raise Failure(f"{rt.name}: warm events not all answered: {core.tail(tmp / 'warm.log', 600)}")
        eps = len(small) / ((small[-1]["done_ns"] - small[0]["sent_ns"]) / 1e9)
    finally:
        core.stop_tree(proc)
    env = core.runtime_env("", rt.handler("trivial"), rt.task_root, tmp)
    del env["AWS_LAMBDA_RUNTIME_API"]  # the RIE sets it
    with core.rie.RieProcess(
        [*rt.argv, rt.handler("trivial")], env=env, cwd=str(rt.task_root), log_dir=str(tmp), timeout=20
    ) as r:
        conn = http.client.HTTPConnection("127.0.0.1", r.rie_port, timeout=60)
        try:
            latencies = []
            for i in range(30 + invokes):
                t0 = time.perf_counter_ns()
                conn.request("POST", core.INVOKE_PATH, b"{}", {"Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or b"errorType" in body:
                    raise Failure(f"{rt.name}: RIE invoke: HTTP {resp.status} {body[:200]!r}")
                if i >= 30:
                    latencies.append((time.perf_counter_ns() - t0) / 1e6)
        finally:
            conn.close()
    return {"eps": eps, "rie_p50": statistics.median(latencies)}


def perf_split(data: Path, t0: int, python_ns: Optional[int]) -> Dict[str, float]:
    """CPU ms (10 kHz cpu-clock samples) from the spawn to the first Python code, by where it ran."""
    if python_ns is None:
        return {}
    out = subprocess.run(
        ["perf", "script", "-F", "time,ip,dso", "-i", str(data)],
        capture_output=True,
        timeout=120,
        check=False,
    ).stdout.decode(errors="replace")
    split = {"loader": 0.0, "kernel": 0.0, "libpython and the rest": 0.0}
    for line in out.splitlines():
        stamp, _, dso = line.strip().partition(":")  # "TIME:  IP (DSO)"
        with contextlib.suppress(ValueError):
            ns = int(float(stamp) * 1e9)
            if t0 <= ns <= python_ns:
                key = (
                    "loader"
                    if "ld-linux" in dso
                    else "kernel"
                    if "kernel" in dso
                    else "libpython and the rest"
                )
                split[key] += 0.1
    return split


def perf_works() -> bool:
    if shutil.which("perf") is None:
        return False
    res = subprocess.run(
        ["perf", "record", "--quiet", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return res.returncode == 0


# ----------------------------------------------------------------------------------------------
# the run


def run(args: argparse.Namespace) -> Dict:
    rts = runtimes(args)
    ours = [rt for rt in rts if rt.ours]
    use_perf = not args.no_perf and perf_works()
    results: Dict = {"runs": [], "perf": use_perf, "python": sys.version.split()[0], "started": time.time()}
    # The zip freeze.sh wrote beside each frozen bundle (OUT/bundle/bootstrap -> OUT/bootstrap.zip).
    results["zips"] = {
        rt.name: (Path(rt.argv[0]).parent.parent / "bootstrap.zip").stat().st_size
        for rt in rts
        if rt.argv[0] != sys.executable and (Path(rt.argv[0]).parent.parent / "bootstrap.zip").is_file()
    }
    api = ApiProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="coldstart-") as tmpd:
            tmp = Path(tmpd)
            jobs = [(rt, h, "plain") for h in HANDLERS for rt in rts]
            jobs += [(rt, h, "marks") for h in HANDLERS for rt in ours]
            jobs += [(rt, "trivial", "rss") for rt in rts]
            for rep in range(args.reps):
                for rt, hname, kind in order_of(jobs, rep):
                    try:
                        res = spawn(api, rt, hname, tmp, marks=kind == "marks", invoke=kind == "rss")
                    except Failure as exc:
                        log(str(exc))
                        continue
                    results["runs"].append(
                        {"rep": rep, "runtime": rt.name, "handler": hname, "kind": kind, **res}
                    )
                if args.warm:
                    for rt in order_of(rts, rep):
                        if rt.argv[0] == sys.executable:
                            continue  # the frozen forms only: what the bundle changes
                        try:
                            res = warm(api, rt, tmp, args.warm, args.warm // 10)
                        except Failure as exc:
                            log(str(exc))
                            continue
                        results["runs"].append(
                            {"rep": rep, "runtime": rt.name, "handler": "trivial", "kind": "warm", **res}
                        )
                if use_perf:
                    for rt in [
                        rt for rt in ours if rt.argv[0] != sys.executable
                    ]:  # frozen: a first Python mark
                        for hname in HANDLERS:
                            data = tmp / "perf.data"
                            with contextlib.suppress(Failure):
                                res = spawn(api, rt, hname, tmp, perf=data)
                                python_ns = res.get("marks", {}).get("python")
                                split = perf_split(
                                    data,
                                    res["t0"],
                                    None if python_ns is None else res["t0"] + int(python_ns * 1e6),
                                )
                                results["runs"].append(
                                    {
                                        "rep": rep,
                                        "runtime": rt.name,
                                        "handler": hname,
                                        "kind": "perf",
                                        **res,
                                        "split": split,
                                    }
                                )
                log(f"repetition {rep + 1}/{args.reps} done")
    finally:
        api.close()
    return results


def order_of(items: List, rep: int) -> List:
    """Rotated by the repetition, reversed every other one: no runtime always goes first."""
    order = items[rep % len(items) :] + items[: rep % len(items)]
    return order if rep % 2 == 0 else order[::-1]


def _runs(results: Dict, rt: str, h: str, kind: str) -> List[Dict]:
    return [r for r in results["runs"] if r["runtime"] == rt and r["handler"] == h and r["kind"] == kind]


def spread(xs: List[float], fmt: str = "{:.1f}") -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "\u2013"
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(min(xs))}\u2013{fmt.format(max(xs))}]"


def phase_values(runs: List[Dict], a: str, b: str) -> List[float]:
    out = []
    for r in runs:
        m = {"start": 0.0, **r.get("marks", {}), "next": r["init"]}
        if a in m and b in m:
            out.append(m[b] - m[a])
        elif a == "start" and b == "python" and "runtime" in m:
            out.append(None)  # script form: no runtime hooks, its start runs to the runtime mark
    return out


def paired(results: Dict, a: str, b: str, h: str, kind: str, field: str) -> List[float]:
    """Ratios a/b of the same repetition (both met the same load): init, or the handler's import."""
    by_rep: Dict[int, Dict[str, float]] = {}
    for name in (a, b):
        for r in _runs(results, name, h, kind):
            if field == "import":
                m = r.get("marks", {})
                value = m["handler-done"] - m["handler"] if "handler-done" in m and "handler" in m else None
            else:
                value = r.get(field)
            if value:
                by_rep.setdefault(r["rep"], {})[name] = value
    return [v[a] / v[b] for v in by_rep.values() if a in v and b in v]


def paired_init(results: Dict, a: str, b: str, h: str) -> List[float]:
    """Init ratios a/b per repetition; between two of ours, the marked runs count too (a mark costs
    microseconds), which doubles the pairs."""
    ratios = paired(results, a, b, h, "plain", "init")
    if _runs(results, a, h, "marks") and _runs(results, b, h, "marks"):
        ratios += paired(results, a, b, h, "marks", "init")
    return ratios


def report(results: Dict, names: List[str], baseline: Optional[str] = None) -> str:
    lines = [
        f"# Cold start ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(results['started']))}, "
        f"Python {results['python']}, {max(r['rep'] for r in results['runs']) + 1} repetitions)",
        "",
    ]
    lines += [
        "Init is spawn -> first /next (ms), medians [min\u2013max] over repetitions. Load average at the "
        f"end: {os.getloadavg()[0]:.1f}.",
        "",
    ]
    lines += [
        "## Init and memory",
        "",
        "| runtime | "
        + " | ".join(f"{h} init" for h in HANDLERS)
        + " | trivial RSS after one invoke (MiB) |",
        "|---|" + "---:|" * (len(HANDLERS) + 1),
    ]
    for name in names:
        cells = [spread([r["init"] for r in _runs(results, name, h, "plain")]) for h in HANDLERS]
        cells.append(
            spread([r["rss"] / 1024 for r in _runs(results, name, "trivial", "rss") if r.get("rss")])
        )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Targets (ratio per repetition, then median [min\u2013max])",
        "",
        "| target | ratio | limit | met |",
        "|---|---:|---:|---|",
    ]
    for label, a, b, h, field, limit in TARGETS:
        ratios = paired(results, a, b, h, "rss", field) if field == "rss" else paired_init(results, a, b, h)
        med = statistics.median(ratios) if ratios else None
        met = "\u2013" if med is None else "yes" if med <= limit else "**no**"
        lines.append(f"| {label} | {spread(ratios, '{:.3f}')} | \u2264 {limit:.2f} | {met} |")
    if baseline:
        lines += [
            "",
            f"## Paired against {baseline} (init ratio per repetition, then median [min\u2013max])",
            "",
            "| runtime | " + " | ".join(HANDLERS) + " | handler import, marked runs |",
            "|---|" + "---:|" * (len(HANDLERS) + 1),
        ]
        for name in names:
            if name == baseline:
                continue
            cells = [spread(paired(results, name, baseline, h, "plain", "init"), "{:.2f}") for h in HANDLERS]
            imports = [paired(results, name, baseline, h, "marks", "import") for h in ("boto3", "fastapi")]
            cells.append(" / ".join(spread(x, "{:.2f}") for x in imports) + " (boto3 / fastapi)")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    warm_names = [name for name in names if _runs(results, name, "trivial", "warm")]
    if warm_names:
        lines += [
            "",
            "## Warm, trivial function (the frozen forms; ratio per repetition against "
            f"{baseline or warm_names[0]})",
            "",
            "| runtime | events/s, fake API | ratio | RIE p50 (ms) | ratio | zip (bytes) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in warm_names:
            eps = [r["eps"] for r in _runs(results, name, "trivial", "warm")]
            p50 = [r["rie_p50"] for r in _runs(results, name, "trivial", "warm")]
            ref = baseline or warm_names[0]
            eps_ratio = spread(paired(results, name, ref, "trivial", "warm", "eps"), "{:.3f}")
            p50_ratio = spread(paired(results, name, ref, "trivial", "warm", "rie_p50"), "{:.3f}")
            zip_bytes = results.get("zips", {}).get(name, "\u2013")
            lines.append(
                f"| {name} | {spread(eps, '{:.0f}')} | {eps_ratio} | {spread(p50, '{:.3f}')} | {p50_ratio} "
                f"| {zip_bytes} |"
            )
    for name in names:
        if not any(
            r.get("marks") for r in _runs(results, name, "trivial", "marks")
        ):  # a runtime without marks
            continue
        lines += [
            "",
            f"## Phases of {name} (ms, LAMBDA_BOOTSTRAP_PHASES marks)",
            "",
            "| phase | " + " | ".join(HANDLERS) + " |",
            "|---|" + "---:|" * len(HANDLERS),
        ]
        for a, b, label in PHASES:
            cells = [spread(phase_values(_runs(results, name, h, "marks"), a, b)) for h in HANDLERS]
            if a == "start" and all(c == "\u2013" for c in cells):
                cells = [
                    spread(phase_values(_runs(results, name, h, "marks"), "start", "runtime"))
                    for h in HANDLERS
                ]
                label = "exec to the runtime's first code: loader, interpreter start, site"
            elif a == "python" and all(c == "\u2013" for c in cells):
                continue
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        cells = [spread([r["init"] for r in _runs(results, name, h, "marks")]) for h in HANDLERS]
        lines.append("| **init (marked runs)** | " + " | ".join(cells) + " |")
        perf = {h: _runs(results, name, h, "perf") for h in HANDLERS}
        if any(r.get("split") for rs in perf.values() for r in rs):
            lines += [
                "",
                f"CPU before the first Python code of {name}, under `perf record -F 10000` "
                "(ms of samples; perf slows the whole start: its init is given for scale):",
                "",
                "| where | " + " | ".join(HANDLERS) + " |",
                "|---|" + "---:|" * len(HANDLERS),
            ]
            for key in ("loader", "kernel", "libpython and the rest"):
                label = {
                    "loader": "dynamic loader (ld.so: loading, relocations, symbol look-up)",
                    "kernel": "kernel (exec, mmap, page faults, reads)",
                    "libpython and the rest": "libpython and the rest (interpreter start)",
                }[key]
                cells = [spread([r["split"].get(key) for r in perf[h] if r.get("split")]) for h in HANDLERS]
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
            cells = [spread([r["init"] for r in perf[h]]) for h in HANDLERS]
            lines.append("| init under perf | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=11, help="repetitions (default 11)")
    parser.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another runtime: a frozen bootstrap or a bootstrap.py (repeatable)",
    )
    parser.add_argument(
        "--runtimes", default="", help="only these of frozen,script,awslambdaric (comma-separated)"
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="also the function frozen by git revision REV (e.g. main), the baseline",
    )
    parser.add_argument("--baseline", help="a runtime to give every other one's paired ratios against")
    parser.add_argument(
        "--warm",
        type=int,
        default=0,
        metavar="N",
        help="also N warm events (fake API) and N/10 RIE invokes per frozen runtime and repetition",
    )
    parser.add_argument("--no-build", action="store_true", help="use the frozen function as it is")
    parser.add_argument("--no-perf", action="store_true", help="skip the perf split of the first phase")
    parser.add_argument("--out", default=str(BENCH / "coldstart_results"), help="output path, without suffix")
    args = parser.parse_args(argv)
    results = run(args)
    names = list(dict.fromkeys(r["runtime"] for r in results["runs"]))
    text = report(results, names, args.baseline or args.against)
    Path(args.out + ".md").write_text(text)
    Path(args.out + ".json").write_text(json.dumps(results, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
