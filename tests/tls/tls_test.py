#!/usr/bin/python3
"""tls_test.py - nearcache's TLS, to Redis (upstream.tls*) and to clients (tls.*).

Certificates are made at run time with the openssl CLI (EC prime256v1) in a
temporary directory (certs.py): a CA, a server certificate for 127.0.0.1 and
localhost, a client certificate, an unrelated CA with its own server and client
certificates, an expired server certificate and one for wrong.example only.
Each check starts its own redis-server (TLS only, --port 0, or plain) and
nearcache on free loopback ports and stops them by pid (stack.py):

  upstream_tls      upstream.tls to a TLS-only Redis: types, a binary value, a
                    pipeline of 1000, MULTI/EXEC, MGET of 2000 keys, 1 MB and 3 MB
                    values, pub/sub, a blocking BLPOP released by a push
  mutual_tls        Redis requires a client certificate: without one (tracking on
                    and off), clients get `upstream unavailable` and
                    upstream_tls_failed is logged, retried with backoff; a client
                    certificate of another CA likewise; with
                    upstream.tls_cert_file/tls_key_file it works
  bad_upstream_certs  wrong CA, expired, wrong name: `upstream unavailable` within
                    FAIL_BOUND and upstream_tls_failed with OpenSSL's reason;
                    tls_server_name, else the host of upstream.address, is the
                    name verified; tls_verify=off connects to the wrong CA and
                    logs the warning tls_verify_off
  tracking_coherence_tls  a tier hit, then a write made directly on Redis (over
                    TLS) reaches the proxy through tracking over TLS
  client_tls        tls.listen: redis-py and redis-cli over TLS, tls.cert_file's
                    certificate served, 10,000 pipelined commands, 1 MB and 3 MB
                    values, a request a byte per record, TLS 1.1 refused; then
                    TLS on both sides at once
  client_auth       tls.auth_clients yes: no certificate or one of another CA
                    refused at the handshake, the CA's accepted; optional: both
  cross_protocol    plain text on the TLS port closed (client_tls_failed); a silent
                    or half handshake holds up no one; a ClientHello on the plain
                    port answered `-ERR Protocol error` and closed
  cert_reload       SIGHUP with a new certificate: an idle TLS connection goes on,
                    new ones get the new certificate; a broken certificate, a key
                    that does not match it or an empty key fails the reload
                    (reload_failed) and the previous certificate stays;
                    NEARCACHE RELOAD says so, and applies a good one
  cert_watch        watch_config without -c (the warning watch_config_unavailable):
                    the files untouched for WATCH_IDLE s, no reload; then
                    tls.cert_file and tls.key_file replaced on disk by rename, no
                    signal: within WATCH_BOUND s new connections get the new
                    certificate, reloads rises, an idle TLS connection goes on

  python3 tests/tls/tls_test.py --bin build/nearcache [--check NAME]... [--keep]

One line per check, PASS or FAIL (with the reason and the proxy's log tail);
the last line is "N passed, M failed"; the exit status is 1 if one failed.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside procs.py in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402,F401  first: it runs Debian's python3 if this one has no redis module
import contextlib
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

import checks
import redis
from certs import Certs, tls_context
from checks import Failed, attempt, error_reply, expect
from procs import HOST, wait_until  # noqa: E402
from stack import EVENT_TIMEOUT, IO_TIMEOUT, START_TIMEOUT, Run, tls_connect, wait_serving

FLOOD_BOUND = 60.0  # FLOOD_COMMANDS SETs and GETs of FLOOD_VALUE bytes each way
FLOOD_COMMANDS = 200
FLOOD_VALUE = 64 * 1024
FAIL_BOUND = 5.0  # a request while the upstream's TLS fails is answered within this
CLOSE_BOUND = 5.0  # a client speaking the wrong protocol is closed within this
RETRY_WINDOW = 2.0  # upstream_tls_failed lines counted over this long
MAX_RETRIES_IN_WINDOW = 100  # backoff from 50 ms to 2 s over ~6 connections: ~20-40
# Certificate and key renamed over to a new connection getting the new certificate
# (watch_config): the proxy looks every second, and may first see the new
# certificate with the old key (a failed reload) and only then both.
WATCH_BOUND = 5.0
WATCH_IDLE = 1.5  # the files left alone first: the proxy looks at them meanwhile


# ---- raw connections ---------------------------------------------------------

def resp_ping(sock):
    """PING on a raw (TLS) socket; True if +PONG came back."""
    sock.sendall(b"*1\r\n$4\r\nPING\r\n")
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = sock.recv(64)
        if not chunk:
            break
        reply += chunk
    return reply == b"+PONG\r\n"


def read_until_closed(sock, bound):
    """Reads until the peer closes (or resets); (bytes read, closed?) within bound."""
    received, deadline = b"", time.monotonic() + bound
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return received, True
        except socket.timeout:
            break
        if not chunk:
            return received, True
        received += chunk
    return received, False


def client_hello(ctx):
    """The bytes of a ClientHello ctx would send first."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=HOST)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


