#!/usr/bin/env bash
# Build dist/bootstrap.zip: bootstrap.py frozen with PyInstaller together with a function and its
# requirements and the C library, for Lambda's OS-only runtime provided.al2023, proven in a Lambda-like root.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="./build.sh"

usage() {
    cat <<EOF
Usage: $PROG [options] [FUNCTION_DIR]

Freezes bootstrap.py with PyInstaller (onedir) together with the modules of FUNCTION_DIR (default:
example/), the packages of FUNCTION_DIR/requirements.txt and the whole standard library, bundles the
C library it was built against, and zips it reproducibly as DIST/bootstrap.zip (bootstrap at the
root, mode 0755). Upload that zip as the code of a provided.al2023 function.

Every zip is proven before it is written: the build unpacks it into a Lambda-like root (only /var/task,
or /opt for a layer, /tmp, /dev and /proc; no system libraries; Lambda's sandbox user and environment)
and runs init there: the runtime must load the handler and ask for its first event. A packaging fault
(a module or library that cannot load, a bootstrap that cannot start) fails the build: exit 1, the
runtime's own error printed, and no zip in DIST. Needs bubblewrap, and binutils for a native freeze:
run as root with apt-get or dnf, it installs them when missing (scripts/host_packages.sh), and says so.

With a Docker engine the freeze runs inside Amazon Linux 2023 ($DEFAULT_PY_IMAGE); without
one it runs natively, in a venv it makes itself (.venv-build/). Either way the bundle carries its own
C library and needs none from the system: it runs where Lambda unpacks it (/var/task, or /opt).

Options:
  --runtime-only    freeze no function code: a runtime for handlers shipped as source, used as a
                    layer (unpacked at /opt: /opt/bootstrap); FUNCTION_DIR must not be given
  --deps-only       freeze nothing: write DIST/function.zip, FUNCTION_DIR's files with its requirements
                    beside them and every module's bytecode, for the Python a native --runtime-only
                    build freezes with (the same PYTHON): the code of a function on that layer.
                    Natively only; the Lambda-like root is not used
  --allow-sdist     let pip build a requirement that has no wheel for this Python and platform from
                    source. That runs the package's build code on this machine and compiles with its
                    compiler and libraries: the binary may need libraries or CPU features Lambda
                    lacks (the check in the root catches a missing library, not a missing CPU
                    feature), and it depends on this machine. Default: wheels only
  --handler H       the handler (MODULE.FUNCTION, Lambda's handler setting, or MODULE:APP for a web
                    app, as _HANDLER=main:app) the check loads and the zip records for ./smoke.sh.
                    Default: the one a template.yaml beside FUNCTION_DIR names, else the folder's one
                    obvious handler (lambda_function.lambda_handler, say); when in doubt, one is
                    assumed, said, and every module of the folder is imported too. With --deps-only,
                    function.zip records it for ./smoke.sh --task function.zip --opt LAYER.zip
  --env KEY=VALUE   an environment variable for the check and --smoke (repeatable), for a function
                    that reads its configuration at import
  --no-verify       skip the check in the Lambda-like root. The zip is then unproven: a module or
                    library that cannot load shows up only as an init error on Lambda
  --smoke           after building, invoke the zip's own frozen function once in the Lambda-like root
                    under the Runtime Interface Emulator (./smoke.sh: the response, the function's log
                    and the init duration)
  --event JSON      the event for --smoke, or @FILE (default: {})
  --target T        al2023, the only Lambda OS-only runtime open to new code
  --python-image I  the Docker build image (default $DEFAULT_PY_IMAGE; python:3.12 and
                    python:3.14 are the other Amazon Linux 2023 images)
  --arch A          x86_64 or arm64 (default: this machine's). Another architecture needs
                    Docker buildx (and QEMU binfmt, or a native arm64 machine)
  --native          freeze on this machine even if a Docker engine is available
  --docker          freeze in Docker; fail if no Docker engine is available
  --dist DIR        where bootstrap.zip is written (default: dist/)
  --work DIR        build folder (default: build/)
  -h, --help        show this help

Environment:
  PYTHON            the host Python that makes .venv-build/ (default: the newest of Python 3.14,
                    3.13, 3.12, 3.11 on PATH or under pyenv; the build says which). It needs venv,
                    pip and its shared libpython (Debian: apt-get install python3-venv libpython3-dev)
  BOOTSTRAP_PY      runtime script to freeze instead of ./bootstrap.py (native builds only)
  SOURCE_DATE_EPOCH timestamp stored in the zip (default 315532800 = 1980-01-01)
  DOCKER            docker command (default: docker)

Why not provided.al2: AWS blocked creating provided.al2 functions (from 2026-07-31 or 08-31, by the
copy of AWS's table) and updating their code (2026-08-31 or 09-30); Amazon Linux 2 gets no more fixes.

Examples:
  $PROG                               # example/ -> dist/bootstrap.zip, proven in a bare root
  $PROG path/to/fn --env TABLE=t1     # a function that reads TABLE at import
  $PROG --runtime-only                # a layer: dist/bootstrap.zip unpacks to /opt/bootstrap
  $PROG --smoke --event '{"name": "x"}'
EOF
}

die() {
    echo "build.sh: error: $*" >&2
    exit 2
}
log() { echo "build.sh: $*" >&2; }

DEFAULT_PY_IMAGE="public.ecr.aws/lambda/python:3.13"
PY_IMAGE="$DEFAULT_PY_IMAGE"
ARCH=""
MODE="auto"
RUNTIME_ONLY=0
DIST="$REPO_ROOT/dist"
WORK="$REPO_ROOT/build"
SMOKE=0
VERIFY=1
HANDLER=""
ALSO_IMPORT=()
EVENT="{}"
ENV_ARGS=()
FUNCTION_DIR=""
DEPS_ONLY=0
FREEZE_FLAGS=()
DOCKER="${DOCKER:-docker}"

need_value() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see --help)"; }
check_target() {
    case "$1" in
    al2023 | provided.al2023) ;;
    al2 | provided.al2)
        die "provided.al2 is closed: AWS blocked creating provided.al2 functions from 2026-07-31 (2026-08-31 in some copies of its table) and updating their code from 2026-08-31 (2026-09-30), and Amazon Linux 2 gets no more security fixes. Deploy this zip to provided.al2023 instead (drop --target), and move an existing function with: aws lambda update-function-configuration --function-name NAME --runtime provided.al2023"
        ;;
    *) die "--target must be al2023, not '$1'" ;;
    esac
}
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --python-image) need_value "$@"; PY_IMAGE="$2"; shift 2 ;;
    --python-image=*) PY_IMAGE="${1#*=}"; shift ;;
    --target) need_value "$@"; check_target "$2"; shift 2 ;;
    --target=*) check_target "${1#*=}"; shift ;;
    --arch) need_value "$@"; ARCH="$2"; shift 2 ;;
    --arch=*) ARCH="${1#*=}"; shift ;;
    --native) [[ "$MODE" != docker ]] || die "--native and --docker exclude each other"; MODE="native"; shift ;;
    --docker) [[ "$MODE" != native ]] || die "--native and --docker exclude each other"; MODE="docker"; shift ;;
    --runtime-only) RUNTIME_ONLY=1; shift ;;
    --deps-only) DEPS_ONLY=1; shift ;;
    --allow-sdist) FREEZE_FLAGS+=(--allow-sdist); shift ;;
    --dist) need_value "$@"; DIST="$2"; shift 2 ;;
    --work) need_value "$@"; WORK="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --no-verify) VERIFY=0; shift ;;
    --handler) need_value "$@"; HANDLER="$2"; shift 2 ;;
    --event) [[ $# -ge 2 && -n "$2" ]] || die "--event needs a JSON value or @FILE"; EVENT="$2"; shift 2 ;;
    --env)
        need_value "$@"
        [[ "$2" == ?*=* ]] || die "--env wants KEY=VALUE, not '$2'"
        ENV_ARGS+=(--env "$2")
        shift 2
        ;;
    --onedir | --onefile | --static)
        die "$1 is gone: every build is a onedir bundle that carries its own C library; it runs on provided.al2023 whatever glibc built it, and starts faster than onefile or staticx did (README, Build)"
        ;;
    --) shift; break ;;
    -*) die "unknown option '$1' (see ./build.sh --help)" ;;
    *)
        [[ -z "$FUNCTION_DIR" ]] || die "only one FUNCTION_DIR may be given ('$FUNCTION_DIR' and '$1')"
        FUNCTION_DIR="$1"
        shift
        ;;
    esac
