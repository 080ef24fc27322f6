#!/usr/bin/python3
"""admin_test.py - nearcache's admin endpoint, sd_notify and watch_config.

Each check starts its own redis-server and nearcache (tests/faults/procs.py),
the admin endpoint on a free loopback port, in a temporary directory, and
stops both by pid:

  metrics           /metrics parses (HELP, TYPE, *_total counters) and moves with
                    the traffic; /stats agrees with it
  upstream          Redis stopped: /readyz 503, errors and reconnects counted,
                    /readyz 200 once it is back; Redis frozen: `upstream timeout`
  token             the POST actions' 401/403/200, 405, 404; a failed reload: 422
  config            /config: secrets redacted, admin.listen, the policy's rules
  bad-http          malformed and oversized requests are refused or closed
  slow-client       a client trickling a request is closed after 5 s, and data
                    traffic is answered meanwhile (its worst latency printed)
  idle-connections  40 idle admin connections (the limit is 32) leave data
                    traffic working and, once closed, the endpoint too
  sd-notify         READY=1 only once Redis is up; RELOADING=1, STOPPING=1
  watch             watch_config reloads a rewritten file, counts a broken one

  python3 tests/admin/admin_test.py --bin build/nearcache [--check NAME]...

One line per check, PASS or FAIL (with the reason and the proxy's log tail);
the last line is "N passed, M failed"; the exit status is 1 if one failed.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside procs.py in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import json
import math
import select
import signal
import socket
import tempfile
import threading
import time

import checks
import yaml
from checks import Failed, error_reply, expect, http_request
from prometheus_client.parser import text_string_to_metric_families
from procs import HOST, wait_until  # noqa: E402

TOKEN = "admin-token-5f2c"
IO_TIMEOUT = 3.0  # every HTTP request and Redis command
TRICKLE_GAP = 0.2  # seconds between the bytes of the slow client
TRICKLE_CLOSE_BOUND = 8.0  # the proxy cuts off a request unfinished after 5 s (1 s ticks)
DATA_REQUESTS = 200  # PING/GET through the proxy while the slow client trickles
LATENCY_BOUND = 1.0  # generous: a loop blocked by the trickle stalls for seconds
IDLE_CONNECTIONS = 40  # more than the endpoint's 32


def write_config(path, content):
    """Writes the proxy's YAML file atomically (rename): a dict, or text as is."""
    with open(path + ".tmp", "w") as f:
        f.write(content if isinstance(content, str) else yaml.safe_dump(content))
    os.replace(path + ".tmp", path)


class Metrics:
    """One scrape of /metrics, checked whole: every family has HELP and TYPE
    and a name under nearcache_ or process_, every counter ends in _total,
    and every sample line parses."""

    def __init__(self, text):
        declared = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, kind = line.split(" ", 3)
                declared[name] = kind
                expect(f"# HELP {name} " in text, f"/metrics: {name} has no HELP")
                expect(name.startswith(("nearcache_", "process_")), f"/metrics: family {name}")
                expect(kind != "counter" or name.endswith("_total"),
                       f"/metrics: counter {name} does not end in _total")
        self.samples = {}
        for family in text_string_to_metric_families(text):  # raises ValueError on bad lines
            expect(family.documentation and family.type != "unknown",
                   f"/metrics: samples of {family.name} without HELP or TYPE")
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value
        lines = [l for l in text.splitlines() if l and not l.startswith("#")]
        expect(len(lines) == len(self.samples), "/metrics: sample lines the parser dropped")
        expect(declared, "/metrics: no families")

    def __call__(self, name, missing=None, **labels):
        """The value of a sample; missing if it is absent and missing is given."""
        value = self.samples.get((name, frozenset(labels.items())), missing)
        expect(value is not None, f"/metrics has no {name}{labels or ''}")
        return value

    def buckets(self, name, **labels):
        """The (le, value) samples of a histogram's _bucket, by increasing le."""
        return sorted((float(dict(key)["le"]), v) for (n, key), v in self.samples.items()
                      if n == name + "_bucket" and labels.items() <= dict(key).items())


