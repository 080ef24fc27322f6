#!/usr/bin/python3
"""failover_test.py - nearcache in front of a Redis Cluster whose primary is replaced (issue 14).

Each check starts its own cluster and proxy as cluster_test.py does (its
Setup: 3 primaries with a replica each on free loopback ports, stopped by
pid), with writers and readers running through the proxy:

  failover     writers (INCR of their own keys, two on each primary) and readers
               through the proxy while CLUSTER FAILOVER runs on the replica of
               the proxy's anchor (the seed primary it reads the map on): the
               proxy follows within GRACEFUL_BOUND s of the promotion, at most one
               error per client (`upstream connection lost`, a request in flight at
               the switch, or Redis's own CLUSTERDOWN), no read older than a write acknowledged before it began,
               every acknowledged INCR on the new primary (read on the nodes
               directly), STATS cluster_refreshes up; prints the errors and the time
               from the command to the first write answered by the new primary
  kill-primary the same load while the anchor's primary is killed -9: errors only
               `upstream connection lost` and `upstream unavailable` for the dead
               node's keys until the proxy follows, and Redis's own CLUSTERDOWN;
               the proxy follows within KILL_BOUND s of the replica's promotion
               (printed: the kill to the first write through the proxy); no read
               older than a write acknowledged before it began (for the dead node's
               keys after the kill, of those the new primary has: writes it never
               replicated are Redis's loss, counted); every write acknowledged
               since on the new primary; STATS cluster_refreshes up
  blocked      a BLPOP blocked through the proxy on a primary that CLUSTER
               FAILOVER demotes (-UNBLOCKED) and one sent there after it
               (-MOVED) both follow to the new primary: an LPUSH through the
               proxy wakes them, no error

  python3 tests/cluster/failover_test.py --bin build/nearcache [--check NAME]...

One line per check, PASS or FAIL (with the reason and the proxy's log tail);
the last line is "N passed, M failed"; the exit status is 1 if one failed.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the test modules in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import contextlib
import json
import threading
import time
from collections import Counter, namedtuple
from datetime import datetime

import checks
import redis
from checks import Floor, attempt, expect

from cluster_test import IO_TIMEOUT, Setup

PACE = 0.001  # between one client's requests
PROMOTION_WAIT = 30.0  # CLUSTER FAILOVER or the kill to the replica saying ROLE master
# The replica's promotion to every writer and reader of the old primary's keys
# answered through the proxy by the new primary. CLUSTER FAILOVER: the old primary
# answers -MOVED at once, which the proxy follows. kill -9: nothing answers -MOVED;
# the proxy reads the map again every 100 ms while a primary's connection is down
# (0.15 s measured): slack for a loaded two-core machine.
GRACEFUL_BOUND = 2.0
KILL_BOUND = 3.0
AFTER_FOLLOW = 2.0  # seconds of traffic kept up once the proxy has followed
PROBE_STEP = 0.05  # between direct reads of the new primary
# The errors clients may see. CLUSTER FAILOVER: the old primary holds writes for
# the switch, then answers -MOVED; allowed, once per client, the proxy's error for
# a request in flight on a connection that broke at the switch, and Redis's own
# CLUSTERDOWN (the proxy never makes one: a node said it once, in a CI run, for a
# key of another primary during the switch; a client talking to it directly sees
# it too).
# kill -9: the proxy's errors for the dead node's keys until it follows, and Redis's
# own CLUSTERDOWN from the other nodes between their marking the primary failed and
# the promotion.
GRACEFUL_ERRORS = ("upstream connection lost", "CLUSTERDOWN")
KILL_ERRORS = ("upstream connection lost", "upstream unavailable", "CLUSTERDOWN")

Op = namedtuple("Op", "start end key value error")  # one request: monotonic times


class Traffic:
    """Writers, one per key (INCR key), and readers (GET of the writers' keys in
    turn), each on a connection of its own to the proxy, a request every PACE s
    until stop(); every request recorded as an Op. t0: when the failover began;
    probes: (time, {key: value}) read on the new primary directly."""

    def __init__(self, port, keys, readers=2):
        self.keys, self.done = keys, threading.Event()
        self.t0 = self.t0_wall = None
        self.probes = []
        self.writes = {k: [] for k in keys}
        self.reads = [[] for _ in range(readers)]
        jobs = [(self.writes[k], "INCR", lambda i, k=k: k) for k in keys]
        jobs += [(ops, "GET", lambda i: keys[i % len(keys)]) for ops in self.reads]
        self.threads = [threading.Thread(target=self.run, args=(port, *job), daemon=True)
                        for job in jobs]
        for t in self.threads:
            t.start()

    def run(self, port, ops, command, key_of):
        c = procs.connect(port, timeout=IO_TIMEOUT)
        i = 0
        while not self.done.is_set():
            key = key_of(i)
            i += 1
            start = time.monotonic()
            value, error = attempt(c.execute_command, command, key)
            ops.append(Op(start, time.monotonic(), key, value, error))
            time.sleep(PACE)
        c.close()

    def clients(self):
        """Each client's Ops, writers first."""
        return [*self.writes.values(), *self.reads]

    def wait_answered(self, n, timeout=10):
        expect(procs.wait_until(lambda: all(sum(not o.error for o in ops) >= n
                                            for ops in self.clients()), timeout),
               f"clients through the proxy: not {n} answers each in {timeout} s")

    def first_answer(self, ops, keys, after):
        """The first of ops for one of keys begun after `after` and answered, or None."""
        return next((o for o in list(ops) if o.key in keys and o.start > after and not o.error),
                    None)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(IO_TIMEOUT + 2)
        expect(not any(t.is_alive() for t in self.threads), "a client thread did not end")


