#!/bin/bash
# TLS cost side by side: direct Redis (plain and TLS), twemproxy (plain: it has
# no TLS) and nearcache with TLS on neither side, the client side, the upstream
# side and both, under the same redis-benchmark runs (hot GET answered from
# nearcache's tier, and forwarded SET), interleaved and repeated. For each it
# prints the throughput and the CPU the server process used per request
# (user + system from /proc, which the two shared cores do not blur), the
# medians over the rounds, and nearcache's requests per CPU-second against
# twemproxy's without TLS.
# usage: bench/scripts/tls.sh [ROUNDS] [REQUESTS]   (default 3 rounds of 1000000 requests)
# env:   BUILD=dir (default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
requests=${2:-1000000}
build=${BUILD:-build}
deploy/deps.sh --bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target nearcache >/dev/null

. bench/scripts/lib.sh
bench_setup tls

# A CA and a certificate for 127.0.0.1, made now and removed with $dir.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
    -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile <(echo "subjectAltName=IP:127.0.0.1") -out "$dir/tls.pem" 2>/dev/null

redis_port=$(free_port)
redis_tls=$(free_port)
redis-server --port "$redis_port" --tls-port "$redis_tls" --tls-cert-file "$dir/tls.pem" \
    --tls-key-file "$dir/tls.key" --tls-ca-cert-file "$dir/ca.pem" --tls-auth-clients no \
    --save "" --appendonly no --dir "$dir" --logfile "$dir/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$redis_port"

twem_port=$(free_port)
printf 'bench:\n  listen: 127.0.0.1:%s\n  redis: true\n  preconnect: true\n  servers:\n    - 127.0.0.1:%s:1\n' \
    "$twem_port" "$redis_port" >"$dir/twemproxy.yml"
nutcracker -c "$dir/twemproxy.yml" -s "$(free_port)" -o "$dir/twemproxy.log" &
twem_pid=$!
pids+=("$twem_pid")
wait_port "$twem_port"

# name -> "port pid client-tls"
declare -A target
target[redis]="$redis_port $redis_pid 0"
target[redis-tls]="$redis_tls $redis_pid 1"
target[twemproxy]="$twem_port $twem_pid 0"

# Starts nearcache as $1 with clients on TLS ($2) and Redis over TLS ($3).
start_nearcache() {
    local port tls_port up="127.0.0.1:$redis_port" args=()
    port=$(free_port)
    tls_port=$(free_port)
    [ "$3" = 1 ] && up="127.0.0.1:$redis_tls" &&
        args+=(--set upstream.tls=on --set "upstream.tls_ca_file=$dir/ca.pem")
    [ "$2" = 1 ] && args+=(--set "tls.listen=127.0.0.1:$tls_port" --set "tls.cert_file=$dir/tls.pem"
        --set "tls.key_file=$dir/tls.key")
    "$build/nearcache" --set admin.listen=none --set workers=1 --listen "127.0.0.1:$port" --upstream "$up" \
        --set cache.max_memory=256mb "${args[@]}" 2>"$dir/$1.log" &
    pids+=($!)
    wait_port "$port"
    wait_tier "$port"
    target[$1]="$([ "$2" = 1 ] && echo "$tls_port" || echo "$port") $! $2"
}
start_nearcache nearcache 0 0
start_nearcache nearcache-tls-clients 1 0
start_nearcache nearcache-tls-upstream 0 1
start_nearcache nearcache-tls-both 1 1
names="redis redis-tls twemproxy nearcache nearcache-tls-clients nearcache-tls-upstream nearcache-tls-both"

redis-benchmark -p "$redis_port" -q -t set -r 1000 -n 20000 -d 32 >/dev/null # the hot keys
hz=$(getconf CLK_TCK)
results="$dir/results"
for round in $(seq "$rounds"); do
    for test in get set; do
        for name in $names; do
            read -r port pid tls <<<"${target[$name]}"
            opts=(-p "$port" -c 50 -P 16 -n "$requests" -r 1000 -d 32 -t "$test" -q)
            [ "$tls" = 1 ] && opts+=(--tls --cacert "$dir/ca.pem")
            before=$(cpu_ticks "$pid")
            rps=$(redis-benchmark "${opts[@]}" | tr '\r' '\n' | awk '/requests per second/ {print $2}' | tail -1)
            ticks=$(($(cpu_ticks "$pid") - before))
            echo "$round $test $name $rps $ticks" >>"$results"
        done
    done
done

# Medians per (test, target): throughput, CPU microseconds per request and
# requests per CPU-second, and that against twemproxy's for the same test.
python3 - "$results" "$hz" "$requests" <<'PY'
import statistics, sys
runs = [line.split() for line in open(sys.argv[1])]
hz, n = int(sys.argv[2]), int(sys.argv[3])
table = {}
for _, test, name, rps, ticks in runs:
    table.setdefault((test, name), []).append((float(rps), int(ticks)))
print(f"{'test':5} {'target':24} {'req/s':>10} {'CPU us/req':>11} {'req/CPU-s':>11} {'vs twemproxy':>13}")
for test in ("get", "set"):
    twem = None
    for (t, name), vals in table.items():
        if t != test:
            continue
        rps = statistics.median(v[0] for v in vals)
        us = statistics.median(v[1] for v in vals) / hz * 1e6 / n
        per_cpu = 1e6 / us if us > 0 else float("inf")
        if name == "twemproxy":
            twem = per_cpu
        ratio = f"{per_cpu / twem:.2f}x" if twem and name.startswith("nearcache") else ""
        print(f"{test:5} {name:24} {rps:>10.0f} {us:>11.2f} {per_cpu:>11.0f} {ratio:>13}")
PY