# ---- 1. upstream_tls ---------------------------------------------------------

def check_upstream_tls(binary, certs, workdir):
    with Run(binary, certs, workdir, "upstream_tls") as r:
        red = r.redis(certs.server)
        p = r.proxy(red, r.upstream_tls())
        wait_serving(p, "upstream.tls to a TLS-only Redis")
        c, direct = p.client(), red.client()
        exercise_types(c, p.client(decode=False))
        expect(direct.get("s:1") == "v1", "SET through the proxy not on the TLS Redis")

        pipe = c.pipeline(transaction=False)
        for i in range(500):
            pipe.set(f"p:{i}", f"v{i}")
            pipe.get(f"p:{i}")
        replies = pipe.execute()
        expect(replies == [x for i in range(500) for x in (True, f"v{i}")],
               "a pipeline of 1000 SET/GET through the proxy")

        tx = c.pipeline(transaction=True)
        tx.set("t:1", "a").incr("t:n").get("t:1").lpush("t:l", "x", "y")
        expect(tx.execute() == [True, 1, "a", 2], "MULTI/EXEC through the proxy")

        many = {f"m:{i}": f"value-{i}" * 8 for i in range(2000)}
        c.mset(many)
        expect(c.mget(list(many)) == list(many.values()), "MGET of 2000 keys")
        check_big_values(p.client(decode=False), red.client(decode=False))
        with socket.create_connection((HOST, p.port), timeout=IO_TIMEOUT) as s:
            flood(s, "SETs and GETs flooding the proxy")
        check_pubsub(p, c)
        check_blpop(p, c, direct)
        expect(not p.events("upstream_tls_failed"),
               f"upstream_tls_failed logged: {p.events('upstream_tls_failed')[:1]}")


def exercise_types(c, raw):
    expect(c.set("s:1", "v1") and c.get("s:1") == "v1", "SET/GET")
    c.hset("h:1", mapping={"a": "1", "b": "2"})
    expect(c.hgetall("h:1") == {"a": "1", "b": "2"}, "HSET/HGETALL")
    c.rpush("l:1", "a", "b", "c")
    expect(c.lrange("l:1", 0, -1) == ["a", "b", "c"], "RPUSH/LRANGE")
    c.sadd("set:1", "x", "y")
    expect(c.smembers("set:1") == {"x", "y"}, "SADD/SMEMBERS")
    c.zadd("z:1", {"a": 1, "b": 2.5})
    expect(c.zrange("z:1", 0, -1, withscores=True) == [("a", 1.0), ("b", 2.5)], "ZADD/ZRANGE")
    expect(c.incrby("n:1", 5) == 5 and c.incrbyfloat("n:1", 0.5) == 5.5, "INCRBY/INCRBYFLOAT")
    expect(c.expire("s:1", 100) and 0 < c.ttl("s:1") <= 100, "EXPIRE/TTL")
    expect(c.type("h:1") == "hash" and c.exists("l:1", "set:1", "nope") == 2, "TYPE/EXISTS")
    blob = bytes(range(256)) * 4 + b"\r\n$-1\r\n"
    expect(raw.set("bin:1", blob) and raw.get("bin:1") == blob, "a binary value")


def check_big_values(client, direct):
    """1 MB and 3 MB values through client, the last one checked on Redis too."""
    for size in (1 << 20, 3 << 20):
        value = os.urandom(size)
        expect(client.set("big", value) and client.get("big") == value,
               f"a {size >> 20} MB value")
        expect(client.get("big") == value, f"a {size >> 20} MB value, read again")
    expect(direct.get("big") == value, "the 3 MB value on Redis")


def resp_command(*args):
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args])