def writer_keys(s, per_primary=2):
    """Keys fo:0, fo:1, ...: per_primary of them on each primary."""
    keys, count = [], Counter()
    for k in (f"fo:{i}" for i in range(1000)):
        owner = s.owner(k)
        if count[owner.port] < per_primary:
            count[owner.port] += 1
            keys.append(k)
        if len(keys) == per_primary * len(s.cluster.primaries()):
            return keys
    raise RuntimeError("no keys for every primary")


def anchor(s):
    """The primary the proxy reads the map on and sends commands without keys to
    (STATS upstream_address): the first seed's."""
    address = s.proxy.stats()["upstream_address"]
    node = next((n for n in s.cluster.primaries() if n.address == address), None)
    expect(node is not None, f"STATS upstream_address {address}: not a primary")
    return node


def wait_promotion(s, replicas):
    """Polls the replicas' ROLE until one says master: (it, the time it first did)."""
    clients = [(r, r.client(timeout=1.0)) for r in replicas]

    def promoted():
        for r, c in clients:
            try:
                if c.execute_command("ROLE")[0] == "master":
                    return r
            except redis.RedisError:
                pass
        return None
    try:
        new = procs.wait_until(promoted, PROMOTION_WAIT, step=0.005)
    finally:
        for _, c in clients:
            c.close()
    if new is None:
        raise RuntimeError(f"no replica promoted in {PROMOTION_WAIT:g} s:\n"
                           f"{s.cluster.describe()}")
    return new, time.monotonic()


def expect_alive(s, traffic):
    """Fails if the proxy has exited, saying when its log ends."""
    status = s.proxy.proc.poll()
    if status is None:
        return
    last = ""
    for line in reversed(s.proxy.log_lines()):
        with contextlib.suppress(ValueError, KeyError, TypeError):
            at = datetime.fromisoformat(json.loads(line)["time"].replace("Z", "+00:00"))
            last = f", its log ends {at.timestamp() - traffic.t0_wall:+.3f} s after the start"
            break
    raise checks.Failed(f"nearcache exited during the failover: status {status}" +
                        (f" (killed by signal {-status})" if status < 0 else "") + last)


def probe(direct, keys, probes):
    """Appends (now, {key: value}) read on a node directly, unless it fails."""
    try:
        values = {k: int(direct.get(k) or 0) for k in keys}
    except redis.RedisError:
        return
    probes.append((time.monotonic(), values))


