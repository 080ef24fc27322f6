#!/bin/bash
# Quick start: installs what is missing, builds nearcache and runs it in the
# foreground on 127.0.0.1:6380. Arguments go to nearcache. When no upstream is
# configured (no -u/--upstream, -c/--config, NEARCACHE_UPSTREAM_ADDRESS or
# NEARCACHE_CONFIG), a throwaway redis-server is started on a unix socket in a
# temporary directory and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

configured=${NEARCACHE_UPSTREAM_ADDRESS:-${NEARCACHE_CONFIG:-}}
for arg in "$@"; do
    case "$arg" in -u* | --upstream* | -c* | --config*) configured=yes ;; esac
done
if [ -n "$configured" ]; then
    exec build/nearcache "$@"
fi

dir=$(mktemp -d /tmp/nearcache-dev.XXXXXX)
redis-server --port 0 --unixsocket "$dir/redis.sock" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done
echo "throwaway redis-server on $dir/redis.sock; try: redis-cli -p 6380 ping"
build/nearcache --upstream "$dir/redis.sock" "$@"