def flood(sock, what):
    """FLOOD_COMMANDS SETs of FLOOD_VALUE bytes then as many GETs of them, sent
    while the replies are read (non-blocking, each side free to stall the
    other): every reply arrives, in order, within FLOOD_BOUND. Exercises the
    buffering of both sides of the proxy, and TLS records OpenSSL holds after
    the socket is drained."""
    values = [os.urandom(FLOOD_VALUE) for _ in range(FLOOD_COMMANDS)]
    keys = [b"flood:%d" % i for i in range(FLOOD_COMMANDS)]
    out = memoryview(b"".join([resp_command(b"SET", k, v) for k, v in zip(keys, values)] +
                              [resp_command(b"GET", k) for k in keys]))
    expected = b"+OK\r\n" * FLOOD_COMMANDS + b"".join(
        b"$%d\r\n%s\r\n" % (len(v), v) for v in values)
    got, deadline = bytearray(), time.monotonic() + FLOOD_BOUND
    sock.setblocking(False)
    try:
        while len(got) < len(expected) and (left := deadline - time.monotonic()) > 0:
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
            readable, writable, _ = select.select([sock], [sock] if out else [], [],
                                                  0 if pending else min(left, 0.5))
            if readable or pending:
                try:
                    chunk = sock.recv(1 << 20)
                    expect(chunk, f"{what}: closed after {len(got)} bytes of replies")
                    got += chunk
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
            if writable:
                try:
                    out = out[sock.send(out[:1 << 16]):]
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    pass
    finally:
        sock.setblocking(True)
    expect(not out, f"{what}: {len(out)} request bytes not taken in {FLOOD_BOUND:g} s")
    expect(len(got) >= len(expected), f"{what}: {len(got)} of {len(expected)} reply bytes "
                                      f"in {FLOOD_BOUND:g} s")
    expect(bytes(got) == expected, f"{what}: the replies differ from Redis's")


def check_pubsub(proxy, publisher):
    sub = proxy.client().pubsub()
    try:
        sub.subscribe("news")
        first = sub.get_message(timeout=IO_TIMEOUT)
        expect(first and first["type"] == "subscribe", f"SUBSCRIBE through the proxy: {first}")
        receivers = publisher.publish("news", "hello")
        expect(receivers == 1, f"PUBLISH through the proxy reached {receivers} subscribers")
        got = []
        wait_until(lambda: got.append(sub.get_message(timeout=0.2)) or
                   (got[-1] and got[-1]["type"] == "message"), IO_TIMEOUT)
        expect(got[-1] and got[-1]["data"] == "hello", f"the subscriber got {got[-1]}")
    finally:
        sub.close()


def check_blpop(proxy, pusher, direct):
    result = []
    blocked = proxy.client(timeout=IO_TIMEOUT + 5)

    def wait():
        try:
            result.append(blocked.blpop("bl:1", timeout=IO_TIMEOUT))
        except redis.RedisError as e:
            result.append(e)

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        expect(wait_until(lambda: any(x.get("cmd") == "blpop" for x in direct.client_list()),
                          IO_TIMEOUT), "no BLPOP blocked on Redis")
        pusher.rpush("bl:1", "x")
    finally:
        waiter.join(IO_TIMEOUT + 6)
        blocked.close()
    expect(result == [("bl:1", "x")], f"BLPOP released by RPUSH: {result}")


# ---- 2. mutual_tls -----------------------------------------------------------

def expect_unavailable(proxy, what, tries=3):
    """Requests through the proxy each get `upstream unavailable` within
    FAIL_BOUND and the proxy keeps running and answering its own commands."""
    c = proxy.client(timeout=FAIL_BOUND + 1)
    try:
        for i in range(tries):
            start = time.monotonic()
            reply, error = attempt(c.get, f"k:{i}")
            error = error or f"answered {reply!r}"
            took = time.monotonic() - start
            expect(error == "upstream unavailable", f"{what}: GET {error!r}")
            expect(took <= FAIL_BOUND, f"{what}: `upstream unavailable` after {took:.1f} s")
        try:
            ping = c.ping()
        except redis.ResponseError as e:
            ping = str(e)
        expect(ping in (True, "upstream unavailable"), f"{what}: PING: {ping!r}")
    finally:
        c.close()
    expect(proxy.alive() and proxy.stats(), f"{what}: the proxy stopped answering")


def resolves(name):
    """Whether name resolves on this machine."""
    try:
        return bool(socket.getaddrinfo(name, None))
    except socket.gaierror:
        return False