class Stack(procs.Group):
    """redis-server (unless redis_up is False) and nearcache with its admin
    endpoint, in a temporary directory; `with` stops both and removes it."""

    def __init__(self, binary, config=None, settings=(), env=None, redis_up=True):
        super().__init__("nearcache-admin-", tail_lines=15)
        self.config_path = os.path.join(self.dir, "nearcache.yaml")
        write_config(self.config_path, config or {})
        self.redis = self.add(procs.RedisServer(self.dir))
        self.admin_port = procs.free_port()
        self.proxy = self.add(procs.Proxy(binary, self.dir, self.config_path, self.redis.port,
                                          [f"admin.listen={HOST}:{self.admin_port}", *settings],
                                          timeout=IO_TIMEOUT))
        self.env, self.redis_up = env, redis_up

    def start(self):
        """Starts Redis (if redis_up) and nearcache (with env), and waits for
        /healthz: a PING is forwarded to Redis and fails while Redis is down or
        clients.password is set."""
        if self.redis_up:
            self.redis.start()
        self.proxy.start(ready=self.healthy, env=self.env)

    def admin(self, method, path, token=None, headers=None):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return http_request(self.admin_port, method, path, headers, IO_TIMEOUT)

    def healthy(self):
        try:
            return self.admin("GET", "/healthz").status == 200
        except OSError:
            return False

    def ready(self):
        return self.admin("GET", "/readyz").status == 200

    def wait_ready(self, timeout=10):
        expect(wait_until(self.ready, timeout), "/readyz: " + self.admin("GET", "/readyz").body)

    def metrics(self):
        reply = self.admin("GET", "/metrics")
        expect(reply.status == 200, f"GET /metrics: {reply.status}")
        return Metrics(reply.body)

    def await_metric(self, what, test, timeout, name, **labels):
        """Waits until test(value of the sample) holds; Failed with what if not."""
        seen = []

        def holds():
            seen.append(self.metrics()(name, **labels))
            return test(seen[-1])

        if not wait_until(holds, timeout, step=0.1):
            raise Failed(f"{what}: {name}{labels or ''} stayed {seen[-1]:g} for {timeout} s")

    def client(self):
        return self.proxy.client()

    def direct(self):
        return self.redis.client(timeout=IO_TIMEOUT)


# ---- 1. metrics --------------------------------------------------------------

def resp_len(*args):
    """Bytes of a RESP array of bulk strings, as redis-py writes a command."""
    return len(f"*{len(args)}\r\n") + sum(len(f"${len(a)}\r\n{a}\r\n") for a in args)


# sample, labels, its change from a GET of m:1 that misses and one that hits
MISS_THEN_HIT = (
    ("nearcache_cache_misses_total", {}, 1),
    ("nearcache_cache_hits_total", {}, 1),
    ("nearcache_requests_total", {"command": "get"}, 2),
    ("nearcache_request_duration_seconds_count", {"path": "upstream"}, 1),
    ("nearcache_request_duration_seconds_count", {"path": "hit"}, 1),
    ("nearcache_client_received_bytes_total", {}, 2 * resp_len("GET", "m:1")),
    ("nearcache_client_sent_bytes_total", {}, 2 * len("$1\r\na\r\n")),
)


def fill(stack, client, key):
    """GETs key through the proxy and waits until its reply is in the tier."""
    entries = stack.metrics()("nearcache_cache_entries")
    client.get(key)
    stack.await_metric(f"GET {key} filled no entry", lambda n: n == entries + 1, 2,
                       "nearcache_cache_entries")


def check_histograms(m):
    for path in ("hit", "upstream"):
        buckets = m.buckets("nearcache_request_duration_seconds", path=path)
        values = [v for _, v in buckets]
        expect(buckets and math.isinf(buckets[-1][0]), f"path={path}: no +Inf bucket")
        expect(values == sorted(values), f"path={path}: buckets are not cumulative: {values}")
        count = m("nearcache_request_duration_seconds_count", path=path)
        expect(values[-1] == count, f"path={path}: +Inf bucket {values[-1]:g}, _count {count:g}")


