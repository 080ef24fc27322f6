#!/bin/bash
# What a reload of a large policy costs the clients: GET latency through the
# proxy (loadgen, one connection, no pipelining) for SECONDS without reloads,
# then for SECONDS with a SIGHUP every second, side by side. The policy has
# RULES validate, RULES cache and RULES invalidation rules.
#   bench/scripts/reload.sh [RULES] [SECONDS]      (default 40000 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
rules=${1:-40000}
seconds=${2:-10}
source bench/scripts/lib.sh
bench_setup reload

python3 - "$rules" >"$dir/nearcache.yaml" <<'EOF'
import sys
n = int(sys.argv[1])
print("policy:\n  validate:")
for i in range(n):
    print(f"    - {{name: v{i}, keys: 'v{i}:*', max_key_length: 200}}")
print("  cache:")
for i in range(n):
    print(f"    - {{name: c{i}, keys: 'c{i}:*', ttl: 1m}}")
print("  invalidate:")
for i in range(n):
    print(f"    - {{name: i{i}, when: 'w{i}:{{id}}', drop: 'c{i}:{{id}}'}}")
EOF

start_redis
port=$(free_port)
build/nearcache --config "$dir/nearcache.yaml" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$port" \
    --upstream "127.0.0.1:$redis_port" 2>"$dir/nearcache.log" &
proxy_pid=$!
pids+=("$proxy_pid")
wait_port "$port"
wait_tier "$port"

load() { build/bench/loadgen -p "$port" -c 1 -P 1 -d "${seconds}s" --mix get --keys 1000; }

echo "policy: $((3 * rules)) rules; $seconds s of GETs each"
echo "--- no reloads"
load | grep -E 'throughput|latency|errors|wrong'
echo "--- a SIGHUP every second"
(for _ in $(seq "$seconds"); do kill -HUP "$proxy_pid"; sleep 1; done) &
pids+=("$!")
load | grep -E 'throughput|latency|errors|wrong'
wait "${pids[-1]}"
for _ in $(seq 600); do
    [ "$(grep -c 'reloaded:' "$dir/nearcache.log")" -ge 1 ] && break
    sleep 0.1
done
echo "reloads applied: $(grep -c 'reloaded:' "$dir/nearcache.log")," \
    "failed: $(grep -c 'reload failed' "$dir/nearcache.log" || true)"
sed -n 's/.*read and built in \([0-9.]*\) ms, applied in \([0-9.]*\) ms/\1 \2/p' "$dir/nearcache.log" |
    sort -n -k2 | awk '{t += $1} END {printf "per reload: on the thread %.0f ms on average; " \
        "on the event loop %.2f ms at most\n", t / NR, $2}'
