#!/bin/bash
# Instructions per request in nearcache, counted by callgrind: free of
# wall-clock noise, so changes to the hot path can be compared on a shared
# machine. Runs nearcache under valgrind --tool=callgrind in front of its own
# redis-server, zeroes the counters before each workload and dumps them after
# it, and divides the instructions executed (Ir, user space only: the
# syscalls' kernel work is not counted) by the requests sent.
# usage: bench/scripts/profile.sh [REQUESTS]   (default 20000 per workload)
# env:   BUILD=dir (default build), TOP=n also lists each workload's n
#        functions with the most instructions of their own
set -euo pipefail
cd "$(dirname "$0")/../.."
requests=${1:-20000}
build=${BUILD:-build}
top=${TOP:-0}
keys=1000
deploy/deps.sh --bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target nearcache >/dev/null

. bench/scripts/lib.sh
bench_setup profile

start_redis

# Starts nearcache under callgrind with extra settings; sets $port and $pid.
start_profiled() {
    port=$(free_port)
    valgrind --tool=callgrind --compress-strings=no --callgrind-out-file="$dir/cg.$1.%p" \
        "$build/nearcache" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$port" --upstream "127.0.0.1:$redis_port" \
        "${@:2}" 2>"$dir/$1.log" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 400); do redis-cli -p "$port" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "nearcache under valgrind did not start" >&2
    exit 1
}

# Instructions per request of one workload: zero, run, dump, divide.
measure() { # label pid port pipeline redis-benchmark args...
    local label=$1 p=$2 port=$3 pipe=$4
    shift 4
    callgrind_control -z "$p" >/dev/null 2>&1
    redis-benchmark -p "$port" -n "$requests" -c 10 -P "$pipe" -r "$keys" -d 100 "$@" -q >/dev/null
    callgrind_control -d "$p" >/dev/null 2>&1
    local file ir
    # The newest dump of pid p; the names are callgrind's (cg.LABEL.PID.N).
    # shellcheck disable=SC2012
    file=$(ls -t "$dir"/cg.*."$p".* | head -1)
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$file")
    printf '| %s | %s | %d | %.0f |\n' "$label" "$pipe" "$requests" "$((ir / requests))"
    [ "$top" -gt 0 ] || return 0
    # Self cost per function: cost lines that follow an fn= line, not a calls= line.
    awk -v n="$requests" '/^fn=/ { fn = substr($0, 4); sub(/^\([0-9]+\) /, "", fn); skip = 0; next }
        /^calls=/ { skip = 1; next }
        /^[0-9+-]/ { if (skip) { skip = 0; next } cost[fn] += $2 }
        END { for (f in cost) printf "|   %s | | | %.0f |\n", f, cost[f] / n }' "$file" |
        sort -t'|' -k5 -rn | head -"$top"
}

python3 - "$keys" >"$dir/load" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"SET key:{i:012d} {'x' * 100}")
PY
redis-cli -p "$redis_port" <"$dir/load" >/dev/null
sed 's/^SET \([^ ]*\) .*/GET \1/' "$dir/load" >"$dir/warm"

start_profiled cached
cached_pid=$pid cached_port=$port
wait_tier "$cached_port"
# Each key read 16 times first, as a hot key has been: filled, and its counts
# in the tier's frequency sketch at their ceiling (15).
for _ in $(seq 16); do cat "$dir/warm"; done | redis-cli -p "$cached_port" >/dev/null
start_profiled forward --set cache.enabled=false
forward_pid=$pid forward_port=$port

echo "machine: $(nproc) cores, $(uname -r); $(valgrind --version); $(date -u +%F)"
echo "redis-benchmark -c 10 -r $keys -d 100 -n $requests per workload"
echo
echo "| workload | -P | requests | instructions per request |"
echo "| --- | ---: | ---: | ---: |"
measure "GET, tier hit" "$cached_pid" "$cached_port" 16 -t get
measure "GET, tier hit" "$cached_pid" "$cached_port" 1 -t get
measure "GET, forwarded (tier off)" "$forward_pid" "$forward_port" 16 -t get
measure "GET, forwarded (tier off)" "$forward_pid" "$forward_port" 1 -t get
measure "SET, forwarded + invalidation" "$cached_pid" "$cached_port" 16 -t set
measure "SET, forwarded + invalidation" "$cached_pid" "$cached_port" 1 -t set
measure "SET, forwarded (tier off)" "$forward_pid" "$forward_port" 16 -t set
measure "SET, forwarded (tier off)" "$forward_pid" "$forward_port" 1 -t set
