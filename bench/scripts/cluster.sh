#!/bin/bash
# Redis Cluster behind nearcache: a 3-primary cluster (no replicas) started in
# the script's temporary directory, and nearcache in front of it
# (upstream.cluster naming one node as the seed) with workers: 1 and, in a
# second pass, workers: 2, under the same runs, interleaved and repeated:
#   get   hot GET of 1,000 keys (set first), redis-benchmark -t get -r 1000
#   set   SET of 32-byte values over the same 1,000 keys, redis-benchmark -t set
#   mix   the design guide's 70/20/10 GET/SET/DEL over 100,000 keys, Zipf 0.99
#         (loadgen, as run.sh's zipf-mix-p16), through the proxy only
# The cluster is driven directly with `redis-benchmark --cluster` (which sends
# each client's requests to one primary, its keys hash-tagged to a slot of
# that primary) and the proxy with plain `redis-benchmark` (to its clients the
# proxy is one Redis; keys key:NNN spread over the three primaries). Both with
# 50 connections, -P 16 and the same client threads (--cluster starts one per
# primary unless told). redis-benchmark has no mix of commands (one command
# per run, --cluster included), and loadgen talks to one address, so the mix
# has no direct-cluster figure.
# For each it prints the median throughput (for redis-benchmark the last
# progress line's overall rate when higher than the summary's: with client
# threads, which --cluster always uses, the summary's duration is rounded up
# to the next 250 ms tick), the proxy's throughput against the cluster's, the
# CPU the proxy used per request and the CPU the three redis-servers used per
# request together (user + system from /proc, which the two shared cores do
# not blur), their sum, and the error replies seen (redis-benchmark prints at
# most one a second, so a count of those lines; loadgen: errors plus wrong
# replies).
# While the local tier does not serve in cluster mode, every request through
# the proxy is forwarded: the GET figures are forwarding figures too.
# usage: bench/scripts/cluster.sh [ROUNDS] [REQUESTS]   (default 3 rounds of 1000000
#        requests per run, about a minute)
# env:   ROUNDS, REQUESTS (the same, for longer runs); WORKERS="1 2" (the proxies
#        measured: WORKERS=1 skips the second pass); TESTS="get set mix";
#        BUILD=dir (default build); THREADS (benchmark threads, default 2)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-${ROUNDS:-3}}
requests=${2:-${REQUESTS:-1000000}}
build=${BUILD:-build}
workers=${WORKERS:-1 2}
tests=${TESTS:-get set mix}
threads=${THREADS:-2}
deploy/deps.sh --bench
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target nearcache loadgen >/dev/null
loadgen=$build/bench/loadgen

. bench/scripts/lib.sh
bench_setup cluster

# Sets $port to a free port not handed out before by this script (a node's
# client and bus ports must all differ).
used=" "
new_port() {
    while port=$(free_port) && [[ "$used" == *" $port "* ]]; do :; done
    used+="$port "
}

# The cluster: three primaries, each with its bus on a free port (port + 10000
# may not exist), joined by redis-cli --cluster create.
nodes=()
node_pids=()
for i in 1 2 3; do
    new_port
    node_port=$port
    new_port
    redis-server --port "$node_port" --cluster-enabled yes --cluster-config-file "$dir/node$i.conf" \
        --cluster-port "$port" --save "" --appendonly no --dir "$dir" --logfile "$dir/node$i.log" &
    pids+=($!)
    node_pids+=($!)
    nodes+=("$node_port")
done
for p in "${nodes[@]}"; do wait_port "$p"; done
if ! redis-cli --cluster create "${nodes[@]/#/127.0.0.1:}" --cluster-yes </dev/null >"$dir/create.log" 2>&1; then
    cat "$dir/create.log" >&2
    exit 1
fi
seed=${nodes[0]}
# Waits until every node says the cluster is ok, knows the three and sees every slot.
for _ in $(seq 400); do
    ok=0
    for p in "${nodes[@]}"; do
        redis-cli -p "$p" cluster info | tr -d '\r' |
            awk -F: '{v[$1] = $2} END {exit !(v["cluster_state"] == "ok" && v["cluster_known_nodes"] == 3 &&
                                            v["cluster_slots_ok"] == 16384)}' && ok=$((ok + 1))
    done
    [ "$ok" = 3 ] && break
    sleep 0.05
done
[ "$ok" = 3 ] || { echo "the cluster is not ok" >&2 && exit 1; }

# name -> "port pid"; the proxies with workers: N, in front of the cluster.
declare -A target
target[cluster]="$seed -"
for n in $workers; do
    new_port
    "$build/nearcache" --set admin.listen=none --set "workers=$n" --listen "127.0.0.1:$port" \
        --set "upstream.cluster=127.0.0.1:$seed" 2>"$dir/nearcache-$n.log" &
    pids+=($!)
    target[nearcache-w$n]="$port $!"
    wait_port "$port"
    # Ready once a keyed request reaches its node: the slot map is read.
    for _ in $(seq 200); do
        ready=$(redis-cli -p "$port" set bench:ready 1 2>/dev/null || true)
        [ "$ready" = OK ] && break
        sleep 0.05
    done
    [ "$ready" = OK ] || { echo "nearcache (workers: $n) does not reach the cluster: $ready" >&2 && exit 1; }
done
proxies=
for n in $workers; do proxies+="nearcache-w$n "; done
first=${target[nearcache-w${workers%% *}]%% *}