def expect_tls_failure(proxy, what, reasons):
    """An upstream_tls_failed line with one of reasons (lower case) in it."""
    lines = proxy.wait_event("upstream_tls_failed", what)
    expect(any(reason in line["line"].lower() for line in lines for reason in reasons),
           f"{what}: upstream_tls_failed without {' or '.join(map(repr, reasons))}: {lines[-1]}")


def failure_lines(proxy):
    """upstream_tls_failed lines, and every line a rate limit suppressed."""
    return len(proxy.events("upstream_tls_failed")) + \
        sum(int(line.get("count", 0)) for line in proxy.events("log_suppressed"))


def check_mutual_tls(binary, certs, workdir):
    with Run(binary, certs, workdir, "mutual_tls") as r:
        red = r.redis(certs.server, auth_clients="yes")
        p = r.proxy(red, r.upstream_tls())
        expect_unavailable(p, "Redis requires a client certificate, none given")
        expect_tls_failure(p, "no client certificate", ("certificate",))
        # retried with backoff (50 ms doubling to reconnect_max 2 s): more lines
        # come, but not a connection attempt per turn of the loop
        p.wait_event("upstream_tls_failed", "retries",
                     count=len(p.events("upstream_tls_failed")) + 1)
        before = failure_lines(p)
        time.sleep(RETRY_WINDOW)  # a rate needs a window
        attempts = failure_lines(p) - before
        expect(attempts <= MAX_RETRIES_IN_WINDOW,
               f"{attempts} upstream_tls_failed in {RETRY_WINDOW:g} s: retried without backoff")
        expect_unavailable(p, "after the retries")
        p.stop()

        # without tracking no subscriber connection reports the failure: the
        # shared connections' own failure must be logged
        p = r.proxy(red, r.upstream_tls("cache.tracking=false"))
        expect_unavailable(p, "no client certificate, cache.tracking=false")
        expect_tls_failure(p, "no client certificate, cache.tracking=false", ("certificate",))
        p.stop()

        p = r.proxy(red, r.upstream_tls(f"upstream.tls_cert_file={certs.client.cert}",
                                         f"upstream.tls_key_file={certs.client.key}"))
        wait_serving(p, "with upstream.tls_cert_file")
        c = p.client()
        expect(c.set("mt:1", "v") and c.get("mt:1") == "v", "SET/GET with a client certificate")
        expect(red.client().get("mt:1") == "v", "the value on Redis")

        p.stop()  # a client certificate of another CA: refused by Redis
        p = r.proxy(red, r.upstream_tls(f"upstream.tls_cert_file={certs.wrong_ca_client.cert}",
                                         f"upstream.tls_key_file={certs.wrong_ca_client.key}"))
        expect_unavailable(p, "a client certificate of another CA")
        p.wait_event("upstream_tls_failed", "a client certificate of another CA")


# ---- 3. bad_upstream_certs ---------------------------------------------------

def check_bad_upstream_certs(binary, certs, workdir):
    cases = (  # what, Redis's certificate, extra settings, words of the reason (any)
        ("a certificate of another CA", certs.wrong_ca_server, (),
         ("certificate verify failed", "unable to get local issuer certificate")),
        ("an expired certificate", certs.expired, (), ("expired",)),
        ("a certificate for wrong.example only", certs.wrong_name, (), ("mismatch",)),
        ("tls_server_name=wrong.example, certificate for 127.0.0.1/localhost", certs.server,
         ("upstream.tls_server_name=wrong.example",), ("mismatch",)),
    )
    with Run(binary, certs, workdir, "bad_upstream_certs") as r:
        for what, cert, extra, reasons in cases:
            red = r.redis(cert)
            p = r.proxy(red, r.upstream_tls(*extra))
            expect_unavailable(p, what)
            expect_tls_failure(p, what, reasons)
            p.stop()
            red.stop()

        passes = (  # what, Redis's certificate, extra settings
            ("tls_server_name=wrong.example, certificate for wrong.example", certs.wrong_name,
             ("upstream.tls_server_name=wrong.example",)),
            ("tls_server_name=localhost", certs.server, ("upstream.tls_server_name=localhost",)),
        )
        for what, cert, extra in passes:
            red = r.redis(cert)
            p = r.proxy(red, r.upstream_tls(*extra))
            wait_serving(p, what)
            expect(p.client().set("ok", "1"), f"{what}: SET")
            expect(not p.events("upstream_tls_failed"), f"{what}: upstream_tls_failed logged")
            p.stop()
            red.stop()

        # the name verified by default is the host of upstream.address
        # (Redis on ::1 too, where localhost is also ::1, if it can); a minimal
        # root without /etc/hosts has no localhost to resolve
        if resolves("localhost"):
            localhost = (HOST, "-::1")
            red = r.redis(certs.wrong_name, binds=localhost)
            p = r.proxy(red, r.upstream_tls(), upstream_host="localhost")
            expect_unavailable(p, "upstream localhost, a certificate for wrong.example")
            expect_tls_failure(p, "upstream localhost, a certificate for wrong.example",
                               ("hostname mismatch",))
            p.stop()
            red.stop()
            red = r.redis(certs.server, binds=localhost)
            p = r.proxy(red, r.upstream_tls(), upstream_host="localhost")
            wait_serving(p, "upstream localhost, a certificate for localhost")
            p.stop()
            red.stop()
        else:
            print("     localhost does not resolve here: the default name check is not run",
                  flush=True)


        red = r.redis(certs.wrong_ca_server)
        p = r.proxy(red, r.upstream_tls("upstream.tls_verify=off"))
        wait_serving(p, "tls_verify=off, a certificate of another CA")
        expect(p.client().set("ok", "1"), "tls_verify=off: SET")
        warning = p.wait_event("tls_verify_off", "tls_verify=off")[0]
        expect(warning.get("level") in ("warn", "warning"),
               f"tls_verify_off logged at level {warning.get('level')!r}: {warning}")


