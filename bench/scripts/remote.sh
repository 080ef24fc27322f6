#!/bin/bash
# The sidecar case: Redis across a network. A relay (bench/relay/relay.c) adds a
# fixed delay in each direction between Redis and whoever talks to it; the
# application's latency is measured with loadgen in open loop at a fixed rate
# (from each request's intended send time), talking to Redis through the relay
# directly, and to nearcache on loopback with nearcache talking to Redis
# through the relay, at several hit ratios of the local tier. The hit ratio is
# set with a cache rule that bypasses a share of the keys by their last digits.
# One nearcache per hit ratio runs throughout; the five targets are measured in
# turn, ROUNDS times, and the medians are reported: on a shared 2-core machine a
# few ms of another process's work lands in whichever single run is going, and
# shows as that target's p99. For the same reason the measured processes run at
# SCHED_FIFO priority when chrt is allowed (RT=0 to not).
# usage: bench/scripts/remote.sh [SECONDS] [RATE]   (default 5 s at 2000 requests/s)
# env:   DELAY=500us (one way), ROUNDS=3, RT=1, OUT=dir (default build/bench-results), BUILD=dir
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
rate=${2:-2000}
delay=${DELAY:-500us}
rounds=${ROUNDS:-3}
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

# Real-time priority for what is measured (servers and the measuring loadgen),
# so that other work on the machine does not preempt it mid-request.
rt=()
if [ "${RT:-1}" = 1 ] && chrt -f 1 true 2>/dev/null; then rt=(chrt -f 1); fi
rt_pid() { [ ${#rt[@]} -eq 0 ] || chrt -a -f -p 1 "$1" >/dev/null; }

start_redis
relay_port=$(free_port)
"$build/bench/relay" --listen "127.0.0.1:$relay_port" --to "127.0.0.1:$redis_port" \
    --delay "$delay" --quiet &
pids+=($!)
rt_pid "$redis_pid"
rt_pid "$!"
wait_port "$relay_port"
"$loadgen" -p "$redis_port" --quiet --preload -n 1 -c 1 --prefix rm: --keys "$keys" >/dev/null

# One latency run: loadgen at the fixed rate against port $1; prints JSON.
measure() {
    "${rt[@]}" "$loadgen" -p "$1" --prefix rm: --keys "$keys" --mix get:100 -c 20 --rate "$rate" \
        -d "${seconds}s" --warmup 2s --quiet --json -
}

# bypassed keys -> intended hit ratio: all, half, one in ten, one in a hundred
specs=("rm:*:0" "rm:*[0-4]:50" "rm:*0:90" "rm:*00:99")
nc_ports=()
# Starts nearcache $1 through the relay with the keys matching $2 bypassed.
start_nearcache() {
    cat >"$dir/nc$1.yaml" <<YML
policy:
  cache:
    - {name: miss, keys: "$2", cache: false}
YML
    nc_ports[$1]=$(free_port)
    "$build/nearcache" -c "$dir/nc$1.yaml" --set admin.listen=none --set workers=1 --listen "127.0.0.1:${nc_ports[$1]}" \
        --upstream "127.0.0.1:$relay_port" 2>>"$dir/nearcache$1.log" &
    pids+=($!)
    rt_pid "$!"
    wait_port "${nc_ports[$1]}"
    wait_tier "${nc_ports[$1]}"
    # Every key read a few times first: the cacheable ones are then in the tier.
    "$loadgen" -p "${nc_ports[$1]}" --prefix rm: --keys "$keys" --mix get:100 -c 10 -P 16 \
        -n $((keys * 20)) --quiet >/dev/null
}
stat_of() { redis-cli -p "$1" nearcache stats | tr -d '\r' | awk -F: -v k="$2" '$1 == k { print $2 }'; }
for i in "${!specs[@]}"; do start_nearcache "$i" "${specs[$i]%:*}"; done

echo "machine: $(nproc) cores, $(uname -r); $(date -u +%F)"
echo "one-way delay $delay; loadgen GET, $keys keys, 20 connections, open loop at $rate/s," \
    "${seconds}s per run, $rounds rounds, targets interleaved${rt:+, SCHED_FIFO}"
: >"$out/remote.jsonl"
for round in $(seq "$rounds"); do
    direct=$(measure "$relay_port")
    echo "{\"target\": \"direct\", \"round\": $round, \"hit_ratio\": null, \"run\": $direct}" \
        >>"$out/remote.jsonl"
    for i in "${!specs[@]}"; do
        port=${nc_ports[$i]}
        h0=$(stat_of "$port" hits) m0=$(stat_of "$port" misses)
        run=$(measure "$port")
        h1=$(stat_of "$port" hits) m1=$(stat_of "$port" misses)
        ratio=$(awk -v h=$((h1 - h0)) -v m=$((m1 - m0)) 'BEGIN { printf "%.3f", h + m ? h / (h + m) : 0 }')
        echo "{\"target\": \"nearcache\", \"round\": $round, \"intended\": ${specs[$i]##*:}," \
            "\"hit_ratio\": $ratio, \"run\": $run}" >>"$out/remote.jsonl"
    done
done
python3 - "$out/remote.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
groups = {}
for r in rows:
    groups.setdefault((r["target"], r.get("intended")), []).append(r)
med = lambda xs: statistics.median(xs)
def pct(g, p):
    return med([r["run"]["latency_us"][p] for r in g])
direct = groups[("direct", None)]
print("medians of", len(direct), "rounds")
print("| target | tier hit ratio | p50 µs | p90 µs | p99 µs | p99.9 µs | p50 / direct |"
      " p99 / direct | send lag p99 µs | errors, wrong |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (target, _), g in groups.items():
    hit = "-" if g[0]["hit_ratio"] is None else f"{med([r['hit_ratio'] for r in g]):.2f}"
    bad = sum(sum(r["run"]["errors"].values()) + r["run"]["wrong"] for r in g)
    lag = med([r["run"]["lag_us"]["p99"] for r in g])
    print(f"| {target} | {hit} | {pct(g, 'p50'):.0f} | {pct(g, 'p90'):.0f} | {pct(g, 'p99'):.0f} |"
          f" {pct(g, 'p999'):.0f} | {pct(g, 'p50') / pct(direct, 'p50'):.2f} |"
          f" {pct(g, 'p99') / pct(direct, 'p99'):.2f} | {lag:.0f} | {bad} |")
PY