def check_metrics(binary):
    config = {"policy": {"cache": [{"name": "brief", "keys": "brief:*", "ttl": "300ms"}]}}
    with Stack(binary, config, [f"admin.token={TOKEN}"]) as s:
        s.wait_ready()
        c, direct = s.client(), s.direct()
        direct.mset({"m:1": "a", "m:2": "b", "m:3": "c", "brief:1": "d"})
        before = s.metrics()
        fill(s, c, "m:1")
        expect(c.get("m:1") == "a", "GET m:1 through the proxy")
        after = s.metrics()
        stats = json.loads(s.admin("GET", "/stats").body)
        for name, labels, change in MISS_THEN_HIT:
            moved = after(name, **labels) - before(name, 0, **labels)
            expect(moved == change, f"a miss then a hit: {name}{labels or ''} +{moved:g}, "
                                    f"expected +{change}")
        check_histograms(after)
        expect(stats["nearcache_cache_hits_total"] == after("nearcache_cache_hits_total"),
               f"/stats hits {stats['nearcache_cache_hits_total']}, /metrics "
               f"{after('nearcache_cache_hits_total'):g}")

        def dropped(cause):
            return s.metrics()("nearcache_cache_invalidations_total", cause=cause)

        writes = dropped("write")
        c.set("m:1", "z")
        expect(dropped("write") == writes + 1, "SET m:1 through the proxy: cause=write not +1")

        fill(s, c, "m:2")
        tracked = dropped("tracking")
        direct.set("m:2", "y")
        s.await_metric("SET m:2 on Redis", lambda n: n > tracked, 3,
                       "nearcache_cache_invalidations_total", cause="tracking")
        expect(c.get("m:2") == "y", "GET m:2 after its write on Redis: stale")

        expired = dropped("expiry")  # brief:* live 300 ms in the tier, for good on Redis
        fill(s, c, "brief:1")
        s.await_metric("an entry past its rule's ttl", lambda n: n > expired, 3,
                       "nearcache_cache_invalidations_total", cause="expiry")

        fill(s, c, "m:1")  # dropped by its SET; m:2 is back since its GET
        fill(s, c, "m:3")
        entries, flushed = s.metrics()("nearcache_cache_entries"), dropped("flush")
        reply = s.admin("POST", "/flush", TOKEN)
        expect(reply.status == 200 and json.loads(reply.body) == {"flushed": entries},
               f"POST /flush with {entries:g} entries: {reply.status} {reply.body!r}")
        expect(dropped("flush") == flushed + entries, "POST /flush: cause=flush not +entries")
        expect(s.metrics()("nearcache_cache_entries") == 0, "entries after POST /flush")


# ---- 2. upstream -------------------------------------------------------------

def upstream_errors(m, *kinds):
    return sum(m("nearcache_upstream_errors_total", kind=k) for k in kinds)


def check_upstream(binary):
    with Stack(binary, settings=["upstream.timeout=300ms"]) as s:
        s.wait_ready()
        c = s.client()
        before = s.metrics()
        s.redis.stop()
        expect(wait_until(lambda: not s.ready(), 5), "/readyz stayed 200 with Redis stopped")
        reply = s.admin("GET", "/readyz")
        expect(reply.status == 503 and reply.body.startswith("not ready: ") and
               len(reply.body.strip()) > len("not ready:"), f"/readyz: {reply.body!r}")
        expect(s.admin("GET", "/healthz").status == 200, "/healthz with Redis stopped")
        expect(s.metrics()("nearcache_upstream_up") == 0, "upstream_up with Redis stopped")
        error = error_reply(c.get, "u:1")
        expect(error in ("upstream unavailable", "upstream connection lost"),
               f"GET with Redis stopped: {error or 'answered'}")
        failed = upstream_errors(s.metrics(), "unavailable", "lost")
        expect(failed > upstream_errors(before, "unavailable", "lost"),
               "upstream_errors_total{kind=unavailable|lost} did not grow")
        s.await_metric("Redis stopped", lambda n: n > before("nearcache_upstream_reconnects_total"),
                       5, "nearcache_upstream_reconnects_total")
        s.redis.start()
        s.wait_ready()
        expect(s.metrics()("nearcache_upstream_up") == 1, "upstream_up with Redis back")

        timeouts = upstream_errors(s.metrics(), "timeout")
        s.redis.pause()
        try:
            error = error_reply(c.get, "u:2")
        finally:
            s.redis.resume()
        expect(error == "upstream timeout", f"GET with Redis frozen: {error or 'answered'}")
        expect(upstream_errors(s.metrics(), "timeout") > timeouts,
               "upstream_errors_total{kind=timeout} did not grow")