# ---- 4. tracking_coherence_tls -----------------------------------------------

def check_tracking_coherence_tls(binary, certs, workdir):
    with Run(binary, certs, workdir, "tracking_coherence_tls") as r:
        red = r.redis(certs.server)
        p = r.proxy(red, r.upstream_tls())
        wait_serving(p, "upstream.tls")
        expect(wait_until(lambda: p.stats().get("tracking") == "on", START_TIMEOUT),
               f"tracking:{p.stats().get('tracking')} over TLS")
        c, direct = p.client(), red.client()
        for round in range(3):
            key, old, new = f"tc:{round}", f"old-{round}", f"new-{round}"
            direct.set(key, old)
            entries = p.stat("entries")
            expect(c.get(key) == old, f"GET {key} through the proxy")
            expect(wait_until(lambda: p.stat("entries") > entries, EVENT_TIMEOUT),
                   f"GET {key} filled no entry")
            hits = p.stat("hits")
            expect(c.get(key) == old, f"second GET {key}")
            expect(p.stat("hits") == hits + 1, f"second GET {key} was not a tier hit")
            tracked = p.stat("invalidated_tracking")
            direct.set(key, new)  # on Redis over TLS, behind the proxy's back
            seen = []
            expect(wait_until(lambda: seen.append(c.get(key)) or seen[-1] == new, EVENT_TIMEOUT),
                   f"GET {key} still {seen[-1]!r} {EVENT_TIMEOUT:g} s after a write on Redis")
            expect(p.stat("invalidated_tracking") > tracked,
                   "invalidated_tracking did not grow: the new value came another way")


# ---- 5. client_tls -----------------------------------------------------------

