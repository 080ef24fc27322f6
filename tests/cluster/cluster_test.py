#!/usr/bin/python3
"""cluster_test.py - nearcache in front of a Redis Cluster (issue 14).

Each check starts its own cluster (procs.Cluster: 3 primaries, a replica
each, on free loopback ports in one temporary directory, stopped by pid) and
nearcache with upstream.cluster naming one seed (its --upstream is a closed
port, which it must ignore), JSON logs. Clients are plain redis-py clients
that know nothing of clusters; what they read is checked on the nodes
directly.

  routing      every command class reaches the node of its key's slot, and its
               reply is the node's own: strings, hashes, lists, sets, sorted
               sets, streams, expiries, scripts with keys; keys sharing a hash
               tag in MGET/MSET; commands without keys; keys of several slots
               get Redis Cluster's -CROSSSLOT (RENAME)
  fanout       MGET, MSET, DEL, UNLINK, EXISTS and TOUCH over keys of many slots
               (and MGET in RESP3) answer byte for byte what one Redis answers
               to the same commands; DBSIZE and KEYS count and list the keys of
               every primary, SCAN visits them (its cursor carries the node),
               FLUSHALL empties every primary
  clients      cluster-aware clients see the proxy as a cluster of one node
               owning every slot (CLUSTER INFO, MYID, SLOTS, SHARDS, NODES,
               KEYSLOT) and send everything through it: redis-py's RedisCluster,
               redis-cli -c; redis-benchmark (SET, GET, MSET over keys of every
               slot) runs without an error; COUNTKEYSINSLOT goes to
               the slot's node; CLUSTER SETSLOT is refused
  sessions     MULTI/EXEC and WATCH on keys of one slot run on their node,
               keys of another node inside a transaction get -CROSSSLOT and the
               EXEC -EXECABORT; BLPOP is woken by an LPUSH through the proxy;
               SUBSCRIBE gets a PUBLISH made through the proxy, SSUBSCRIBE an
               SPUBLISH (on the channel's node)
  ask          a slot held half migrated: keys already moved and keys not yet
               moved read right through the proxy (-ASK followed, with ASKING),
               a new key is written on the importing node, the map is unchanged
               (no MOVED counted); an MGET over that slot and others, answered
               -TRYAGAIN by the nodes meanwhile, reads every key once the
               migration ends; then reads follow the -MOVED
  tier         the local tier on a cluster: a key of each primary read twice is
               a hit the second time; a write made directly on its node is
               seen through the proxy (tracking on every primary); a cached key
               whose slot migrates, then is written on its new owner, is seen
               new; a key that does not exist is not kept (created on the node
               its slot migrated to, it is seen); after a CLUSTER FAILOVER, a write on the new primary is seen
  reload       an invalidation rule added by NEARCACHE RELOAD fires on writes
               made directly on every primary (its sources registered with each
               node's tracking)
  migration    writers through the proxy and writers on the cluster directly (a
               cluster client), and readers through the proxy, on keys of one
               slot while that slot moves to another primary and back, a key at
               a time: no error, no read (through the tier) older than a write
               acknowledged before it began (for a write made on the cluster
               directly, ELSEWHERE_WINDOW before: Redis's invalidation must
               reach the proxy first; the late ones are counted), every acknowledged write on the owner at the end; the
               redirects counted in STATS and /metrics
  analyze      nearcache analyze --cluster walks every primary: the keys written
               through the proxy found once each, in their patterns; --proxy
               reads the proxy's hot keys

  python3 tests/cluster/cluster_test.py --bin build/nearcache [--check NAME]...

One line per check, PASS or FAIL (with the reason and the proxy's log tail);
the last line is "N passed, M failed"; the exit status is 1 if one failed.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside procs.py in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import bisect
import json
import re
import socket
import subprocess
import threading
import time

import checks
import redis
import redis.cluster
from redis.crc import key_slot
from checks import attempt, expect, http_request
from procs import free_port

IO_TIMEOUT = 10.0
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"


class Setup(procs.Group):
    """A cluster and nearcache in front of it (settings added to the proxy's);
    `with` starts them and stops every process by pid."""

    def __init__(self, binary, settings=(), single=False, admin=False, config=None):
        super().__init__("nearcache-cluster-")
        self.config = os.path.join(self.dir, "nearcache.yaml") if config else None
        if config:
            with open(self.config, "w") as f:
                f.write(config)
        self.admin_port = free_port() if admin else None
        if admin:
            settings = (*settings, f"admin.listen={procs.HOST}:{self.admin_port}")
        self.cluster = self.add(procs.Cluster(self.dir))
        # one Redis beside the cluster, to compare replies with
        self.single = self.add(procs.RedisServer(self.dir, "single", ("--appendonly", "no"))) \
            if single else None
        seed = self.cluster.nodes[0]
        self.proxy = self.add(procs.Proxy(
            binary, self.dir, self.config, free_port(),
            ["log_format=json", f"upstream.cluster={seed.address}", *settings],
            timeout=IO_TIMEOUT))

    def start(self):
        self.cluster.start()
        self.proxy.start()
        if self.single:
            self.single.start()

    def owner(self, key):
        """The node serving key's slot now."""
        return self.cluster.node_for_slot(key_slot(key.encode()))

    def direct(self, key):
        """A client of the node serving key's slot."""
        return self.owner(key).client()


def other_node_key(s, key, prefix):
    """A key starting with prefix whose slot is on another node than key's."""
    owner = s.owner(key)
    return next(k for k in (f"{prefix}{i}" for i in range(1000)) if s.owner(k) is not owner)


# ---- 1. routing ------------------------------------------------------------------

def check_routing(binary):
    with Setup(binary) as s:
        c = s.proxy.client()
        keys = [f"user:{i}" for i in range(300)]
        for k in keys:
            expect(c.set(k, k.upper()) is True, f"SET {k}")
        nodes = set()
        for k in keys:
            owner = s.owner(k)
            nodes.add(owner.port)
            expect(owner.client().get(k) == k.upper(), f"{k} is not on its slot's node")
        expect(len(nodes) == 3, f"300 keys reached {len(nodes)} primaries")
        expect_classes(s, c)
        expect(c.ping() and c.echo("hi") == "hi", "PING, ECHO")
        expect(c.mset({"{t}a": "1", "{t}b": "2"}) and c.mget("{t}a", "{t}b") == ["1", "2"],
               "MSET, MGET of one hash tag")
        _, err = attempt(c.execute_command, "RENAME", "user:1", "user:2")
        expect(err == CROSSSLOT, f"RENAME across slots: {err!r}")
        expect(s.proxy.stats().get("cluster_moved") == 0, "MOVED with a map read at start")


def expect_classes(s, c):
    """Each command class through the proxy, read back on the key's node."""
    c.hset("h", mapping={"f": "1", "g": "2"})
    c.rpush("l", "a", "b", "c")
    c.sadd("st", "x", "y")
    c.zadd("z", {"m": 1.5, "n": 2})
    xid = c.xadd("x", {"f": "v"})
    c.incrby("n", 41)
    c.set("e", "v", ex=100)
    checks_ = [
        ("h", c.hgetall("h"), lambda d: d.hgetall("h")),
        ("l", c.lrange("l", 0, -1), lambda d: d.lrange("l", 0, -1)),
        ("st", c.smembers("st"), lambda d: d.smembers("st")),
        ("z", c.zrange("z", 0, -1, withscores=True), lambda d: d.zrange("z", 0, -1, withscores=True)),
        ("x", c.xrange("x"), lambda d: d.xrange("x")),
        ("n", c.incr("n"), lambda d: int(d.get("n"))),
        ("e", c.ttl("e") > 90, lambda d: d.ttl("e") > 90),
        ("n", c.eval("return redis.call('GET', KEYS[1])", 1, "n"), lambda d: d.get("n")),
    ]
    for key, through, direct in checks_:
        expect(through == direct(s.direct(key)), f"{key}: {through!r} through the proxy, "
               f"{direct(s.direct(key))!r} on its node")
    expect(c.xrange("x")[0][0] == xid, "XADD's id")


# ---- 2. fan-out -------------------------------------------------------------------

def encode(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Raw:
    """A plain socket to a Redis-protocol server: each reply as its bytes."""

    def __init__(self, port):
        self.sock = socket.create_connection((procs.HOST, port), timeout=IO_TIMEOUT)
        self.buf = b""

    def line(self, at):
        while b"\r\n" not in self.buf[at:]:
            self.fill()
        end = self.buf.index(b"\r\n", at)
        return self.buf[at:end], end + 2

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk

    def frame(self, at):
        """The end of the reply starting at buf[at] (RESP2 and the RESP3 used here)."""
        head, at = self.line(at)
        kind, n = head[:1], head[1:]
        if kind in b"$=!" and n != b"-1":
            while len(self.buf) < at + int(n) + 2:
                self.fill()
            return at + int(n) + 2
        if kind in b"*~>%" and n != b"-1":
            for _ in range(int(n) * (2 if kind == b"%" else 1)):
                at = self.frame(at)
        return at

    def call(self, *args):
        self.sock.sendall(encode(*args))
        end = self.frame(0)
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply

    def close(self):
        self.sock.close()


def expect_scan(s, c):
    """SCAN through the proxy visits the keys of every primary, with MATCH and
    COUNT passed on; a cursor that is not one gets Redis's error."""
    for i in range(300):
        c.set(f"scan:{i}", i)
    seen, cursor, calls = set(), 0, 0
    while True:
        cursor, keys = c.scan(cursor, match="scan:*", count=40)
        seen.update(keys)
        calls += 1
        expect(calls < 1000, "SCAN never ended")
        if cursor == 0:
            break
    expect(seen == {f"scan:{i}" for i in range(300)}, f"SCAN found {len(seen)} of 300 keys")
    _, err = attempt(c.execute_command, "SCAN", "abc")
    expect(err == "invalid cursor", f"SCAN abc: {err!r}")


def check_fanout(binary):
    with Setup(binary, single=True) as s:
        via, ref = Raw(s.proxy.port), Raw(s.single.port)
        keys = [f"fan:{i}" for i in range(20)]
        pairs = [x for i, k in enumerate(keys[:12]) for x in (k, f"v{i}")]
        script = [("MSET", *pairs), ("MGET", *keys), ("EXISTS", keys[0], keys[0], keys[1], keys[15]),
                  ("TOUCH", keys[0], keys[2], keys[16]), ("DEL", keys[0], keys[1], keys[17]),
                  ("UNLINK", keys[2], keys[3]), ("MGET", *keys[:6]), ("HSET", keys[5], "f", "x"),
                  ("MGET", *keys[:8]), ("HELLO", "3"), ("MGET", *keys[:8]),
                  ("EXISTS", *keys)]
        for cmd in script:
            got, want = via.call(*cmd), ref.call(*cmd)
            if cmd[0] != "HELLO":
                expect(got == want, f"{' '.join(cmd[:4])} ...: {got[:120]!r} through the proxy, "
                       f"{want[:120]!r} from one Redis")
        # a cluster node's answer, where one Redis says wrong number of arguments
        _, err = attempt(s.proxy.client().execute_command, "MSET", keys[0], "a", keys[1])
        expect(err == CROSSSLOT, f"MSET of a key without a value, over two slots: {err!r}")
        slots = {key_slot(k.encode()) for k in keys}
        expect(len(slots) == len(keys), "the keys share slots: the check proves less")
        for k in keys[4:12]:
            expect(s.direct(k).exists(k) == 1, f"{k} is not on its node")
        # to every primary: counts summed, keys of all, flushed everywhere
        expect(via.call("DBSIZE") == ref.call("DBSIZE"), "DBSIZE: not the sum of the nodes'")
        c = s.proxy.client()
        expect(sorted(c.keys("fan:*")) == sorted(s.single.client().keys("fan:*")), "KEYS fan:*")
        expect_scan(s, c)
        expect(via.call("FLUSHALL") == b"+OK\r\n", "FLUSHALL")
        expect(all(n.client().dbsize() == 0 for n in s.cluster.primaries()),
               "FLUSHALL through the proxy left keys on a primary")
        via.close()
        ref.close()


# ---- 3. cluster-aware clients -------------------------------------------------

def check_clients(binary):
    with Setup(binary) as s:
        c = s.proxy.client()
        port = s.proxy.port
        info = c.execute_command("CLUSTER", "INFO")
        expect("cluster_state:ok" in info and "cluster_known_nodes:1" in info, f"INFO: {info}")
        myid = c.execute_command("CLUSTER", "MYID")
        expect(len(myid) == 40, f"MYID {myid!r}")
        slots = c.execute_command("CLUSTER", "SLOTS")
        expect(slots == [[0, 16383, ["127.0.0.1", port, myid, []]]], f"SLOTS {slots!r}")
        nodes = c.execute_command("CLUSTER", "NODES")
        expect(nodes.startswith(f"{myid} 127.0.0.1:{port}@{port} myself,master"), f"NODES {nodes!r}")
        expect(c.execute_command("CLUSTER", "KEYSLOT", "foo") == 12182, "KEYSLOT foo")
        c.set("foo", "bar")
        expect(c.execute_command("CLUSTER", "COUNTKEYSINSLOT", 12182) == 1, "COUNTKEYSINSLOT")
        _, err = attempt(c.execute_command, "CLUSTER", "SETSLOT", 1, "STABLE")
        expect(err and "send this CLUSTER command to the cluster's nodes" in err, f"SETSLOT: {err}")
        rc = redis.cluster.RedisCluster(host=procs.HOST, port=port, decode_responses=True)
        for i in range(100):
            rc.set(f"rc:{i}", i)
        expect(rc.mget_nonatomic([f"rc:{i}" for i in range(100)]) == [str(i) for i in range(100)],
               "RedisCluster through the proxy")
        expect([n.port for n in rc.get_nodes()] == [port], "RedisCluster: nodes other than the proxy")
        rc.close()
        for i in range(100):
            expect(s.direct(f"rc:{i}").get(f"rc:{i}") == str(i), f"rc:{i} not on its node")
        cli = subprocess.run(["redis-cli", "-c", "-p", str(port), "SET", "cli", "1"],
                             capture_output=True, text=True, timeout=IO_TIMEOUT)
        expect(cli.stdout.strip() == "OK", f"redis-cli -c: {cli.stdout!r} {cli.stderr!r}")
        # redis-benchmark --cluster refuses a cluster of one node: it is run as
        # to one Redis, with keys over every slot
        bench = subprocess.run(["redis-benchmark", "-p", str(port), "-n", "20000", "-r", "10000",
                                "-t", "set,get,mset", "-q"], capture_output=True, text=True,
                               timeout=60)
        expect(bench.returncode == 0 and "MSET" in bench.stdout and "rror" not in bench.stdout,
               f"redis-benchmark: {bench.stdout[-300:]!r} {bench.stderr[-300:]!r}")


# ---- 4. sessions ------------------------------------------------------------------

def check_sessions(binary):
    with Setup(binary) as s:
        c = s.proxy.client()
        p = c.pipeline(transaction=True)
        p.set("{acct}a", 10).incrby("{acct}b", 5).get("{acct}a")
        expect(p.execute() == [True, 5, "10"], "MULTI/EXEC on one hash tag")
        expect(s.direct("{acct}a").get("{acct}b") == "5", "the transaction's writes: not there")
        far = other_node_key(s, "{acct}a", "far:")
        one = procs.connect(s.proxy.port, single_connection_client=True)
        replies = [attempt(one.execute_command, *cmd)
                   for cmd in (("MULTI",), ("SET", "{acct}a", 11), ("SET", far, 1), ("EXEC",))]
        expect(replies[0] == ("OK", None) and replies[1][1] is None, f"MULTI, SET: {replies[:2]}")
        expect(replies[2][1] == CROSSSLOT, f"a key of another node in MULTI: {replies[2]}")
        expect("discarded because of previous errors" in (replies[3][1] or ""),  # EXECABORT
               f"EXEC after a CROSSSLOT: {replies[3]}")
        expect(s.direct("{acct}a").get("{acct}a") == "10", "an aborted transaction wrote")
        with c.pipeline(transaction=True) as p:
            p.watch("{acct}a")
            p.multi()
            p.set("{acct}a", 12)
            expect(p.execute() == [True], "WATCH, MULTI, EXEC")
        expect(s.direct("{acct}a").get("{acct}a") == "12", "the watched transaction's write")
        expect_blpop(s)
        expect_pubsub(s)


def expect_blpop(s):
    """BLPOP through the proxy, woken by an LPUSH through the proxy."""
    got = []
    blocked = s.proxy.client()
    t = threading.Thread(target=lambda: got.append(blocked.blpop("{q}jobs", 5)))
    t.start()
    procs.wait_until(lambda: s.direct("{q}jobs").execute_command("CLIENT", "LIST").count(
        "cmd=blpop") > 0, 5)
    s.proxy.client().lpush("{q}jobs", "job1")
    t.join(10)
    expect(got == [("{q}jobs", "job1")], f"BLPOP: {got!r}")


def expect_pubsub(s):
    sub = s.proxy.client().pubsub()
    sub.subscribe("news")
    expect(sub.get_message(timeout=5)["type"] == "subscribe", "SUBSCRIBE")
    s.proxy.client().publish("news", "hello")
    msg = sub.get_message(timeout=5)
    expect(msg is not None and msg["data"] == "hello", f"PUBLISH through the proxy: {msg!r}")
    sub.close()
    # sharded: the channel is a key, its slot's node
    raw = Raw(s.proxy.port)
    got = raw.call("SSUBSCRIBE", "{shard}:news")
    expect(got == b"*3\r\n$10\r\nssubscribe\r\n$12\r\n{shard}:news\r\n:1\r\n",
           f"SSUBSCRIBE: {got!r}")
    receivers = s.proxy.client().execute_command("SPUBLISH", "{shard}:news", "hi")
    expect(receivers == 1, f"SPUBLISH through the proxy: {receivers} receivers")
    end = raw.frame(0)
    expect(raw.buf[:end] == b"*3\r\n$8\r\nsmessage\r\n$12\r\n{shard}:news\r\n$2\r\nhi\r\n",
           f"the sharded message: {raw.buf[:end]!r}")
    raw.close()


# ---- 5. ASK during a migration ------------------------------------------------

def check_ask(binary):
    # No periodic map refresh: one landing between the end of the migration and
    # the reads after it leaves them no MOVED to follow (it happened once, in a
    # fresh-machine run).
    with Setup(binary, ["upstream.cluster_refresh=60m"]) as s:
        c = s.proxy.client()
        keys = [f"{{mig}}:{i}" for i in range(40)]
        for k in keys:
            c.set(k, k)
        slot = key_slot(b"{mig}")
        src = s.cluster.node_for_slot(slot)
        dst = next(n for n in s.cluster.primaries() if n is not src)
        moves0 = s.proxy.stats()["cluster_moved"]
        s.cluster.begin_migration(slot, dst)
        moved = s.cluster.move_keys(slot, src, dst, batch=10, limit=20)
        expect(moved == 20, f"{moved} keys moved")
        for k in keys:
            v, err = attempt(c.get, k)
            expect(err is None and v == k, f"GET {k} mid-migration: {v!r} {err!r}")
        expect(c.set("{mig}:new", "n") is True, "SET of a new key mid-migration")
        stats = s.proxy.stats()
        expect(stats["cluster_ask"] >= 21, f"cluster_ask {stats['cluster_ask']}")
        expect(stats["cluster_moved"] == moves0, "a MOVED counted during a migration")
        # keys of the slot on both nodes: -TRYAGAIN until the migration ends
        got = []
        mget = threading.Thread(target=lambda: got.append(attempt(
            s.proxy.client().mget, *keys, "user:1", "user:2")))
        mget.start()
        procs.wait_until(lambda: s.proxy.stats()["cluster_tryagain"] > 0, 5, step=0.01)
        s.cluster.move_keys(slot, src, dst)
        s.cluster.finish_migration(slot, src, dst)
        mget.join(IO_TIMEOUT)
        expect(got == [(keys + [None, None], None)], f"MGET over a migrating slot: {got}")
        expect(s.proxy.stats()["cluster_tryagain"] > 0, "no TRYAGAIN retried")
        expect(dst.client().get("{mig}:new") == "n", "the new key is not on the importing node")
        for k in keys:
            expect(c.get(k) == k, f"GET {k} after the migration")
        expect(s.proxy.stats()["cluster_moved"] >= 1, "no MOVED followed")


# ---- 6. the tier -------------------------------------------------------------

SEEN_WAIT = 5.0  # a direct write on a node to its invalidation in the tier


def expect_seen(c, key, value, what):
    expect(procs.wait_until(lambda: c.get(key) == value, SEEN_WAIT),
           f"{what}: {key} through the proxy is {c.get(key)!r}, not {value!r}")


def expect_hit(s, c, key, what):
    hits = s.proxy.stats()["hits"]
    c.get(key)
    expect(s.proxy.stats()["hits"] == hits + 1, f"{what}: GET {key} again was no hit")


def check_tier(binary):
    with Setup(binary) as s:
        c = s.proxy.client()
        expect(s.proxy.wait_cache_active(10), f"cache_active: {s.proxy.stats()}")
        keys = {}
        for i in range(200):  # a key on each primary
            keys.setdefault(s.owner(f"t:{i}").port, f"t:{i}")
        for key in keys.values():
            s.direct(key).set(key, "old")
            expect(c.get(key) == "old", f"first GET {key}")
            expect_hit(s, c, key, "a cached key")
            s.direct(key).set(key, "new")
            expect_seen(c, key, "new", "a write made on the key's node")
            expect_hit(s, c, key, "read again after the invalidation")
        key = next(iter(keys.values()))
        slot = key_slot(key.encode())
        src = s.owner(key)
        dst = next(n for n in s.cluster.primaries() if n is not src)
        # a key that does not exist is not kept: MIGRATE moves (and invalidates)
        # only keys that do, and its new node never saw the proxy read it
        absent = "{" + key + "}:absent"
        expect(c.get(absent) is None, f"GET {absent}")
        hits = s.proxy.stats()["hits"]
        expect(c.get(absent) is None and s.proxy.stats()["hits"] == hits,
               "a key that does not exist was answered from the tier")
        s.cluster.migrate_slot(slot, dst)
        dst.client().set(key, "moved")
        expect_seen(c, key, "moved", "a write on the node the key migrated to")
        dst.client().set(absent, "created")
        expect(c.get(absent) == "created", "a key created on the node its slot migrated to")
        expect_hit(s, c, key, "read again from the new owner")
        replica = s.cluster.replicas(dst)[0]
        s.cluster.failover(replica)
        replica.client().set(key, "failed-over")
        expect_seen(c, key, "failed-over", "a write on the primary promoted by CLUSTER FAILOVER")
        stats = s.proxy.stats()
        expect(stats["tracking"] == "on", f"tracking {stats['tracking']} after the failover")


POLICY = ("policy:\n"
          "  cache:\n"
          "    - {name: deps, keys: \"dep:*\", ttl: 5m}\n")
RULE = ("  invalidate:\n"
        "    - {name: derived, when: \"src:{id}\", drop: \"dep:{id}\"}\n")


def check_reload(binary):
    with Setup(binary, config=POLICY) as s:
        c = s.proxy.client()
        expect(s.proxy.wait_cache_active(10), f"cache_active: {s.proxy.stats()}")

        def cached_after_source_write(i):
            c.get(f"dep:{i}")
            hits = s.proxy.stats()["hits"]
            expect(c.get(f"dep:{i}") == "v" and s.proxy.stats()["hits"] == hits + 1,
                   f"dep:{i} read twice: no hit")
            s.direct(f"src:{i}").set(f"src:{i}", "changed")
            time.sleep(0.3)  # the invalidation's way, if there is one
            c.get(f"dep:{i}")
            return s.proxy.stats()["hits"] == hits + 2

        s.direct("dep:1").set("dep:1", "v")
        expect(cached_after_source_write(1), "dropped without an invalidation rule")
        with open(s.config, "a") as f:
            f.write(RULE)
        expect(c.execute_command("NEARCACHE", "RELOAD") == "OK", "NEARCACHE RELOAD")
        for i in range(2, 12):  # sources on every primary
            s.direct(f"dep:{i}").set(f"dep:{i}", "v")
            expect(not cached_after_source_write(i),
                   f"dep:{i} still served after src:{i} was written on its node "
                   f"({s.owner(f'src:{i}').address}) under a rule added by a reload")


# ---- 7. MOVED under load ------------------------------------------------------

# A write made on Redis directly is seen through the proxy once Redis's
# invalidation reaches it (README, Guarantees): a read that returns an older
# value later than this after the write's acknowledgement is stale; earlier, it
# is counted as late (the fault checker's rule).
ELSEWHERE_WINDOW = 1.0


class Load:
    """Writers (INCR of their own key: through the proxy for keys, directly on
    the cluster with a cluster client for direct) and readers (GET of every
    writer's key in turn, through the proxy), until stop(); errors, stale reads
    and late ones (direct keys, within ELSEWHERE_WINDOW) collected."""

    def __init__(self, port, keys, cluster, direct=()):
        self.keys, self.direct, self.done = [*keys, *direct], set(direct), threading.Event()
        self.acked = {k: 0 for k in self.keys}
        self.acks = {k: [] for k in direct}  # (monotonic end, value)
        self.errors, self.stale, self.late, self.ops = [], [], [], 0
        proxy = lambda: procs.connect(port, timeout=IO_TIMEOUT)  # noqa: E731
        self.threads = [threading.Thread(target=self.write, args=(proxy, k)) for k in keys]
        self.threads += [threading.Thread(target=self.write, args=(cluster.client, k))
                         for k in direct]
        self.threads += [threading.Thread(target=self.read, args=(port,)) for _ in range(2)]
        for t in self.threads:
            t.start()

    def write(self, connect, key):
        c = connect()
        while not self.done.is_set():
            v, err = attempt(c.incr, key)
            if err:
                self.errors.append(f"INCR {key}: {err}")
                continue
            if key in self.direct:
                self.acks[key].append((time.monotonic(), v))
            self.acked[key] = v
            self.ops += 1

    def floor(self, key, start, acked):
        """The value a read of key begun at start, when acked was the latest
        acknowledged, must not be older than."""
        if key not in self.direct:
            return acked
        acks = self.acks[key]
        i = bisect.bisect_right(acks, (start - ELSEWHERE_WINDOW, float("inf")))
        return acks[i - 1][1] if i else 0

    def read(self, port):
        c = procs.connect(port, timeout=IO_TIMEOUT)
        i = 0
        while not self.done.is_set():
            key = self.keys[i % len(self.keys)]
            i += 1
            start, acked = time.monotonic(), self.acked[key]
            v, err = attempt(c.get, key)
            if err:
                self.errors.append(f"GET {key}: {err}")
            elif int(v or 0) < self.floor(key, start, acked):
                self.stale.append(f"GET {key}: {v}, older than what was acknowledged "
                                  f"{ELSEWHERE_WINDOW:g} s before it began")
            elif int(v or 0) < acked:
                self.late.append(key)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(IO_TIMEOUT)


def check_migration(binary):
    with Setup(binary, admin=True) as s:
        keys = [f"{{load}}:{i}" for i in range(6)]
        direct = [f"{{load}}:direct:{i}" for i in range(2)]
        slot = key_slot(b"{load}")
        src = s.cluster.node_for_slot(slot)
        dst = next(n for n in s.cluster.primaries() if n is not src)
        load = Load(s.proxy.port, keys, s.cluster, direct)
        try:
            procs.wait_until(lambda: load.ops > 200, 10)
            for a, b in ((src, dst), (dst, src)):
                s.cluster.begin_migration(slot, b)
                s.cluster.move_keys(slot, a, b, batch=1, pause=0.05)
                s.cluster.finish_migration(slot, a, b)
                ops = load.ops
                procs.wait_until(lambda: load.ops > ops + 200, 10)
        finally:
            load.stop()
        expect(not load.errors, f"{len(load.errors)} errors: {load.errors[:5]}")
        expect(not load.stale, f"{len(load.stale)} stale reads: {load.stale[:5]}")
        owner = s.cluster.node_for_slot(slot).client()
        for k in load.keys:
            expect(int(owner.get(k)) == load.acked[k], f"{k}: {owner.get(k)} on the owner, "
                   f"{load.acked[k]} acknowledged")
        stats = s.proxy.stats()
        expect(stats["cluster_moved"] >= 2, f"cluster_moved {stats['cluster_moved']}")
        metrics = http_request(s.admin_port, "GET", "/metrics").body
        moved = re.search(r'^nearcache_cluster_redirects_total\{kind="moved"\} (\d+)', metrics, re.M)
        expect(moved and int(moved.group(1)) == stats["cluster_moved"],
               f"/metrics: {moved and moved.group(0)!r}, STATS cluster_moved "
               f"{stats['cluster_moved']}")
        print(f"  migration: {load.ops} requests, {stats['cluster_moved']} MOVED and "
              f"{stats['cluster_ask']} ASK followed; {len(load.late)} reads of keys written "
              f"on the cluster directly returned the value before the latest acknowledged, "
              f"within {ELSEWHERE_WINDOW:g} s")


def check_analyze(binary):
    """nearcache analyze --cluster walks every primary: the keys written through
    the proxy, spread over the three, found once each in their patterns; with
    --proxy it reads the proxy's hot keys too."""
    with Setup(binary, ["hotkeys.sample=1"]) as s:
        c = s.proxy.client()
        pipe = c.pipeline(transaction=False)
        for i in range(600):
            pipe.set(f"user:{i}:profile", "x" * 100)
        for i in range(200):
            pipe.set(f"session:{i:032x}", "y" * 2000, ex=600)
        pipe.execute()
        for _ in range(50):
            c.get("user:7:profile")
        seed = s.cluster.nodes[0].address
        done = subprocess.run([binary, "analyze", "--cluster", seed, "--proxy",
                               f"{procs.HOST}:{s.proxy.port}", "--json", "--rate", "0"],
                              capture_output=True, text=True, timeout=60)
        expect(done.returncode == 0, f"analyze --cluster: exit {done.returncode}: {done.stderr}")
        rep = json.loads(done.stdout)
        found = {p["pattern"]: p["keys"] for p in rep["patterns"]}
        expect(rep["source"]["cluster"] and rep["source"]["nodes"] == 3, rep["source"])
        expect(found == {"user:{id}:profile": 600, "session:{id}": 200},
               f"patterns over the cluster: {found}")
        hot = rep["proxy"]["hotkeys"]
        expect(any(k["key"] == "user:7:profile" and k["reads"] >= 50 for k in hot),
               f"the proxy's hot keys: {hot}")


CHECKS = (
    ("routing", check_routing),
    ("fanout", check_fanout),
    ("clients", check_clients),
    ("sessions", check_sessions),
    ("ask", check_ask),
    ("tier", check_tier),
    ("reload", check_reload),
    ("migration", check_migration),
    ("analyze", check_analyze),
)

if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS))