def wait_follow(s, traffic, keys, t_from, deadline, new):
    """Waits until every writer of keys and every reader has been answered for
    keys by a request begun after t_from, deadline at the latest, reading keys on
    the new primary directly meanwhile (traffic.probes); (the time they all were,
    or None, and each key's first write answered)."""
    direct = new.client(timeout=2.0)
    while True:
        expect_alive(s, traffic)
        firsts = {k: traffic.first_answer(traffic.writes[k], keys, t_from) for k in keys}
        readers = [traffic.first_answer(ops, keys, t_from) for ops in traffic.reads]
        if all(firsts.values()) and all(readers):
            return max(o.end for o in [*firsts.values(), *readers]), firsts
        if time.monotonic() > deadline:
            return None, firsts
        probe(direct, keys, traffic.probes)
        time.sleep(PROBE_STEP)


def not_followed(s, traffic, keys, firsts, stats0):
    """What the proxy did instead of following: each unanswered writer's last
    error, STATS, the proxy's cluster events since the start."""
    last = {k: next((f"{o.error} at {o.start - traffic.t0:+.1f} s" for o in
                     reversed(list(traffic.writes[k])) if o.error), "-")
            for k in keys if not firsts.get(k)}
    stats = s.proxy.stats()
    events = [e["line"] for e in s.proxy.events("cluster_map_changed") +
              s.proxy.events("cluster_anchor_moved")]
    return (f"writers of the old primary's keys not answered since: {last}; STATS "
            f"cluster_refreshes {stats0['cluster_refreshes']} -> {stats['cluster_refreshes']}, "
            f"cluster_moved {stats0['cluster_moved']} -> {stats['cluster_moved']}, "
            f"upstream_address {stats['upstream_address']}; the proxy's cluster events: "
            f"{events[-6:]}")


def print_errors(traffic, moved_keys):
    """Prints the errors clients saw, counted by command, keys (the old primary's
    or the others') and reply, each with the span of their times after t0; the
    erring Ops."""
    kinds, failed = {}, []
    for command, clients in (("INCR", traffic.writes.values()), ("GET", traffic.reads)):
        for o in (o for ops in clients for o in ops if o.error):
            kind = (command, "old primary's" if o.key in moved_keys else "other", o.error)
            kinds.setdefault(kind, []).append(o)
            failed.append(o)
    print(f"  {len(failed)} errors", flush=True)
    for (command, keys, error), ops in sorted(kinds.items()):
        print(f"    {len(ops)} x {command} of {keys} keys: {error} (from "
              f"{min(o.start for o in ops) - traffic.t0:+.3f} s to "
              f"{max(o.end for o in ops) - traffic.t0:+.3f} s)", flush=True)
    return failed


def older_reads(traffic, lossy=(), t_dead=None):
    """The reads through the proxy that returned less than a write of their key
    acknowledged before they began: (key, read, acknowledged, s after t0).

    INCR of one key by one writer: its acknowledged values only grow. For keys of
    lossy (a primary killed -9 at t0), writes that primary acknowledged and never
    replicated are Redis's loss (asynchronous replication), not the proxy's:
    reads ended before t0 are held to every acknowledged write; reads begun after
    t_dead (the primary reaped) to the writes begun after t_dead and to what the
    new primary held (probes, read directly) before they began; reads in flight at
    the kill are not judged."""
    strict = {k: Floor([(o.end, o.value) for o in w if not o.error])
              for k, w in traffic.writes.items()}
    after = {k: Floor([(o.end, o.value) for o in traffic.writes[k]
                       if not o.error and o.start > t_dead]) for k in lossy}
    held = {k: Floor([(at, values[k]) for at, values in traffic.probes]) for k in lossy}
    older = []
    for o in (o for ops in traffic.reads for o in ops if not o.error):
        if o.key not in lossy or o.end < traffic.t0:
            floor = strict[o.key].before(o.start)
        elif o.start > t_dead:
            floor = max(after[o.key].before(o.start), held[o.key].before(o.start))
        else:
            continue
        if int(o.value or 0) < floor:
            older.append((o.key, int(o.value or 0), floor, round(o.start - traffic.t0, 3)))
    return older