def check_client_tls(binary, certs, workdir):
    with Run(binary, certs, workdir, "client_tls") as r:
        red = r.redis()
        p = r.proxy(red, r.client_tls(), tls_listen=True)
        wait_serving(p, "tls.listen")
        t = p.tls_client()
        expect(t.ping(), "PING over TLS")
        expect(t.set("ct:1", "v1") and t.get("ct:1") == "v1", "SET/GET over TLS")
        expect(p.client().get("ct:1") == "v1", "the plain port next to the TLS one")
        exercise_types(t, p.tls_client(decode=False))

        pipe = t.pipeline(transaction=False)
        for i in range(10000):
            pipe.set(f"cp:{i}", f"v{i}")
        expect(all(pipe.execute()), "10,000 pipelined SETs over TLS")
        pipe = t.pipeline(transaction=False)
        for i in range(10000):
            pipe.get(f"cp:{i}")
        expect(pipe.execute() == [f"v{i}" for i in range(10000)], "10,000 pipelined GETs over TLS")

        check_big_values(p.tls_client(decode=False), red.client(decode=False))
        with tls_connect(p.tls_port, tls_context(certs.ca.cert)) as s:
            for byte in b"*2\r\n$3\r\nGET\r\n$4\r\nct:1\r\n":
                s.sendall(bytes([byte]))  # a TLS record each
            reply = b""
            while len(reply) < len(b"$2\r\nv1\r\n") and (chunk := s.recv(64)):
                reply += chunk
            expect(reply == b"$2\r\nv1\r\n", f"a GET sent a byte per TLS record: {reply!r}")
        with tls_connect(p.tls_port, tls_context(certs.ca.cert)) as s:
            flood(s, "SETs and GETs flooding the TLS port")

        cli = subprocess.run(["redis-cli", "--tls", "--cacert", certs.ca.cert, "-h", HOST,
                              "-p", str(p.tls_port), "GET", "ct:1"],
                             capture_output=True, text=True, timeout=IO_TIMEOUT * 2)
        expect(cli.stdout.strip() == "v1", f"redis-cli --tls GET: {cli.stdout!r} {cli.stderr!r}")

        with tls_connect(p.tls_port, tls_context(certs.ca.cert)) as s:
            expect(s.version() in ("TLSv1.2", "TLSv1.3"), f"negotiated {s.version()}")
            expect(s.getpeercert(True) == certs.server.der(), "not tls.cert_file's certificate")
        check_old_tls_refused(p, certs)
        p.stop()

        # TLS on both sides at once
        red = r.redis(certs.server)
        p = r.proxy(red, r.upstream_tls(*r.client_tls()), tls_listen=True)
        wait_serving(p, "upstream.tls and tls.listen")
        t = p.tls_client()
        pipe = t.pipeline(transaction=False)
        for i in range(5000):
            pipe.set(f"both:{i}", f"v{i}").get(f"both:{i}")
        expect(pipe.execute() == [x for i in range(5000) for x in (True, f"v{i}")],
               "a pipeline of 10,000 with TLS on both sides")
        check_big_values(p.tls_client(decode=False), red.client(decode=False))
        with tls_connect(p.tls_port, tls_context(certs.ca.cert)) as s:
            flood(s, "SETs and GETs flooding, TLS on both sides")


def check_old_tls_refused(proxy, certs):
    """A client offering at most TLS 1.1 fails the handshake (TLS 1.2 minimum)."""
    ctx = tls_context(certs.ca.cert)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version, ctx.maximum_version = ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        s = tls_connect(proxy.tls_port, ctx)
        version = s.version()
        s.close()
        raise Failed(f"a TLS 1.1 client was accepted ({version})")
    except ssl.SSLError as e:
        if "NO_PROTOCOLS_AVAILABLE" in str(e).upper():  # refused here, not by the proxy
            print(f"     TLS 1.1 not tried: this Python's OpenSSL cannot offer it ({e})",
                  flush=True)
    except (ConnectionResetError, BrokenPipeError):
        pass


# ---- 6. client_auth ----------------------------------------------------------

def refused(proxy, cert):
    """The error of a PING over TLS presenting cert ("" if it was answered)."""
    client = proxy.tls_client(cert)
    try:
        client.ping()
        return ""
    except redis.ConnectionError as e:
        return str(e) or type(e).__name__
    finally:
        client.close()


def check_client_auth(binary, certs, workdir):
    with Run(binary, certs, workdir, "client_auth") as r:
        red = r.redis()
        p = r.proxy(red, r.client_tls(f"tls.ca_file={certs.ca.cert}", "tls.auth_clients=yes"),
                    tls_listen=True)
        wait_serving(p, "tls.auth_clients=yes")
        expect(refused(p, None), "auth_clients=yes: a client without a certificate was served")
        expect(refused(p, certs.wrong_ca_client),
               "auth_clients=yes: a client certificate of another CA was accepted")
        expect(not refused(p, certs.client),
               f"auth_clients=yes: the CA's client certificate: {refused(p, certs.client)}")
        t = p.tls_client(certs.client)
        expect(t.set("ca:1", "v") and t.get("ca:1") == "v", "SET/GET with a client certificate")
        expect(p.client().ping(), "the plain port with auth_clients=yes")
        p.stop()

        p = r.proxy(red, r.client_tls(f"tls.ca_file={certs.ca.cert}",
                                      "tls.auth_clients=optional"), tls_listen=True)
        wait_serving(p, "tls.auth_clients=optional")
        for what, cert in (("without a certificate", None), ("with one", certs.client)):
            error = refused(p, cert)
            expect(not error, f"auth_clients=optional, {what}: {error}")


# ---- 7. cross_protocol -------------------------------------------------------

