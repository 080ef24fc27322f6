"""workload.py - the load threads, what they write, and the checks on what they read.

Keys fp:0..  are each owned by one proxy writer thread; keys fd:0.. are written
by one thread straight on Redis. Every value is "<key>:<n>", n strictly
increasing per key, and every key holds "<key>:0" before the load starts.
Readers GET and MGET random keys of both sets through the proxy.
"""
import collections
import random
import re
import threading
import time

import redis

from procs import HOST

PROXY_PREFIX = "fp:"
DIRECT_PREFIX = "fd:"
CLIENT_TIMEOUT = 3.0   # longer than the suite's upstream.timeout: the proxy answers first
HISTORY = 256          # direct acks remembered per key, to date a stale value
MGET_SHARE = 0.2
MGET_KEYS = 4
ERROR_PAUSE = 0.01     # a thread that got an error waits this long before going on
VALUE_RE = re.compile(rb"(f[pd]:\d+):(\d+)")


class Failure(Exception):
    """A request that got no value: kind names it; written is when its bytes were
    fully written (monotonic), set only when the connection then closed without reply."""

    def __init__(self, kind, written=None):
        super().__init__(kind)
        self.kind = kind
        self.written = written


class Link:
    """One connection, opened on demand and dropped after any error. A bare
    redis-py Connection rather than a client, to know when a request's bytes
    were written and whether a reply was then missing."""

    def __init__(self, port, name=None, timeout=CLIENT_TIMEOUT):
        self.conn = redis.connection.Connection(
            host=HOST, port=port, socket_timeout=timeout, socket_connect_timeout=1.0,
            retry_on_timeout=False, client_name=name, health_check_interval=0)
        self.connected = False

    def call(self, *args):
        """Send one request and return its reply, or raise Failure."""
        if not self.connected:
            self._connect()
        try:
            self.conn.send_command(*args)
        except redis.RedisError as e:
            self._drop()
            raise Failure("send failed") from e
        written = time.monotonic()
        try:
            return self.conn.read_response()
        except redis.ResponseError as e:
            raise Failure(str(e)) from e
        except redis.TimeoutError as e:
            self._drop()
            raise Failure("client timeout") from e
        except redis.ConnectionError as e:
            self._drop()
            raise Failure("closed without reply", written) from e

    def _connect(self):
        try:
            self.conn.connect()
        except redis.RedisError as e:
            self._drop()
            raise Failure("connect failed") from e
        self.connected = True

    def _drop(self):
        self.conn.disconnect()
        self.connected = False

    def close(self):
        self._drop()


class KeyBook:
    """What was written. acked[key] = (n, t): the latest acknowledged n and when its
    ack was seen; sent[key]: the largest n sent; direct keys also keep their last
    acks, to date the moment a value read had been overwritten."""

    def __init__(self, proxy_keys, direct_keys, written_at):
        self.proxy_keys = proxy_keys
        self.direct_keys = direct_keys
        self.keys = proxy_keys + direct_keys
        self.acked = {k: (0, written_at) for k in self.keys}
        self.sent = {k: 0 for k in self.keys}
        self.history = {k: collections.deque([(0, written_at)], HISTORY) for k in direct_keys}
        self.lock = threading.Lock()

    def ack(self, key, n, t):
        if key in self.history:
            with self.lock:
                self.history[key].append((n, t))
        self.acked[key] = (n, t)

    def overwritten_at(self, key, n):
        """When the first acked value after n of a direct key was acked."""
        with self.lock:
            return next(t for m, t in self.history[key] if m > n)


class Tally:
    """The figures of one scenario; violations are MUST-invariant failures."""

    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.ok = 0
        self.errors = collections.Counter()
        self.violations = collections.Counter()
        self.examples = {}
        self.windows = []          # ms, one per stale read of a direct key
        self.worst_window = ""
        self.drops = []            # (written, example) of requests closed without reply
        self.shutdowns = []        # (SIGTERM sent, proxy exited, proxy started again)

    def count_ok(self):
        with self.lock:
            self.ok += 1

    def error(self, kind):
        with self.lock:
            self.errors[kind] += 1

    def violate(self, invariant, example):
        with self.lock:
            self.violations[invariant] += 1
            self.examples.setdefault(invariant, example)

    def window(self, ms, example):
        with self.lock:
            if not self.windows or ms > max(self.windows):
                self.worst_window = example
            self.windows.append(ms)

    def drop(self, written, example):
        with self.lock:
            self.drops.append((written, example))


def parse_value(key, value):
    """n of a value "<key>:<n>", -1 for nil; raise ValueError with the reason otherwise."""
    if value is None:
        return -1
    match = VALUE_RE.fullmatch(value) if isinstance(value, bytes) else None
    if not match:
        raise ValueError(f"garbled value {value!r}")
    if match.group(1).decode() != key:
        raise ValueError(f"value of another key {value!r}")
    return int(match.group(2))


