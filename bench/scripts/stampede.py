#!/usr/bin/env python3
"""Stampede: N clients miss one hot key at the same moment.

Each round writes the key directly on Redis (CLIENT TRACKING invalidates it
in nearcache's tier), waits until nearcache has dropped it, then has every
client send GET for it at once and read the reply. Redis's own count of GETs
run (INFO commandstats) says how many reads reached it per round: without
single flight, about one per client; with it, one.

usage: bench/scripts/stampede.py [--clients 100] [--rounds 50]
           [--bin build/nearcache] [--before OTHER_BINARY]
--before runs the same rounds through a second binary (e.g. a build of an
older commit) beside the first, in the same run.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port):
    for _ in range(200):
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never answered")


def call(sock, *args):
    """Sends one command and returns its reply's first line (bulk: the value)."""
    sock.sendall(b"".join([b"*%d\r\n" % len(args)] +
                          [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    return read_reply(sock.makefile("rb", buffering=0))


def read_reply(f):
    line = f.readline()
    if line[:1] == b"$" and int(line[1:]) >= 0:
        data = f.read(int(line[1:]) + 2)
        return data[:-2]
    return line.rstrip(b"\r\n")


def gets_run(redis):
    info = call(redis, b"INFO", b"commandstats").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_get:calls="):
            return int(line.split("=")[1].split(",")[0])
    return 0


def stat(sock, name):
    for line in call(sock, b"NEARCACHE", b"STATS").decode().splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value)
    return -1


def measure(binary, redis_port, clients, rounds, workdir):
    port = free_port()
    log = open(os.path.join(workdir, f"nearcache-{port}.log"), "w")
    proc = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}",
                             "--upstream", f"127.0.0.1:{redis_port}",
                             "--set", "admin.listen=none", "--set", "workers=1"], stderr=log)
    try:
        admin = connect(port)
        while stat(admin, "cache_active") != 1:
            time.sleep(0.05)
        redis = connect(redis_port)
        socks = [connect(port) for _ in range(clients)]
        files = [s.makefile("rb", buffering=0) for s in socks]
        get = b"*2\r\n$3\r\nGET\r\n$3\r\nhot\r\n"
        reads = 0
        for r in range(rounds):
            call(redis, b"SET", b"hot", b"v%d" % r)
            deadline = time.time() + 2
            while call(admin, b"GET", b"hot") != b"v%d" % r and time.time() < deadline:
                time.sleep(0.002)
            # The GET just above refilled the tier: write again, and wait for
            # the invalidation without reading the key.
            before_inv = stat(admin, "invalidated_keys")
            call(redis, b"SET", b"hot", b"w%d" % r)
            while stat(admin, "invalidated_keys") == before_inv and time.time() < deadline:
                time.sleep(0.002)
            before = gets_run(redis)
            for s in socks:
                s.sendall(get)
            for f in files:
                if read_reply(f) != b"w%d" % r:
                    sys.exit("a client got a stale or wrong value")
            reads += gets_run(redis) - before
        joined = stat(admin, "fills_joined")
        for s in socks + [admin, redis]:
            s.close()
        return reads / rounds, joined
    finally:
        proc.terminate()
        proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--bin", default="build/nearcache")
    ap.add_argument("--before")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="nearcache-stampede.")
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--save", "",
                              "--appendonly", "no", "--dir", workdir,
                              "--logfile", os.path.join(workdir, "redis.log")])
    try:
        connect(redis_port).close()
        print(f"{args.clients} clients miss one key at once, {args.rounds} rounds")
        print(f"{'binary':<40} {'Redis GETs per round':>22} {'joined':>8}")
        for binary in [b for b in (args.before, args.bin) if b]:
            per_round, joined = measure(binary, redis_port, args.clients, args.rounds, workdir)
            print(f"{binary:<40} {per_round:>22.2f} {max(joined, 0):>8}")
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