def check_cross_protocol(binary, certs, workdir):
    with Run(binary, certs, workdir, "cross_protocol") as r:
        red = r.redis()
        p = r.proxy(red, r.client_tls(), tls_listen=True)
        wait_serving(p, "tls.listen")
        plain, tls = p.client(), p.tls_client()
        expect(tls.ping(), "PING over TLS")

        failures = len(p.events("client_tls_failed"))
        with socket.create_connection((HOST, p.tls_port), timeout=IO_TIMEOUT) as s:
            s.sendall(b"PING\r\n")
            received, closed = read_until_closed(s, CLOSE_BOUND)
        expect(closed, f"plain PING on the TLS port: not closed in {CLOSE_BOUND:g} s")
        expect(b"PONG" not in received, "plain PING on the TLS port was answered")
        p.wait_event("client_tls_failed", "plain PING on the TLS port", count=failures + 1)
        expect(tls.ping() and plain.ping(), "after plain text on the TLS port")

        ctx = tls_context(certs.ca.cert)
        # a silent client and a half ClientHello on the TLS port hold up no one
        silent = socket.create_connection((HOST, p.tls_port), timeout=IO_TIMEOUT)
        half = socket.create_connection((HOST, p.tls_port), timeout=IO_TIMEOUT)
        try:
            hello = client_hello(ctx)
            half.sendall(hello[:len(hello) // 2])
            fresh = p.tls_client()
            expect(fresh.ping() and fresh.set("x", "1") and plain.get("x") == "1",
                   "a new TLS client while others stall their handshakes")
            fresh.close()
        finally:
            silent.close()
            half.close()

        with socket.create_connection((HOST, p.port), timeout=IO_TIMEOUT) as s:
            s.sendall(client_hello(ctx))
            received, closed = read_until_closed(s, CLOSE_BOUND)
            expect(tls.ping() and plain.ping(), "while a ClientHello is on the plain port")
        expect(closed, f"a ClientHello on the plain port: not closed in {CLOSE_BOUND:g} s "
                       f"(got {received[:60]!r})")
        expect(received.startswith(b"-ERR Protocol error"),
               f"a ClientHello on the plain port was answered {received[:80]!r}")
        try:
            with tls_connect(p.port, ctx):
                pass
            raise Failed("a TLS handshake on the plain port succeeded")
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            pass  # closed, or the proxy's -ERR read as a bad TLS record
        except socket.timeout:
            raise Failed(f"a TLS client on the plain port: no answer in {IO_TIMEOUT:g} s")
        expect(tls.ping() and plain.ping(), "after TLS on the plain port")
        expect(p.alive() and tls.ping() and plain.ping(), "at the end")


# ---- 8. cert_reload ----------------------------------------------------------

BROKEN_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"


def read(path):
    with open(path) as f:
        return f.read()


def write_file(path, text):
    """Replaces the file at path by rename."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def install(pair, cert_path, key_path):
    """Puts pair's certificate and key at the paths the proxy reads."""
    write_file(cert_path, read(pair.cert))
    write_file(key_path, read(pair.key))


def new_connection_cert(proxy, ctx):
    """The certificate (DER) a new TLS connection to the proxy gets, once it answered PING."""
    with tls_connect(proxy.tls_port, ctx) as s:
        expect(resp_ping(s), "PING on a new TLS connection")
        return s.getpeercert(True)


def check_cert_reload(binary, certs, workdir):
    with Run(binary, certs, workdir, "cert_reload") as r:
        cert_path, key_path = os.path.join(r.dir, "live.crt"), os.path.join(r.dir, "live.key")
        install(certs.server, cert_path, key_path)
        red = r.redis()
        p = r.proxy(red, [f"tls.cert_file={cert_path}", f"tls.key_file={key_path}"],
                    tls_listen=True)
        wait_serving(p, "tls.listen")
        ctx = tls_context(certs.ca.cert)

        def served_cert():
            return new_connection_cert(p, ctx)

        def reload(counter):
            before = p.stat(counter)
            p.proc.send_signal(signal.SIGHUP)
            expect(wait_until(lambda: p.stat(counter) > before, EVENT_TIMEOUT),
                   f"SIGHUP: NEARCACHE STATS {counter} stayed {before}")

        old = tls_connect(p.tls_port, ctx)
        try:
            expect(old.getpeercert(True) == certs.server.der(), "the first certificate")
            expect(resp_ping(old), "PING on the idle connection")
            install(certs.reloaded, cert_path, key_path)
            reload("reloads")
            expect(wait_until(lambda: served_cert() == certs.reloaded.der(), EVENT_TIMEOUT),
                   f"a new connection after SIGHUP does not get serial {certs.reloaded.serial:x}")
            expect(resp_ping(old), "the connection made before the reload")

            reloaded_cert, reloaded_key = read(certs.reloaded.cert), read(certs.reloaded.key)
            for what, cert_text, key_text in (
                    ("a broken certificate", BROKEN_PEM, reloaded_key),
                    ("a key that does not match", read(certs.server.cert), reloaded_key),
                    ("an empty key file", reloaded_cert, "")):
                write_file(cert_path, cert_text)
                write_file(key_path, key_text)
                failed_lines = len(p.events("reload_failed"))
                reload("reloads_failed")
                p.wait_event("reload_failed", what, count=failed_lines + 1)
                expect(served_cert() == certs.reloaded.der(),
                       f"after a reload with {what}: not the previous certificate")
                expect(resp_ping(old), f"the first connection after a reload with {what}")
            error = error_reply(p.client().execute_command, "NEARCACHE", "RELOAD")
            expect(error.startswith("reload failed"), f"NEARCACHE RELOAD with an empty key "
                                                      f"file: {error or 'OK'}")
            install(certs.server, cert_path, key_path)
            expect(p.client().execute_command("NEARCACHE", "RELOAD") in (b"OK", "OK", True),
                   "NEARCACHE RELOAD with the first certificate back")
            expect(wait_until(lambda: served_cert() == certs.server.der(), EVENT_TIMEOUT),
                   "NEARCACHE RELOAD: new connections do not get the first certificate again")
            expect(resp_ping(old) and p.alive(), "the first connection at the end")
        finally:
            old.close()


# ---- 9. cert_watch -----------------------------------------------------------

def check_cert_watch(binary, certs, workdir):
    with Run(binary, certs, workdir, "cert_watch") as r:
        cert_path, key_path = os.path.join(r.dir, "live.crt"), os.path.join(r.dir, "live.key")
        install(certs.server, cert_path, key_path)
        red = r.redis()
        p = r.proxy(red, [f"tls.cert_file={cert_path}", f"tls.key_file={key_path}",
                          "watch_config=true"], tls_listen=True)
        wait_serving(p, "tls.listen with watch_config")
        p.wait_event("watch_config_unavailable", "watch_config without -c")
        ctx = tls_context(certs.ca.cert)
        old = tls_connect(p.tls_port, ctx)
        try:
            expect(old.getpeercert(True) == certs.server.der(), "the first certificate")
            expect(resp_ping(old), "PING on the idle connection")
            reloads, failed = p.stat("reloads"), p.stat("reloads_failed")
            # the proxy's first look comes a loop turn after its start: past it and
            # the next, the change must be found by a later look, not the first
            time.sleep(WATCH_IDLE)
            expect(p.stat("reloads") == reloads, f"reloads rose from {reloads} to "
                                                 f"{p.stat('reloads')} with no file changed")
            start = time.monotonic()
            install(certs.reloaded, cert_path, key_path)  # no signal: the watch must see it
            expect(wait_until(lambda: new_connection_cert(p, ctx) == certs.reloaded.der(),
                              WATCH_BOUND, step=0.1),
                   f"certificate and key replaced on disk: a new connection does not get "
                   f"serial {certs.reloaded.serial:x} within {WATCH_BOUND:g} s")
            print(f"     replaced to served in {time.monotonic() - start:.2f} s; reloads_failed "
                  f"+{p.stat('reloads_failed') - failed} (between the two renames)", flush=True)
            expect(p.stat("reloads") > reloads, f"NEARCACHE STATS reloads stayed {reloads}")
            expect(resp_ping(old), "the connection made before the certificate changed")
        finally:
            old.close()


CHECKS = (
    ("upstream_tls", check_upstream_tls),
    ("mutual_tls", check_mutual_tls),
    ("bad_upstream_certs", check_bad_upstream_certs),
    ("tracking_coherence_tls", check_tracking_coherence_tls),
    ("client_tls", check_client_tls),
    ("client_auth", check_client_auth),
    ("cross_protocol", check_cross_protocol),
    ("cert_reload", check_cert_reload),
    ("cert_watch", check_cert_watch),
)


@contextlib.contextmanager
def certificates(args):
    """The temporary directory and the certificates in it, for every check."""
    workdir = tempfile.mkdtemp(prefix="nearcache-tls-")
    try:
        yield Certs(workdir), workdir
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def options(parser):
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (certificates, logs) and print its path")


if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS, certificates, options))