# ---- 3. token ------------------------------------------------------------------

REFUSALS = (  # method, path, token, status
    ("POST", "/reload", None, 401),
    ("POST", "/flush", None, 401),
    ("POST", "/reload", "not-the-token", 403),
    ("POST", "/flush", "not-the-token", 403),
    ("GET", "/reload", TOKEN, 405),
    ("POST", "/metrics", TOKEN, 405),
    ("GET", "/nope", TOKEN, 404),
)


def reloads(stack, result):
    return stack.metrics()("nearcache_reloads_total", result=result)


def check_token(binary):
    with Stack(binary, settings=[f"admin.token={TOKEN}"]) as s:
        s.wait_ready()
        for method, path, token, status in REFUSALS:
            reply = s.admin(method, path, token)
            expect(reply.status == status, f"{method} {path} token {token}: {reply.status}, "
                                           f"expected {status}")
            expect(status != 401 or reply.headers["WWW-Authenticate"],
                   f"{method} {path}: 401 without WWW-Authenticate")
        expect(s.admin("POST", "/flush", TOKEN).status == 200, "POST /flush with the token")
        succeeded = reloads(s, "success")
        reply = s.admin("POST", "/reload", TOKEN)
        expect((reply.status, reply.body.strip()) == (200, "OK"),
               f"POST /reload with the token: {reply.status} {reply.body!r}")
        expect(reloads(s, "success") == succeeded + 1, "reloads_total{result=success} not +1")

        failures = reloads(s, "failure")
        write_config(s.config_path, "cache: {ttl: [\n")
        reply = s.admin("POST", "/reload", TOKEN)
        expect(reply.status == 422 and "reload failed" in reply.body,
               f"POST /reload of a broken file: {reply.status} {reply.body!r}")
        expect(reloads(s, "failure") == failures + 1, "reloads_total{result=failure} not +1")
        expect(s.client().ping() and s.ready(), "the proxy after a failed reload")
    with Stack(binary) as s:  # no admin.token: the actions are off
        for path in ("/reload", "/flush"):
            reply = s.admin("POST", path, TOKEN)
            expect(reply.status == 403, f"POST {path} without admin.token set: {reply.status}")


# ---- 4. config -----------------------------------------------------------------

SECRETS = {"clients.password": "client-secret-81b3", "admin.token": "admin-secret-27d9"}
RULES = [{"kind": "cache", "name": "sessions"}, {"kind": "invalidate", "name": "user-sessions"}]


def check_config(binary):
    config = {
        "clients": {"password": SECRETS["clients.password"]},
        "admin": {"token": SECRETS["admin.token"]},
        "policy": {"cache": [{"name": "sessions", "keys": "sess:*", "ttl": "1m"}],
                   "invalidate": [{"name": "user-sessions", "when": "user:{id}",
                                   "drop": "sess:{id}:*"}]},
    }
    with Stack(binary, config) as s:
        reply = s.admin("GET", "/config")
        expect(reply.status == 200, f"GET /config: {reply.status}")
        for name, secret in SECRETS.items():
            expect(secret not in reply.body, f"/config shows the value of {name}")
        body = json.loads(reply.body)
        for name in SECRETS:
            expect(body["settings"][name] == "<redacted>", f"/config {name}: "
                                                           f"{body['settings'][name]!r}")
        expect(body["settings"]["admin.listen"] == f"{HOST}:{s.admin_port}",
               f"/config admin.listen: {body['settings']['admin.listen']!r}")
        for rule in RULES:
            expect(rule in body["policy"], f"/config policy: no {rule} in {body['policy']}")


