#!/usr/bin/python3
"""sentinel_tls_test.py - nearcache behind Redis Sentinel over TLS with passwords,
its refusal of a node that is not the primary (issue 13), and a primary named
only after start reaching every worker (issue 14).

The topology of sentinel_test.py (imported from it): a primary, its replica and
three redis-sentinel processes on free loopback ports, each in a directory of
one temporary directory, stopped by pid; nearcache asks the Sentinels for
`mymaster`, JSON logs, the cache and tracking on.

  tls-auth  every process TLS only (port 0, tls-port, tls-replication yes, the
            certificates of tests/tls/certs.py made at run time with openssl),
            the nodes with requirepass/masterauth, the Sentinels with requirepass
            and `sentinel auth-pass` for the primary; the proxy with upstream.tls,
            upstream.tls_ca_file, upstream.password and upstream.sentinel_password:
            discovery (STATS upstream_address, SET/GET, a tier hit); SENTINEL
            FAILOVER followed (upstream_address, upstream_moves +1, an
            upstream_failover event); a write made directly on the new primary
            (over TLS) read through the proxy within TRACKING_WAIT s (tracking over
            TLS re-established there); a second proxy with a wrong
            upstream.sentinel_password logs sentinel_unreachable with the
            Sentinels' WRONGPASS, keeps running with STATS upstream_address `-`,
            answers clients `upstream unavailable` and exits 0 on SIGTERM
  role      no Sentinels but a fake one (a thread speaking enough RESP2) that
            names the address the test sets: naming the replica, the proxy's ROLE
            handshake refuses it (upstream_not_primary), clients get `upstream
            unavailable` and no key written through the proxy reaches either node;
            naming the primary, within FOLLOW_WAIT s SET/GET through the proxy
            work, land on the primary and STATS upstream_address is the primary's
  late      the fake names no primary at start: with two workers, STATS
            upstream_address `-`; once it names the primary, each of 16
            connections (spread over both workers by SO_REUSEPORT) gets SET
            answered within FOLLOW_WAIT s: every worker follows worker 0

  python3 tests/sentinel/sentinel_tls_test.py --bin build/nearcache [--check NAME]...

One line per check, PASS or FAIL (with the reason and the proxy's log tail);
the last line is "N passed, M failed"; the exit status is 1 if one failed, 77
if redis-sentinel is not installed (Debian's package redis-sentinel).
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside procs.py in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
sys.path.insert(1, os.path.join(HERE, "..", "tls"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import socket
import tempfile
import threading

import checks
import redis
from certs import Certs
from checks import attempt, error_reply, expect, expect_move
from procs import HOST, free_port, wait_until  # noqa: E402
from sentinel_test import (FAILOVER_WAIT, FOLLOW_WAIT, MASTER, Node, SwitchWatcher, Topology,
                           check_failover_seen, expect_discovered, expect_tracked_after_switch,
                           sentinel_installed, switch_addresses, wait_follow)

PASSWORD = "s3cret"  # the nodes'
SENTINEL_PASSWORD = "s3ntinel"  # the Sentinels'
REFUSED_WAIT = 10.0  # the proxy started to its first upstream_not_primary / sentinel log line
LATE_CLIENTS = 16  # connections spread over two workers: all on one is 1 chance in 2^15


def stats_answered(proxy):
    """True if the proxy answers NEARCACHE STATS (itself, whatever Redis does)."""
    try:
        return bool(proxy.stats())
    except redis.RedisError:
        return False


def unavailable(c, *command):
    """True if command through the proxy is answered `upstream unavailable`."""
    return error_reply(c.execute_command, *command).startswith("upstream unavailable")


# ---- 1. TLS and passwords everywhere -------------------------------------------

def check_tls_auth(binary):
    with tempfile.TemporaryDirectory(prefix="nearcache-sentinel-certs-") as certdir, \
            Topology(binary, certs=Certs(certdir), password=PASSWORD,
                     sentinel_password=SENTINEL_PASSWORD) as t:
        expect_discovered(t)
        failovers = t.proxy.stats()["upstream_moves"]
        watcher = SwitchWatcher(t.sentinels)
        try:
            reply = t.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER)
            expect(reply in ("OK", True), f"SENTINEL FAILOVER: {reply!r}")
            _, message = watcher.wait(FAILOVER_WAIT)
            expect(switch_addresses(message) == (t.primary.address, t.replica.address),
                   f"+switch-master {message!r}")
            wait_follow(t)
        finally:
            watcher.stop()
        check_failover_seen(t, failovers)
        c = t.proxy.client()
        expect(c.set("ta:tracked", "A") is True, "SET ta:tracked through the proxy after the "
                                                 "switch")
        expect(t.replica.client().get("ta:tracked") == "A", "SET after the switch: not on the "
                                                            "new primary")
        expect_tracked_after_switch(t, c, "ta:tracked", "A", "B")

        # the Sentinels refuse a wrong password: no primary, and no crash
        bad = t.add(t.new_proxy(binary, "wrong-password", log_name="proxy-wrong.log"))
        bad.start(ready=lambda: stats_answered(bad))
        expect(wait_until(lambda: len(bad.events("sentinel_unreachable")) >= 3, REFUSED_WAIT),
               "a wrong upstream.sentinel_password: fewer than 3 sentinel_unreachable log lines in "
               f"{REFUSED_WAIT:g} s: {bad.log_tail()}")
        lines = [e["line"] for e in bad.events("sentinel_unreachable")]
        expect(all("WRONGPASS" in line for line in lines),
               f"sentinel_unreachable does not say WRONGPASS: {lines}")
        # its once-a-second asking meets the refusal too
        expect(wait_until(lambda: bad.events("sentinel_no_primary"), REFUSED_WAIT),
               f"no sentinel_no_primary line {REFUSED_WAIT:g} s after the start")
        print(f"     a wrong Sentinel password: {lines[0]}\n     then: "
              f"{bad.events('sentinel_no_primary')[0]['line']}", flush=True)
        wrong = bad.client()
        expect(unavailable(wrong, "SET", "ta:wrong", "x") and unavailable(wrong, "GET", "d:1"),
               "a wrong upstream.sentinel_password: SET/GET not answered `upstream "
               f"unavailable`: {error_reply(wrong.get, 'd:1') or 'answered'}")
        address = bad.stats().get("upstream_address")
        expect(address == "-", f"a wrong upstream.sentinel_password: upstream_address {address!r}")
        expect(bad.alive(), "the proxy with a wrong upstream.sentinel_password exited")
        status = bad.stop()
        expect(status == 0, f"the proxy with a wrong upstream.sentinel_password: exit status "
                            f"{status} on SIGTERM")
        expect(t.replica.client().get("ta:wrong") is None, "SET ta:wrong reached Redis")


# ---- 2. a node that is not the primary ---------------------------------------------

class FakeSentinel:
    """A thread on a free port answering, one request at a time on each
    connection (RESP2 multibulk), SENTINEL GET-MASTER-ADDR-BY-NAME mymaster with
    the address in self.primary ("ip:port"), SUBSCRIBE with its confirmation
    and then nothing, PING and AUTH; asked counts the first kind."""

    def __init__(self):
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.primary, self.asked = None, 0
        self.conns, self.threads, self.lock = [], [], threading.Lock()
        self.done = threading.Event()
        self.listener = None

    def start(self):
        self.listener = socket.create_server((HOST, self.port))
        self.listener.settimeout(0.1)
        self.spawn(self.accept)

    def spawn(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        with self.lock:
            self.threads.append(t)
        t.start()

    def accept(self):
        while not self.done.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self.lock:
                self.conns.append(conn)
            self.spawn(self.serve, conn)

    def serve(self, conn):
        subscribed = False
        try:
            with conn.makefile("rb") as f:
                while (request := read_request(f)) is not None:
                    if not subscribed:
                        reply, subscribed = self.answer(request)
                        conn.sendall(reply)
        except (OSError, ValueError):
            pass  # stopped, or the proxy closed the connection
        finally:
            conn.close()

    def answer(self, request):
        """(the reply's bytes, whether it was SUBSCRIBE) to request, a list of bytes."""
        command = [a.decode(errors="replace").upper() for a in request[:2]]
        if command == ["SENTINEL", "GET-MASTER-ADDR-BY-NAME"]:
            self.asked += 1
            if request[2:] != [MASTER.encode()] or not self.primary:
                return b"*-1\r\n", False
            return resp_array(self.primary.rsplit(":", 1)), False
        if command[:1] == ["SUBSCRIBE"]:
            return b"".join(b"*3\r\n$9\r\nsubscribe\r\n" + bulk(channel) + b":%d\r\n" % i
                            for i, channel in enumerate(request[1:], 1)), True
        if command[:1] == ["PING"]:
            return b"+PONG\r\n", False
        if command[:1] == ["AUTH"]:
            return b"+OK\r\n", False
        return b"-ERR unknown command\r\n", False

    def stop(self):
        self.done.set()
        if self.listener:
            self.listener.close()
        with self.lock:
            conns, threads = list(self.conns), list(self.threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes its thread in recv
            except OSError:
                pass
        for t in threads:
            t.join(2)


def bulk(value):
    value = value if isinstance(value, bytes) else value.encode()
    return b"$%d\r\n%s\r\n" % (len(value), value)


def resp_array(items):
    return b"*%d\r\n" % len(items) + b"".join(bulk(item) for item in items)


def read_request(f):
    """The arguments (bytes) of the next multibulk request on f, None at its end."""
    line = f.readline()
    if not line:
        return None
    if not line.startswith(b"*"):
        raise ValueError(f"not a multibulk request: {line!r}")
    args = []
    for _ in range(int(line[1:])):
        header = f.readline()
        if not header.startswith(b"$"):
            raise ValueError(f"not a bulk string: {header!r}")
        data = f.read(int(header[1:]) + 2)
        if len(data) < int(header[1:]) + 2:
            return None
        args.append(data[:-2])
    return args


class FakeTopology(procs.Group):
    """A primary, its replica (plain, no Sentinels), the fake Sentinel naming
    the replica (or, with name_replica False, nothing) and nearcache asking the
    fake with workers, JSON logs, the cache and tracking on; `with` starts them
    (the proxy answering STATS) and stops every process by pid."""

    def __init__(self, binary, name_replica=True, workers=1):
        super().__init__("nearcache-sentinel-role-")
        self.name_replica = name_replica
        self.primary = self.add(Node(self.dir, "primary"))
        self.replica = self.add(Node(self.dir, "replica", self.primary))
        self.fake = self.add(FakeSentinel())
        self.proxy = self.add(procs.Proxy(
            binary, self.dir, None, free_port(),
            ["log_format=json", "cache.enabled=true", "cache.tracking=true", f"workers={workers}",
             f"upstream.sentinels={self.fake.address}", f"upstream.master_name={MASTER}"]))

    def start(self):
        self.primary.start()
        self.replica.start()
        self.fake.primary = self.replica.address if self.name_replica else None
        self.fake.start()
        self.proxy.start(ready=lambda: stats_answered(self.proxy))


def check_role(binary):
    with FakeTopology(binary) as t:
        expect(wait_until(lambda: t.proxy.events("upstream_not_primary"), REFUSED_WAIT),
               f"the fake Sentinel names the replica: no upstream_not_primary in "
               f"{REFUSED_WAIT:g} s")
        c = t.proxy.client()
        keys = [f"role:{i}" for i in range(5)]
        for key in keys:
            error = error_reply(c.set, key, "x")
            expect(error.startswith("upstream unavailable"),
                   f"SET {key} with the replica named: {error or 'OK'}, not `upstream "
                   "unavailable`")
        expect(unavailable(c, "GET", keys[0]), f"GET {keys[0]} with the replica named: "
                                               f"{error_reply(c.get, keys[0]) or 'answered'}")
        print(f"     the replica named: {t.proxy.events('upstream_not_primary')[0]['line']}; "
              f"STATS upstream_address {t.proxy.stats().get('upstream_address')}", flush=True)

        asked = t.fake.asked
        t.fake.primary = t.primary.address
        expect(wait_until(lambda: attempt(c.set, "role:after", "y") == (True, None),
                          FOLLOW_WAIT, step=0.1),
               f"the primary named: SET through the proxy not answered in {FOLLOW_WAIT:g} s: "
               f"{error_reply(c.set, 'role:after', 'y') or 'OK'}")
        expect(c.get("role:after") == "y", "GET role:after through the proxy")
        expect(t.primary.client().get("role:after") == "y", "role:after is not on the primary")
        address = t.proxy.stats().get("upstream_address")
        expect(address == t.primary.address, f"STATS upstream_address {address!r}, the primary "
                                             f"is {t.primary.address}")
        expect_move(t.proxy, "upstream_failover", t.replica.address, t.primary.address)
        expect(t.fake.asked > asked, "the proxy did not ask the fake Sentinel again")
        for node in (t.primary, t.replica):
            found = [key for key in keys if node.client().exists(key)]
            expect(not found, f"{found} written through the proxy while the replica was named: "
                              f"on the {node.dir.rsplit('/', 1)[1]}")


def check_late(binary):
    with FakeTopology(binary, name_replica=False, workers=2) as t:
        expect(wait_until(lambda: t.fake.asked >= 2, FOLLOW_WAIT, step=0.1),
               "the proxy did not ask the fake Sentinel again")
        address = t.proxy.stats().get("upstream_address")
        expect(address == "-", f"no primary named: STATS upstream_address {address!r}")
        t.fake.primary = t.primary.address
        clients = [t.proxy.client() for _ in range(LATE_CLIENTS)]
        for i, c in enumerate(clients):
            expect(wait_until(lambda: attempt(c.set, f"late:{i}", i) == (True, None),
                              FOLLOW_WAIT, step=0.1),
                   f"the primary named: client {i} of {LATE_CLIENTS} not answered in "
                   f"{FOLLOW_WAIT:g} s: {error_reply(c.set, f'late:{i}', i) or 'OK'}")
        expect(t.primary.client().get(f"late:{LATE_CLIENTS - 1}") == str(LATE_CLIENTS - 1),
               "the writes did not reach the primary")
        print(f"     {LATE_CLIENTS} clients over 2 workers answered once the primary was "
              f"named", flush=True)


CHECKS = (
    ("tls-auth", check_tls_auth),
    ("role", check_role),
    ("late", check_late),
)


if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS, sentinel_installed))
