#!/usr/bin/python3
"""dns_test.py - nearcache following a host name of upstream.address that moves (issue 13).

The proxy runs with `--upstream redis.test:P` under nss_wrapper (Debian's
libnss-wrapper: LD_PRELOAD=libnss_wrapper.so with NSS_WRAPPER_HOSTS,
NSS_WRAPPER_PASSWD and NSS_WRAPPER_GROUP), so that its getaddrinfo() reads a
hosts file of the test's. Two redis-servers listen on the same port number at
two loopback addresses (127.0.0.1:P and 127.0.0.2:P, or [::1]:P where
127.0.0.2 cannot be bound), A and B, holding different values of `where`.
Every process lives in one temporary directory and is stopped by pid. The
proxy runs one worker: nss_wrapper is not thread-safe, and each worker
resolves the name on threads of its own (glibc's getaddrinfo is safe).

  resolve    the name is resolved at the start: GET where is A's value, STATS
             upstream_address is A's address, the tier serves a hit
  moved      the hosts file points redis.test at B (replaced whole, by rename),
             then A is stopped: within MOVE_WAIT s GET where returns B's value,
             the log has upstream_address_changed naming both addresses, no read
             begun after the first read of B's value returns A's (the tier
             emptied), and a write made directly on B is seen through the proxy
             (tracking reconnected to B too)
  moved-alive  the same with A left up: A closes the proxy's connections
             (CLIENT KILL) and every reconnect lands on B, none on A
  name-gone  the name removed from the hosts file and A stopped: clients get the
             documented errors, never a hang, the proxy keeps answering NEARCACHE
             STATS; the name back (at B): the proxy serves B's value

  python3 tests/sentinel/dns_test.py --bin build/nearcache [--check NAME]...

One line per check, PASS or FAIL (with the reason and the proxy's log tail);
the last line is "N passed, M failed"; the exit status is 1 if one failed, 77
(skipped, with the reason) if nss_wrapper is not installed or does not resolve
through the hosts file, or no second loopback address can be bound.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside procs.py in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import contextlib
import grp
import pwd
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter, namedtuple

import checks
import redis
from checks import Failed, Skip, UPSTREAM_ERRORS, attempt, expect, expect_move
from procs import wait_until  # noqa: E402

NAME = "redis.test"
NSS_WRAPPER = "libnss_wrapper.so"
IO_TIMEOUT = 10.0  # every Redis command: twice the proxy's upstream.timeout (5 s)
# The hosts file rewritten and A stopped to GET answered by B: the proxy resolves
# the name again before each reconnect, and its reconnect backoff tops out at
# upstream.reconnect_max (2 s by default); generous for a loaded machine.
MOVE_WAIT = 10.0
TRACKING_WAIT = 5.0  # a write made directly on B to its invalidation in the tier
TIER_WAIT = 10.0  # the address moved to the tier serving hits again (tracking re-established)
GONE_SECONDS = 3.0  # traffic while the name resolves to nothing

Op = namedtuple("Op", "start end value error")


def bindable(host, port=0):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, port))
            return s.getsockname()[1]
    except OSError:
        return None


def address_pair():
    """Two loopback addresses and a port number free on both."""
    for second in ("127.0.0.2", "::1"):
        if not bindable(second):
            continue
        for _ in range(50):
            port = bindable("127.0.0.1")
            if port and bindable(second, port):
                return "127.0.0.1", second, port
    raise Skip("neither 127.0.0.2 nor ::1 can be bound beside 127.0.0.1")


def write_hosts(path, host):
    """The hosts file with redis.test at host (None: without it), replaced whole:
    nss_wrapper reads the file again when its inode or mtime changes."""
    with open(path + ".tmp", "w") as f:
        f.write("127.0.0.1 localhost\n")
        if host:
            f.write(f"{host} {NAME}\n")
    os.replace(path + ".tmp", path)


class Stack(procs.Group):
    """A and B, the hosts file at A, nearcache under nss_wrapper with
    --upstream redis.test:P, JSON logs, the cache and tracking on; `with`
    stops every process and removes the directory."""

    def __init__(self, binary):
        super().__init__("nearcache-dns-")
        host_a, host_b, port = address_pair()
        self.a = self.add(procs.RedisServer(self.dir, "a", ("--appendonly", "no"), (host_a,), port))
        self.b = self.add(procs.RedisServer(self.dir, "b", ("--appendonly", "no"), (host_b,), port))
        self.hosts = os.path.join(self.dir, "hosts")
        # one worker: nss_wrapper's getaddrinfo is not safe to call from several
        # threads at once (it crashed in strlen with two workers resolving)
        self.proxy = self.add(procs.Proxy(binary, self.dir, None, f"{NAME}:{port}",
                                          ["log_format=json", "cache.enabled=true",
                                           "cache.tracking=true", "workers=1"]))

    def start(self):
        write_hosts(self.hosts, self.a.host)
        self.a.start()
        self.b.start()
        self.a.client().set("where", "A")
        self.b.client().set("where", "B")
        self.proxy.start(env=nss_env(self.dir, self.hosts))
        expect(self.proxy.wait_cache_active(10),
               f"cache_active is not 1 10 s after the start: {self.proxy.stats()}")

    def client(self):
        return self.proxy.client()

    def stats(self):
        return self.proxy.stats()

    def cache_where(self, c, value, timeout=0):
        """GET where twice through the proxy: value both times, the second a hit
        (tried again for up to timeout s: the tier serves once tracking is back)."""
        def second_hit():
            first = c.get("where")
            hits = self.stats()["hits"]
            got = [first, c.get("where")]
            expect(got == [value, value], f"GET where twice: {got}, expected {value!r}")
            return self.stats()["hits"] == hits + 1
        if not wait_until(second_hit, timeout, step=0.1):
            stats = self.stats()
            raise Failed(f"GET where twice: the second was no hit for {timeout:g} s (STATS "
                         f"tracking:{stats.get('tracking')} cache_active:"
                         f"{stats.get('cache_active')} hits:{stats.get('hits')})")


def nss_env(workdir, hosts):
    """The environment that makes getaddrinfo() read hosts: nss_wrapper wants
    passwd and group files too, written with this user's own entries."""
    user, group = pwd.getpwuid(os.getuid()), grp.getgrgid(os.getgid())
    passwd_path, group_path = os.path.join(workdir, "passwd"), os.path.join(workdir, "group")
    with open(passwd_path, "w") as f:
        f.write(":".join([user.pw_name, "x", str(user.pw_uid), str(user.pw_gid), user.pw_gecos,
                          user.pw_dir, user.pw_shell]) + "\n")
    with open(group_path, "w") as f:
        f.write(f"{group.gr_name}:x:{group.gr_gid}:\n")
    # NSS_WRAPPER_DISABLE_DEEPBIND: a name missing from the file falls through to
    # libc's own lookup, which nss_wrapper would dlopen with RTLD_DEEPBIND, and an
    # ASan build aborts on that
    env = dict(os.environ, LD_PRELOAD=NSS_WRAPPER, NSS_WRAPPER_HOSTS=hosts,
               NSS_WRAPPER_PASSWD=passwd_path, NSS_WRAPPER_GROUP=group_path,
               NSS_WRAPPER_DISABLE_DEEPBIND="1")
    # an ASan build refuses a library preloaded before its runtime
    env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                 "verify_asan_link_order=0"]))
    return env


