"""servers.py - redis-server and nearcache for the client tests (tests/clients).

Both listen on free loopback ports and are stopped by pid; every wait is
bounded. Used as `with Servers(args.bin, args.set) as s:`, which gives
s.redis_port, s.proxy_port and s.stats() (NEARCACHE STATS as a dict of ints
and strings).
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
# first: procs runs Debian's python3 if this one has no redis module
from procs import (HOST, answers_ping, free_port, parse_stats,  # noqa: E402,F401
                   stop_pid, wait_until)
import redis  # noqa: E402


class Servers:
    """A redis-server and nearcache in front of it, in a temporary directory."""

    def __init__(self, binary, settings=()):
        self.binary = os.path.abspath(binary)
        self.settings = list(settings)
        self.dir = tempfile.mkdtemp(prefix="nearcache-clients-")
        self.redis_port = free_port()
        self.proxy_port = free_port()
        self.procs = []
        self.stats_client = None

    def _spawn(self, argv, log):
        with open(os.path.join(self.dir, log), "ab") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.procs.append(proc)
        return proc

    def log_tail(self, log="nearcache.log", lines=20):
        try:
            with open(os.path.join(self.dir, log), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self):
        try:
            self._spawn(["redis-server", "--port", str(self.redis_port), "--bind", HOST,
                         "--dir", self.dir, "--save", "", "--appendonly", "no"], "redis.log")
            if not wait_until(lambda: answers_ping(self.redis_port), 10):
                raise RuntimeError(f"redis-server on port {self.redis_port} did not answer PING")
            argv = [self.binary, "--listen", f"{HOST}:{self.proxy_port}",
                    "--upstream", f"{HOST}:{self.redis_port}", "--set", "admin.listen=none"]
            for setting in self.settings:
                argv += ["--set", setting]
            proxy = self._spawn(argv, "nearcache.log")
            if not wait_until(lambda: proxy.poll() is not None or answers_ping(self.proxy_port),
                              10) or proxy.poll() is not None:
                raise RuntimeError("nearcache did not start:\n" + self.log_tail())
            # The tier serves once the tracking subscriber is up. Without it the
            # hits checks fail and say so: that is left to them.
            if not wait_until(lambda: self.stats().get("cache_active") == 1, 5):
                print("note: NEARCACHE STATS shows cache_active:0 after 5 s", flush=True)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_):
        if self.stats_client is not None:
            self.stats_client.close()
        for proc in reversed(self.procs):
            stop_pid(proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def stats(self):
        """NEARCACHE STATS of the proxy, on a connection of its own."""
        if self.stats_client is None:
            self.stats_client = redis.Redis(host=HOST, port=self.proxy_port, socket_timeout=2)
        return parse_stats(self.stats_client.execute_command("NEARCACHE", "STATS"))