done
if [[ $# -gt 0 ]]; then
    [[ -z "$FUNCTION_DIR" && $# -eq 1 ]] || die "only one FUNCTION_DIR may be given"
    FUNCTION_DIR="$1"
fi

# --- check the arguments ------------------------------------------------------------------------
HOST_ARCH="$(uname -m)"
case "$HOST_ARCH" in aarch64) HOST_ARCH=arm64 ;; amd64) HOST_ARCH=x86_64 ;; esac
case "${ARCH:-$HOST_ARCH}" in
x86_64 | amd64) ARCH=x86_64; PLATFORM=linux/amd64 ;;
arm64 | aarch64) ARCH=arm64; PLATFORM=linux/arm64 ;;
*) die "--arch must be x86_64 or arm64, not '${ARCH:-$HOST_ARCH}'" ;;
esac
# Where Lambda unpacks the zip, baked into the bootstrap: /var/task for a function, /opt for a layer.
PREFIX="/var/task"
ROOT_PLACE="--task"
if [[ $RUNTIME_ONLY == 1 ]]; then
    [[ -z "$FUNCTION_DIR" ]] || die "--runtime-only freezes no function: do not give FUNCTION_DIR ('$FUNCTION_DIR')"
    PREFIX="/opt"
    ROOT_PLACE="--opt"
