#!/usr/bin/env bash
# Makes sure this machine has the programs a command needs, installing their packages when it can.
# Used by build.sh and test.sh, the README's two commands, so that a fresh machine needs nothing by hand.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/host_packages.sh --for WHAT NEED...

Checks that each NEED is on this machine: a command (bwrap, objdump, objcopy, strip, make, unzip,
shellcheck, dpkg-deb) or a file set (ca-certificates, tzdata). When some are missing and this runs as
root with apt-get (Debian, Ubuntu) or dnf (Fedora, Amazon Linux), it installs their packages and says
which; otherwise it stops (exit 2) with the command to run. WHAT names the caller in its messages.

  bwrap       bubblewrap: the Lambda-like root every build is checked in
  objdump, objcopy, strip
              binutils: PyInstaller reads and strips the bundle's libraries with them
  make, unzip `sam build` of a function with BuildMethod: makefile (the tests)
  shellcheck  the tests' lint of the shell scripts
  dpkg-deb    the glibc-2.31 root unpacks Debian 11's packages with it (Debian and Ubuntu have it)
  ca-certificates, tzdata
              the CA file and the zone database the root lends to the function

Environment: HOST_PACKAGES=no checks only (it never installs, and stops on anything missing).
EOF
}

die() {
    echo "host_packages.sh: error: $*" >&2
    exit 2
}

# package_for NEED MANAGER: the package that brings NEED with apt-get or dnf.
package_for() {
    case "$1" in
    bwrap) echo bubblewrap ;;
    objdump | objcopy | strip) echo binutils ;;
    make | unzip | ca-certificates | tzdata) echo "$1" ;;
    shellcheck) if [[ "$2" == dnf ]]; then echo ShellCheck; else echo shellcheck; fi ;;
    dpkg-deb) echo dpkg ;;
    *) die "unknown need '$1' (see --help)" ;;
    esac
}

# present NEED: whether this machine has it.
present() {
    case "$1" in
    ca-certificates) [[ -f /etc/ssl/certs/ca-certificates.crt || -f /etc/pki/tls/certs/ca-bundle.crt ]] ;;
    tzdata) [[ -f /usr/share/zoneinfo/UTC ]] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

what=""
needs=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    -h | --help) usage; exit 0 ;;
    --for) [[ $# -ge 2 ]] || die "--for needs a value"; what="$2"; shift 2 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) needs+=("$1"); shift ;;
    esac
done
[[ -n "$what" && ${#needs[@]} -gt 0 ]] || die "give --for WHAT and at least one NEED (see --help)"

missing=()
for need in "${needs[@]}"; do
    package_for "$need" apt-get >/dev/null # an unknown need stops here, present or not
    present "$need" || missing+=("$need")
done
((${#missing[@]})) || exit 0

manager=""
if command -v apt-get >/dev/null 2>&1; then
    manager=apt-get
elif command -v dnf >/dev/null 2>&1; then
    manager=dnf
fi
packages=()
for need in "${missing[@]}"; do
    package="$(package_for "$need" "${manager:-apt-get}")"
    [[ " ${packages[*]} " == *" $package "* ]] || packages+=("$package")
done
if [[ "${HOST_PACKAGES:-}" == no || -z "$manager" || $EUID -ne 0 ]]; then
    why="this is not root"
    [[ -n "$manager" ]] || why="neither apt-get nor dnf is here"
    [[ "${HOST_PACKAGES:-}" != no ]] || why="HOST_PACKAGES=no"
    die "$what needs ${missing[*]}, missing here, and installs nothing ($why): install the packages ${packages[*]} (apt-get install ${packages[*]}, or dnf install ${packages[*]}), then run it again"
fi

echo "host_packages.sh: $what needs ${missing[*]}: installing ${packages[*]} with $manager" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# install: runs the package manager, its output kept for a failure only.
install() { "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }; }
if [[ $manager == apt-get ]]; then
    install apt-get update -q || die "apt-get update failed (network? above); install ${packages[*]} by hand"
    install env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" ||
        die "apt-get install ${packages[*]} failed (above)"
else
    install dnf install -y -q "${packages[@]}" ||
        die "dnf install ${packages[*]} failed (above; ShellCheck comes from EPEL on Amazon Linux and RHEL)"
fi
for need in "${missing[@]}"; do
    present "$need" || die "$need is still missing after installing ${packages[*]}"
done