class Load:
    """The worker threads and the tally they count into; pausable between scenarios."""

    def __init__(self, book, proxy_port, redis_port, writers, readers, clock):
        self.book = book
        self.tally = Tally("setup")
        self.clock = clock          # monotonic time -> seconds since the run started
        self.go = threading.Event()
        self.stopping = False
        self.parked = 0
        self.cond = threading.Condition()
        per_writer = len(book.proxy_keys) // writers
        self.workers = [Writer(self, "proxy writer", Link(proxy_port),
                               book.proxy_keys[i * per_writer:(i + 1) * per_writer])
                        for i in range(writers)]
        self.workers += [Reader(self, "reader", Link(proxy_port)) for _ in range(readers)]
        self.workers.append(Writer(self, "direct writer", Link(redis_port, "faults-direct-writer"),
                                   book.direct_keys, via_proxy=False))
        for worker in self.workers:
            worker.start()

    def resume(self, tally):
        self.tally = tally
        self.go.set()

    def pause(self, timeout=CLIENT_TIMEOUT + 2):
        """Stop the workers between two requests; True once all of them are parked."""
        self.go.clear()
        with self.cond:
            return self.cond.wait_for(lambda: self.parked == len(self.workers), timeout)

    def gate(self):
        if self.go.is_set():
            return
        with self.cond:
            self.parked += 1
            self.cond.notify_all()
        self.go.wait()
        with self.cond:
            self.parked -= 1

    def stop(self):
        self.stopping = True
        self.go.set()
        for worker in self.workers:
            worker.join(CLIENT_TIMEOUT + 1)
            worker.link.close()


class Worker(threading.Thread):
    """A loop of steps; a Failure is counted by kind, and a drop by the proxy
    (a request written, then its connection closed without reply) is remembered."""

    def __init__(self, load, role, link, via_proxy=True):
        super().__init__(daemon=True)
        self.load = load
        self.role = role
        self.link = link
        self.via_proxy = via_proxy
        self.rng = random.Random()

    def run(self):
        while True:
            self.load.gate()
            if self.load.stopping:
                return
            try:
                self.step()
            except Failure as f:
                self.failed(f)

    def failed(self, f):
        tally = self.load.tally
        if f.written is not None and self.via_proxy:
            written = self.load.clock(f.written)
            tally.drop(f.written, f"{self.role}'s request written at t={written:.3f}s")
        else:
            tally.error(f.kind if self.via_proxy else f"direct: {f.kind}")
        time.sleep(ERROR_PAUSE)

    def step(self):
        raise NotImplementedError


class Writer(Worker):
    """SET key "<key>:<n>" on its own keys, n + 1 each time, through its link:
    the proxy, or Redis itself for the direct writer."""

    def __init__(self, load, role, link, keys, via_proxy=True):
        super().__init__(load, role, link, via_proxy)
        self.keys = keys

    def step(self):
        book = self.load.book
        key = self.rng.choice(self.keys)
        n = book.sent[key] + 1
        book.sent[key] = n
        reply = self.link.call("SET", key, f"{key}:{n}")
        if reply != b"OK":
            self.load.tally.violate("wrong", f"SET {key} answered {reply!r}")
            return
        book.ack(key, n, time.monotonic())
        self.load.tally.count_ok()


class Reader(Worker):
    """GET, or MGET of a few keys, through the proxy; each value is checked."""

    def step(self):
        keys = self.pick()
        book = self.load.book
        floors = [book.acked[k] for k in keys]
        sent_at = time.monotonic()
        if len(keys) == 1:
            values = [self.link.call("GET", keys[0])]
        else:
            values = self.link.call("MGET", *keys)
        if not isinstance(values, list) or len(values) != len(keys):
            self.load.tally.violate("wrong", f"MGET {keys} answered {values!r}")
            return
        for key, floor, value in zip(keys, floors, values):
            self.check(key, floor, value, sent_at)
        self.load.tally.count_ok()

    def pick(self):
        keys = self.load.book.keys
        if self.rng.random() < MGET_SHARE:
            return self.rng.sample(keys, MGET_KEYS)
        return [self.rng.choice(keys)]

    def check(self, key, floor, value, sent_at):
        """Count a wrong value, a stale read of a proxy key, or the age of a
        stale read of a direct key."""
        tally, book, clock = self.load.tally, self.load.book, self.load.clock
        try:
            n = parse_value(key, value)
        except ValueError as e:
            tally.violate("wrong", f"read of {key}: {e}")
            return
        if n > book.sent[key]:
            tally.violate("wrong", f"read of {key} returned n={n}, never written "
                                   f"(largest sent {book.sent[key]})")
        floor_n, floor_t = floor
        if n >= floor_n:
            return
        if key.startswith(PROXY_PREFIX):
            tally.violate("stale", f"read of {key} sent at t={clock(sent_at):.3f}s returned "
                                   f"n={n}, but n={floor_n} was acked at t={clock(floor_t):.3f}s")
            return
        since = book.overwritten_at(key, n)
        tally.window((sent_at - since) * 1000,
                     f"read of {key} sent at t={clock(sent_at):.3f}s returned n={n}, "
                     f"overwritten on Redis at t={clock(since):.3f}s")