else
    FUNCTION_DIR="${FUNCTION_DIR:-$REPO_ROOT/example}"
    [[ -d "$FUNCTION_DIR" ]] || die "function folder '$FUNCTION_DIR' does not exist (give the folder that holds your handler module, e.g. ./build.sh example/)"
    if ! compgen -G "$FUNCTION_DIR/*.py" >/dev/null && ! compgen -G "$FUNCTION_DIR/*/__init__.py" >/dev/null; then
        die "'$FUNCTION_DIR' holds no Python module (*.py) or package; give the folder with your handler (or use --runtime-only)"
    fi
    FUNCTION_DIR="$(cd "$FUNCTION_DIR" && pwd)"
fi
if [[ $DEPS_ONLY == 1 ]]; then
    [[ $RUNTIME_ONLY == 0 && $SMOKE == 0 ]] || die "--deps-only installs a function's requirements: it takes no --runtime-only or --smoke"
    [[ "$MODE" != docker ]] || die "--deps-only runs natively, for the Python a native --runtime-only build freezes with"
    MODE=native VERIFY=0 FREEZE_FLAGS+=(--deps-only)
fi
if [[ $VERIFY == 1 || $SMOKE == 1 ]]; then
    [[ "$ARCH" == "$HOST_ARCH" ]] ||
        die "the check runs the bootstrap here, and an $ARCH bootstrap cannot run on $HOST_ARCH: add --no-verify (and drop --smoke), then test it on an $ARCH machine"
    "$REPO_ROOT/scripts/host_packages.sh" --for "build.sh's check in a Lambda-like root (--no-verify skips it)" bwrap
