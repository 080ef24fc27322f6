#!/usr/bin/python3
"""python_client.py - redis-py (Debian's python3-redis) through nearcache.

Applications name their connections and use databases other than 0; since the
lanes, such clients stay on the proxy's shared connections and are served from
its tier. This test runs redis.Redis(client_name="web-1", db=1) through a
proxy and checks, each check printed PASS or FAIL:

  results       SET/GET, HSET/HGETALL, MGET, a plain and a MULTI pipeline answer
                what a direct client with the same settings gets from Redis, and
                the writes land in database 1 (not 0)
  name          CLIENT GETNAME answers web-1
  hits          once a key is in the tier, 20 more GETs (then HGETALLs) raise
                `hits` by exactly 20 and `misses` by 0
  databases     the same key name in database 0 is cached apart: neither
                database is answered the other's value
  proxy-write   a SET by a second client through the proxy is seen by the
                first client's next GET (no stale tier entry)
  direct-write  a SET made on Redis in database 1 is seen within 2 s (the
                tier is invalidated by Redis's tracking)

  python3 tests/clients/python_client.py --bin build/nearcache
  python3 tests/clients/python_client.py --bin build/nearcache \\
      --set cache.enabled=false     # self-test: `hits` must FAIL

This python3-redis (4.3.x in Debian 12) has no protocol=3: RESP3 clients are
covered by node-redis in node_clients.py. The last line is "N passed, M
failed"; the exit status is 1 if a check failed.
"""
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside servers.py in the source tree
import servers  # first: it runs Debian's python3 if this one has no redis module
import argparse
import time

import redis
from servers import HOST, Servers

SETTINGS = {"client_name": "web-1", "db": 1, "decode_responses": True, "socket_timeout": 5}
HIT_READS = 20          # reads that must all be hits once a key is cached
MAX_TRIES = 100         # reads until the first hit (a new lane is tracked lazily)
INVALIDATION_BOUND = 2.0


class Mismatch(Exception):
    pass


def expect(what, got, want):
    if got != want:
        raise Mismatch(f"{what}: got {got!r}, expected {want!r}")


def scenario(c, p):
    """Commands an application sends, on keys under prefix p; every reply, in order."""
    out = [c.set(p + "str", "v1"), c.get(p + "str"), c.get(p + "str"), c.get(p + "none")]
    out += [c.hset(p + "hash", mapping={"f1": "a", "f2": "b"}),
            c.hgetall(p + "hash"), c.hgetall(p + "hash"), c.hgetall(p + "none")]
    out += [c.mget([p + "str", p + "none", p + "hash"]), c.mget([p + "str", p + "none"])]
    pipe = c.pipeline(transaction=False)
    pipe.set(p + "n", 1).incr(p + "n").get(p + "n").get(p + "str").hget(p + "hash", "f1")
    out.append(pipe.execute())
    pipe = c.pipeline()    # redis-py's default: MULTI ... EXEC
    pipe.incr(p + "n").get(p + "n").hgetall(p + "hash").mget([p + "str", p + "n"])
    out.append(pipe.execute())
    return out


def check_results(env):
    direct = redis.Redis(host=HOST, port=env.servers.redis_port, **SETTINGS)
    want = scenario(direct, "direct:")
    got = scenario(env.client, "proxy:")
    for i, (g, w) in enumerate(zip(got, want)):
        expect(f"reply {i} of the scenario", g, w)
    expect("GET proxy:str on Redis, db 1", direct.get("proxy:str"), "v1")
    db0 = redis.Redis(host=HOST, port=env.servers.redis_port, decode_responses=True)
    expect("EXISTS proxy:str on Redis, db 0", db0.exists("proxy:str"), 0)


def check_name(env):
    expect("CLIENT GETNAME", env.client.client_getname(), "web-1")


def cached_reads(env, what, read):
    """Read until a read is a tier hit, then HIT_READS more that must all be
    hits, with the same reply; that reply."""
    for _ in range(MAX_TRIES):
        before = env.servers.stats()["hits"]
        first = read()
        if env.servers.stats()["hits"] > before:
            break
    else:
        raise Mismatch(f"{what}: no tier hit in {MAX_TRIES} reads ({stats_line(env)})")
    before = env.servers.stats()
    replies = [read() for _ in range(HIT_READS)]
    after = env.servers.stats()
    hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
    if (hits, misses) != (HIT_READS, 0):
        raise Mismatch(f"{what}: {HIT_READS} reads of a cached key made {hits} hits and "
                       f"{misses} misses, expected {HIT_READS} and 0")
    for reply in replies:
        expect(f"{what} served from the tier", reply, first)
    return first


def stats_line(env):
    s = env.servers.stats()
    return ", ".join(f"{k} {s.get(k)}" for k in ("cache_active", "tracking", "hits", "misses"))


def check_hits(env):
    env.client.set("hot", "h1")
    env.client.hset("hot:h", mapping={"a": "1"})
    expect("GET hot", cached_reads(env, "GET hot", lambda: env.client.get("hot")), "h1")
    expect("HGETALL hot:h", cached_reads(env, "HGETALL hot:h",
                                         lambda: env.client.hgetall("hot:h")), {"a": "1"})


def check_databases(env):
    db0 = redis.Redis(host=HOST, port=env.servers.proxy_port, decode_responses=True)
    env.client.set("same", "in-db1")
    db0.set("same", "in-db0")
    expect("GET same, db 1", cached_reads(env, "GET same, db 1",
                                          lambda: env.client.get("same")), "in-db1")
    expect("GET same, db 0", cached_reads(env, "GET same, db 0", lambda: db0.get("same")),
           "in-db0")
    expect("GET same, db 1 after db 0 was cached", env.client.get("same"), "in-db1")


def check_proxy_write(env):
    cached_reads(env, "GET hot", lambda: env.client.get("hot"))
    other = redis.Redis(host=HOST, port=env.servers.proxy_port,
                        **dict(SETTINGS, client_name="web-2"))
    expect("SET by web-2", other.set("hot", "h2"), True)
    other.close()
    expect("GET hot by web-1 right after web-2's SET", env.client.get("hot"), "h2")


def check_direct_write(env):
    expect("GET hot", cached_reads(env, "GET hot", lambda: env.client.get("hot")), "h2")
    direct = redis.Redis(host=HOST, port=env.servers.redis_port, **SETTINGS)
    direct.set("hot", "h3")
    written = time.monotonic()
    while (got := env.client.get("hot")) != "h3":
        if time.monotonic() - written > INVALIDATION_BOUND:
            raise Mismatch(f"GET hot through the proxy still answers {got!r} "
                           f"{INVALIDATION_BOUND} s after SET hot h3 on Redis")
        time.sleep(0.001)


CHECKS = [("results", check_results), ("name", check_name), ("hits", check_hits),
          ("databases", check_databases), ("proxy-write", check_proxy_write),
          ("direct-write", check_direct_write)]


class Env:
    def __init__(self, servers):
        self.servers = servers
        self.client = redis.Redis(host=HOST, port=servers.proxy_port, **SETTINGS)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/nearcache", help="the nearcache binary")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra proxy setting (repeatable)")
    args = p.parse_args()
    print(f"redis-py {redis.__version__}")
    failed = 0
    with Servers(args.bin, args.set) as servers:
        env = Env(servers)
        for name, check in CHECKS:
            try:
                check(env)
                print(f"PASS {name}", flush=True)
            except (Mismatch, redis.RedisError) as e:
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        if failed:
            print("nearcache log tail:\n" + servers.log_tail(), end="")
    print(f"{len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
