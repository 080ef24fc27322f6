"""stack.py - the processes of tests/tls: redis-server, plain or TLS only, and
nearcache with JSON logs and an optional TLS listener, one check's worth in a
Run that stops them all by pid; and the clients that reach them over TLS.
"""
import os
import socket

import procs
import redis
from checks import Failed, error_reply, expect
from procs import HOST, free_port, pings, wait_until

IO_TIMEOUT = 5.0  # every Redis command and socket read
START_TIMEOUT = 10.0  # a redis-server or nearcache answering after its start
EVENT_TIMEOUT = 5.0  # a log line, a reload, an invalidation appearing


def redis_client(port, certs=None, cert=None, decode=True, timeout=IO_TIMEOUT, verify=True):
    """redis-py to port: plain, or TLS (certs given) verifying certs.ca and the
    name 127.0.0.1, presenting cert (a Pair) if given."""
    tls = {}
    if certs:
        tls = dict(ssl=True, ssl_ca_certs=certs.ca.cert, ssl_check_hostname=verify,
                   ssl_cert_reqs="required" if verify else "none")
        if cert:
            tls.update(ssl_certfile=cert.cert, ssl_keyfile=cert.key)
    return procs.connect(port, timeout=timeout, decode=decode, **tls)


def tls_connect(port, ctx, server_hostname=HOST):
    """A TLS socket to port after a complete handshake."""
    raw = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


class Redis(procs.RedisServer):
    """redis-server on a free port: TLS only (--port 0) with cert, or plain."""

    def __init__(self, run, cert=None, auth_clients="no", binds=(HOST,)):
        tls = cert and ["--tls-cert-file", cert.cert, "--tls-key-file", cert.key,
                        "--tls-ca-cert-file", run.certs.ca.cert,
                        "--tls-auth-clients", auth_clients]
        super().__init__(run.dir, f"redis-{len(run.servers)}", ("--appendonly", "no"), binds,
                         tls=tls)
        self.certs, self.tls = run.certs, cert is not None

    def start(self):
        """Starts the server and waits until it answers PING."""
        # whatever its certificate, with ours: no verification, the client's certificate
        probe = self.client(verify=False, timeout=0.5)
        try:
            super().start(START_TIMEOUT, ready=lambda: pings(probe))
        finally:
            probe.close()

    def client(self, verify=True, timeout=IO_TIMEOUT, decode=True):
        """A direct client (over TLS with the CA and the client certificate if TLS)."""
        if not self.tls:
            return redis_client(self.port, decode=decode, timeout=timeout)
        return redis_client(self.port, self.certs, self.certs.client, decode=decode,
                            timeout=timeout, verify=verify)


class Proxy(procs.Proxy):
    """build/nearcache in front of upstream, JSON logs to its own file; the
    TLS listener on a second free port if tls_listen."""

    def __init__(self, run, upstream, settings=(), tls_listen=False, upstream_host=HOST):
        self.tls_port = free_port() if tls_listen else None
        listen = [f"tls.listen={HOST}:{self.tls_port}"] if tls_listen else []
        super().__init__(run.binary, run.dir, None, f"{upstream_host}:{upstream.port}",
                         ["log_format=json", *listen, *settings],
                         f"proxy-{len(run.proxies)}.log", IO_TIMEOUT)
        self.certs, self.settings = run.certs, list(settings)

    def start(self):
        """Starts the proxy and waits until it answers NEARCACHE STATS (which it
        answers itself, Redis reachable or not) and its TLS port accepts."""
        super().start(START_TIMEOUT, ready=lambda: self.stats() and self.tls_port_open())

    def tls_port_open(self):
        """True if the TLS port is listening (read from /proc/net/tcp: a probing
        connection would be a client failing its handshake)."""
        if not self.tls_port:
            return True
        local = f"0100007F:{self.tls_port:04X}"
        with open("/proc/net/tcp") as table:
            return any(f[1] == local and f[3] == "0A"  # TCP_LISTEN
                       for f in (line.split() for line in table) if len(f) > 3)

    def stats(self):
        """NEARCACHE STATS, {} if it does not answer."""
        try:
            return super().stats()
        except redis.RedisError:
            return {}

    def stat(self, name):
        value = self.stats().get(name)
        expect(value is not None, f"NEARCACHE STATS has no {name}")
        return value

    def tls_client(self, cert=None, **kw):
        """redis-py on the TLS port, verifying the CA and 127.0.0.1."""
        return redis_client(self.tls_port, self.certs, cert, **kw)

    def wait_event(self, name, what="", timeout=EVENT_TIMEOUT, count=1):
        """The lines of event name once there are count of them; Failed if not in time."""
        expect(wait_until(lambda: len(self.events(name)) >= count, timeout, step=0.1),
               f"{what + ': ' if what else ''}no{'' if count == 1 else f' {count}'} "
               f"log event {name} in {timeout:g} s")
        return self.events(name)

    def stop(self):
        """Stops the proxy by pid (SIGTERM: it drains and exits 0); Failed if it
        had died already or exits otherwise."""
        expect(self.alive(), f"nearcache had exited, status {self.proc.returncode}")
        status = super().stop()
        expect(status == 0, f"nearcache exited with status {status} on SIGTERM")


class Run:
    """One check's processes in its own directory: `with` stops them all by
    pid (proxies first); a proxy whose exit status is not 0 (SIGTERM drains
    and exits 0) fails the check; a failure notes the log tail of the last
    proxy started and of any that exited otherwise."""

    def __init__(self, binary, certs, workdir, name):
        self.binary, self.certs = binary, certs
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.proxies, self.servers = [], []

    def redis(self, cert=None, auth_clients="no", binds=(HOST,)):
        """A redis-server: TLS only with cert (a Pair), plain without."""
        server = Redis(self, cert, auth_clients, binds)
        self.servers.append(server)
        server.start()
        return server

    def proxy(self, upstream, settings=(), tls_listen=False, upstream_host=HOST):
        proxy = Proxy(self, upstream, settings, tls_listen, upstream_host)
        self.proxies.append(proxy)
        proxy.start()
        return proxy

    def upstream_tls(self, *extra):
        return ["upstream.tls=on", f"upstream.tls_ca_file={self.certs.ca.cert}", *extra]

    def client_tls(self, *extra):
        return [f"tls.cert_file={self.certs.server.cert}",
                f"tls.key_file={self.certs.server.key}", *extra]

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        # the exit status of one stopped here or before
        statuses = [procs.Proxy.stop(p) for p in self.proxies]
        for s in self.servers:
            s.stop()
        bad = [i for i, status in enumerate(statuses) if status not in (0, None)]
        raised_here = error is None and bad
        if raised_here:
            error = Failed(f"proxy {bad[0]} exited with status {statuses[bad[0]]}")
        if isinstance(error, Exception):
            for i, p in enumerate(self.proxies):
                if i in bad or i == len(self.proxies) - 1:
                    error.add_note(f"proxy {i} ({' '.join(p.settings) or 'no settings'}), "
                                   f"exit status {statuses[i]}, log tail:\n{p.log_tail()}\n")
        if raised_here:
            raise error


def wait_serving(proxy, what, timeout=START_TIMEOUT):
    """Waits until a PING through the proxy gets PONG (its upstream connected)."""
    client = proxy.client(timeout=1.0)
    try:
        expect(wait_until(lambda: pings(client), timeout, step=0.1),
               f"{what}: no PONG through the proxy in {timeout:g} s "
               f"(PING: {error_reply(client.ping) or 'answered'})")
    finally:
        client.close()
