"""procs.py - the processes the fault suite runs: redis-server and nearcache.

Both listen on free loopback ports, live in one temporary directory and are
stopped by pid. Every wait is bounded. Imported first by every Python test:
under an interpreter without redis-py it runs the test again with Debian's.
"""
import os
import signal
import socket
import subprocess
import sys
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


def answers_ping(port, timeout=0.5):
    """True if a server on port answers PING within timeout."""
    client = redis.Redis(host=HOST, port=port, socket_timeout=timeout,
                         socket_connect_timeout=timeout, retry_on_timeout=False)
    try:
        return client.ping()
    except redis.RedisError:
        return False
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


class RedisServer:
    """A redis-server with an fsync-always AOF, restartable on the same port and dir."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "redis")
        os.makedirs(self.dir)
        self.port = free_port()
        self.proc = None

    def start(self, timeout=10.0):
        """Start (or restart) the server and wait until it answers PING."""
        argv = ["redis-server", "--port", str(self.port), "--bind", HOST,
                "--dir", self.dir, "--save", "", "--appendonly", "yes",
                "--appendfsync", "always", "--enable-debug-command", "yes",
                "--logfile", os.path.join(self.dir, "redis.log")]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_until(lambda: answers_ping(self.port), timeout):
            raise RuntimeError(f"redis-server on port {self.port} did not answer PING")

    def kill9(self):
        """SIGKILL the server and reap it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def up(self):
        return self.proc.poll() is None and answers_ping(self.port)

    def stop(self):
        if self.proc:
            stop_pid(self.proc)


class Proxy:
    """build/nearcache in front of a RedisServer, its stderr appended to proxy.log."""

    def __init__(self, binary, workdir, config_path, upstream_port, settings):
        self.binary = os.path.abspath(binary)
        self.log_path = os.path.join(workdir, "proxy.log")
        self.port = free_port()
        self.argv = [self.binary, "-c", config_path,
                     "--listen", f"{HOST}:{self.port}",
                     "--upstream", f"{HOST}:{upstream_port}", "--set", "admin.listen=none"]
        for setting in settings:
            self.argv += ["--set", setting]
        self.proc = None

    def start(self, timeout=10.0):
        """Start the proxy and wait until it answers PING."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        if not wait_until(lambda: self.proc.poll() is not None or answers_ping(self.port),
                          timeout) or self.proc.poll() is not None:
            raise RuntimeError("nearcache did not start:\n" + self.log_tail())

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

    def log_tail(self, lines=15):
        try:
            with open(self.log_path, errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc:
            stop_pid(self.proc)


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
