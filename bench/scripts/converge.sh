#!/bin/bash
# How fast a write made outside a nearcache instance becomes visible through it:
# starts redis-server and two nearcache instances (defaults: cache and tracking
# on) in front of it, and runs converge_bench: write on Redis and read through
# proxy A, then write through proxy A and read through proxy B.
# usage: bench/scripts/converge.sh [ITERATIONS] [ROUNDS]   (default 2000 writes, 3 rounds)
# env:   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
iterations=${1:-2000}
rounds=${2:-3}
build=${BUILD:-build}
deploy/deps.sh --bench
cmake -S . -B "$build" >/dev/null && cmake --build "$build" -j"$(nproc)" --target nearcache converge_bench >/dev/null

. bench/scripts/lib.sh
bench_setup converge
start_redis

proxy_ports=()
for name in a b; do
    port=$(free_port)
    "$build/nearcache" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$port" --upstream "127.0.0.1:$redis_port" 2>"$dir/nearcache-$name.log" &
    pids+=($!)
    wait_port "$port"
    wait_tier "$port"
    proxy_ports+=("$port")
done

echo "machine: $(nproc) cores, $(uname -r); $(redis-server --version | cut -d' ' -f3); $(date -u +%F)"
for round in $(seq "$rounds"); do
    echo "round $round: $build/bench/converge_bench $iterations (redis, proxy a, proxy b)"
    "$build/bench/converge_bench" "$iterations" "$redis_port" "${proxy_ports[0]}" "${proxy_ports[1]}"
done