# The data: the hot keys as each client names them (--cluster tags them with a
# slot of the node each client talks to: key:{tag}:NNN), and the mix's keys.
redis-benchmark --cluster -p "$seed" -q -t set -r 1000 -n 60000 -d 32 -P 16 >/dev/null
redis-benchmark -p "$first" -q -t set -r 1000 -n 20000 -d 32 -P 16 >/dev/null
if [[ " $tests " == *" mix "* ]]; then
    "$loadgen" -p "$first" --quiet --preload -n 1 -c 1 --prefix zipf: --keys 100000 >/dev/null
fi

# CPU ticks of the three nodes together.
nodes_ticks() {
    local sum=0 p
    for p in "${node_pids[@]}"; do sum=$((sum + $(cpu_ticks "$p"))); done
    echo "$sum"
}

hz=$(getconf CLK_TCK)
results="$dir/results"
echo "machine: $(nproc) cores, $(uname -r), Redis $(redis-server --version | cut -d' ' -f3 | cut -d= -f2); $(date -u +%F)"
echo "3 primaries, no replicas; $rounds rounds of $requests requests per run, targets interleaved;" \
    "redis-benchmark -c 50 -P 16 --threads $threads -d 32 -r 1000; loadgen -c 50 -P 16"
for round in $(seq "$rounds"); do
    for test in $tests; do
        names="cluster $proxies"
        [ "$test" = mix ] && names=$proxies
        for name in $names; do
            read -r port pid <<<"${target[$name]}"
            before=0
            [ "$pid" = - ] || before=$(cpu_ticks "$pid")
            nodes_before=$(nodes_ticks)
            if [ "$test" = mix ]; then
                "$loadgen" -p "$port" -c 50 -P 16 -n "$requests" --prefix zipf: --keys 100000 \
                    --dist zipf:0.99 --quiet --json - >"$dir/out" || { cat "$dir/out" >&2 && exit 1; }
                read -r rps count errors < <(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(r["rps"], r["requests"], sum(r["errors"].values()) + r["wrong"])' "$dir/out")
            else
                opts=(-p "$port" -c 50 -P 16 --threads "$threads" -n "$requests" -r 1000 -d 32 -t "$test" -q)
                [ "$name" = cluster ] && opts+=(--cluster)
                redis-benchmark "${opts[@]}" >"$dir/out" 2>&1 || { cat "$dir/out" >&2 && exit 1; }
                # With threads (as --cluster runs) the summary's duration is rounded
                # up to the next 250 ms tick; the last progress line's overall rate
                # is not, but in a run shorter than a tick it is the first
                # millisecond's: the higher of the two.
                rps=$(tr '\r' '\n' <"$dir/out" | awk '
                    /requests per second/ {summary = $2}
                    match($0, /rps=[0-9.]+ \(overall: [0-9.]+\)/) {
                        split(substr($0, RSTART, RLENGTH), f, /[ )]/); last = f[3]
                    }
                    END {print (last + 0 > summary + 0 ? last : summary)}')
                count=$requests
                errors=$(grep -c 'Error from server' "$dir/out" || true)
            fi
            nodes_used=$(($(nodes_ticks) - nodes_before))
            used_by_proxy=-
            [ "$pid" = - ] || used_by_proxy=$(($(cpu_ticks "$pid") - before))
            echo "$round $test $name $rps $count $used_by_proxy $nodes_used $errors" >>"$results"
        done
    done
done

# Medians per (test, target): throughput, CPU microseconds per request of the
# proxy, of the nodes together and of both, the proxy's throughput against the
# cluster's; errors summed over the rounds.
python3 - "$results" "$hz" <<'PY'
import statistics, sys
table = {}
for _, test, name, rps, done, proxy, nodes, errors in (l.split() for l in open(sys.argv[1])):
    table.setdefault((test, name), []).append((float(rps), int(done), proxy, int(nodes), int(errors)))
hz = int(sys.argv[2])
us = lambda ticks, n: ticks / hz * 1e6 / n
print(f"{'test':5} {'target':14} {'req/s':>10} {'vs cluster':>11} {'proxy us/req':>13} "
      f"{'nodes us/req':>13} {'sum us/req':>11} {'errors':>7}")
for test in ("get", "set", "mix"):
    direct = None
    for (t, name), vals in table.items():
        if t != test:
            continue
        rps = statistics.median(v[0] for v in vals)
        nodes = statistics.median(us(v[3], v[1]) for v in vals)
        if vals[0][2] == "-":
            proxy, total = "-", f"{nodes:.2f}"
        else:
            p = statistics.median(us(int(v[2]), v[1]) for v in vals)
            proxy, total = f"{p:.2f}", f"{p + nodes:.2f}"
        direct = rps if name == "cluster" else direct
        vs = f"{rps / direct:.2f}x" if direct and name != "cluster" else ""
        print(f"{test:5} {name:14} {rps:>10.0f} {vs:>11} {proxy:>13} {nodes:>13.2f} {total:>11} "
              f"{sum(v[4] for v in vals):>7}")
PY

# What the proxies counted: requests, redirects followed, slot map reads.
for name in $proxies; do
    read -r port _ <<<"${target[$name]}"
    echo "$name: $(redis-cli -p "$port" nearcache stats | tr -d '\r' |
        grep -E '^(total_requests|cluster_moved|cluster_ask|cluster_refreshes):' | paste -sd' ')"
done
