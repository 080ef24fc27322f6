#!/usr/bin/python3
"""survey_drivers.py - how survey.py drives each client library: the driver
programs (survey_*.py/rb/pl/php/js/go) speaking the survey protocol on
stdin/stdout, redis-cli and redis-benchmark, the installs they need (npm
packages, Go builds), and the relay (Spy) that records what a library sends
on connect. Passwords are redacted from everything recorded.
"""
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import redis

import servers
from servers import HOST

HERE = os.path.dirname(os.path.abspath(__file__))
REPLY_TIMEOUT = 20.0
NAME = "web-1"
PASSWORD = "pw"
ACL_USER, ACL_PASSWORD = "app", "apw"
SECRETS = (PASSWORD, ACL_PASSWORD)

NPM_PACKAGES = {"ioredis": "5.11.1", "redis4": "npm:redis@4.7.1", "redis5": "npm:redis@5.12.4"}
GOPATH = "/usr/share/gocode"


class DriverError(Exception):
    pass


def run_quiet(argv, timeout=30, **kw):
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, **kw)
    except (OSError, subprocess.TimeoutExpired):
        return None


def ok(argv, **kw):
    r = run_quiet(argv, **kw)
    return r is not None and r.returncode == 0


# ---------------------------------------------------------------- drivers

