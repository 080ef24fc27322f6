#!/usr/bin/python3
"""stress_test.py - the shared tier under concurrent workers, for ThreadSanitizer.

Usage: stress_test.py BINARY [SECONDS]

Runs BINARY (a nearcache built with -DNEARCACHE_TSAN=ON in CI; any build works)
with workers: 2 in front of its own redis-server, for SECONDS (default 20), while
threads read, fill and invalidate the one tier from both workers at once,
under a policy whose every kind of rule takes the policy's lock (POLICY: an
adaptive TTL, an admission window, an invalidation rule, limits and the
hygiene module):

  owners      each owns a set of keys: SET through one connection, then GET the
              key through another (often on the other worker) and through MGET:
              a write through the proxy is seen at once by every worker, never
              the value it replaced
  readers     GET and MGET a small hot set (hits, fills, single flight)
  outside     writes the hot set directly on Redis (tracking invalidations),
              deletes it now and then, reads NEARCACHE STATS and HOTKEYS,
              drops the hot set with NEARCACHE INVALIDATE (every 65th empties
              the tier) and asks for NEARCACHE RELOAD on new connections (all
              stop the world; a reload asked of worker 1 is relayed to worker
              0); every request's keys are sampled as hot keys and one hit in
              ten is audited

Fails on a wrong reply, a proxy that dies, a ThreadSanitizer report in its log,
or an exit status other than 0 on SIGTERM.
"""
import os
import random
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  (re-runs this under Debian's python3 when redis-py is missing)

HOT = [f"hot:{i}" for i in range(8)]
POLICY = """
cache:
  ttl: 60s
  audit_rate: 10
hotkeys:
  sample: 1
policy:
  default: {max_key_length: 1kb}
  cache:
    - name: owned
      keys: "own:*"
      ttl: {min: 1s, max: 60s, window: 10s}
    - name: hot
      keys: "hot:*"
      admit: {reads: 2, window: 10s}
  invalidate:
    - name: derived
      when: "own:{o}:{i}"
      drop: "derived:{o}:*"
  modules:
    - name: hygiene
      jitter: 10
"""


def owner(proxy, index, stop, errors, counts):
    """Writes its own keys and reads them back through other connections."""
    writer = proxy.client()
    readers = [proxy.client() for _ in range(3)]
    keys = [f"own:{index}:{i}" for i in range(20)]
    version = 0
    while not stop.is_set():
        key = random.choice(keys)
        version += 1
        value = f"{index}:{version}"
        writer.set(key, value)
        for r in readers:
            got = r.get(key)
            if got != value:
                errors.append(f"{key}: wrote {value}, then read {got!r}")
        got = random.choice(readers).mget([key, random.choice(keys)])[0]
        if got != value:
            errors.append(f"{key}: wrote {value}, then MGET read {got!r}")
        random.choice(readers).get(f"derived:{index}:{version % 5}")
        counts[index] += 1


def reader(proxy, stop, errors):
    c = proxy.client()
    while not stop.is_set():
        key = random.choice(HOT)
        got = c.get(key)
        if got is not None and not got.startswith("v"):
            errors.append(f"{key}: read {got!r}")
        c.mget(random.sample(HOT, 3))


def outside(redis, proxy, stop, errors):
    direct = redis.client()
    admin = proxy.client()
    n = 0
    while not stop.is_set():
        n += 1
        direct.set(random.choice(HOT), f"v{n}")
        if n % 100 == 0:
            direct.delete(*HOT)
        if n % 50 == 0 and "workers:2" not in admin.execute_command("NEARCACHE", "STATS"):
            errors.append("NEARCACHE STATS does not count 2 workers")
        if n % 60 == 0:  # both stop the other worker; every 65th INVALIDATE empties the tier
            if not isinstance(admin.execute_command("NEARCACHE", "HOTKEYS", 5), list):
                errors.append("NEARCACHE HOTKEYS did not answer a list")
            if admin.execute_command("NEARCACHE", "INVALIDATE", "hot:*") != "OK":
                errors.append("NEARCACHE INVALIDATE did not answer OK")
        if n % 400 == 0:  # on a new connection: either worker, relayed to worker 0 or not
            with proxy.client() as c:
                if c.execute_command("NEARCACHE", "RELOAD") != "OK":
                    errors.append("NEARCACHE RELOAD did not answer OK")
        time.sleep(0.001)


def main():
    binary = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
    work = tempfile.mkdtemp(prefix="nc-stress-")
    redis = procs.RedisServer(work, options=())
    config = os.path.join(work, "nearcache.yaml")
    with open(config, "w") as f:
        f.write(POLICY)
    proxy = procs.Proxy(binary, work, config, redis.port,
                        settings=("workers=2", "upstream.pool_size=2"),
                        timeout=60.0)
    errors, counts, stop = [], [0] * 4, threading.Event()
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=0 exitcode=66 second_deadlock_stack=1")
    try:
        redis.start()
        proxy.start(timeout=60.0, env=env)
        proxy.wait_cache_active(30.0)
        threads = [threading.Thread(target=owner, args=(proxy, i, stop, errors, counts))
                   for i in range(4)]
        threads += [threading.Thread(target=reader, args=(proxy, stop, errors)) for _ in range(3)]
        threads.append(threading.Thread(target=outside, args=(redis, proxy, stop, errors)))
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(60)
        stats = proxy.stats()
        proxy.signal(15)
        status = proxy.wait_exit(60)
        log = open(proxy.log_path, errors="replace").read()
        if "ThreadSanitizer" in log:
            errors.append("ThreadSanitizer reported:\n" + log[log.index("WARNING: ThreadSanitizer"):][:4000]
                          if "WARNING: ThreadSanitizer" in log else log[-4000:])
        if status != 0:
            errors.append(f"exit status {status} on SIGTERM")
        print(f"writes read back: {sum(counts)}, tier hits {stats.get('hits')}, fills "
              f"{stats.get('fills')}, invalidated by tracking {stats.get('invalidated_tracking')}")
    finally:
        stop.set()
        proxy.stop()
        redis.stop()
    for e in errors[:20]:
        print("FAIL", e)
    if errors:
        print(f"logs kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
