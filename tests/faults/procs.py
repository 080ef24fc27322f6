"""procs.py - the processes the Python tests run: redis-server and nearcache.

They listen on free loopback ports, live in one temporary directory and are
stopped by pid. Every wait is bounded. Imported first by every Python test:
under an interpreter without redis-py it runs the test again with Debian's.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

try:  # Debian's python3-redis (and the python3-yaml, python3-prometheus-client beside it)
    import redis
except ImportError:  # a python3 earlier on PATH (pyenv) without it: run again with Debian's
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    raise

HOST = "127.0.0.1"


def free_port():
    """A loopback TCP port that was free a moment ago (bound to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def connect(port, host=HOST, timeout=10.0, decode=True, **options):
    """redis-py to host:port, every wait bounded by timeout; replies as str
    unless decode is False; options go to redis.Redis as they are."""
    return redis.Redis(host=host, port=port, socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry_on_timeout=False,
                       decode_responses=decode, **options)


def pings(client):
    """True if client's PING is answered."""
    try:
        return client.ping()
    except redis.RedisError:
        return False


def answers_ping(port, timeout=0.5, host=HOST):
    """True if a server on host:port answers PING within timeout."""
    client = connect(port, host, timeout)
    try:
        return pings(client)
    finally:
        client.close()


def wait_until(predicate, timeout, step=0.05):
    """Poll predicate until it is true or timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def stop_pid(proc, timeout=5.0):
    """SIGCONT then SIGTERM proc, SIGKILL it if it has not exited in timeout; its status."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)
    return proc.returncode


def parse_stats(text):
    """NEARCACHE STATS' `name:value` lines as a dict; integer values as ints."""
    if isinstance(text, bytes):
        text = text.decode()
    stats = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        stats[name] = int(value) if value.lstrip("-").isdigit() else value
    return stats


def joined(host, port):
    """host:port, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


AOF = ("--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes")


class RedisServer:
    """A redis-server in workdir/name, restartable on the same port and dir.

    It binds binds (the first is the address it is probed and reached on) at
    port (a free one if None), plain, or TLS only (--port 0) with tls, the
    --tls-* options; options follow (by default the fault suite's
    fsync-always AOF)."""

    def __init__(self, workdir, name="redis", options=AOF, binds=(HOST,), port=None,
                 tls=None):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.host, self.port = binds[0], port or free_port()
        self.address = joined(self.host, self.port)
        listen = ["--port", "0", "--tls-port", str(self.port), *tls] if tls else \
            ["--port", str(self.port)]
        self.argv = ["redis-server", *listen, "--bind", *binds, "--dir", self.dir,
                     "--save", "", "--logfile", os.path.join(self.dir, "redis.log"), *options]
        self.proc = None

    def start(self, timeout=10.0, ready=None):
        """Start (or restart) the server and wait until it answers PING (or
        ready() holds); RuntimeError if it does not in timeout."""
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ready = ready or (lambda: answers_ping(self.port, host=self.host))
        if not wait_until(lambda: self.proc.poll() is None and ready(), timeout):
            raise RuntimeError(f"{' '.join(self.argv)}: no answer to PING in {timeout:g} s")

    def client(self, **options):
        """A client of its own (procs.connect)."""
        return connect(self.port, self.host, **options)

    def kill9(self):
        """SIGKILL the server and reap it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def up(self):
        return self.proc.poll() is None and answers_ping(self.port, host=self.host)

    def stop(self):
        if self.proc:
            stop_pid(self.proc)


class Proxy:
    """build/nearcache in front of upstream (a port on HOST, or "host:port"),
    reading config_path (none if None), with the admin endpoint off unless
    settings (each a --set) turn it on; its output appended to workdir/log_name.

    Its clients, and the one STATS is read on, wait at most timeout."""

    def __init__(self, binary, workdir, config_path, upstream, settings=(),
                 log_name="proxy.log", timeout=10.0):
        self.binary = os.path.abspath(binary)
        self.log_path = os.path.join(workdir, log_name)
        self.port = free_port()
        self.timeout = timeout
        self.argv = [self.binary, *(["-c", config_path] if config_path else []),
                     "--listen", f"{HOST}:{self.port}",
                     "--upstream", upstream if isinstance(upstream, str) else f"{HOST}:{upstream}",
                     "--set", "admin.listen=none"]
        for setting in settings:
            self.argv += ["--set", setting]
        self.proc = None
        self.stats_client = None

    def start(self, timeout=10.0, ready=None, env=None):
        """Start the proxy (with the environment env if given) and wait until it
        answers PING, or ready() holds; RuntimeError with the log tail if it
        exits first or timeout passes."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=env)
        ready = ready or (lambda: answers_ping(self.port))
        if not wait_until(lambda: not self.alive() or ready(), timeout) or not self.alive():
            why = f"exit status {self.proc.returncode}" if not self.alive() else \
                f"not ready in {timeout:g} s"
            raise RuntimeError(f"nearcache did not start ({why}):\n" + self.log_tail())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        os.kill(self.proc.pid, signum)

    def wait_exit(self, timeout):
        """The exit status, or None if the proxy is still running after timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def rss_kb(self):
        """VmRSS of the running proxy in kB, or 0 if it is not running."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def client(self, **options):
        """A client of its own (procs.connect), waiting at most self.timeout unless told."""
        options.setdefault("timeout", self.timeout)
        return connect(self.port, **options)

    def stats(self):
        """NEARCACHE STATS (parse_stats), on a connection kept for it; raises
        redis.RedisError if the proxy does not answer."""
        if self.stats_client is None:
            self.stats_client = self.client()
        return parse_stats(self.stats_client.execute_command("NEARCACHE", "STATS"))

    def wait_cache_active(self, timeout):
        """Waits until STATS shows cache_active:1 (the tier serves once tracking
        is up); whether it did in timeout."""
        return wait_until(lambda: self.stats().get("cache_active") == 1, timeout)

    def log_lines(self):
        with open(self.log_path, errors="replace") as log:
            return log.readlines()

    def log_tail(self, lines=15):
        try:
            return "".join(self.log_lines()[-lines:])
        except OSError:
            return ""

    def events(self, name):
        """The JSON log lines (log_format=json) whose event is name, as dicts
        with the line itself as "line"."""
        found = []
        for line in self.log_lines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == name:
                entry["line"] = line.strip()
                found.append(entry)
        return found

    def stop(self):
        """Stop the proxy by pid; its exit status (None if it was never started)."""
        if self.stats_client is not None:
            self.stats_client.close()
            self.stats_client = None
        return stop_pid(self.proc) if self.proc else None


class Group:
    """Processes (anything with stop()) in a temporary directory of their own.
    `with` runs start() and, on the way out or when start() fails, stops them
    in the reverse order of add(), notes the last tail_lines lines of
    self.proxy's log on an exception and removes the directory."""

    def __init__(self, prefix, tail_lines=25):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.members, self.proxy, self.tail_lines = [], None, tail_lines

    def add(self, member):
        self.members.append(member)
        return member

    def start(self):
        pass

    def __enter__(self):
        try:
            self.start()
        except BaseException as e:
            self.__exit__(type(e), e, None)
            raise
        return self

    def __exit__(self, kind, error, tb):
        for member in reversed(self.members):
            member.stop()
        if isinstance(error, Exception) and self.proxy:
            error.add_note("nearcache log tail:\n" + self.proxy.log_tail(self.tail_lines))
        shutil.rmtree(self.dir, ignore_errors=True)


POLICY_VARIANTS = (
    '    - {name: proxy-written, keys: "fp:*", ttl: 5m}\n'
    '  invalidate:\n'
    '    - {name: derived, when: "fz:{id}", drop: "fy:{id}:*"}\n',
    '    - {name: proxy-written, keys: "fp:*", ttl: 4m}\n'
    '    - {name: direct-written, keys: "fd:*", ttl: 5m}\n'
    '  invalidate:\n'
    '    - {name: derived, when: "fz:{id}", drop: ["fy:{id}:*", "fx:{id}"]}\n',
)


def write_config(path, variant):
    """Write the proxy's YAML file atomically with policy variant 0 or 1.

    Both variants are valid and cache the workload's keys; they differ in the
    cache rules and the invalidation rule, so that a reload changes rules that
    cover cached entries. The invalidation rule's prefix (fz:) is outside the
    workload so that its BCAST registration does not help tracking along.
    """
    text = ("log_level: notice\n"
            "cache:\n"
            "  ttl: 5m\n"
            "policy:\n"
            "  default: {action: allow, max_key_length: 1kb}\n"
            "  deny_commands: [flushall, flushdb]\n"
            "  cache:\n" + POLICY_VARIANTS[variant])
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
