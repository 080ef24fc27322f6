# shellcheck shell=bash
# Shared by the bench scripts (sourced, not run): a temporary directory and
# the processes started in it, both removed on exit, and port helpers.

# Creates $dir for the named benchmark and the EXIT trap that stops every pid
# appended to $pids and removes $dir.
bench_setup() {
    dir=$(mktemp -d "/tmp/nearcache-$1.XXXXXX")
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null
    rm -rf "$dir"
}

# Prints a free loopback TCP port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until a Redis-protocol server answers PING on port $1.
wait_port() {
    for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "port $1 not ready" >&2
    exit 1
}

# Starts a throwaway redis-server in $dir on a free port; sets $redis_port
# and $redis_pid and waits until it answers.
start_redis() {
    redis_port=$(free_port)
    redis-server --port "$redis_port" --save "" --appendonly no --dir "$dir" \
        --logfile "$dir/redis.log" &
    redis_pid=$!
    pids+=("$redis_pid")
    wait_port "$redis_port"
}

# Waits until nearcache on port $1 serves from its local tier (tracking up).
wait_tier() {
    for _ in $(seq 400); do
        redis-cli -p "$1" nearcache stats | tr -d '\r' | grep -qx 'cache_active:1' && return
        sleep 0.05
    done
    echo "tier on port $1 not active" >&2
    exit 1
}

# CPU ticks (user + system, of every thread) of process $1 so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
