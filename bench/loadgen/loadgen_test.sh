#!/usr/bin/env bash
# Smoke test of the load generator against a real redis-server (ctest
# bench/loadgen_smoke): a clean mixed run must report traffic and no errors or
# wrong replies; pre-filled garbage must be caught as wrong replies; unknown
# commands must be counted as ERR; the open loop must hold its rate; --cpu
# reports the server's CPU time with its user part, and an idle process's as
# about nothing; bad
# arguments exit 2 and an unreachable server exits 1.
#
# usage: bench/loadgen/loadgen_test.sh PATH/TO/loadgen
set -euo pipefail
loadgen=${1:?usage: loadgen_test.sh PATH/TO/loadgen}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/../scripts/lib.sh
. "$here/../scripts/lib.sh"
bench_setup loadgen-test

port=$(free_port)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    >"$dir/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
wait_port "$port"

# check NAME JSON PYTHON-EXPRESSION-over-r
check() {
    python3 -c '
import json, sys
name, text, expr = sys.argv[1], sys.argv[2], sys.argv[3]
r = json.loads(text)
if not eval(expr):
    print("FAIL %s: %s\n%s" % (name, expr, text)); sys.exit(1)
print("ok   %s" % name)' "$1" "$2" "$3"
}

out=$("$loadgen" -p "$port" -n 20000 -c 8 -P 4 --preload --keys 1000 --json - --quiet)
check clean "$out" 'r["requests"] == 20000 and r["rps"] > 0 and r["wrong"] == 0 and r["errors"] == {} and 0 < r["latency_us"]["p50"] <= r["latency_us"]["p99"] <= r["latency_us"]["max"]'

out=$("$loadgen" -p "$port" -n 20000 -c 4 -P 8 --keys 500 --dist zipf:0.99 --value 10-400 \
    --mix get:4,set:4,del,incr,mget:4,hget,hset,lpush,lrange --json - --quiet)
check every-op "$out" 'r["requests"] == 20000 and r["wrong"] == 0 and r["errors"] == {}'

# garbage under another prefix: every GET of it must be judged wrong
for k in $(seq 0 199); do echo "SET bad:$k garbage-$k"; done | redis-cli -p "$port" >/dev/null
echo "SET bad:7 bad:7|1|1|abc" | redis-cli -p "$port" >/dev/null # the right key, a broken filler
out=$("$loadgen" -p "$port" -n 5000 -c 2 -P 4 --keys 200 --prefix bad: --mix get --json - --quiet)
check detects-wrong "$out" 'r["wrong"] >= 4000 and r["errors"] == {}'

out=$("$loadgen" -p "$port" -n 2000 -c 2 --keys 10 --mix get,any:NOSUCHCOMMAND --json - --quiet)
check error-kinds "$out" 'r["errors"].get("ERR", 0) > 500 and r["wrong"] == 0'

out=$("$loadgen" -p "$port" -d 1s --rate 2000 -c 4 --keys 100 --json - --quiet)
check open-loop "$out" '1800 <= r["requests"] <= 2200 and r["lag_us"] is not None and r["wrong"] == 0'

sleep 30 &
idle=$!
pids+=("$idle")
out=$("$loadgen" -p "$port" -d 1s --warmup 0.2s -c 8 -P 8 --keys 100 --cpu "$redis_pid,$idle" --json - --quiet)
check cpu "$out" 'len(r["cpu_s"]) == 2 and 0.05 < r["cpu_s"][0] <= 2.5 and r["cpu_s"][1] <= 0.02'
check cpu-user "$out" 'len(r["cpu_user_s"]) == 2 and 0 < r["cpu_user_s"][0] < r["cpu_s"][0] and r["cpu_user_s"][1] <= r["cpu_s"][1]'

for bad in "$redis_pid,x" "0" "1,2,3,4,5" ""; do
    status=0
    "$loadgen" -p "$port" -n 10 --cpu "$bad" >/dev/null 2>&1 || status=$?
    [ "$status" -eq 2 ] || { echo "FAIL --cpu '$bad': exit $status, want 2"; exit 1; }
done
echo "ok   cpu-bad-arguments"

# -P N keeps at most N requests in flight on a connection: a server that
# answers a request only 20 ms after it came reports the most it held at once
# (on the connection after loadgen's probe). -P 1 kept 2 before this was checked.
depth_port=$(free_port)
python3 - "$depth_port" >"$dir/depth" <<'PY' &
import re, socket, sys, time
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
srv.settimeout(10)
srv.accept()[0].close()  # the probe
conn, _ = srv.accept()
conn.settimeout(0.02)
held, most, buf, end = 0, 0, b"", time.time() + 1.5
while time.time() < end:
    try:
        data = conn.recv(65536)
        if not data:
            break
        buf += data
    except socket.timeout:
        pass
    except OSError:  # loadgen is done and gone
        break
    # GET frames of the mix's keys (the read-your-writes pair, a SET and a GET
    # of lg:own:N, goes as a pair by design)
    frames = len(re.findall(rb"\r\nGET\r\n\$\d+\r\nlg:(?!own:)", buf))
    held, buf = held + frames, b""
    most = max(most, held)
    if held:  # answer one, as a server busy 20 ms per request would
        try:
            conn.sendall(b"$-1\r\n")
        except OSError:
            break
        held -= 1
print(most)
PY
depth_pid=$!
pids+=("$depth_pid")
sleep 0.3
"$loadgen" -p "$depth_port" -d 1s -c 1 -P 1 --mix get --keys 10 --quiet >/dev/null 2>&1 || true
wait "$depth_pid" || true
most=$(cat "$dir/depth")
[ "$most" = 1 ] || { echo "FAIL -P 1: $most requests in flight at once"; exit 1; }
echo "ok   depth"

status=0
"$loadgen" -p "$port" --mix nosuchop >/dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || { echo "FAIL bad arguments: exit $status, want 2"; exit 1; }
echo "ok   bad-arguments"
status=0
"$loadgen" -p "$(free_port)" -n 10 >/dev/null 2>&1 || status=$?
[ "$status" -eq 1 ] || { echo "FAIL no server: exit $status, want 1"; exit 1; }
echo "ok   no-server"
