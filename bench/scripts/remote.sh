#!/bin/bash
# The sidecar case: Redis across a network. A relay (bench/relay/relay.c) adds a
# fixed delay in each direction between Redis and whoever talks to it; the
# application's latency is measured with loadgen in open loop at a fixed rate
# (from each request's intended send time), talking to Redis through the relay
# directly, and to nearcache on loopback with nearcache talking to Redis
# through the relay, at several hit ratios of the local tier. The hit ratio is
# set with a cache rule that bypasses a share of the keys by their last digits.
# usage: bench/scripts/remote.sh [SECONDS] [RATE]   (default 5 s at 2000 requests/s)
# env:   DELAY=500us (one way), OUT=dir (default build/bench-results), BUILD=dir
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
rate=${2:-2000}
delay=${DELAY:-500us}
build=${BUILD:-build}
out=${OUT:-$build/bench-results}
deploy/deps.sh --bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target nearcache loadgen relay >/dev/null
loadgen=$build/bench/loadgen
keys=1000

. bench/scripts/lib.sh
bench_setup remote
mkdir -p "$out"

start_redis
relay_port=$(free_port)
"$build/bench/relay" --listen "127.0.0.1:$relay_port" --to "127.0.0.1:$redis_port" \
    --delay "$delay" --quiet &
pids+=($!)
wait_port "$relay_port"
"$loadgen" -p "$redis_port" --quiet --preload -n 1 -c 1 --prefix rm: --keys "$keys" >/dev/null

# One latency run: loadgen at the fixed rate against port $1; prints JSON.
measure() {
    "$loadgen" -p "$1" --prefix rm: --keys "$keys" --mix get:100 -c 20 --rate "$rate" \
        -d "${seconds}s" --warmup 2s --quiet --json -
}

nc_port=$(free_port)
nc_pid=""
# (Re)starts nearcache through the relay with the keys matching $1 bypassed.
start_nearcache() {
    if [ -n "$nc_pid" ]; then
        kill "$nc_pid" || true
        wait "$nc_pid" 2>/dev/null || true
    fi
    cat >"$dir/nc.yaml" <<YML
policy:
  cache:
    - {name: miss, keys: "$1", cache: false}
YML
    "$build/nearcache" -c "$dir/nc.yaml" --listen "127.0.0.1:$nc_port" \
        --upstream "127.0.0.1:$relay_port" 2>>"$dir/nearcache.log" &
    nc_pid=$!
    pids+=("$nc_pid")
    wait_port "$nc_port"
    wait_tier "$nc_port"
}
stat_of() { redis-cli -p "$nc_port" nearcache stats | tr -d '\r' | awk -F: -v k="$1" '$1 == k { print $2 }'; }

echo "machine: $(nproc) cores, $(uname -r); $(date -u +%F)"
echo "one-way delay $delay; loadgen GET, $keys keys, 20 connections, open loop at $rate/s, ${seconds}s"
: >"$out/remote.jsonl"
direct=$(measure "$relay_port")
echo "{\"target\": \"direct\", \"hit_ratio\": null, \"run\": $direct}" >>"$out/remote.jsonl"
# bypassed keys -> intended hit ratio: all, half, one in ten, one in a hundred
for spec in "rm:*:0" "rm:*[0-4]:50" "rm:*0:90" "rm:*00:99"; do
    start_nearcache "${spec%:*}"
    # Every key read a few times first: the cacheable ones are then in the tier.
    "$loadgen" -p "$nc_port" --prefix rm: --keys "$keys" --mix get:100 -c 10 -P 16 \
        -n $((keys * 20)) --quiet >/dev/null
    h0=$(stat_of hits) m0=$(stat_of misses)
    run=$(measure "$nc_port")
    h1=$(stat_of hits) m1=$(stat_of misses)
    ratio=$(awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { printf "%.3f", h + m ? h / (h + m) : 0 }')
    echo "{\"target\": \"nearcache\", \"intended\": ${spec##*:}, \"hit_ratio\": $ratio, \"run\": $run}" \
        >>"$out/remote.jsonl"
done
python3 - "$out/remote.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
direct = rows[0]["run"]["latency_us"]
print("| target | tier hit ratio | p50 µs | p90 µs | p99 µs | p99.9 µs | p50 / direct | errors, wrong |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for r in rows:
    lat, run = r["run"]["latency_us"], r["run"]
    hit = "-" if r["hit_ratio"] is None else f"{r['hit_ratio']:.2f}"
    bad = sum(run["errors"].values()) + run["wrong"]
    print(f"| {r['target']} | {hit} | {lat['p50']:.0f} | {lat['p90']:.0f} | {lat['p99']:.0f} |"
          f" {lat['p999']:.0f} | {lat['p50'] / direct['p50']:.2f} | {bad} |")
PY
