#!/usr/bin/env bash
# Installs the Debian 12 packages shoal needs to build and test, when they
# are missing. Sourced by demo.sh and bench.sh (what building needs) and
# test.sh (everything); run alone it installs everything. Safe to run again.
set -euo pipefail

# What building shoal (and running its demo and bench) needs.
SHOAL_BUILD_PACKAGES=(
  build-essential cmake pkg-config
  libzmq3-dev libczmq-dev libyaml-dev libjansson-dev libcivetweb-dev
  libsqlite3-dev
  # The static shoal-worker (SHOAL_STATIC_WORKER): the archives of libzmq's
  # and czmq's own dependencies, and the GSSAPI and sd-daemon headers its
  # stand-ins are checked against (src/worker/static_link.c). libzmq3-dev
  # and libczmq-dev pull them in today; named here so the build does not
  # rest on that.
  libsodium-dev libpgm-dev libnorm-dev libbsd-dev libmd-dev uuid-dev
  libkrb5-dev libsystemd-dev
  python3 curl ca-certificates
)

# What the tests need besides.
SHOAL_TEST_PACKAGES=(
  libcurl4-openssl-dev
  libcmocka-dev valgrind
  clang libclang-rt-14-dev llvm
  python3-zmq
  python3-yaml python3-jsonschema shellcheck systemd
  groff-base man-db
  wget
  chromium fonts-dejavu-core
  # tests/containers: the image and compose.yaml for real, with Podman
  podman runc netavark aardvark-dns iptables docker-compose debootstrap
)

# Prints those of the named packages that are not installed.
shoal_missing_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' \
      || missing+=("$pkg")
  done
  echo "${missing[@]:-}"
}

# Installs the named packages that are missing.
shoal_install_packages() {
  local missing
  missing=$(shoal_missing_packages "$@")
  [ -z "$missing" ] && return 0
  echo "Installing missing packages: $missing"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
}

# What building needs: for demo.sh and bench.sh.
shoal_install_build_deps() {
  shoal_install_packages "${SHOAL_BUILD_PACKAGES[@]}"
}

# Everything: for test.sh.
shoal_install_deps() {
  shoal_install_packages "${SHOAL_BUILD_PACKAGES[@]}" "${SHOAL_TEST_PACKAGES[@]}"
}

# promtool (checks /metrics) from Debian's prometheus package, unpacked into
# DIR/usr/bin/promtool and never installed: installing the package would
# start a Prometheus server. Prints the path.
shoal_fetch_promtool() {
  local dir=$1 tool=$1/usr/bin/promtool
  if [ -x "$tool" ] && "$tool" --version >/dev/null 2>&1; then
    echo "$tool"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1) \
      || { rm -rf "$tmp"; echo "cannot download Debian's prometheus package" >&2; return 1; }
  fi
  mkdir -p "$dir"
  dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb \
    | tar -x -C "$dir" ./usr/bin/promtool
  rm -rf "$tmp"
  "$tool" --version >/dev/null 2>&1 || { echo "$tool does not run" >&2; return 1; }
  echo "$tool"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  shoal_install_deps
fi
