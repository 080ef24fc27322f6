#!/bin/sh
# Installs the Debian 12 packages that nearcache needs to build, test and run,
# skipping those already present. With --build, only what building needs; with
# --bench, also what bench/ compares against. Needs root (or sudo) only when
# something is missing.
set -eu
# To build nearcache (deploy/Dockerfile's build stage: deps.sh --build).
PKGS="build-essential cmake pkg-config libev-dev libhiredis-dev libyaml-dev liblz4-dev libssl-dev
      libmicrohttpd-dev libjansson-dev libsystemd-dev ca-certificates"
if [ "${1:-}" != "--build" ]; then
    # To test it: criterion, Redis, the sanitizers and the fuzzer, the real clients, the
    # admin endpoint's consumers (Prometheus, its Python parser, systemd-analyze) and the
    # linters pre-commit runs (in a git checkout).
    PKGS="$PKGS libcriterion-dev redis-server redis-tools redis-sentinel openssl libnss-wrapper python3 python3-redis python3-yaml
          python3-prometheus-client prometheus systemd yamllint shellcheck clang-format pre-commit git
          clang libclang-rt-14-dev"
    # Node.js and npm for the real-client tests, unless installed some other way.
    command -v node >/dev/null && command -v npm >/dev/null || PKGS="$PKGS nodejs npm"
fi
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
