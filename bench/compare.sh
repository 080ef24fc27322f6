#!/bin/bash
# Side-by-side throughput of direct Redis, twemproxy (nutcracker) and nearcache
# with redis-benchmark: GET and SET at pipeline depths 1 and 16, 50 connections,
# targets interleaved and repeated, medians printed with ratios to direct Redis.
# usage: bench/compare.sh [ROUNDS] [REQUESTS]     (default 3 rounds of 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
requests=${2:-200000}
deploy/deps.sh --bench
cmake -S . -B build >/dev/null && cmake --build build -j"$(nproc)" --target nearcache >/dev/null

. bench/lib.sh
bench_setup compare

redis_port=$(free_port)
redis-server --port "$redis_port" --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
pids+=($!)
wait_port "$redis_port"

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
pids+=($!)
wait_port "$twem_port"

nc_port=$(free_port)
# The local tier off: this measures forwarding (hotkey.sh measures the tier).
build/nearcache --listen "127.0.0.1:$nc_port" --upstream "127.0.0.1:$redis_port" \
    --set cache.enabled=false 2>"$dir/nearcache.log" &
pids+=($!)
wait_port "$nc_port"

echo "machine: $(nproc) cores, $(uname -r); $(redis-server --version | cut -d' ' -f3); $(date -u +%F)"
echo "redis-benchmark -t get,set -n $requests -c 50 -P {1,16} --csv, $rounds rounds interleaved"
for round in $(seq "$rounds"); do
    for pipe in 1 16; do
        for target in redis:$redis_port twemproxy:$twem_port nearcache:$nc_port; do
            redis-benchmark -p "${target#*:}" -t get,set -n "$requests" -c 50 -P "$pipe" --csv 2>/dev/null |
                awk -F, -v t="${target%%:*}" -v p="$pipe" 'NR>1 { gsub(/"/, ""); print t, p, $1, $2 }'
        done
    done
done >"$dir/raw"
python3 - "$dir/raw" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    target, pipe, test, rps = line.split()
    runs[(test, int(pipe), target)].append(float(rps))
targets = ("redis", "twemproxy", "nearcache")
print(f"{'test':<5} {'-P':>3} {'redis':>10} {'twemproxy':>10} {'nearcache':>10} {'nc/redis':>9} {'nc/twem':>8}")
for test in ("GET", "SET"):
    for pipe in (1, 16):
        m = {t: statistics.median(runs[(test, pipe, t)]) for t in targets}
        print(f"{test:<5} {pipe:>3} {m['redis']:>10.0f} {m['twemproxy']:>10.0f} {m['nearcache']:>10.0f}"
              f" {m['nearcache'] / m['redis']:>9.2f} {m['nearcache'] / m['twemproxy']:>8.2f}")
PY
