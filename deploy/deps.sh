#!/bin/sh
# Installs the Debian 12 packages that nearcache needs to build, test and run,
# skipping those already present. With --bench, also what bench/ compares
# against. Needs root (or sudo) only when something is missing.
set -eu
PKGS="build-essential cmake pkg-config libev-dev libhiredis-dev libyaml-dev liblz4-dev libssl-dev libcriterion-dev
      libmicrohttpd-dev libjansson-dev libsystemd-dev
      redis-server redis-tools python3 python3-redis clang libclang-rt-14-dev ca-certificates"
# Node.js and npm for the real-client tests, unless installed some other way.
command -v node >/dev/null && command -v npm >/dev/null || PKGS="$PKGS nodejs npm"
[ "${1:-}" = "--bench" ] && PKGS="$PKGS nutcracker valgrind gnuplot-nox"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