def expect_on_owners(s, traffic, lossy=(), t_dead=None):
    """Every key's value on the node serving its slot now is at least its last
    acknowledged write (for keys of lossy, of those begun after t_dead) and at
    most the INCRs tried; prints, for lossy, how many acknowledged before the kill
    the new primary never had."""
    lost = {}
    for k, writes in traffic.writes.items():
        on = int(s.direct(k).get(k) or 0)
        acked = [o for o in writes if not o.error]
        floor = max((o.value for o in acked if k not in lossy or o.start > t_dead), default=0)
        expect(floor <= on <= len(writes),
               f"{k}: {on} on {s.owner(k).address}, {floor} acknowledged through the proxy "
               f"last, {len(writes)} INCRs tried")
        if k in lossy and traffic.probes:
            before = max((o.value for o in acked if o.start <= t_dead), default=0)
            lost[k] = max(0, before - traffic.probes[0][1][k])
    if lossy:
        print(f"  INCRs acknowledged by the killed primary, not on the new one (Redis's "
              f"asynchronous replication): {lost}", flush=True)


def replace_primary(binary, kill, of_anchor=True):
    """Writers (INCR, two keys on each primary) and readers through the proxy while
    a primary is replaced by its replica: CLUSTER FAILOVER on the replica, or kill
    -9 (kill). The primary is the proxy's anchor, which it reads the map on, unless
    of_anchor is False (then another). Prints the errors and the windows."""
    with Setup(binary) as s:
        keys = writer_keys(s)
        seed = anchor(s)
        old = seed if of_anchor else next(n for n in s.cluster.primaries() if n is not seed)
        replicas = s.cluster.replicas(old)
        moved_keys = [k for k in keys if s.owner(k) is old]
        traffic = Traffic(s.proxy.port, keys)
        what = f"{'kill -9' if kill else 'CLUSTER FAILOVER'} of {old.address}"
        new = t_promoted = t_follow = None
        try:
            traffic.wait_answered(50)
            stats0 = s.proxy.stats()
            traffic.t0, traffic.t0_wall = time.monotonic(), time.time()
            if kill:
                old.kill9()
            else:
                s.cluster.command(replicas[0], "CLUSTER", "FAILOVER")
            t_dead = time.monotonic()  # kill: reaped, nothing reaches it from here on
            new, t_promoted = wait_promotion(s, replicas)
            stats1 = s.proxy.stats()
            bound = KILL_BOUND if kill else GRACEFUL_BOUND
            t_follow, firsts = wait_follow(s, traffic, moved_keys, t_dead if kill else t_promoted,
                                           t_promoted + bound, new)
            expect(t_follow is not None,
                   f"the proxy did not follow {old.address}'s replica {new.address} within "
                   f"{bound:g} s of its promotion ({t_promoted - traffic.t0:.2f} s after the "
                   f"{'kill' if kill else 'failover'}): "
                   + not_followed(s, traffic, moved_keys, firsts, stats0))
            end = time.monotonic() + AFTER_FOLLOW
            direct = new.client(timeout=2.0)
            while time.monotonic() < end:
                expect_alive(s, traffic)
                probe(direct, moved_keys, traffic.probes)
                time.sleep(PROBE_STEP)
            traffic.stop()
        except Exception:
            traffic.done.set()
            if traffic.t0 is not None:  # what happened until the failure
                print(f"  {what}: " + (f"replica {new.address} promoted at "
                                       f"{t_promoted - traffic.t0:.3f} s" if new else
                                       "no replica promoted") +
                      (f", every client answered by it at {t_follow - traffic.t0:.3f} s"
                       if t_follow else ""), flush=True)
                print_errors(traffic, moved_keys)
            raise
        finally:
            traffic.done.set()
        s.cluster.wait_ok()
        t0, stats = traffic.t0, s.proxy.stats()
        first = min(o.end for o in firsts.values())
        print(f"  {what} ({'the anchor, ' if old is seed else ''}{len(moved_keys)} of {len(keys)} "
              f"writers' keys): replica {new.address} promoted at {t_promoted - t0:.3f} s; "
              f"first INCR on it through the proxy answered at {first - t0:.3f} s, every "
              f"client's at {t_follow - t0:.3f} s ({t_follow - t_promoted:.3f} s after the "
              f"promotion)", flush=True)
        for k in moved_keys:
            before = [o for o in traffic.writes[k] if o.end < t0 and not o.error]
            print(f"  {k}: {firsts[k].end - (before[-1].end if before else t0):.3f} s without "
                  "an INCR answered (the last before, the first after)", flush=True)
        requests = sum(len(ops) for ops in traffic.clients())
        print(f"  {requests} requests; STATS cluster_refreshes {stats0['cluster_refreshes']} "
              f"before, {stats1['cluster_refreshes']} at the promotion, "
              f"{stats['cluster_refreshes']} at the end; cluster_moved {stats0['cluster_moved']} "
              f"-> {stats['cluster_moved']}; hits {stats0['hits']} -> {stats['hits']}", flush=True)
        failed = print_errors(traffic, moved_keys)
        if kill:
            bad = [o for o in failed if not o.error.startswith(KILL_ERRORS) or (
                o.error.startswith(checks.UPSTREAM_ERRORS) and
                (o.key not in moved_keys or o.start > t_follow))]
        else:
            per_client = Counter(id(ops) for ops in traffic.clients() for o in ops if o.error)
            bad = [o for o in failed if not o.error.startswith(GRACEFUL_ERRORS)]
            expect(max(per_client.values(), default=0) <= 1,
                   f"more than one error for a client: {dict(Counter(o.error for o in failed))}")
        expect(not bad, f"{len(bad)} errors not allowed (the proxy's own only for the old "
                        "primary's keys and before every client followed): "
                        f"{[(o.key, o.error, round(o.start - t0, 3)) for o in bad[:5]]}")
        lossy = moved_keys if kill else ()
        older = older_reads(traffic, lossy, t_dead)
        expect(not older, f"{len(older)} reads older than a write acknowledged before they "
                          f"began (key, read, acknowledged, s after the start): {older[:5]}")
        for k in moved_keys:
            expect(s.owner(k) is new, f"{k} is served by {s.owner(k).address}, not {new.address}")
        expect_on_owners(s, traffic, lossy, t_dead)
        expect(stats["cluster_refreshes"] > stats1["cluster_refreshes"],
               f"STATS cluster_refreshes {stats1['cluster_refreshes']} at the promotion, "
               f"{stats['cluster_refreshes']} at the end")