fi
BOOTSTRAP="${BOOTSTRAP_PY:-$REPO_ROOT/bootstrap.py}"
[[ -f "$BOOTSTRAP" ]] || die "runtime script '$BOOTSTRAP' does not exist (set BOOTSTRAP_PY, or run from a full checkout)"
mkdir -p "$DIST" "$WORK"
DIST="$(cd "$DIST" && pwd)"
WORK="$(cd "$WORK" && pwd)"
ZIP_NAME="bootstrap.zip"
if [[ $DEPS_ONLY == 1 ]]; then ZIP_NAME="function.zip"; fi
if [[ $RUNTIME_ONLY == 1 ]]; then
    FUNCTION_DIR="$WORK/empty-function"
    rm -rf "$FUNCTION_DIR"
    mkdir -p "$FUNCTION_DIR"
fi

docker_engine() { command -v "$DOCKER" >/dev/null 2>&1 && "$DOCKER" info >/dev/null 2>&1; }
WHY="--native"
if [[ "$MODE" == auto ]]; then
    if docker_engine; then MODE=docker; else MODE=native WHY="no Docker engine"; fi
elif [[ "$MODE" == docker ]] && ! docker_engine; then
    die "--docker: no Docker engine answers ('$DOCKER info' failed). Start one, or drop --docker to build natively"
fi
if [[ "$MODE" == native && "$PY_IMAGE" != "$DEFAULT_PY_IMAGE" ]]; then
    die "--python-image is for Docker builds ($WHY here): a native build freezes with \$PYTHON (default: the newest current Python found)"
fi
if [[ "$MODE" == native && "$ARCH" != "$HOST_ARCH" ]]; then
    die "this machine is $HOST_ARCH; an $ARCH build needs Docker buildx (PyInstaller cannot cross-build). Run on a machine with a Docker engine (and QEMU binfmt), or on an $ARCH machine"
fi
if [[ "$MODE" == native ]]; then
    "$REPO_ROOT/scripts/host_packages.sh" --for "build.sh's native freeze (PyInstaller)" objdump objcopy strip
fi

# The build starts: a failed one must not leave an older zip behind that looks like its result.
rm -f "$DIST/$ZIP_NAME" "$DIST/$ZIP_NAME.tmp"
START=$SECONDS
OUT="$WORK/$MODE-$ARCH"
if [[ $DEPS_ONLY == 1 ]]; then OUT="$WORK/deps-only-$ARCH"; fi # a layer's bundle in $MODE-$ARCH stays

# --- Docker: freeze inside Amazon Linux 2023 ----------------------------------------------------
build_docker() {
    "$DOCKER" buildx version >/dev/null 2>&1 ||
        die "Docker buildx is missing (needed for --platform and --output); install the buildx plugin"
    log "Docker engine found: freezing inside $PY_IMAGE (Amazon Linux 2023) for $PLATFORM"
    if [[ "$ARCH" != "$HOST_ARCH" ]]; then
        log "note: $ARCH on a $HOST_ARCH machine runs under QEMU emulation: expect it to take several times longer"
    fi
    if [[ -n "${BOOTSTRAP_PY:-}" ]]; then
        die "BOOTSTRAP_PY is for native builds; the Docker build freezes ./bootstrap.py (use --native)"
    fi
    rm -rf "$OUT"
    mkdir -p "$OUT"
    "$DOCKER" buildx build \
        --platform "$PLATFORM" \
        --build-context "function=$FUNCTION_DIR" \
        --build-arg "PY_IMAGE=$PY_IMAGE" \
        --build-arg "PREFIX=$PREFIX" \
        --build-arg "FREEZE_FLAGS=${FREEZE_FLAGS[*]-}" \
        --build-arg "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}" \
        --target artifact \
        --output "type=local,dest=$OUT" \
        "$REPO_ROOT" ||
        die "the Docker build failed (see above). To build without Docker: ./build.sh --native"
    [[ -f "$OUT/bootstrap.zip" ]] || die "the Docker build produced no bootstrap.zip in $OUT"
    cat "$OUT/glibc-report.txt" 2>/dev/null || true
}

