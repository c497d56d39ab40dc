#!/usr/bin/env bash
# Serve a function locally as Lambda would (function URL, Invoke API, InvokeWithResponseStream), streaming
# and reloading on save: scripts/dev_endpoint.py over the project's Runtime API emulator.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="./dev.sh"

usage() {
    cat <<EOF
Usage: $PROG [FUNCTION_DIR] [options]

Serves the function in FUNCTION_DIR (default: example/) on http://127.0.0.1:PORT until Ctrl-C:

  any path, any method     a function URL request: the function gets a payload-v2 event, its answer
                           becomes the HTTP response; a streamed answer is sent chunk by chunk, with
                           the status, headers and cookies of its prelude
  POST /2015-03-31/functions/NAME/invocations
                           the Lambda Invoke API (any NAME): aws lambda invoke, boto3's invoke;
                           X-Amz-Log-Type: Tail gives the log tail in X-Amz-Log-Result
  POST /2021-11-15/functions/NAME/response-streaming-invocations
                           InvokeWithResponseStream, in AWS's event-stream framing (boto3's
                           invoke_with_response_stream): PayloadChunk events as the function
                           streams, then InvokeComplete (with ErrorCode on a failure)

The runtime is ./bootstrap.py, run with the Python below in a venv holding requirements.txt and
FUNCTION_DIR/requirements.txt (made once per set of requirements, under .cache/dev/). Saving a file in
FUNCTION_DIR starts it again at once, and the next request runs the new code; a changed
requirements.txt gets its venv first. An init error (an import that fails) is printed with its
traceback, and requests get that error until the code is fixed. One line per invocation: request id,
what was asked, the outcome, the duration and, after an init, its duration. The function's own log is
printed as it comes.

Options:
  --port N            port to listen on, on 127.0.0.1 (default: 9000)
  --handler H         the handler, module.function, or module:app for a web app (default: found as
                      ./build.sh finds it: a template.yaml, the one obvious handler, else the one web app)
  --timeout S         the function timeout in seconds, 1 to 900 (default: 3, as on Lambda). A timed
                      out invocation gets Lambda's "Task timed out" error and the runtime is started again
  --memory MB         AWS_LAMBDA_FUNCTION_MEMORY_SIZE, 128 to 10240 (default: 128). Not enforced
  --env KEY=VALUE     an environment variable for the function (repeatable)
  --env-file FILE     KEY=VALUE lines (# comments, optional quotes); --env wins over it
  --concurrency N     Managed Instances: N workers take requests at once (AWS_LAMBDA_MAX_CONCURRENCY=N);
                      1 (default) is the classic one-at-a-time runtime
  --function-name F   AWS_LAMBDA_FUNCTION_NAME (default: function)
  --frozen            run the real zip instead: ./build.sh FUNCTION_DIR, then the zip in the Lambda-like
                      root (scripts/lambda_root.py, needs bubblewrap); a save rebuilds it (slow)
  --no-reload         do not watch the files
  -h, --help          show this help

Environment:
  PYTHON              the Python for the endpoint and the function's venv (default: the newest of
                      Python 3.13, 3.12, 3.11 on PATH or under pyenv)

Differences: this is not Lambda (no IAM, no memory or CPU limits, your machine's OS and Python, your AWS
credentials pass through to the function) and, unlike AWS's Runtime Interface Emulator, it streams
responses with their trailers, reloads, and speaks the function URL and InvokeWithResponseStream.

Examples:
  $PROG                                  # example/ on :9000
  curl -N localhost:9000/hello           # as a function URL
  aws lambda invoke --endpoint-url http://127.0.0.1:9000 --function-name f --payload '{}' out.json
                                         # (AWS CLI v2: add --cli-binary-format raw-in-base64-out)
  $PROG path/to/fn --handler main.handler --env-file .env --timeout 30
EOF
}

die() {
    echo "dev.sh: error: $*" >&2
    exit 2
}

for arg in "$@"; do
    case "$arg" in
        -h | --help) usage; exit 0 ;;
    esac
done

# find_python: the newest of 3.13, 3.12, 3.11 that runs (a pyenv shim may name a version it cannot run).
find_python() {
    local version candidate
    for version in 3.13 3.12 3.11; do
        for candidate in "python$version" "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python3; do
            if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys' >/dev/null 2>&1; then
                command -v "$candidate"
                return 0
            fi
        done
    done
    return 1
}

PYTHON="${PYTHON:-$(find_python || true)}"
[[ -n "$PYTHON" ]] || die "no python3.13, 3.12 or 3.11 on PATH: install one, or set PYTHON=/path/to/python3"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null \
    || die "PYTHON=$PYTHON is not Python 3.9 or newer"

# The endpoint's own venv: watchfiles, at the version requirements-dev.txt pins.
WATCHFILES="$(grep -E '^watchfiles==' "$REPO_ROOT/requirements-dev.txt" || true)"
[[ -n "$WATCHFILES" ]] || die "requirements-dev.txt pins no watchfiles==VERSION"
TOOL_VENV="$REPO_ROOT/.cache/dev/tool-$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ ! -f "$TOOL_VENV/.installed" ]] || [[ "$(cat "$TOOL_VENV/.installed")" != "$WATCHFILES" ]]; then
    echo "dev.sh: installing $WATCHFILES into $TOOL_VENV" >&2
    "$PYTHON" -m venv "$TOOL_VENV" || die "could not make a venv with $PYTHON (Debian: apt-get install python3-venv)"
    "$TOOL_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$WATCHFILES" \
        || die "pip could not install $WATCHFILES (is PyPI reachable?)"
    echo "$WATCHFILES" >"$TOOL_VENV/.installed"
fi

export DEV_PYTHON="$PYTHON"
exec "$TOOL_VENV/bin/python" "$REPO_ROOT/scripts/dev_endpoint.py" "$@"