def check_failover(binary):
    replace_primary(binary, kill=False)


def check_kill_primary(binary):
    replace_primary(binary, kill=True)


def check_blocked(binary):
    """BLPOP through the proxy blocked on a primary that CLUSTER FAILOVER demotes
    (Redis answers it -UNBLOCKED), and a BLPOP sent there after the failover
    (-MOVED): both follow to the new primary and get what an LPUSH through the
    proxy pushes, no error."""
    with Setup(binary) as s:
        key = "{bq}jobs"
        primary = s.owner(key)
        got = []

        def pop(delay):
            time.sleep(delay)
            got.append(attempt(s.proxy.client().blpop, key, 10))

        first = threading.Thread(target=pop, args=(0,))
        first.start()
        expect(procs.wait_until(lambda: "cmd=blpop" in primary.client().execute_command(
            "CLIENT", "LIST"), 5), "BLPOP did not block on the primary")
        replica = s.cluster.replicas(primary)[0]
        s.cluster.failover(replica)
        second = threading.Thread(target=pop, args=(0,))
        second.start()
        expect(procs.wait_until(lambda: replica.client().execute_command(
            "CLIENT", "LIST").count("cmd=blpop") == 2, 5),
            f"two BLPOPs are not blocked on the new primary: {got}")
        c = s.proxy.client()
        c.lpush(key, "a")
        c.lpush(key, "b")
        first.join(IO_TIMEOUT)
        second.join(IO_TIMEOUT)
        expect(sorted(got) == [((key, "a"), None), ((key, "b"), None)], f"BLPOPs: {got}")


CHECKS = (
    ("failover", check_failover),
    ("kill-primary", check_kill_primary),
    ("blocked", check_blocked),
)

if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS))