def preflight():
    """Skip unless nss_wrapper resolves the name through a hosts file here, and
    moves it when the file is replaced."""
    with tempfile.TemporaryDirectory(prefix="nearcache-dns-") as d:
        hosts = os.path.join(d, "hosts")
        env = nss_env(d, hosts)
        probe = ("import socket, sys\n"
                 "for line in sys.stdin:\n"
                 f"    print(socket.getaddrinfo('{NAME}', 1, type=socket.SOCK_STREAM)[0][4][0],"
                 " flush=True)\n")
        write_hosts(hosts, "127.0.0.3")
        try:
            p = subprocess.Popen([sys.executable, "-c", probe], env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        except OSError as e:
            raise Skip(f"cannot run {sys.executable}: {e}")
        try:
            p.stdin.write("\n")
            p.stdin.flush()
            first = p.stdout.readline().strip()
            write_hosts(hosts, "127.0.0.4")
            p.stdin.write("\n")
            p.stdin.flush()
            second = p.stdout.readline().strip()
            p.stdin.close()
            err = p.stderr.read().strip()
        finally:
            p.kill()
            p.wait(5)
        if (first, second) != ("127.0.0.3", "127.0.0.4"):
            raise Skip(f"LD_PRELOAD={NSS_WRAPPER} (Debian's libnss-wrapper) did not resolve "
                       f"{NAME} through a hosts file: {first or '-'} then {second or '-'}, "
                       f"expected 127.0.0.3 then 127.0.0.4 {err[-300:]}")


def reader(port, done, ops):
    """GET where through the proxy until done; each as an Op."""
    c = procs.connect(port, timeout=IO_TIMEOUT)
    while not done.is_set():
        start = time.monotonic()
        value, error = attempt(c.get, "where")
        ops.append(Op(start, time.monotonic(), value, error))
        time.sleep(0.005)
    c.close()


@contextlib.contextmanager
def reading(port):
    """A reader thread on port for the body of the `with`, begun 0.2 s before
    it; the list of its Ops."""
    done, ops = threading.Event(), []
    t = threading.Thread(target=reader, args=(port, done, ops), daemon=True)
    t.start()
    try:
        time.sleep(0.2)
        yield ops
    finally:
        done.set()
        t.join(IO_TIMEOUT + 2)


def check_tracking_on_b(s, c):
    """After the move, the tier serves B's value as hits, and a write made
    directly on B reaches the proxy (tracking on B); the seconds that took."""
    s.cache_where(c, "B", TIER_WAIT)
    s.b.client().set("where", "B2")
    written = time.monotonic()
    expect(wait_until(lambda: c.get("where") == "B2", TRACKING_WAIT, step=0.01),
           f"GET where not 'B2' {TRACKING_WAIT:g} s after it was written on B: no "
           "tracking on B")
    return time.monotonic() - written


def check_errors(errors, what):
    """Only the proxy's documented upstream errors or a closed connection."""
    kinds = Counter(errors)
    print(f"     {what}: {len(errors)} errors {dict(kinds) if kinds else ''}", flush=True)
    bad = [e for e in kinds if not e.startswith(UPSTREAM_ERRORS + ("ConnectionError",))]
    expect(not bad, f"{what}: errors other than the documented ones: {bad[:5]}")


# ---- 1. resolve --------------------------------------------------------------------

def check_resolve(binary):
    with Stack(binary) as s:
        stats = s.stats()
        expect(stats.get("upstream_address") == s.a.address,
               f"STATS upstream_address {stats.get('upstream_address')!r}, {NAME} is at "
               f"{s.a.address}")
        s.cache_where(s.client(), "A")


# ---- 2. moved ----------------------------------------------------------------------

def check_moved(binary):
    with Stack(binary) as s:
        c = s.client()
        s.cache_where(c, "A")
        with reading(s.proxy.port) as ops:
            write_hosts(s.hosts, s.b.host)
            s.a.stop()
            stopped = time.monotonic()
            moved = wait_until(lambda: any(o.value == "B" for o in list(ops)), MOVE_WAIT)
            time.sleep(0.5)
        expect(moved, f"GET where not 'B' {MOVE_WAIT:g} s after {NAME} moved to {s.b.address} "
                      f"and A stopped: {dict(Counter(o.value or o.error for o in ops))}")
        first_b = next(o for o in ops if o.value == "B")
        print(f"     A stopped to the first read of B's value {first_b.end - stopped:.2f} s; "
              f"reads of A's value after A stopped, before that: "
              f"{sum(o.value == 'A' and o.start > stopped for o in ops)}", flush=True)
        check_errors([o.error for o in ops if o.error], "GET where while it moved")
        stale = [o for o in ops if o.start > first_b.end and o.value not in ("B", None)]
        expect(not stale, f"{len(stale)} reads begun after the first read of 'B' returned "
                          f"{dict(Counter(o.value for o in stale))}")
        stats = s.stats()
        expect(stats.get("upstream_address") == s.b.address,
               f"STATS upstream_address {stats.get('upstream_address')!r}, {NAME} is at "
               f"{s.b.address} now")
        changed = expect_move(s.proxy, "upstream_address_changed", s.a.address, s.b.address)
        print(f"     logged: {changed[0]['line']}", flush=True)

        seconds = check_tracking_on_b(s, c)
        print(f"     where written on B: read back through the proxy after {seconds:.3f} s",
              flush=True)


# ---- 3. moved, the old address still up -----------------------------------------------

def check_moved_alive(binary):
    """The name moved to B while A stays up: A closes the proxy's connections
    (CLIENT KILL of its normal and pub/sub clients: the data connections and the
    tracking subscriber), and every reconnect must resolve the name again and
    land on B: no read after the first of B's value returns A's, although A
    still answers."""
    with Stack(binary) as s:
        c = s.client()
        s.cache_where(c, "A")
        with reading(s.proxy.port) as ops:
            write_hosts(s.hosts, s.b.host)
            a = s.a.client()
            killed = a.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes") + \
                a.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            closed = time.monotonic()
            moved = wait_until(lambda: any(o.value == "B" for o in list(ops)), MOVE_WAIT)
            time.sleep(1.0)
        expect(killed > 0, "CLIENT KILL on A closed no connection of the proxy")
        expect(moved, f"GET where not 'B' {MOVE_WAIT:g} s after {NAME} moved to {s.b.address} "
                      f"and A closed the proxy's {killed} connections: "
                      f"{dict(Counter(o.value or o.error for o in ops))}")
        first_b = next(o for o in ops if o.value == "B")
        check_errors([o.error for o in ops if o.error], "GET where while it moved")
        stale = [o for o in ops if o.start > first_b.end and o.value not in ("B", None)]
        expect(not stale, f"{len(stale)} of {len(ops)} reads begun after the first read of 'B' "
                          f"returned {dict(Counter(o.value for o in stale))}: a connection "
                          "still on A")
        expect(s.stats().get("upstream_address") == s.b.address,
               f"STATS upstream_address {s.stats().get('upstream_address')!r}")
        print(f"     A closed {killed} connections: B's value read after "
              f"{first_b.end - closed:.2f} s", flush=True)
        check_tracking_on_b(s, c)


# ---- 4. the name gone ----------------------------------------------------------------

def check_name_gone(binary):
    with Stack(binary) as s:
        c = s.client()
        s.cache_where(c, "A")
        write_hosts(s.hosts, None)
        s.a.stop()
        time.sleep(0.3)  # the proxy has seen its connections to A close
        errors, answered, end = [], 0, time.monotonic() + GONE_SECONDS
        while time.monotonic() < end:
            try:
                value = c.get("where")
                answered += 1
                expect(value != "A", "GET where returned A's value 0.3 s after A stopped")
            except redis.ResponseError as e:
                errors.append(str(e))
            except redis.ConnectionError as e:
                errors.append(f"ConnectionError: {e}")
            expect(isinstance(s.stats().get("clients"), int), "NEARCACHE STATS not answered")
            time.sleep(0.05)
        print(f"     {NAME} gone and A stopped: {answered} GETs answered (none could be)",
              flush=True)
        check_errors(errors, "GET where with the name gone")
        expect(not answered, f"{answered} GETs answered with no Redis to answer them")
        expect(s.proxy.alive(), "the proxy exited")
        write_hosts(s.hosts, s.b.host)
        back = time.monotonic()

        def b_answers():
            try:
                return c.get("where") == "B"
            except redis.RedisError:
                return False
        expect(wait_until(b_answers, MOVE_WAIT), f"GET where not 'B' {MOVE_WAIT:g} s after "
                                                 f"{NAME} came back at {s.b.address}")
        print(f"     the name back at B: B's value read after {time.monotonic() - back:.2f} s",
              flush=True)


CHECKS = (
    ("resolve", check_resolve),
    ("moved", check_moved),
    ("moved-alive", check_moved_alive),
    ("name-gone", check_name_gone),
)


@contextlib.contextmanager
def nss_wrapper(args):
    preflight()
    address_pair()
    yield ()


if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS, nss_wrapper))