class LineDriver:
    """A driver program speaking the survey protocol on stdin/stdout
    (described at the top of survey_redispy.py)."""

    def __init__(self, argv, cfg, env=None):
        self.errlog = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv + [json.dumps(cfg)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.errlog, env=env,
                                     cwd=HERE)
        self.buf = b""

    def stderr(self):
        self.errlog.seek(0)
        text = self.errlog.read().decode(errors="replace").strip()
        return text.splitlines()[-1] if text else ""

    def request(self, req):
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            raise DriverError(f"driver exited: {self.stderr()}")
        deadline = time.monotonic() + REPLY_TIMEOUT
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DriverError(f"no reply in {REPLY_TIMEOUT:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise DriverError(f"driver exited: {self.stderr()}")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            reply = json.loads(line)
        except ValueError:
            raise DriverError(f"driver wrote {line[:200]!r}")
        if "error" in reply:
            raise DriverError(reply["error"])
        return reply["ok"]

    def workload(self, prefix):
        return self.request({"op": "workload", "p": prefix})

    def gets(self, key, n):
        return self.request({"op": "gets", "key": key, "n": n})

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        servers.stop_pid(self.proc, timeout=5.0)
        self.errlog.close()


def cli_args(cfg, bench=False):
    argv = []
    if "user" in cfg:
        argv += ["--user", cfg["user"]]
    if "password" in cfg:
        argv += ["-a", cfg["password"]]
    if "db" in cfg:
        argv += ["--dbnum" if bench else "-n", str(cfg["db"])]
    if cfg.get("resp") == 3:
        argv += ["-3"]
    return argv


class CliDriver:
    """redis-cli as scripts use it: the workload piped into one redis-cli,
    the repeated GETs as `redis-cli -r N GET key`."""

    def __init__(self, cfg):
        self.base = ["redis-cli", "-h", cfg["host"], "-p", str(cfg["port"]),
                     "--no-auth-warning"] + cli_args(cfg)

    def run(self, args, stdin=None):
        try:
            r = subprocess.run(self.base + args, input=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=REPLY_TIMEOUT, text=True)
        except subprocess.TimeoutExpired:
            raise DriverError("redis-cli timed out")
        return [r.returncode] + r.stdout.splitlines()

    def workload(self, p):
        script = (f"SET {p}s v1\nGET {p}s\nGET {p}missing\nHSET {p}h f1 a f2 b\n"
                  f"HGETALL {p}h\nMGET {p}s {p}missing {p}h\nCLIENT GETNAME\n"
                  f"SET {p}hot hotvalue\nGET {p}hot\n")
        return self.run([], stdin=script)

    def gets(self, key, n):
        return self.run(["-r", str(n), "GET", key])

    def close(self):
        pass


class BenchDriver:
    """redis-benchmark with a command line of its own (-c 1): no values to
    compare, only whether each run succeeded and what errors it printed."""

    def __init__(self, cfg):
        self.base = ["redis-benchmark", "-h", cfg["host"], "-p", str(cfg["port"]), "-c", "1",
                     "-q"] + cli_args(cfg, bench=True)

    def run(self, n, args):
        try:
            r = subprocess.run(self.base + ["-n", str(n)] + args, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=REPLY_TIMEOUT, text=True)
        except subprocess.TimeoutExpired:
            raise DriverError("redis-benchmark timed out")
        errors = sorted({ln.strip() for ln in r.stdout.replace("\r", "\n").splitlines()
                         if "rror" in ln or ln.startswith(("-", "ERR", "NOAUTH", "WRONG"))})
        return [r.returncode] + errors

    def workload(self, p):
        return [self.run(1, args) for args in (
            ["SET", p + "s", "v1"], ["GET", p + "s"], ["GET", p + "missing"],
            ["HSET", p + "h", "f1", "a", "f2", "b"], ["HGETALL", p + "h"],
            ["MGET", p + "s", p + "missing", p + "h"], ["SET", p + "hot", "hotvalue"],
            ["GET", p + "hot"])]

    def gets(self, key, n):
        return self.run(n, ["GET", key])

    def close(self):
        pass


# ------------------------------------------------------- client availability

class Clients:
    """Which libraries are installed, and how to start each one's driver."""

    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.skipped = {}      # client -> reason
        self.versions = {}     # client -> version string
        self.node_modules = None
        self.go_bins = {}

    def probe(self, wanted):
        def need(client, cond, reason, version=None):
            if client not in wanted:
                return
            if cond():
                self.versions[client] = version() if version else ""
            else:
                self.skipped[client] = reason

        def out(argv):
            r = run_quiet(argv)
            return r.stdout.decode(errors="replace").strip() if r and r.returncode == 0 else "?"

        need("redis-py", lambda: True, "", lambda: redis.__version__)
        ruby_ok = lambda: ok(["ruby", "-e", 'require "redis"'])  # noqa: E731
        need("ruby-redis", ruby_ok, "ruby or ruby-redis not installed (apt-get install ruby-redis)",
             lambda: out(["ruby", "-e", 'require "redis"; print Redis::VERSION']))
        self.hiredis = ok(["ruby", "-e", 'require "redis"; require "redis/connection/hiredis"'])
        need("perl-redis", lambda: ok(["perl", "-MRedis", "-e1"]),
             "Perl Redis not installed (apt-get install libredis-perl)",
             lambda: out(["perl", "-MRedis", "-e", "print $Redis::VERSION"]))
        need("redis-fast", lambda: ok(["perl", "-MRedis::Fast", "-e1"]),
             "Redis::Fast not installed (apt-get install libredis-fast-perl)",
             lambda: out(["perl", "-MRedis::Fast", "-e", "print $Redis::Fast::VERSION"]))
        need("phpredis", lambda: ok(["php", "-r", 'exit(class_exists("Redis") ? 0 : 1);']),
             "phpredis not installed (apt-get install php-cli php-redis)",
             lambda: out(["php", "-r", 'echo phpversion("redis");']))
        need("predis", lambda: shutil.which("php") and
             os.path.exists("/usr/share/php/Predis/autoload.php"),
             "predis not installed (apt-get install php-cli php-predis)",
             lambda: out(["php", "-r", 'require "/usr/share/php/Predis/autoload.php";'
                          ' echo Predis\\Client::VERSION;']))
        node_wanted = [x for x in ("ioredis", "node-redis4", "node-redis5") if x in wanted]
        if node_wanted:
            reason = self.install_node()
            for client, pkg in (("ioredis", "ioredis"), ("node-redis4", "redis4"),
                                ("node-redis5", "redis5")):
                if reason:
                    need(client, lambda: False, reason)
                else:
                    need(client, lambda: True, "", lambda p=pkg: self.npm_version(p))
        need("redis-cli", lambda: shutil.which("redis-cli"), "redis-cli not installed",
             lambda: out(["redis-cli", "--version"]).split()[-1])
        need("redis-benchmark", lambda: shutil.which("redis-benchmark"),
             "redis-benchmark not installed",
             lambda: out(["redis-benchmark", "--version"]).split()[1].split("=")[-1])
        for client, src, pkg in (("redigo", "survey_redigo.go",
                                  "github.com/gomodule/redigo/redis"),
                                 ("go-redis5", "survey_goredis.go", "gopkg.in/redis.v5")):
            if client in wanted:
                reason = self.build_go(client, src, pkg)
                need(client, lambda r=reason: r is None, reason or "",
                     lambda p=pkg: self.go_version(p))

    def npm_version(self, pkg):
        try:
            with open(os.path.join(self.node_modules, pkg, "package.json")) as f:
                return json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            return "?"

    def go_version(self, pkg):
        r = run_quiet(["dpkg-query", "-S", os.path.join(GOPATH, "src", pkg)])
        if not r or r.returncode:
            return "?"
        name = r.stdout.decode().split(":")[0]
        v = run_quiet(["dpkg-query", "-W", "-f=${Version}", name])
        return f"{v.stdout.decode()} (Debian)" if v and v.returncode == 0 else "?"

    def install_node(self):
        """None when ioredis, redis4 and redis5 are in --npm-dir; else why not."""
        if not shutil.which("node") or not shutil.which("npm"):
            return "node or npm not installed"
        work = self.args.npm_dir
        self.node_modules = os.path.join(work, "node_modules")
        manifest = {"name": "nearcache-survey", "version": "1.0.0", "private": True,
                    "description": "client libraries for tests/clients/survey.py",
                    "dependencies": NPM_PACKAGES}
        path = os.path.join(work, "package.json")
        want = json.dumps(manifest, indent=2) + "\n"
        try:
            with open(path) as f:
                current = f.read()
        except OSError:
            current = None
        present = all(os.path.isdir(os.path.join(self.node_modules, p)) for p in NPM_PACKAGES)
        if current == want and present:
            return None
        if self.args.no_install:
            return f"npm packages not installed in {work} (--no-install)"
        os.makedirs(work, exist_ok=True)
        with open(path, "w") as f:
            f.write(want)
        print(f"npm install {' '.join(NPM_PACKAGES)} into {work} ...", flush=True)
        r = run_quiet(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                      cwd=work, timeout=600)
        if not r or r.returncode != 0:
            return f"npm install in {work} failed"
        return None

    def build_go(self, client, src, pkg):
        """None when the driver was built, else why not."""
        if not shutil.which("go"):
            return "no Go toolchain (apt-get install golang-go)"
        if not os.path.isdir(os.path.join(GOPATH, "src", pkg)):
            return f"{pkg} not in {GOPATH} (Debian package not installed)"
        out = os.path.join(self.tmp, client)
        env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="",
                   GOCACHE=os.path.join(self.tmp, "gocache"), CGO_ENABLED="0")
        r = run_quiet(["go", "build", "-o", out, src], cwd=HERE, env=env, timeout=300)
        if not r or r.returncode != 0:
            err = r.stderr.decode(errors="replace").strip().splitlines()[:1] if r else ["timeout"]
            return f"offline Go build failed: {err[0] if err else '?'}"
        self.go_bins[client] = out
        return None

    def start(self, client, cfg):
        here = lambda f: os.path.join(HERE, f)  # noqa: E731
        if client == "redis-py":
            return LineDriver([sys.executable, here("survey_redispy.py")], cfg)
        if client == "ruby-redis":
            return LineDriver(["ruby", here("survey_ruby.rb")], cfg)
        if client in ("perl-redis", "redis-fast"):
            module = "Redis" if client == "perl-redis" else "Redis::Fast"
            return LineDriver(["perl", here("survey_perl.pl"), module], cfg)
        if client in ("phpredis", "predis"):
            return LineDriver(["php", here("survey_php.php"), client], cfg)
        if client in ("ioredis", "node-redis4", "node-redis5"):
            lib = {"ioredis": "ioredis", "node-redis4": "redis4", "node-redis5": "redis5"}
            return LineDriver(["node", here("survey_node.js"), self.node_modules, lib[client]],
                              cfg)
        if client in self.go_bins:
            return LineDriver([self.go_bins[client]], cfg)
        if client == "redis-cli":
            return CliDriver(cfg)
        if client == "redis-benchmark":
            return BenchDriver(cfg)
        raise ValueError(client)


