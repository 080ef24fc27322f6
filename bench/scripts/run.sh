#!/bin/bash
# The side-by-side runner: direct Redis, twemproxy (Debian's nutcracker) and
# nearcache, on loopback, under the same loadgen workloads, interleaved and
# repeated; prints a table of medians with nearcache's ratios, and one of the
# CPU time each process spends per request (user + system, from /proc, over
# the measured phase: free of the throughput noise of shared cores; for the set-*
# workloads also of a nearcache with the tier off), and writes them, the raw runs
# and PNG charts of throughput and latency to $OUT.
# usage: bench/scripts/run.sh [ROUNDS] [SECONDS]   (default 3 rounds of 3 s per run)
# env:   ONLY="hot-get-p16 set-p16" runs only those workloads; OUT=dir (default
#        build/bench-results); BUILD=dir (default build); BASE=dir also runs
#        dir/nearcache (an earlier build, not rebuilt) in the same rounds, for a
#        before/after table
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
seconds=${2:-3}
build=${BUILD:-build}
out=${OUT:-$build/bench-results}
deploy/deps.sh --bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target nearcache loadgen >/dev/null
loadgen=$build/bench/loadgen

# name | loadgen arguments. Key prefixes keep the workloads' data apart; the
# preloads below create it.
WORKLOADS="
hot-get-p16   | --prefix hot: --keys 1000 --mix get:100 -c 50 -P 16
hot-get-p1    | --prefix hot: --keys 1000 --mix get:100 -c 50 -P 1
hot-get-c500  | --prefix hot: --keys 1000 --mix get:100 -c 500 -P 1
zipf-mix-p1   | --prefix zipf: --keys 100000 --dist zipf:0.99 -c 50 -P 1
zipf-mix-p16  | --prefix zipf: --keys 100000 --dist zipf:0.99 -c 50 -P 16
set-p16       | --prefix set: --keys 100000 --mix set:100 -c 50 -P 16
set-p1        | --prefix set: --keys 100000 --mix set:100 -c 50 -P 1
set-c500      | --prefix set: --keys 100000 --mix set:100 -c 500 -P 1
mget10-p1     | --prefix mget: --keys 10000 --mix mget:10:100 -c 50 -P 1
large-get-p1  | --prefix large: --keys 100 --value 102400 --mix get:100 -c 50 -P 1
large-set-p1  | --prefix large: --keys 100 --value 102400 --mix set:100 -c 50 -P 1
"

. bench/scripts/lib.sh
bench_setup run
mkdir -p "$out"

start_redis

twem_port=$(free_port)
cat >"$dir/twemproxy.yml" <<YML
bench:
  listen: 127.0.0.1:$twem_port
  redis: true
  preconnect: true
  servers:
    - 127.0.0.1:$redis_port:1
YML
nutcracker -c "$dir/twemproxy.yml" -s "$(free_port)" -o "$dir/twemproxy.log" &
twem_pid=$!
pids+=("$twem_pid")
wait_port "$twem_port"

nc_port=$(free_port)
"$build/nearcache" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$nc_port" --upstream "127.0.0.1:$redis_port" \
    --set cache.max_memory=256mb 2>"$dir/nearcache.log" &
nc_pid=$!
pids+=("$nc_pid")
wait_port "$nc_port"
wait_tier "$nc_port"
# and with the tier off, for the writes only: forwarding's own cost, without
# the invalidations a write makes when the tier is on
notier_port=$(free_port)
"$build/nearcache" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$notier_port" \
    --upstream "127.0.0.1:$redis_port" --set cache.enabled=false 2>"$dir/nearcache-notier.log" &
notier_pid=$!
pids+=("$notier_pid")
wait_port "$notier_port"
targets="redis:$redis_port:$redis_pid twemproxy:$twem_port:$twem_pid,$redis_pid nearcache:$nc_port:$nc_pid,$redis_pid"
targets="$targets nearcache-notier:$notier_port:$notier_pid,$redis_pid"
if [ -n "${BASE:-}" ]; then
    base_port=$(free_port)
    "$BASE/nearcache" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$base_port" \
        --upstream "127.0.0.1:$redis_port" --set cache.max_memory=256mb 2>"$dir/nearcache-base.log" &
    base_pid=$!
    pids+=("$base_pid")
    wait_port "$base_port"
    wait_tier "$base_port"
    targets="$targets nearcache-base:$base_port:$base_pid,$redis_pid"
fi

# The data: every key of each prefix, except the last 20% of mget: (their
# reads are always misses, so MGET of 10 keys hits 80% of its keys).
preload() { "$loadgen" -p "$redis_port" --quiet --preload -n 1 -c 1 "$@" >/dev/null; }
preload --prefix hot: --keys 1000
preload --prefix zipf: --keys 100000
preload --prefix mget: --keys 8000
preload --prefix large: --keys 100 --value 102400

machine="$(nproc) cores, $(uname -r), Redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2)"
echo "machine: $machine; $(date -u +%F)"
echo "loadgen ${seconds}s per run after a 1s warm-up, $rounds rounds, targets interleaved"
: >"$out/raw.jsonl"
for round in $(seq "$rounds"); do
    while IFS='|' read -r name args; do
        name=$(echo "$name" | xargs)
        [ -z "$name" ] && continue
        if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
        # name:port:pids whose CPU time is measured (the target, then Redis behind it)
        for target in $targets; do
            IFS=: read -r tname tport tpids <<<"$target"
            if [ "$tname" = nearcache-notier ] && [[ $name != set-* ]]; then continue; fi
            # shellcheck disable=SC2086
            "$loadgen" -p "$tport" -d "${seconds}s" --warmup 1s --quiet --json - --cpu "$tpids" $args |
                python3 -c 'import json, sys
r = json.load(sys.stdin)
r.update(workload=sys.argv[1], target=sys.argv[2], round=int(sys.argv[3]))
print(json.dumps(r))' "$name" "$tname" "$round" >>"$out/raw.jsonl"
        done
    done <<<"$WORKLOADS"
done
redis-cli -p "$nc_port" nearcache stats | tr -d '\r' >"$out/nearcache-stats.txt"

python3 bench/report.py "$out" "$machine" "$rounds" "$seconds"