# --- native: the same freeze in a venv of our own -----------------------------------------------
# Python releases still getting fixes, newest first (3.9 and 3.10 are past their end of life).
CURRENT_PYTHONS=(3.14 3.13 3.12 3.11)
# newest_python: prints the newest current Python on PATH or under pyenv, or nothing.
newest_python() {
    local version candidate
    for version in "${CURRENT_PYTHONS[@]}"; do
        for candidate in "python$version" "${PYENV_ROOT:-$HOME/.pyenv}/versions/$version".*/bin/python3; do
            if "$candidate" -c 'import sys' >/dev/null 2>&1; then
                command -v "$candidate"
                return 0
            fi
        done
    done
}

ensure_venv() {
    local python="${PYTHON:-}" why="PYTHON"
    if [[ -z "$python" ]]; then
        python="$(newest_python)"
        why="the newest current Python found (${CURRENT_PYTHONS[*]}); PYTHON=/path/to/python picks another"
        [[ -n "$python" ]] || die "no current Python (${CURRENT_PYTHONS[*]}) on PATH or under pyenv: install one (Debian: apt-get install python3 python3-venv libpython3-dev) or set PYTHON=/path/to/python3"
    fi
    log "freezing with Python $("$python" -c 'import sys; print(sys.version.split()[0])' 2>/dev/null || echo '?') ($python): $why"
    local venv="$REPO_ROOT/.venv-build"
    command -v "$python" >/dev/null 2>&1 ||
        die "no '$python' on PATH: install Python 3 (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3"
    local want
    want="$("$python" -c 'import sys; print(sys.version.split()[0], sys.executable)') $(sha256sum "$REPO_ROOT/requirements.lock" | cut -c1-64)"
    if [[ -x "$venv/bin/python" && -f "$venv/.build-stamp" && "$(cat "$venv/.build-stamp")" == "$want" ]]; then
        VENV_PY="$venv/bin/python"
    else
        log "making the build venv $venv with $python ($("$python" --version 2>&1)) from requirements.lock"
        rm -rf "$venv"
        "$python" -m venv "$venv" ||
            die "'$python -m venv' failed: install the venv module (Debian: apt-get install python3-venv) or set PYTHON to another Python 3"
        # Every build tool pinned with its hashes (requirements.txt's pins and all they pull in).
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
            -r "$REPO_ROOT/requirements.lock" ||
            die "pip could not install requirements.lock into $venv (network? a hash mismatch? see above)"
        echo "$want" >"$venv/.build-stamp"
        VENV_PY="$venv/bin/python"
    fi
}

build_native() {
    local os_name
    os_name="$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null || true)"
    if [[ $DEPS_ONLY == 1 ]]; then
        log "--deps-only: installing the function's requirements on this machine, for the Python a native build freezes with"
    else
        log "$WHY: freezing natively on this machine (${os_name:-$(uname -s)}, $(getconf GNU_LIBC_VERSION 2>/dev/null || echo "unknown libc"), $ARCH); the zip carries this C library"
    fi
    "$REPO_ROOT/scripts/freeze.sh" --python "$VENV_PY" --function "$FUNCTION_DIR" --out "$OUT" \
        --entry "$BOOTSTRAP" --prefix "$PREFIX" ${FREEZE_FLAGS[@]+"${FREEZE_FLAGS[@]}"} ||
        die "the freeze failed (see above); nothing was written to $DIST"
}

PYRUN="python3"
if [[ "$MODE" == native ]]; then
    ensure_venv
    PYRUN="$VENV_PY"
fi
# The handler: given, or found in the function's folder (scripts/function_handler.py says how).
if [[ $RUNTIME_ONLY == 0 && -z "$HANDLER" ]]; then
    found="$("$PYRUN" "$REPO_ROOT/scripts/function_handler.py" find "$FUNCTION_DIR")" ||
        die "no handler for $FUNCTION_DIR (above): give it with --handler MODULE.FUNCTION"
    read -r -a found_words <<<"$found"
    HANDLER="${found_words[0]}"
    ALSO_IMPORT=("${found_words[@]:1}")