# ---- 5. bad HTTP -----------------------------------------------------------------

def chunked(size, piece=1000):
    one = f"{piece:x}\r\n".encode() + b"a" * piece + b"\r\n"
    return one * (size // piece) + b"0\r\n\r\n"


FLUSH = f"POST /flush HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n".encode()
BAD_REQUESTS = (  # what, bytes, the statuses accepted (None: closed without a reply)
    ("a malformed request line", b"GARBAGE\r\n\r\n", {None, *range(400, 500)}),
    ("40 KB of headers",
     b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40960 + b"\r\n\r\n", {None, 431}),
    ("Content-Length 10^9", FLUSH + b"Content-Length: 1000000000\r\n\r\n", {413}),
    ("a chunked body of 100 KB",
     FLUSH + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(100 * 1024),
     {None, *range(400, 600)}),
)


def raw_request(port, data):
    """Sends data on a new admin connection and reads until the proxy closes
    it (or IO_TIMEOUT passes after a reply); the reply's status, or None if
    it closed without a reply."""
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # closed while we were sending: read what came before
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            expect(received, f"neither answered nor closed in {IO_TIMEOUT} s")
    return int(received.split(b" ", 2)[1]) if received else None


def trickle(port, gap, limit, result):
    """Sends a request that never ends one byte every gap seconds; result[0]
    is the seconds until the proxy closed the connection, or None if it was
    still open after limit seconds."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    start = time.monotonic()
    result.append(None)
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as sock:
        for byte in request:
            if time.monotonic() - start > limit:
                return
            try:
                readable, _, _ = select.select([sock], [], [], gap)
                if readable and not sock.recv(4096):  # EOF; a reply would be answering early
                    break
                sock.send(bytes([byte]))
            except OSError:
                break
    result[0] = time.monotonic() - start


def data_latencies(client, n, gap):
    """Seconds each of n PINGs and GETs through the proxy took, gap apart."""
    latencies = []
    for i in range(n):
        start = time.monotonic()
        expect(client.ping() if i % 2 else client.get("d:1") == "v", f"data request {i}")
        latencies.append(time.monotonic() - start)
        time.sleep(gap)
    return latencies


def check_bad_http(binary):
    with Stack(binary, settings=[f"admin.token={TOKEN}"]) as s:
        s.wait_ready()
        c = s.client()
        for what, data, accepted in BAD_REQUESTS:
            status = raw_request(s.admin_port, data)
            expect(status in accepted, f"{what}: {status or 'closed without a reply'}")
            expect(c.ping() and s.healthy(), f"the proxy after {what}")


def check_slow_client(binary):
    with Stack(binary) as s:
        s.wait_ready()
        c = s.client()
        c.set("d:1", "v")
        closed_after = []
        slow = threading.Thread(target=trickle, args=(s.admin_port, TRICKLE_GAP,
                                                      TRICKLE_CLOSE_BOUND + 2, closed_after))
        slow.start()
        try:
            time.sleep(0.5)
            latencies = data_latencies(c, DATA_REQUESTS, 0.015)
            still_trickling = slow.is_alive()
        finally:
            slow.join()
        worst, closed = max(latencies), closed_after[0]
        print(f"     {DATA_REQUESTS} data requests during the trickle, max latency "
              f"{worst * 1000:.1f} ms; the trickling client closed after "
              f"{'(never)' if closed is None else f'{closed:.1f} s'}", flush=True)
        expect(worst < LATENCY_BOUND, f"a data request took {worst:.3f} s during the trickle")
        expect(still_trickling, "the slow client ended before the data requests did")
        expect(closed is not None, f"a client trickling a request, a byte every {TRICKLE_GAP} "
                                   f"s, was still connected after {TRICKLE_CLOSE_BOUND + 2:g} s")
        expect(closed <= TRICKLE_CLOSE_BOUND, f"the trickling client was closed after "
                                              f"{closed:.1f} s")


def check_idle_connections(binary):
    with Stack(binary) as s:
        s.wait_ready()
        c = s.client()
        c.set("d:1", "v")
        idle = [socket.create_connection((HOST, s.admin_port)) for _ in range(IDLE_CONNECTIONS)]
        try:
            expect(c.ping() and c.get("d:1") == "v",
                   f"data traffic with {IDLE_CONNECTIONS} idle admin connections")
        finally:
            # closed while the proxy is stopped, so that it sees them all in one
            # turn of its loop, as a busy proxy does
            s.proxy.signal(signal.SIGSTOP)
            for sock in idle:
                sock.close()
            s.proxy.signal(signal.SIGCONT)
        expect(wait_until(s.healthy, 6), f"/healthz after {IDLE_CONNECTIONS} idle admin "
                                         "connections were closed: no answer for 6 s")


# ---- 6. sd_notify ----------------------------------------------------------------

def notifications(sock, wanted, timeout):
    """Datagrams from the proxy until one has the line wanted (all those of
    timeout seconds if wanted is None); each as its list of lines."""
    got, deadline = [], time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode().split("\n"))
        except socket.timeout:
            break
        if wanted in got[-1]:
            return got
    expect(wanted is None, f"no {wanted} in {timeout} s; got {got}")
    return got


def check_sd_notify(binary):
    with tempfile.TemporaryDirectory() as d, \
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = os.path.join(d, "notify")
        sock.bind(path)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        with Stack(binary, env=env, redis_up=False) as s:
            early = notifications(sock, None, 1.0)
            expect(not any("READY=1" in lines for lines in early),
                   f"READY=1 with Redis down: {early}")
            expect(not s.ready(), "/readyz 200 with Redis down")
            s.redis.start()
            notifications(sock, "READY=1", 10)
            s.proxy.signal(signal.SIGHUP)
            notifications(sock, "RELOADING=1", 5)
            notifications(sock, "READY=1", 5)
            s.proxy.signal(signal.SIGTERM)
            notifications(sock, "STOPPING=1", 5)
            status = s.proxy.wait_exit(10)
            expect(status == 0, f"exit status after SIGTERM: {status}")


# ---- 7. watch_config ---------------------------------------------------------------

def check_watch(binary):
    with Stack(binary, {"watch_config": True, "cache": {"ttl": "5m"}}) as s:
        s.wait_ready()
        succeeded = reloads(s, "success")
        write_config(s.config_path, {"watch_config": True, "cache": {"ttl": "7m"}})
        s.await_metric("the file rewritten", lambda n: n > succeeded, 5,
                       "nearcache_reloads_total", result="success")
        ttl = json.loads(s.admin("GET", "/config").body)["settings"]["cache.ttl"]
        expect(ttl == "7m", f"/config cache.ttl after the reload: {ttl!r}")

        failures = reloads(s, "failure")
        write_config(s.config_path, "watch_config: true\ncache: {ttl: [\n")
        s.await_metric("a broken file written", lambda n: n > failures, 5,
                       "nearcache_reloads_total", result="failure")
        ttl = json.loads(s.admin("GET", "/config").body)["settings"]["cache.ttl"]
        expect(s.client().ping() and ttl == "7m",
               f"after the failed reload: cache.ttl {ttl!r}, the proxy serving")


CHECKS = (
    ("metrics", check_metrics),
    ("upstream", check_upstream),
    ("token", check_token),
    ("config", check_config),
    ("bad-http", check_bad_http),
    ("slow-client", check_slow_client),
    ("idle-connections", check_idle_connections),
    ("sd-notify", check_sd_notify),
    ("watch", check_watch),
)


if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS))
