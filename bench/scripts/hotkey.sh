#!/bin/bash
# Hot-key GET: 1,000 keys, all in nearcache's local tier, read with
# redis-benchmark directly from Redis and through nearcache (defaults: cache and
# tracking on), interleaved and repeated; medians, ratios, the CPU each process
# used during the runs, and the tier's hit ratio and bytes per entry.
# usage: bench/scripts/hotkey.sh [ROUNDS] [REQUESTS_P16] [REQUESTS_P1]
#        (default 3 rounds, 300000 requests at -P 16, 100000 at -P 1)
# env:   BUILD=dir (default build), THREADS=n passes --threads n to redis-benchmark
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
requests_p16=${2:-300000}
requests_p1=${3:-100000}
build=${BUILD:-build}
threads=${THREADS:-}
keys=1000
deploy/deps.sh --bench
cmake -S . -B "$build" >/dev/null && cmake --build "$build" -j"$(nproc)" --target nearcache >/dev/null

. bench/scripts/lib.sh
bench_setup hotkey
stat_of() { redis-cli -p "$nc_port" nearcache stats | tr -d '\r' | awk -F: -v k="$1" '$1 == k { print $2 }'; }
# CPU ticks (user + system) a process has used so far
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

start_redis

nc_port=$(free_port)
"$build/nearcache" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$nc_port" --upstream "127.0.0.1:$redis_port" 2>"$dir/nearcache.log" &
nc_pid=$!
pids+=("$nc_pid")
wait_port "$nc_port"

# redis-benchmark -r N reads "key:" and a 12-digit zero-padded number below N.
python3 - "$keys" >"$dir/load" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"SET key:{i:012d} {'x' * 100}")
PY
redis-cli -p "$redis_port" <"$dir/load" >/dev/null
wait_tier "$nc_port"
empty_bytes=$(stat_of bytes)
sed 's/^SET \([^ ]*\) .*/GET \1/' "$dir/load" >"$dir/warm"
cat "$dir/warm" "$dir/warm" | redis-cli -p "$nc_port" >/dev/null
entries=$(stat_of entries)
[ "$entries" -ge "$keys" ] || echo "warning: only $entries of $keys keys cached after warming" >&2
hits0=$(stat_of hits)
misses0=$(stat_of misses)

hz=$(getconf CLK_TCK)
echo "machine: $(nproc) cores, $(uname -r); $(redis-server --version | cut -d' ' -f3); $(date -u +%F)"
echo "redis-benchmark -t get -r $keys -d 100 -c 50 -P 16 (-n $requests_p16) / -P 1 (-n $requests_p1)" \
    "--csv${threads:+ --threads $threads}, $rounds rounds interleaved"
for _ in $(seq "$rounds"); do
    for pipe in 16 1; do
        n=$requests_p1
        [ "$pipe" = 16 ] && n=$requests_p16
        for target in redis:$redis_port nearcache:$nc_port; do
            r0=$(ticks "$redis_pid") p0=$(ticks "$nc_pid")
            # shellcheck disable=SC2086
            rps=$(/usr/bin/time -f '%e %U %S' -o "$dir/time" redis-benchmark -p "${target#*:}" -t get \
                -r "$keys" -d 100 -n "$n" -c 50 -P "$pipe" ${threads:+--threads $threads} --csv 2>/dev/null |
                awk -F, 'NR > 1 { gsub(/"/, ""); print $2 }')
            r1=$(ticks "$redis_pid") p1=$(ticks "$nc_pid")
            read -r secs user sys <"$dir/time"
            awk -v t="${target%%:*}" -v p="$pipe" -v rps="$rps" -v s="$secs" -v u="$user" -v y="$sys" \
                -v rd=$((r1 - r0)) -v nd=$((p1 - p0)) -v hz="$hz" \
                'BEGIN { printf "%s %s %s %.0f %.0f %.0f\n", t, p, rps, 100 * (u + y) / s,
                         100 * rd / hz / s, 100 * nd / hz / s }'
        done
    done
done >"$dir/raw"

hits=$(($(stat_of hits) - hits0))
misses=$(($(stat_of misses) - misses0))
python3 - "$dir/raw" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    target, pipe, *figures = line.split()
    runs[(int(pipe), target)].append([float(f) for f in figures])
med = lambda rows, i: statistics.median(r[i] for r in rows)
print(f"{'-P':>3} {'redis':>10} {'nearcache':>10} {'nc/redis':>9}   CPU % (client/redis/nearcache)")
for pipe in (16, 1):
    r, n = runs[(pipe, "redis")], runs[(pipe, "nearcache")]
    print(f"{pipe:>3} {med(r, 0):>10.0f} {med(n, 0):>10.0f} {med(n, 0) / med(r, 0):>9.2f}"
          f"   direct {med(r, 1):.0f}/{med(r, 2):.0f}/-, via proxy {med(n, 1):.0f}/{med(n, 2):.0f}/{med(n, 3):.0f}")
PY
entries=$(stat_of entries)
bytes=$(stat_of bytes)
awk -v h="$hits" -v m="$misses" -v e="$entries" -v b="$bytes" -v b0="$empty_bytes" -v hr="$(stat_of hit_ratio)" \
    'BEGIN { printf "tier: hit ratio %.4f during the runs (%d hits, %d misses; %s since start)\n", h / (h + m), h, m, hr
             printf "tier: %d entries, %d bytes = %.1f bytes/entry; %d bytes when empty, so %.1f bytes per added entry\n",
             e, b, b / e, b0, (b - b0) / e }'
