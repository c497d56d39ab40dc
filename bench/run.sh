#!/usr/bin/env bash
# One command for the benchmark: prepares .venv-bench (requirements-dev + bench/requirements.txt),
# then runs bench/bench.py with the arguments given. See --help.
set -euo pipefail

export BENCH_T0="${BENCH_T0:-$(date +%s)}"  # bench.py fits its repetitions into the time left
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.venv-bench}"
PY="${PYTHON:-python3}"

usage() {
    cat <<USAGE
Usage: bench/run.sh [--quick] [bench.py options]

Creates or updates $VENV from requirements-dev.txt and bench/requirements.txt (pinned),
fetches the RIE (scripts/fetch_rie.sh) and boto3 for the realistic handler's task root
(.cache/bench/), freezes ours with scripts/freeze.sh into .cache/bench/frozen/ if needed (the plain
onedir and the same with the C library bundled), then runs every runtime and writes bench/results.md,
bench/results.json and bench/results.png.
A full run takes under 10 minutes on 2 cores; --quick is a smoke run of about a minute.

Environment: PYTHON (interpreter for the venv, default python3), BENCH_VENV (venv path).

bench.py options:
USAGE
    "$PY" "$ROOT/bench/bench.py" --help | sed -n '/^options:/,$p' | tail -n +2
}

for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
    esac
done

command -v "$PY" >/dev/null 2>&1 || { echo "run.sh: '$PY' not found; set PYTHON" >&2; exit 1; }
# Use the real interpreter (not a pyenv shell shim) as the venv's base, so runtimes start it directly.
BASE="$("$PY" -c 'import sys; print(getattr(sys, "_base_executable", None) or sys.executable)')"

if [ ! -x "$VENV/bin/python" ]; then
    echo "run.sh: creating $VENV from $BASE" >&2
    "$BASE" -m venv "$VENV"
fi
STAMP="$VENV/.bench-requirements"
WANT="$(cat "$ROOT/requirements.txt" "$ROOT/requirements-dev.txt" "$ROOT/bench/requirements.txt" | "$VENV/bin/python" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
    echo "run.sh: installing requirements into $VENV" >&2
    (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r requirements-dev.txt -r bench/requirements.txt)
    echo "$WANT" >"$STAMP"
fi

if [ -f "$ROOT/scripts/fetch_rie.sh" ] && [ ! -x "$ROOT/.cache/rie/aws-lambda-rie" ]; then
    PYTHON="$VENV/bin/python" bash "$ROOT/scripts/fetch_rie.sh" >/dev/null || echo "run.sh: RIE fetch failed; the RIE part will be skipped" >&2
fi

cd "$ROOT"
exec "$VENV/bin/python" "$ROOT/bench/bench.py" "$@"
