#!/bin/bash
# Test of bench/relay/relay.c (ctest bench/relay): a redis-server behind the relay at
# 5 ms each way. Checks that a round trip takes at least twice the delay and
# never much more, that a pipelined redis-benchmark completes without errors
# and without the delay being paid per request, that a 5 MB value round-trips
# byte for byte, that half-close is propagated, that 1000 connections are
# relayed at once, and that killing Redis closes the client's connection while
# the relay stays up. Then prints the round-trip latency a 500 us relay adds
# (timing figures only; the assertions above have wide margins).
# usage: bench/relay/relay_test.sh RELAY_BINARY
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
relay=${1:?usage: relay_test.sh RELAY_BINARY}
py=/usr/bin/python3 # Debian's python3-redis
cd "$(dirname "$0")"
. ../scripts/lib.sh
bench_setup relay-test
ulimit -n "$(ulimit -Hn)"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

redis_port=$(free_port)
run_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$dir" --logfile "$dir/redis.log" --maxclients 4000 &
    redis_pid=$!
    pids+=("$redis_pid")
    wait_port "$redis_port"
}
run_redis

# Bad arguments: usage and exit status 2.
for args in "" "--listen 127.0.0.1:1 --to 127.0.0.1:2" \
    "--listen 127.0.0.1:1 --to 127.0.0.1:2 --delay 5" \
    "--listen 127.0.0.1:1 --to 127.0.0.1:2 --delay 5xs" "--bogus"; do
    rc=0
    # shellcheck disable=SC2086
    "$relay" $args 2>/dev/null || rc=$?
    [ "$rc" = 2 ] || fail "relay $args: exit status $rc, want 2"
done

relay_port=$(free_port)
"$relay" --listen "127.0.0.1:$relay_port" --to "127.0.0.1:$redis_port" --delay 5ms \
    2>"$dir/relay.err" &
relay_pid=$!
pids+=("$relay_pid")
wait_port "$relay_port"
grep -q "relay: listening on 127.0.0.1:$relay_port" "$dir/relay.err" ||
    fail "no 'listening' line on stderr"

echo "== 1: PING round trips at --delay 5ms"
RELAY_PORT=$relay_port $py - <<'EOF'
import os, socket, statistics, time
s = socket.create_connection(("127.0.0.1", int(os.environ["RELAY_PORT"])))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
rtts = []
for _ in range(20):
    t = time.perf_counter()
    s.sendall(b"PING\r\n")
    assert s.recv(64) == b"+PONG\r\n"
    rtts.append((time.perf_counter() - t) * 1e3)
print(f"round trip: min {min(rtts):.2f} ms, median {statistics.median(rtts):.2f} ms, "
      f"max {max(rtts):.2f} ms")
assert min(rtts) >= 10.0, f"a round trip took {min(rtts):.3f} ms, less than 2 x 5 ms"
assert statistics.median(rtts) < 50.0, "median round trip 50 ms or more"
EOF

echo "== 2: redis-benchmark -t set,get -P 16 -c 20 -n 20000 through the relay"
timeout 120 redis-benchmark -p "$relay_port" -t set,get -P 16 -c 20 -n 20000 --csv \
    >"$dir/bench.csv" 2>"$dir/bench.err" || fail "redis-benchmark: exit status $?"
cat "$dir/bench.csv"
if grep -qi error "$dir/bench.err" "$dir/bench.csv"; then
    cat "$dir/bench.err" >&2
    fail "redis-benchmark reported errors"
fi
# One round trip (10 ms) per 16 requests and client allows 32,000 requests/s;
# a relay paying the delay per request would manage 20 * 100 = 2,000 at most.
for t in SET GET; do
    rps=$(awk -F'"' -v t="$t" '$2 == t { print int($4) }' "$dir/bench.csv")
    [ -n "$rps" ] || fail "no $t row in redis-benchmark's output"
    [ "$rps" -gt 4000 ] || fail "$t: $rps requests/s, throughput collapsed"
done

echo "== 3: 5 MB value, half-close, 1000 connections"
RELAY_PORT=$relay_port REDIS_PORT=$redis_port $py - <<'EOF'
import os, resource, socket, time
import redis
relay_port, redis_port = int(os.environ["RELAY_PORT"]), int(os.environ["REDIS_PORT"])

value = os.urandom(5 << 20)
via = redis.Redis(host="127.0.0.1", port=relay_port, socket_timeout=30)
direct = redis.Redis(host="127.0.0.1", port=redis_port, socket_timeout=30)
assert via.set("relay:big", value)
assert direct.get("relay:big") == value, "value stored in Redis differs"
assert via.get("relay:big") == value, "value read through the relay differs"
direct.set("relay:big2", value[::-1])
assert via.get("relay:big2") == value[::-1], "second value read through the relay differs"
print("5 MB SET/GET: byte-exact")

# Half-close: the client's EOF reaches Redis, which answers and closes; the
# reply and then Redis's EOF come back, each after the delay.
s = socket.create_connection(("127.0.0.1", relay_port))
t = time.perf_counter()
s.sendall(b"PING\r\n")
s.shutdown(socket.SHUT_WR)
s.settimeout(5)
got = b""
while True:
    b = s.recv(64)
    if not b:
        break
    got += b
elapsed = (time.perf_counter() - t) * 1e3
assert got == b"+PONG\r\n", f"after half-close got {got!r}"
assert elapsed >= 10.0, f"EOF came back after {elapsed:.2f} ms"
s.close()
print(f"half-close: reply and EOF after {elapsed:.1f} ms")

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
conns = [socket.create_connection(("127.0.0.1", relay_port)) for _ in range(1000)]
for c in conns:
    c.sendall(b"PING\r\n")