# ------------------------------------------------------------------ Redis side

def redis_conn(port, creds, db=0):
    user, password = creds if creds else (None, None)
    return redis.Redis(host=HOST, port=port, username=user, password=password, db=db,
                       socket_timeout=5, decode_responses=True)


class Spy:
    """A recording relay in front of Redis for the direct runs: every command
    the library sends, as Redis receives it (MONITOR would leave out the
    commands Redis rejects, such as CLIENT SETINFO on Redis 7.0)."""

    def __init__(self, redis_port):
        self.redis_port = redis_port
        self.commands = []          # argument lists, in arrival order
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = False
        self.socks = []
        self.threads = [threading.Thread(target=self.accept, daemon=True)]
        self.threads[0].start()

    def accept(self):
        while not self.stopping:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((HOST, self.redis_port), timeout=5)
            except OSError:
                client.close()
                continue
            self.socks += [client, upstream]
            for src, dst, record in ((client, upstream, True), (upstream, client, False)):
                t = threading.Thread(target=self.pump, args=(src, dst, record), daemon=True)
                self.threads.append(t)
                t.start()

    def pump(self, src, dst, record):
        buf = b""
        src.settimeout(0.1)
        while not self.stopping:
            try:
                chunk = src.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not chunk:
                break
            try:
                dst.sendall(chunk)
            except OSError:
                break
            if record:
                buf += chunk
                while True:
                    cmd, buf = self.parse(buf)
                    if cmd is None:
                        break
                    with self.lock:
                        self.commands.append(cmd)
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    @staticmethod
    def parse(buf):
        """One command off the front of buf: (arguments, rest), or (None, buf)."""
        if not buf:
            return None, buf
        line_end = buf.find(b"\r\n")
        if line_end < 0:
            return None, buf
        if buf[:1] != b"*":                   # an inline command
            return buf[:line_end].decode(errors="replace").split(), buf[line_end + 2:]
        count, pos, args = int(buf[1:line_end]), line_end + 2, []
        for _ in range(count):
            end = buf.find(b"\r\n", pos)
            if end < 0:
                return None, buf
            size = int(buf[pos + 1:end])
            if len(buf) < end + 2 + size + 2:
                return None, buf
            args.append(buf[end + 2:end + 2 + size].decode(errors="replace"))
            pos = end + 2 + size + 2
        return args, buf[pos:]

    def stop(self):
        self.stopping = True
        self.listener.close()
        for t in self.threads:
            t.join(2)
        for s in self.socks:
            s.close()

    def handshake(self, marker):
        """The commands before the first that names marker (the workload's
        prefix), passwords redacted, as one string."""
        cmds = []
        with self.lock:
            commands = list(self.commands)
        for args in commands:
            if any(marker in a for a in args):
                break
            cmds.append(" ".join("***" if a in SECRETS else a for a in args))
        return "; ".join(cmds) if cmds else "(nothing)"
