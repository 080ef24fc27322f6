"""procs.py - the processes the Python tests run: redis-server (alone or as a Redis
Cluster) and nearcache.

They listen on free loopback ports, live in one temporary directory and are
stopped by pid. Every wait is bounded. Imported first by every Python test:
under an interpreter without redis-py it runs the test again with Debian's.
"""
import json
import logging
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


class Cluster:
    """A Redis Cluster on free loopback ports: primaries, each with replicas, as
    RedisServers in workdir/node0, node1, ... without persistence. Each node keeps
    its nodes.conf in its own directory, so it restarts after kill -9 as the same
    node (empty, so it must rejoin as a replica, and syncs); its bus port is a free
    port too (not port + 10000). node_timeout_ms is cluster-node-timeout: a killed
    primary is replaced within a few of them. Every wait is bounded by timeout
    seconds unless told, and raises RuntimeError with each node's state when it runs
    out. start() and stop() (by pid) make it a member of a Group."""

    def __init__(self, workdir, primaries=3, replicas=1, node_timeout_ms=1000, timeout=30.0):
        self.per_primary, self.timeout = replicas, timeout
        count = primaries * (1 + replicas)
        ports = set()
        while len(ports) < 2 * count:  # a client port and a bus port each, all distinct
            ports.add(free_port())
        ports = sorted(ports)
        self.nodes = []
        for i in range(count):
            name = f"node{i}"
            options = ("--cluster-enabled", "yes",
                       "--cluster-config-file", os.path.join(workdir, name, "nodes.conf"),
                       "--cluster-port", str(ports[count + i]),
                       "--cluster-node-timeout", str(node_timeout_ms),
                       # a replica takes over however long it was cut off from its primary
                       "--cluster-replica-validity-factor", "0",
                       # a full sync starts at once, not after 5 s waiting for more replicas;
                       # CLUSTER SLOTS lists a replica only once its offset is not 0: the
                       # primary's PING every second moves it (10 s by default)
                       "--repl-diskless-sync-delay", "0", "--repl-ping-replica-period", "1",
                       "--appendonly", "no", "--shutdown-timeout", "0")
            self.nodes.append(RedisServer(workdir, name, options, port=ports[i]))

    def start(self):
        """Start the nodes, have redis-cli --cluster create join them and assign
        the slots, and wait until the cluster is ok (wait_ok)."""
        for node in self.nodes:
            node.start()
        argv = ["redis-cli", "--cluster", "create", *(n.address for n in self.nodes),
                "--cluster-replicas", str(self.per_primary), "--cluster-yes"]
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                  text=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:  # run() has killed it
            raise RuntimeError(f"redis-cli --cluster create: not done in {self.timeout:g} s") \
                from None
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create: exit status {done.returncode}\n"
                               + (done.stdout + done.stderr)[-2000:])
        self.wait_ok()

    def stop(self):
        """Stops every node by pid (RedisServer.stop)."""
        for node in self.nodes:
            node.stop()

    def running(self):
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def query(self, node, *command, timeout=2.0):
        """node's reply to command, None if it is down, fails or is silent for timeout."""
        if node not in self.running():
            return None
        client = node.client(timeout=timeout)
        try:
            return client.execute_command(*command)
        except redis.RedisError:
            return None
        finally:
            client.close()

    def command(self, node, *command):
        """node's reply to command; its error (redis.RedisError) raised."""
        client = node.client()
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def node_at(self, host, port):
        return next(n for n in self.nodes if n.port == int(port) and n.host == host)

    def slot_map(self, node):
        """node's CLUSTER SLOTS as a sorted tuple of (first, last, primary address,
        replica addresses sorted), None if it does not answer."""
        slots = self.query(node, "CLUSTER", "SLOTS")
        if slots is None:
            return None
        return tuple(sorted((first, last, joined(p[0], p[1]),
                             tuple(sorted(joined(r[0], r[1]) for r in rs)))
                            for first, last, p, *rs in slots))

    def ok(self):
        """Every running node says cluster_state:ok and shows the same slot map,
        which names every running node (so a primary left without slots never is
        ok); every replica's link to its primary is up."""
        running, maps = self.running(), set()
        for node in running:
            info = parse_stats(self.query(node, "CLUSTER", "INFO") or "")
            replication = self.query(node, "INFO", "replication") or {}
            if info.get("cluster_state") != "ok" or not replication or (
                    replication.get("role") == "slave" and
                    replication.get("master_link_status") != "up"):
                return False
            maps.add(self.slot_map(node))
        if len(maps) != 1 or None in maps:
            return False
        named = {a for _, _, p, rs in next(iter(maps)) for a in (p, *rs)}
        return named == {n.address for n in running}

    def describe(self):
        """One line per node: address, pid, cluster_state and role, for errors."""
        lines = []
        for node in self.nodes:
            info = parse_stats(self.query(node, "CLUSTER", "INFO") or "")
            role = self.query(node, "ROLE") or ["-"]
            of = f" of {joined(role[1], role[2])}" if role[0] == "slave" else ""
            pid = node.proc.pid if node.proc else "-"
            lines.append(f"  {node.address} pid {pid}: {info.get('cluster_state', 'down')}, "
                         f"{role[0]}{of}")
        return "\n".join(lines)

    def wait(self, predicate, what, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        if not wait_until(predicate, timeout, step=0.1):
            raise RuntimeError(f"{what} in {timeout:g} s:\n{self.describe()}")

    def wait_ok(self, timeout=None):
        """Waits until ok() holds."""
        self.wait(self.ok, "the cluster is not ok", timeout)

    def role(self, node):
        """"master" or "slave", as node says (ROLE), None if it does not answer."""
        role = self.query(node, "ROLE")
        return role[0] if role else None

    def primaries(self):
        """The running nodes that say they are primaries, in node order."""
        return [n for n in self.running() if self.role(n) == "master"]

    def replicas(self, primary=None):
        """The running nodes that say they are replicas (of primary if given)."""
        roles = [(n, self.query(n, "ROLE")) for n in self.running()]
        return [n for n, r in roles if r and r[0] == "slave" and
                (primary is None or (r[1], int(r[2])) == (primary.host, primary.port))]

    def seeds(self):
        """The primaries' host:port, for a proxy's list of seed nodes."""
        return [n.address for n in self.primaries()]

    def node_id(self, node):
        return self.command(node, "CLUSTER", "MYID")

    def node_for_slot(self, slot):
        """The node serving slot now, by the first running node's CLUSTER SLOTS."""
        for node in self.running():
            for first, last, primary, *_ in self.query(node, "CLUSTER", "SLOTS") or ():
                if first <= slot <= last:
                    return self.node_at(primary[0], primary[1])
        raise RuntimeError(f"no running node knows who serves slot {slot}")

    def slot_of(self, key):
        """key's hash slot (CLUSTER KEYSLOT on a running node)."""
        return self.command(self.running()[0], "CLUSTER", "KEYSLOT", key)

    def client(self, **options):
        """A cluster client (redis-py's RedisCluster, 4.1 or later) seeded with every
        running node, replies as str; options go to RedisCluster as they are."""
        from redis.cluster import ClusterNode, RedisCluster  # not in redis-py 3
        # redis-py 4.3 logs each MOVED and ASK it follows with a traceback
        logging.getLogger("redis.cluster").addHandler(logging.NullHandler())
        options = {"decode_responses": True, "socket_timeout": 10.0,
                   "socket_connect_timeout": 10.0, **options}
        seeds = [ClusterNode(n.host, n.port) for n in self.running()]
        return RedisCluster(startup_nodes=seeds, **options)

    def begin_migration(self, slot, dst):
        """Marks slot IMPORTING on dst, then MIGRATING on the node serving it, as
        redis-cli --cluster reshard does; that node (the source)."""
        src = self.node_for_slot(slot)
        self.command(dst, "CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(src))
        self.command(src, "CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(dst))
        return src

    def move_keys(self, slot, src, dst, batch=100, pause=0.0, limit=None, timeout_ms=5000):
        """MIGRATEs slot's keys from src to dst, batch at a time, sleeping pause
        between batches, until src has none left or limit are moved; how many moved."""
        moved = 0
        while limit is None or moved < limit:
            count = batch if limit is None else min(batch, limit - moved)
            keys = self.command(src, "CLUSTER", "GETKEYSINSLOT", slot, count)
            if not keys:
                break
            self.command(src, "MIGRATE", dst.host, dst.port, "", 0, timeout_ms, "KEYS", *keys)
            moved += len(keys)
            if pause:
                time.sleep(pause)
        return moved

    def finish_migration(self, slot, src, dst):
        """SETSLOT slot NODE dst on dst, src and the other primaries, and waits
        until the cluster is ok again: every node sees dst serving slot."""
        dst_id = self.node_id(dst)
        for node in [dst, src] + [p for p in self.primaries() if p not in (src, dst)]:
            self.command(node, "CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        self.wait(lambda: self.ok() and self.node_for_slot(slot) is dst,
                  f"slot {slot} is not served by {dst.address} everywhere")

    def migrate_slot(self, slot, dst, batch=100, pause=0.0):
        """Moves slot and its keys to the primary dst (the three steps above); how
        many keys moved."""
        src = self.begin_migration(slot, dst)
        moved = self.move_keys(slot, src, dst, batch, pause)
        self.finish_migration(slot, src, dst)
        return moved

    def failover(self, replica, option=None):
        """CLUSTER FAILOVER [option] (FORCE, TAKEOVER) on replica; waits until it is
        a primary and the cluster is ok."""
        self.command(replica, "CLUSTER", "FAILOVER", *([option] if option else []))
        self.wait(lambda: self.role(replica) == "master" and self.ok(),
                  f"{replica.address} did not take over")

    def kill_primary(self, primary):
        """kill -9 primary; waits until one of its replicas has taken over and the
        cluster is ok; that replica."""
        replicas = self.replicas(primary)
        if not replicas:
            raise ValueError(f"{primary.address} has no replica to take over")
        primary.kill9()
        self.wait(lambda: any(self.role(r) == "master" for r in replicas) and self.ok(),
                  f"no replica of {primary.address} took over")
        return next(r for r in replicas if self.role(r) == "master")

    def restart(self, node):
        """Starts node again (its nodes.conf, its ports) and waits until it has
        rejoined and the cluster is ok: a primary replaced meanwhile is a replica."""
        node.start()
        self.wait_ok()


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

    def sanitizer_report(self):
        """The first sanitizer report in the log (a build with NEARCACHE_SANITIZE or
        NEARCACHE_TSAN), its first 40 lines; None if there is none."""
        lines = self.log_lines() if os.path.exists(self.log_path) else []
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "WARNING: ThreadSanitizer")
        at = next((i for i, line in enumerate(lines) if any(m in line for m in marks)), None)
        return None if at is None else "sanitizer report:\n" + "".join(lines[at:at + 40])

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
        reports = [m.sanitizer_report() for m in self.members if isinstance(m, Proxy)]
        report = next((r for r in reports if r), None)
        if isinstance(error, Exception) and self.proxy:
            error.add_note("nearcache log tail:\n" + self.proxy.log_tail(self.tail_lines))
        if isinstance(error, Exception) and report:
            error.add_note(report)
        shutil.rmtree(self.dir, ignore_errors=True)
        if error is None and report:  # an ASan, UBSan or TSan build found something
            raise RuntimeError(report)


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