for c in conns:
    c.settimeout(10)
    got = b""
    while len(got) < 7:
        b = c.recv(64)
        assert b, "connection closed early"
        got += b
    assert got == b"+PONG\r\n", got
clients = direct.info("clients")["connected_clients"]
assert clients >= 1000, f"Redis sees {clients} clients"
for c in conns:
    c.close()
print(f"1000 connections at once: all answered (Redis saw {clients} clients)")
EOF

echo "== 4: killing Redis closes the client's connection"
RELAY_PORT=$relay_port $py - <<EOF &
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", $relay_port))
s.sendall(b"PING\r\n")
assert s.recv(64) == b"+PONG\r\n"
open("$dir/connected", "w").close()
s.settimeout(10)
try:
    b = s.recv(64)
    assert b == b"", f"got {b!r} instead of EOF"
    print("client saw EOF")
except ConnectionResetError:
    print("client saw a reset")
EOF
client_pid=$!
for _ in $(seq 100); do [ -e "$dir/connected" ] && break; sleep 0.05; done
[ -e "$dir/connected" ] || fail "client did not connect"
kill -9 "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
wait "$client_pid" || fail "client did not see its connection closed"
kill -0 "$relay_pid" 2>/dev/null || fail "relay exited when Redis died"
# With Redis down, a new connection is closed, and the relay stays up.
RELAY_PORT=$relay_port $py - <<'EOF'
import os, socket
s = socket.create_connection(("127.0.0.1", int(os.environ["RELAY_PORT"])))
s.settimeout(5)
try:
    assert s.recv(64) == b"", "data from a relay with no Redis behind it"
except ConnectionResetError:
    pass
print("with Redis down: new connection closed")
EOF
kill -0 "$relay_pid" 2>/dev/null || fail "relay exited when Redis was down"
run_redis
[ "$(redis-cli -p "$relay_port" ping)" = PONG ] || fail "no PONG once Redis is back"
echo "Redis back up: PONG through the same relay"

kill -TERM "$relay_pid"
rc=0
wait "$relay_pid" || rc=$?
[ "$rc" = 0 ] || fail "relay exited with status $rc on SIGTERM"

echo "== 5: backpressure: a destination that does not read for 1 s"
# Without backpressure the relay would hold all 64 MB; with it, 4 MB plus its
# socket buffers. Once the sink reads, every byte must arrive, in order.
RELAY="$relay" $py - <<'EOF'
import hashlib, os, socket, subprocess, threading, time
def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
sink = socket.socket()
sink.bind(("127.0.0.1", 0))
sink.listen(1)
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()
relay = subprocess.Popen([os.environ["RELAY"], "--listen", f"127.0.0.1:{port}", "--to",
                          f"127.0.0.1:{sink.getsockname()[1]}", "--delay", "5ms", "--quiet"])
try:
    for _ in range(100):
        try:
            client = socket.create_connection(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    peer, _ = sink.accept()
    before = rss_kb(relay.pid)
    data = os.urandom(1 << 20) * 64
    sender = threading.Thread(target=lambda: (client.sendall(data), client.shutdown(socket.SHUT_WR)))
    sender.start()
    time.sleep(1.0)
    grown = (rss_kb(relay.pid) - before) / 1024
    print(f"relay RSS grew {grown:.1f} MB while the destination was not reading")
    assert grown < 16, "the relay kept reading: no backpressure"
    peer.settimeout(30)
    h, n = hashlib.sha256(), 0
    while True:
        b = peer.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    sender.join()
    assert n == len(data), f"received {n} bytes of {len(data)}"
    assert h.digest() == hashlib.sha256(data).digest(), "bytes differ"
    print("64 MB delivered in order once the destination read, then EOF")
finally:
    relay.terminate()
    assert relay.wait(10) == 0, "relay did not exit 0 on SIGTERM"
EOF

echo "== added round-trip latency at --delay 500us (1000 PINGs each, interleaved)"
# A relay with --delay 0 alongside shows the cost of the extra hop alone.
zero_port=$(free_port)
"$relay" --listen "127.0.0.1:$relay_port" --to "127.0.0.1:$redis_port" --delay 500us --quiet &
pids+=($!)
"$relay" --listen "127.0.0.1:$zero_port" --to "127.0.0.1:$redis_port" --delay 0 --quiet &
pids+=($!)
wait_port "$relay_port"
wait_port "$zero_port"
PORTS="$redis_port $zero_port $relay_port" $py - <<'EOF'
import os, socket, statistics, time
def conn(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
def ping(s):
    t = time.perf_counter()
    s.sendall(b"PING\r\n")
    assert s.recv(64) == b"+PONG\r\n"
    return (time.perf_counter() - t) * 1e6
names = ["direct", "relay 0", "relay 500us"]
conns = [conn(int(p)) for p in os.environ["PORTS"].split()]
for _ in range(50):
    for c in conns:
        ping(c)
rtts = [[] for _ in conns]
for _ in range(1000):
    for c, xs in zip(conns, rtts):
        xs.append(ping(c))
for name, xs in zip(names, rtts):
    xs.sort()
    print(f"{name:>12}: mean {statistics.mean(xs):7.1f} us  median {xs[500]:7.1f} us  "
          f"p99 {xs[990]:7.1f} us  min {xs[0]:7.1f} us")
d, z, v = rtts
for name, base in (("direct", d), ("relay 0", z)):
    print(f"added over {name:>7}: mean {statistics.mean(v) - statistics.mean(base):7.1f} us  "
          f"median {statistics.median(v) - statistics.median(base):7.1f} us  (2 x 500 us set)")
assert min(v) >= 1000.0, f"a round trip took {min(v):.1f} us, less than 2 x 500 us"
EOF
echo "PASS"
