#!/usr/bin/python3
"""analyze_test.py - `nearcache analyze` against a redis-server the test seeds.

The seed: 2000 `user:<n>:profile` hashes with a 1 h TTL, 500 `session:<32 hex>`
strings of 2 KB with a 10 min TTL, 300 `product:<n>` strings of 50 KB without
TTL, and the literal keys `config`, `feature-flags`, `stats:daily`.

  patterns     --json finds exactly those patterns, counts, types, sizes, TTLs
  policy       --emit-policy writes rules that `nearcache --check-config` accepts
  max-keys     --max-keys 100 stops at exactly 100 keys
  rate         --rate R over N keys and samples takes at least N/R seconds;
               Redis's PING latency meanwhile is printed (not asserted)
  bad-input    usage errors exit 2, runtime failures 1, each one line
  auth         a Redis with requirepass: refused without the password, walked with it
  proxy        --proxy reads the proxy's STATS, POLICY and NEARCACHE HOTKEYS; the
               hot-key figures are asserted only when the proxy reports them

  python3 tests/tools/analyze_test.py --bin build/nearcache [--check NAME]...
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside procs.py in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import contextlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import checks  # noqa: E402
from checks import Failed, expect  # noqa: E402

USERS, SESSIONS, PRODUCTS = 2000, 500, 300
LITERALS = ("config", "feature-flags", "stats:daily")
TOTAL = USERS + SESSIONS + PRODUCTS + len(LITERALS)
RUN_TIMEOUT = 60


def seed(client):
    pipe = client.pipeline(transaction=False)
    for i in range(USERS):
        pipe.hset(f"user:{i}:profile", mapping={"name": f"user{i}", "email": f"u{i}@example.com"})
        pipe.expire(f"user:{i}:profile", 3600)
    for i in range(SESSIONS):
        pipe.set("session:" + os.urandom(16).hex(), b"s" * 2048, ex=600)
    for i in range(PRODUCTS):
        pipe.set(f"product:{i}", os.urandom(50 * 1024))
    for key in LITERALS:
        pipe.set(key, "on")
    pipe.execute()


def analyze(binary, *args, expect_rc=0, env=None):
    """Runs `nearcache analyze args`; (stdout, stderr); fails on another status."""
    done = subprocess.run([binary, "analyze", *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=env)
    if done.returncode != expect_rc:
        raise Failed(f"analyze {' '.join(args)}: exit {done.returncode}, expected {expect_rc}: "
                     f"{done.stderr.strip()}")
    return done.stdout, done.stderr


def report(binary, redis_server, *args):
    out, _ = analyze(binary, "-u", redis_server.address, "--json", *args)
    return json.loads(out)


def by_pattern(rep):
    return {p["pattern"]: p for p in rep["patterns"]}


def check_patterns(binary, redis_server, workdir):
    rep = report(binary, redis_server, "--rate", "0")
    found = by_pattern(rep)
    want = {"user:{id}:profile": USERS, "session:{id}": SESSIONS, "product:{id}": PRODUCTS,
            **{k: 1 for k in LITERALS}}
    expect({p: found[p]["keys"] for p in found} == want, f"patterns: {sorted(found)}")
    expect(rep["scan"]["keys"] == TOTAL and not rep["scan"]["stopped_at_max_keys"], rep["scan"])
    user, session, product = (found[p] for p in ("user:{id}:profile", "session:{id}",
                                                 "product:{id}"))
    expect(user["types"] == {"hash": user["sampled"]} and user["sampled"] == 32, user["types"])
    expect(set(session["types"]) == {"string"} and set(product["types"]) == {"string"},
           (session["types"], product["types"]))
    expect(user["size"]["max"] < 1024, f"user size {user['size']}")
    expect(2048 <= session["size"]["min"] and session["size"]["max"] < 4096, session["size"])
    expect(50 * 1024 <= product["size"]["min"] and product["size"]["max"] < 64 * 1024,
           product["size"])
    expect(user["ttl"]["none"] == 0 and 3500e3 < user["ttl"]["min"] <= user["ttl"]["max"] <= 3600e3,
           f"user ttl {user['ttl']}")
    expect(session["ttl"]["none"] == 0 and 500e3 < session["ttl"]["max"] <= 600e3, session["ttl"])
    expect(product["ttl"]["none"] == product["sampled"] and product["ttl"]["min"] is None,
           product["ttl"])
    expect(any("no TTL" in r for r in product["risks"]), product["risks"])
    expect(product["rule"]["compress_over"] == "4kb" and "admit" in product["rule"],
           product["rule"])
    expect(found["config"]["rule"] is None, "a literal key gets no rule")
    text, _ = analyze(binary, "-u", redis_server.address, "--rate", "0")
    expect("user:{id}:profile" in text and "recommendations" in text, text)


def check_policy(binary, redis_server, workdir):
    path = os.path.join(workdir, "policy.yaml")
    report(binary, redis_server, "--rate", "0", "--emit-policy", path)
    with open(path) as f:
        text = f.read()
    for pattern in ("user:{id}:profile", "session:{id}", "product:{id}"):
        expect(f'keys: "{pattern}"' in text, f"{pattern} not in\n{text}")
    done = subprocess.run([binary, "--check-config", "-c", path], capture_output=True, text=True,
                          timeout=10)
    expect(done.returncode == 0 and "ok (" in done.stdout,
           f"--check-config: {done.returncode} {done.stdout}{done.stderr}\n{text}")
    out, _ = analyze(binary, "-u", redis_server.address, "--rate", "0", "--emit-policy", "-")
    expect(out.startswith("# Written by") and "policy:" in out, out)


def check_max_keys(binary, redis_server, workdir):
    rep = report(binary, redis_server, "--rate", "0", "--max-keys", "100")
    expect(rep["scan"]["keys"] == 100 and rep["scan"]["stopped_at_max_keys"], rep["scan"])
    expect(sum(p["keys"] for p in rep["patterns"]) == 100, "pattern counts add up to 100")
    expect(any("--max-keys" in a for a in rep["advice"]), rep["advice"])


def ping_latencies(redis_server, stop, out):
    client = redis_server.client()
    while not stop.is_set():
        start = time.monotonic()
        client.ping()
        out.append(time.monotonic() - start)
        time.sleep(0.01)
    client.close()


def check_rate(binary, redis_server, workdir):
    rate = 2000
    stop, lat = threading.Event(), []
    pinger = threading.Thread(target=ping_latencies, args=(redis_server, stop, lat))
    pinger.start()
    start = time.monotonic()
    try:
        rep = report(binary, redis_server, "--rate", str(rate), "--samples", "8")
    finally:
        elapsed = time.monotonic() - start
        stop.set()
        pinger.join()
    units = rep["scan"]["units"]  # keys scanned (SCAN COUNT at least) plus keys sampled
    expect(units >= TOTAL, f"units {units}")
    expect(elapsed >= 0.95 * units / rate, f"{units} units at {rate}/s took {elapsed:.2f} s")
    lat.sort()
    print(f"  rate: {units} units at {rate}/s in {elapsed:.2f} s; Redis PING meanwhile: "
          f"{len(lat)} pings, p50 {lat[len(lat) // 2] * 1e3:.2f} ms, "
          f"max {lat[-1] * 1e3:.2f} ms")


def check_bad_input(binary, redis_server, workdir):
    cases = [(["--bogus"], 2, "unknown option"), (["--max-keys", "0"], 2, "--max-keys"),
             (["--max-keys", "12x"], 2, "--max-keys"), (["--rate", "-1"], 2, "--rate"),
             (["-u", "nohost"], 2, "host:port"), (["--cluster", "a:1", "--db", "2"], 2, "--db"),
             (["extra"], 2, "unexpected argument"),
             (["-u", f"127.0.0.1:{procs.free_port()}"], 1, "cannot connect")]
    for args, rc, what in cases:
        _, err = analyze(binary, *args, expect_rc=rc)
        expect(rc == 2 or err.count("\n") == 1, f"{args}: one line: {err!r}")
        expect(what in err.splitlines()[0], f"{args}: first line {err.splitlines()[0]!r}")
    out, _ = analyze(binary, "--help")
    expect("--max-keys" in out, out)
    done = subprocess.run([binary, "nosuchtool"], capture_output=True, text=True, timeout=10)
    expect(done.returncode == 2 and "analyze" in done.stderr, done.stderr)


def check_auth(binary, redis_server, workdir):
    locked = procs.RedisServer(workdir, "locked", options=("--requirepass", "s3cret"))
    locked.start(ready=lambda: True)
    try:
        time.sleep(0.3)
        _, err = analyze(binary, "-u", locked.address, expect_rc=1)
        expect("requires a password" in err, err)
        _, err = analyze(binary, "-u", locked.address, "--password", "wrong", expect_rc=1)
        expect("AUTH" in err, err)
        env = dict(os.environ, NEARCACHE_ANALYZE_PASSWORD="s3cret")
        out, _ = analyze(binary, "-u", locked.address, "--json", env=env)
        expect(json.loads(out)["scan"]["keys"] == 0, out)
    finally:
        locked.stop()


def check_proxy(binary, redis_server, workdir):
    proxy = procs.Proxy(binary, workdir, None, redis_server.address)
    proxy.start()
    try:
        proxy.wait_cache_active(10)
        client = proxy.client()
        sessions = [k for k in redis_server.client().scan_iter("session:*", count=1000)][:5]
        for _ in range(50):
            for i in range(5):
                client.hgetall(f"user:{i}:profile")
            for key in sessions:  # written as often as read
                client.get(key)
                client.set(key, "s" * 2048, ex=600)
        proxy_address = f"{procs.HOST}:{proxy.port}"
        rep = report(binary, redis_server, "--rate", "0", "--proxy", proxy_address)
        figures = rep["proxy"]
        expect(figures["stats"]["hits"] > 0, f"proxy stats {figures['stats']}")
        expect(any(r["kind"] == "cache" for r in figures["policy"]), figures["policy"])
        if figures["hotkeys"] is None:
            expect("the proxy does not report hot keys" in figures["notes"], figures["notes"])
            print("  proxy: NEARCACHE HOTKEYS not answered; hot-key assertions not run")
            return
        found = by_pattern(rep)
        user, session = found["user:{id}:profile"], found["session:{id}"]
        expect(user["traffic"]["reads"] > 0 and user["traffic"]["writes"] == 0, user["traffic"])
        expect(session["traffic"]["writes"] > 0, session["traffic"])
        expect(session["rule"]["cache"] is False and session["risks"], session)
        expect(user["rule"].get("cache", True) is not False, user["rule"])
    finally:
        proxy.stop()


@contextlib.contextmanager
def seeded(args):
    with tempfile.TemporaryDirectory(prefix="nc-analyze-") as workdir:
        server = procs.RedisServer(workdir, options=())
        server.start()
        try:
            seed(server.client())
            yield server, workdir
        finally:
            server.stop()


CHECKS = [("patterns", check_patterns), ("policy", check_policy), ("max-keys", check_max_keys),
          ("rate", check_rate), ("bad-input", check_bad_input), ("auth", check_auth),
          ("proxy", check_proxy)]

if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS, setup=seeded))
