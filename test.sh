#!/usr/bin/env bash
# Runs every check of the project on a fresh Linux machine: lint, then the whole test suite on the main
# Python (3.11), then the runtime's own tests on Python 3.12 and 3.13. Installs what it needs into
# virtual environments under the repository (.venv*, git-ignored).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./test.sh [--quick] [--main-only] [-- PYTEST_ARGS...]

  --quick       skip the slow tests (freezing, the emulator) and the other Pythons
  --main-only   run only on the main Python (3.11), all tests
  -h, --help    this text

Installs the system packages the tests need when they are missing and it can (as root, with
apt-get or dnf; scripts/host_packages.sh says which), else stops naming them.

Environment: PYTHON (main interpreter, default python3.11), CI=true (a missing
interpreter for 3.12 or 3.13 is then an error instead of a warning), HOST_PACKAGES=no
(install nothing).
EOF
}

quick=0 main_only=0 pytest_args=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --main-only) main_only=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; pytest_args=("$@"); break ;;
    *) echo "test.sh: unknown argument '$1' (see ./test.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")"
ci=${CI:-false}

# What the tests need from the system, installed when missing (as root, with apt-get or dnf): bubblewrap
# for the Lambda-like root; binutils for PyInstaller; dpkg-deb for the root's glibc-2.31 variant; the CA
# file and zone database the root lends; make and unzip for `sam build`; shellcheck for the lint test.
scripts/host_packages.sh --for ./test.sh bwrap objdump objcopy strip dpkg-deb ca-certificates tzdata make unzip shellcheck

# find_python VERSION: prints an interpreter for that minor version, or nothing.
find_python() {
  local candidate
  for candidate in "python$1" "${PYENV_ROOT:-$HOME/.pyenv}/versions/$1".*/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys' >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
}

# make_venv DIR PYTHON REQUIREMENTS: creates the venv once, and installs when the requirements changed.
make_venv() {
  local dir=$1 python=$2 requirements=$3 stamp
  stamp="$dir/.requirements.sha256"
  if [[ ! -x "$dir/bin/python" ]]; then
    "$python" -m venv "$dir"
  fi
  if [[ ! -f "$stamp" ]] || ! sha256sum --status -c "$stamp" 2>/dev/null; then
    "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    sha256sum "$requirements" requirements.txt >"$stamp"
  fi
}

# run_pytest VENV ARGS...: pytest's "no tests collected" (5) is a failure here, never a pass.
run_pytest() {
  local venv=$1 status=0
  shift
  "$venv/bin/python" -m pytest "$@" || status=$?
  if ((status == 5)); then
    echo "test.sh: pytest collected no tests with '$*': the suite is broken" >&2
  fi
  return "$status"
}

main_python=${PYTHON:-$(find_python 3.11)}
if [[ -z "$main_python" ]]; then
  echo "test.sh: no Python 3.11 found; install it or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

make_venv .venv "$main_python" requirements-dev.txt
echo "== lint"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/hadolint Dockerfile

echo "== tests on $(.venv/bin/python -V)"
if ((quick)); then
  run_pytest .venv -m "not slow" "${pytest_args[@]}"
  exit 0
fi
run_pytest .venv "${pytest_args[@]}"
((main_only)) && exit 0

for version in 3.12 3.13; do
  python=$(find_python "$version" || true)
  if [[ -z "$python" ]]; then
    if [[ "$ci" == true ]]; then
      echo "test.sh: Python $version is missing on this CI machine; the runtime must be tested on it" >&2
      exit 1
    fi
    echo "test.sh: warning: Python $version not found, its runtime tests did not run" >&2
    continue
  fi
  make_venv ".venv-$version" "$python" tests/requirements-runtime.txt
  echo "== runtime tests on $(".venv-$version/bin/python" -V)"
  run_pytest ".venv-$version" -m "not build" -p no:cacheprovider "${pytest_args[@]}"
done
