#!/bin/bash
# Worker scaling side by side: direct Redis, and nearcache with workers: 1 and
# workers: 2 (sharing the port and the tier), under the same redis-benchmark
# runs (hot GET answered from the tier, forwarded SET), interleaved and
# repeated. For each it prints the throughput, the CPU the server process used
# per request (user + system of all its threads, from /proc), the futex calls
# it made per request (perf stat, when perf can count syscalls: a lock the
# workers meet on shows here) and, for two workers, throughput and CPU
# against one worker. On a 2-core machine the benchmark client
# and Redis share the cores with the workers, so throughput says little about
# scaling; the CPU per request says what a second worker and the shared tier's
# lock cost each request.
# usage: bench/scripts/workers.sh [ROUNDS] [REQUESTS]   (default 3 rounds of 1000000)
# env:   BUILD=dir (default build), CLIENTS (default 50), THREADS (benchmark threads, 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
requests=${2:-1000000}
build=${BUILD:-build}
clients=${CLIENTS:-50}
threads=${THREADS:-2}
deploy/deps.sh --bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target nearcache >/dev/null

. bench/scripts/lib.sh
bench_setup workers
start_redis

declare -A target # name -> "port pid"
target[redis]="$redis_port $redis_pid"
for n in 1 2; do
    port=$(free_port)
    "$build/nearcache" --set admin.listen=none --listen "127.0.0.1:$port" \
        --upstream "127.0.0.1:$redis_port" --set cache.max_memory=256mb --set "workers=$n" \
        2>"$dir/workers-$n.log" &
    pids+=($!)
    target[workers-$n]="$port $!"
    wait_port "$port"
    wait_tier "$port"
done

redis-benchmark -p "$redis_port" -q -t set -r 1000 -n 20000 -d 32 >/dev/null # the hot keys
hz=$(getconf CLK_TCK)
results="$dir/results"
perf_ok=
if perf stat -e syscalls:sys_enter_futex true >/dev/null 2>&1; then perf_ok=1; fi
for round in $(seq "$rounds"); do
    for test in get set; do
        for name in redis workers-1 workers-2; do
            read -r port pid <<<"${target[$name]}"
            if [ -n "$perf_ok" ]; then # counts until interrupted
                perf stat -x, -e syscalls:sys_enter_futex -p "$pid" -o "$dir/perf" &
                perf_pid=$!
            fi
            before=$(cpu_ticks "$pid")
            rps=$(redis-benchmark -p "$port" -c "$clients" --threads "$threads" -P 16 \
                -n "$requests" -r 1000 -d 32 -t "$test" -q |
                tr '\r' '\n' | awk '/requests per second/ {print $2}' | tail -1)
            ticks=$(($(cpu_ticks "$pid") - before))
            futex=-1
            if [ -n "$perf_ok" ]; then
                kill -INT "$perf_pid"
                wait "$perf_pid" || true
                futex=$(awk -F, '/futex/ {print $1}' "$dir/perf")
            fi
            echo "$round $test $name $rps $ticks $futex" >>"$results"
        done
    done
done

# Medians per (test, target), and two workers against one.
python3 - "$results" "$hz" "$requests" <<'PY'
import statistics, sys
table = {}
for _, test, name, rps, ticks, futex in (line.split() for line in open(sys.argv[1])):
    table.setdefault((test, name), []).append((float(rps), int(ticks), int(futex)))
hz, n = int(sys.argv[2]), int(sys.argv[3])
print(f"{'test':5} {'target':10} {'req/s':>10} {'CPU us/req':>11} {'futex/req':>10} "
      f"{'req/s vs 1':>11} {'CPU vs 1':>9}")
for test in ("get", "set"):
    one = None
    for name in ("redis", "workers-1", "workers-2"):
        vals = table[(test, name)]
        rps = statistics.median(v[0] for v in vals)
        us = statistics.median(v[1] for v in vals) / hz * 1e6 / n
        futex = statistics.median(v[2] for v in vals)
        shown = f"{futex / n:.4f}" if futex >= 0 else "-"
        one = (rps, us) if name == "workers-1" else one
        vs = f"{rps / one[0]:>10.2f}x {us / one[1]:>8.2f}x" if name == "workers-2" else ""
        print(f"{test:5} {name:10} {rps:>10.0f} {us:>11.2f} {shown:>10} {vs}")
PY