fi
if [[ "$MODE" == docker ]]; then build_docker; else build_native; fi
if [[ $DEPS_ONLY == 1 ]]; then
    # Lambda ignores a zip's comment: it records the handler for ./smoke.sh (nothing is checked here).
    "$PYRUN" "$REPO_ROOT/scripts/function_handler.py" record "$OUT/function.zip" "$HANDLER"
    cp "$OUT/function.zip" "$DIST/$ZIP_NAME"
    log "wrote $DIST/$ZIP_NAME (it records its handler, $HANDLER, in its comment; set the same on the function): ship it as the code of a function on a layer built by ./build.sh --runtime-only with the same Python, and try them together with ./smoke.sh --task $DIST/$ZIP_NAME --opt LAYER.zip"
    exit 0
fi
if [[ $RUNTIME_ONLY == 0 ]]; then
    # Lambda ignores a zip's comment: it records the handler for the check and ./smoke.sh.
    "$PYRUN" "$REPO_ROOT/scripts/function_handler.py" record "$OUT/bootstrap.zip" "$HANDLER"
    log "the zip records its handler, $HANDLER, in its comment; its sha256 is now $(sha256sum "$OUT/bootstrap.zip" | cut -c1-64)"
fi

# --- the proof: init in a Lambda-like root --------------------------------------------------------
if [[ $VERIFY == 1 ]]; then
    log "checking the zip in a Lambda-like root (bare: no system libraries; bootstrap at $PREFIX)"
    set +e
    check_args=("$ROOT_PLACE" "$OUT/bootstrap.zip")
    for module in ${ALSO_IMPORT[@]+"${ALSO_IMPORT[@]}"}; do check_args+=(--also-import "$module"); done
    "$PYRUN" "$REPO_ROOT/scripts/lambda_root.py" check "${check_args[@]}" ${ENV_ARGS[@]+"${ENV_ARGS[@]}"} 2>"$OUT/check.log"
    rc=$?
    set -e
    cat "$OUT/check.log" >&2
    case $rc in
    0) ;;
    3) log "warning: the function's own import-time code failed in the check, and was accepted for the reason above (not a packaging fault: the bundle's modules, libraries and files all loaded); the zip is written" ;;
    *)
        log "error: the zip failed its check in the Lambda-like root (above): it would fail on Lambda too${HANDLER:+ with the handler $HANDLER (if yours is another, give it with --handler MODULE.FUNCTION)}. Nothing was written to $DIST"
        exit 1
        ;;
    esac
else
    log "warning: --no-verify: the zip was not started in a Lambda-like root; a module or library that cannot load will show up only on Lambda, as an init error"
fi

trap 'rm -f "$DIST/$ZIP_NAME.tmp"' EXIT # a failed or interrupted copy leaves nothing half-written
cp "$OUT/bootstrap.zip" "$DIST/$ZIP_NAME.tmp"
mv "$DIST/$ZIP_NAME.tmp" "$DIST/$ZIP_NAME"
log "wrote $DIST/$ZIP_NAME for provided.al2023 ($ARCH, $MODE build, unpacked at $PREFIX) in $((SECONDS - START)) s"
log "$(sed -n 's/^C library: //p' "$OUT/glibc-report.txt")"
log "unpacked bundle: $OUT/bundle"

if [[ $SMOKE == 1 ]]; then
    smoke_args=("$ROOT_PLACE" "$DIST/$ZIP_NAME" --event "$EVENT" ${ENV_ARGS[@]+"${ENV_ARGS[@]}"})
    log "smoke test: ./smoke.sh$(printf ' %q' "${smoke_args[@]}")"
    PYTHON="$PYRUN" "$REPO_ROOT/smoke.sh" "${smoke_args[@]}"
fi

# --- what the build shipped (scripts/build_summary.py, written by every freeze) -----------------
if [[ -f "$OUT/build-summary.txt" ]]; then cat "$OUT/build-summary.txt" >&2; fi
# Why the check let an init error through, last, where it is seen.
if [[ $VERIFY == 1 && -f "$OUT/check.log" ]]; then sed -n 's/^  accepted: /  check:     init error accepted: /p' "$OUT/check.log" >&2; fi
