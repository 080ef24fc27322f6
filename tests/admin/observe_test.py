#!/usr/bin/python3
"""observe_test.py - what the proxy reports of its traffic and its tier:
hot keys, NEARCACHE INVALIDATE and the staleness audit.

Each check starts its own redis-server and nearcache with the admin
endpoint (admin_test.Stack) and stops both by pid:

  hotkeys         a Zipf workload of reads and writes over 2,000 keys (more than
                  the summary's 256 counters): NEARCACHE HOTKEYS and /hotkeys
                  name the true top 10 with their reads, writes and hits within
                  the error bound, with one worker and with two; the cache
                  rule's reads and writes in NEARCACHE POLICY; the reply sizes
                  in /metrics; bad arguments
  hotkeys-sampled the default sampling (1 request in 32) still finds the top 3
  invalidate      with tracking off (so the tier keeps what Redis no longer has),
                  NEARCACHE INVALIDATE drops exactly the entries its pattern
                  matches; a bad pattern; 70 patterns (past the 64 kept)
  audit-fresh     audit_rate 1, writes through the proxy racing reads on other
                  connections: every audited hit is fresh
  audit-stale     audit_rate 1 with tracking off and a write made on Redis: the
                  audit counts the stale hits, in STATS and /metrics
  audit-elsewhere audit_rate 1, a Zipf mix of reads through the proxy and writes
                  made on Redis directly: no stale hit (prints the figures;
                  OBSERVE_AUDIT_READS sets the reads, 60,000 by default)

  python3 tests/admin/observe_test.py --bin build/nearcache [--check NAME]...
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import json
import random
import threading
import time

import checks
from admin_test import Stack
from checks import expect, error_reply

KEYS = 2000
REQUESTS = 30000
# audit-elsewhere's reads; the long run of the README sets 1,000,000
ELSEWHERE_READS = int(os.environ.get("OBSERVE_AUDIT_READS", "60000"))


def zipf_keys(n, keys=KEYS, s=1.1, seed=7):
    """n key numbers drawn from a Zipf distribution over 1..keys."""
    weights = [1 / (i ** s) for i in range(1, keys + 1)]
    return random.Random(seed).choices(range(1, keys + 1), weights, k=n)


def run_zipf(client, n=REQUESTS, write_every=5):
    """Reads and writes (one in write_every) of hot:<i> through client, pipelined;
    the true {key: [reads, writes]}."""
    truth = {}
    pipe = client.pipeline(transaction=False)
    for j, i in enumerate(zipf_keys(n)):
        key = f"hot:{i}"
        counts = truth.setdefault(key, [0, 0])
        if j % write_every == 0:
            pipe.set(key, j)
            counts[1] += 1
        else:
            pipe.get(key)
            counts[0] += 1
        if len(pipe) == 500:
            pipe.execute()
    pipe.execute()
    return truth


def top(truth, n):
    return sorted(truth, key=lambda k: -sum(truth[k]))[:n]


def check_hot_list(entries, truth, where):
    """entries: [(key, reads, writes, hits, error)] as reported with sampling 1."""
    names = [e[0] for e in entries]
    expect(len(entries) == 10, f"{where}: {len(entries)} entries")
    expect(set(names) == set(top(truth, 10)),
           f"{where}: {names} is not the true top 10 {top(truth, 10)}")
    for key, reads, writes, hits, error in entries:
        true_reads, true_writes = truth[key]
        expect(reads <= true_reads and writes <= true_writes and
               reads + writes + error >= true_reads + true_writes,
               f"{where}: {key}: {reads} reads, {writes} writes, error {error}; "
               f"true {true_reads}, {true_writes}")
        expect(hits <= reads, f"{where}: {key}: {hits} hits of {reads} reads")
    expect(any(e[3] > 0 for e in entries), f"{where}: no hits counted")


def policy_line(stack, prefix):
    """The counters of one NEARCACHE POLICY line, as {name: int}."""
    for line in stack.client().execute_command("NEARCACHE", "POLICY").splitlines():
        if line.startswith(prefix):
            return {k: int(v) for k, v in (f.split("=") for f in line[len(prefix):].split(","))}
    raise checks.Failed(f"NEARCACHE POLICY has no {prefix} line")


def hotkeys_of(stack, n=10):
    reply = stack.client().execute_command("NEARCACHE", "HOTKEYS", n)
    return [(k, r, w, h, e) for k, r, w, h, e in reply]


def check_hotkeys_with(binary, workers):
    config = {"workers": workers, "hotkeys": {"sample": 1},
              "policy": {"cache": [{"name": "hot", "keys": "hot:*"}]}}
    with Stack(binary, config) as s:
        s.proxy.wait_cache_active(10)
        clients = [s.client() for _ in range(4)]
        truths = [None] * 4

        def run(i):
            truths[i] = run_zipf(clients[i], REQUESTS // 4)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        truth = {}
        for part in truths:
            for k, (r, w) in part.items():
                counts = truth.setdefault(k, [0, 0])
                counts[0] += r
                counts[1] += w
        check_hot_list(hotkeys_of(s), truth, f"HOTKEYS ({workers} workers)")
        doc = json.loads(s.admin("GET", "/hotkeys?n=10").body)
        expect(doc["sample"] == 1, f"/hotkeys sample {doc['sample']}")
        check_hot_list([(e["key"], e["reads"], e["writes"], e["hits"], e["error"])
                        for e in doc["keys"]], truth, "/hotkeys")
        expect(len(hotkeys_of(s, 3)) == 3, "HOTKEYS 3")
        expect(hotkeys_of(s, 0) == [], "HOTKEYS 0")
        m = s.metrics()
        expect(m("nearcache_hotkeys_sampled_total") >= REQUESTS, "sampled_total")
        rule = policy_line(s, "rule:cache:hot:")
        reads, writes = sum(r for r, _ in truth.values()), sum(w for _, w in truth.values())
        # reads that joined one in flight or waited on a write count on neither
        expect(0 < rule["hits"] and rule["hits"] + rule["misses"] <= reads and
               rule["writes"] == writes, f"POLICY {rule}: true reads {reads}, writes {writes}")
        sizes = m.buckets("nearcache_reply_size_bytes")
        expect(m("nearcache_reply_size_bytes_count") >= REQUESTS and sizes[0] == (64, sizes[-1][1]),
               f"reply sizes: {sizes}")


def check_hotkeys(binary):
    check_hotkeys_with(binary, 1)
    check_hotkeys_with(binary, 2)
    with Stack(binary, {"hotkeys": {"sample": 1}}) as s:
        c = s.client()
        for args, why in ((("x",), "not an integer"), (("-1",), "not an integer"),
                          (("1", "2"), "wrong number of arguments")):
            err = error_reply(c.execute_command, "NEARCACHE", "HOTKEYS", *args)
            expect(why in err, f"HOTKEYS {args}: {err}")
        c.set(b"bin\x00\xff\\key", "v")
        doc = json.loads(s.admin("GET", "/hotkeys").body)
        expect(doc["keys"][0]["key"] == "bin\\x00\\xff\\\\key", f"/hotkeys key {doc['keys'][0]}")
        for query in ("n=abc", "n=-1", "n="):
            reply = s.admin("GET", f"/hotkeys?{query}")
            expect(reply.status == 400, f"/hotkeys?{query}: {reply.status}")
    with Stack(binary, {"hotkeys": {"sample": 0}}) as s:
        err = error_reply(s.client().execute_command, "NEARCACHE", "HOTKEYS")
        expect("not sampled" in err, f"HOTKEYS with sampling off: {err}")
        expect(s.admin("GET", "/hotkeys").status == 409, "/hotkeys with sampling off")


def check_hotkeys_sampled(binary):
    with Stack(binary) as s:
        s.proxy.wait_cache_active(10)
        truth = run_zipf(s.client(), REQUESTS)
        names = [e[0] for e in hotkeys_of(s)]
        expect(set(top(truth, 3)) <= set(names), f"sampled: {names} lacks one of {top(truth, 3)}")


def fill(client, keys):
    for _ in range(2):
        for k in keys:
            client.get(k)


def check_invalidate(binary):
    with Stack(binary, {"cache": {"tracking": False, "ttl": "10m"}}) as s:
        c, direct = s.client(), s.direct()
        keys = ["user:1:profile", "user:2:profile", "user:2:cart", "product:1"]
        for k in keys:
            direct.set(k, "old")
        fill(c, keys)
        for k in keys:
            direct.set(k, "new")  # unseen: tracking is off, so the tier keeps "old"
        expect([c.get(k) for k in keys] == ["old"] * 4, "the tier did not keep the old values")
        expect(c.execute_command("NEARCACHE", "INVALIDATE", "user:{id}:profile") in (b"OK", "OK"),
               "INVALIDATE user:{id}:profile")
        inspect = {k: c.execute_command("NEARCACHE", "INSPECT", k) for k in keys}
        expect("current=0" in inspect["user:1:profile"] and "current=1" in inspect["product:1"],
               f"INSPECT after INVALIDATE: {inspect}")
        got = [c.get(k) for k in keys]
        expect(got == ["new", "new", "old", "old"], f"after INVALIDATE user:{{id}}:profile: {got}")
        fill(c, keys)
        got = [c.get(k) for k in keys]
        expect(got == ["new", "new", "old", "old"], f"refilled: {got}")
        c.execute_command("NEARCACHE", "INVALIDATE", "*")
        expect([c.get(k) for k in keys] == ["new"] * 4, "after INVALIDATE *")
        err = error_reply(c.execute_command, "NEARCACHE", "INVALIDATE", "user:{id")
        expect(err.startswith("invalid pattern: "), f"a bad pattern: {err}")
        err = error_reply(c.execute_command, "NEARCACHE", "INVALIDATE")
        expect("wrong number of arguments" in err, f"INVALIDATE alone: {err}")
        # past the 64 patterns kept, the tier is emptied: still nothing stale
        for k in keys:
            direct.set(k, "newer")
        for i in range(70):
            c.execute_command("NEARCACHE", "INVALIDATE", f"other:{i}:*")
        expect([c.get(k) for k in keys] == ["newer"] * 4, "after 70 patterns")


def audit_figures(stack):
    st = stack.proxy.stats()
    return st["audit_checks"], st["audit_stale"], st["audit_raced"]


def check_audit_fresh(binary):
    with Stack(binary, {"cache": {"audit_rate": 1}}) as s:
        s.proxy.wait_cache_active(10)
        stop = threading.Event()

        def writer():
            c = s.client()
            i = 0
            while not stop.is_set():
                c.set(f"k:{i % 20}", i)
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        reader = s.client()
        for i in range(20000):
            reader.get(f"k:{i % 20}")
        stop.set()
        t.join()
        time.sleep(0.3)
        checks_, stale, raced = audit_figures(s)
        print(f"  audit-fresh: {checks_} checks, {stale} stale, {raced} raced")
        expect(checks_ > 1000, f"only {checks_} audit checks")
        expect(stale == 0, f"{stale} stale of {checks_} audited hits")
        m = s.metrics()
        expect(m("nearcache_cache_audit_checks_total") >= checks_, "audit checks in /metrics")


def check_audit_stale(binary):
    with Stack(binary, {"cache": {"audit_rate": 1, "tracking": False}}) as s:
        c, direct = s.client(), s.direct()
        direct.set("k", "old")
        fill(c, ["k"])
        direct.set("k", "new")
        for _ in range(10):
            expect(c.get("k") == "old", "the tier did not keep the old value")
        expect(procs.wait_until(lambda: audit_figures(s)[1] >= 10, 3), f"stale: {audit_figures(s)}")
        s.await_metric("stale hits", lambda v: v >= 10, 3, "nearcache_cache_audit_stale_total")


def check_audit_elsewhere(binary):
    with Stack(binary, {"cache": {"audit_rate": 1}}) as s:
        s.proxy.wait_cache_active(10)
        stop = threading.Event()
        written = [0]

        def writer():
            d = s.direct()
            for i in zipf_keys(10 ** 6, keys=200, seed=3):
                if stop.is_set():
                    return
                d.set(f"hot:{i}", written[0])
                written[0] += 1
                time.sleep(0.001)

        t = threading.Thread(target=writer)
        t.start()
        c = s.client()
        pipe = c.pipeline(transaction=False)
        reads = 0
        for i in zipf_keys(ELSEWHERE_READS, keys=200, seed=5):
            pipe.get(f"hot:{i}")
            reads += 1
            if len(pipe) == 50:
                pipe.execute()
        pipe.execute()
        stop.set()
        t.join()
        time.sleep(0.3)
        checks_, stale, raced = audit_figures(s)
        hits = s.proxy.stats()["hits"]
        print(f"  audit-elsewhere: {reads} reads, {hits} hits, {written[0]} writes on Redis, "
              f"{checks_} audited: {stale} stale, {raced} raced")
        expect(checks_ > 1000, f"only {checks_} audit checks")
        expect(stale == 0, f"{stale} stale of {checks_} audited hits")


CHECKS = (
    ("hotkeys", check_hotkeys),
    ("hotkeys-sampled", check_hotkeys_sampled),
    ("invalidate", check_invalidate),
    ("audit-fresh", check_audit_fresh),
    ("audit-stale", check_audit_stale),
    ("audit-elsewhere", check_audit_elsewhere),
)

if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS))
