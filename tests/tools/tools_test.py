#!/usr/bin/python3
"""tools_test.py - `nearcache bulk` and `nearcache tune` against a real redis-server
and the proxy (tests/faults/procs.py: free loopback ports, stopped by pid).

  bulk-results     one file through the proxy and directly on Redis: the same
                   results; values with spaces, quotes and any byte; TTLs (PTTL);
                   deletes; malformed lines reported by number, the rest still run
  bulk-batches     --batch 1 and --batch 1000 give the same results; a relay
                   counts the tool's writes: one per operation against a few
  bulk-invalidate  `invalidate PATTERN` through the proxy answers OK (needs the
                   proxy's NEARCACHE INVALIDATE); directly on Redis it fails
                   with Redis's error and the other operations still run
  bulk-usage       exit status 2 for bad usage, 1 for an unreachable target, 0
                   when every operation succeeded; --json parses
  tune-run         a bounded run (--duration 2s): percentiles, throughput and
                   recommendations in --json; no key outside the prefix touched,
                   no scratch key left
  tune-refuse      keys under the prefix: refused without --force (and left as
                   they were), run with it; bad prefixes are usage errors
  tune-interrupt   SIGINT in the middle of a run: it stops and deletes its keys
  tune-small-tier  a tier smaller than the working set: cache.max_memory is
                   raised in the recommendations, with the evictions seen

  python3 tests/tools/tools_test.py --bin build/nearcache [--check NAME]...
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside procs.py in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import contextlib
import json
import signal
import socket
import subprocess
import tempfile
import threading
import time

import checks
from checks import expect
from procs import HOST, wait_until

OPS = r"""# values with spaces, quotes and binary bytes
set user:1 "Ada Lovelace" ttl 60
set bin "\x00\xff\r\n end"
set 'single q' 'it\'s'
set quoted "say \"hi\"\ttab"
get user:1
get bin
get 'single q'
get quoted
get missing

del quoted
get quoted
frobnicate x
set k "unbalanced
set onlykey
set k v ttl 0
set k v ttl 5 extra
get user:1 too-many
del bin
"""
RESULT_LINES = {  # line number -> start of its text line
    6: 'line 6: get user:1 -> "Ada Lovelace"',
    7: r'line 7: get bin -> "\x00\xff\r\n end"',
    8: "line 8: get \"single q\" -> \"it's\"",
    9: r'line 9: get quoted -> "say \"hi\"\ttab"',
    10: "line 10: get missing -> (nil)",
    12: "line 12: del quoted -> (integer) 1",
    13: "line 13: get quoted -> (nil)",
    14: "line 14: invalid: unknown operation",
    15: "line 15: invalid: unbalanced quotes",
    16: "line 16: invalid: expected: set KEY VALUE [ttl SECONDS]",
    17: "line 17: invalid: ttl must be",
    18: "line 18: invalid: too many arguments",
    19: "line 19: invalid: expected: get KEY",
    20: "line 20: del bin -> (integer) 1",
}


class Stack:
    """A redis-server and the proxy in front of it, in a temporary directory."""

    def __init__(self, binary, settings=()):
        self.binary = binary
        self.tmp = tempfile.TemporaryDirectory(prefix="nc-tools-")
        self.redis = procs.RedisServer(self.tmp.name, options=())
        self.proxy = procs.Proxy(binary, self.tmp.name, None, self.redis.port,
                                 settings=("workers=1", *settings))

    def __enter__(self):
        try:
            self.redis.start()
            self.proxy.start()
            expect(self.proxy.wait_cache_active(10), "the tier did not become active")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        self.proxy.stop()
        self.redis.stop()
        self.tmp.cleanup()

    def direct(self):
        return self.redis.client(decode=False)

    def run(self, *args, stdin=None, timeout=60):
        """Runs `nearcache ARGS`; the CompletedProcess (text output)."""
        return subprocess.run([self.binary, *args], input=stdin, capture_output=True,
                              text=True, timeout=timeout)

    def bulk(self, target, *args, ops=OPS):
        return self.run("bulk", "--target", target, *args, stdin=ops)

    def bulk_json(self, target, *args, ops=OPS):
        r = self.bulk(target, "--json", *args, ops=ops)
        try:
            return r.returncode, json.loads(r.stdout), r.stderr
        except ValueError:
            raise checks.Failed(f"bulk --json: not JSON: {r.stdout!r} {r.stderr!r}")

    @property
    def proxy_addr(self):
        return f"{HOST}:{self.proxy.port}"

    @property
    def redis_addr(self):
        return f"{HOST}:{self.redis.port}"


def check_bulk_results(binary):
    with Stack(binary) as s:
        direct = s.direct()
        via = {}
        for name, target in (("redis", s.redis_addr), ("proxy", s.proxy_addr)):
            direct.flushall()
            r = s.bulk(target)
            expect(r.returncode == 1, f"{name}: exit status {r.returncode}, expected 1 "
                   f"(invalid lines): {r.stderr}")
            lines = r.stdout.splitlines()
            for n, start in RESULT_LINES.items():
                expect(any(line.startswith(start) for line in lines),
                       f"{name}: no line starting {start!r} in:\n{r.stdout}")
            expect(0 < direct.pttl("user:1") <= 60000, f"{name}: PTTL user:1 {direct.pttl('user:1')}")
            expect(direct.pttl("single q") == -1, f"{name}: a set without ttl has a TTL")
            expect(direct.get("single q") == b"it's", f"{name}: GET 'single q'")
            expect(not direct.exists("bin") and not direct.exists("quoted"), f"{name}: deletes")
            code, report, _ = s.bulk_json(target)
            via[name] = report["results"]
            summary = report["summary"]
            expect(summary["invalid"] == 6 and summary["nil"] == 2 and summary["error"] == 0,
                   f"{name}: summary {summary}")
            expect(summary["by_op"]["get"] == {"ok": 4, "nil": 2, "error": 0},
                   f"{name}: by_op get {summary['by_op']['get']}")
        expect(via["redis"] == via["proxy"],
               f"results differ:\n{json.dumps(via['redis'])}\n{json.dumps(via['proxy'])}")
        bin_get = [x for x in via["proxy"] if x["line"] == 7][0]
        expect(bin_get.get("value_escaped") == r"\x00\xff\r\n end", f"binary value: {bin_get}")


class Relay:
    """A TCP relay to Redis that counts the reads of bytes coming from its client."""

    def __init__(self, port):
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = port
        self.reads = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection((HOST, self.upstream))
            threading.Thread(target=self.pump, args=(server, client, False), daemon=True).start()
            threading.Thread(target=self.pump, args=(client, server, True), daemon=True).start()

    def pump(self, src, dst, count):
        with contextlib.suppress(OSError):
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    self.reads += 1
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self):
        self.listener.close()


def check_bulk_batches(binary):
    ops = "".join(f"set b:{i} v{i} ttl 100\nget b:{i}\n" for i in range(150)) + "del b:7\n"
    with Stack(binary) as s:
        relay = Relay(s.redis.port)
        try:
            reports = {}
            for batch in ("1", "1000"):
                before = relay.reads
                code, report, err = s.bulk_json(f"{HOST}:{relay.port}", "--batch", batch, ops=ops)
                expect(code == 0, f"--batch {batch}: exit status {code}: {err}")
                reports[batch] = (report, relay.reads - before)
        finally:
            relay.close()
        (one, one_reads), (many, many_reads) = reports["1"], reports["1000"]
        expect(one["results"] == many["results"], "--batch 1 and --batch 1000 results differ")
        expect(one["summary"]["batches"] == 301 and many["summary"]["batches"] == 1,
               f"batches: {one['summary']['batches']}, {many['summary']['batches']}")
        # each round trip is at least one read at the relay; a pipeline of 301 small
        # commands leaves in one write (a few reads at most, however TCP splits it)
        expect(one_reads >= 301, f"--batch 1: {one_reads} writes for 301 operations")
        expect(many_reads <= 10, f"--batch 1000: {many_reads} writes for 301 operations")


def check_bulk_invalidate(binary):
    ops = "set inv:1 a\ninvalidate inv:*\nget inv:1\n"
    with Stack(binary) as s:
        code, report, err = s.bulk_json(s.redis_addr, ops=ops)
        inv = report["results"][1]
        expect(code == 1 and inv["outcome"] == "error" and "unknown command" in inv["error"],
               f"directly on Redis: {inv}")
        expect(report["results"][2]["outcome"] == "ok", "the get after a failed invalidate")
        code, report, err = s.bulk_json(s.proxy_addr, ops=ops)
        inv = report["results"][1]
        expect(inv["outcome"] == "ok", f"through the proxy: {inv}")
        expect(code == 0, f"through the proxy: exit status {code}: {err}")


def check_bulk_usage(binary):
    with Stack(binary) as s:
        for args in ([], ["--batch", "0"], ["--batch", "x"], ["--db", "-1"], ["extra"]):
            r = s.run("bulk", *(["--target", s.proxy_addr] if args != [] else []), *args,
                      stdin="get a\n")
            expect(r.returncode == 2 and "usage" in r.stderr, f"bulk {args}: {r.returncode} "
                   f"{r.stderr!r}")
        r = s.run("bulk", "--target", s.proxy_addr, "--file", "/nonexistent/ops")
        expect(r.returncode == 2 and "/nonexistent/ops" in r.stderr, f"missing file: {r.stderr!r}")
        r = s.run("bulk", "--target", f"{HOST}:{procs.free_port()}", stdin="get a\n")
        expect(r.returncode == 1 and "Connection refused" in r.stderr, f"unreachable: {r.stderr!r}")
        code, report, err = s.bulk_json(s.proxy_addr, "--db", "3", ops="set d:1 x\nget d:1\n")
        expect(code == 0 and report["results"][1]["value"] == "x", f"--db 3: {report}")
        expect(s.direct().get("d:1") is None, "--db 3 wrote database 0")
        c3 = procs.connect(s.redis.port, db=3)
        expect(c3.get("d:1") == "x", "--db 3: the key is not in database 3")
        expect("2 operations in 1 batches" in err, f"summary line: {err!r}")


def tune(s, *args, timeout=90):
    return s.run("tune", "--proxy", s.proxy_addr, *args, timeout=timeout)


def snapshot(client):
    return {k: client.dump(k) for k in client.scan_iter(count=1000)}


def check_tune_run(binary):
    with Stack(binary) as s:
        direct = s.direct()
        direct.mset({f"app:{i}": f"value {i}" for i in range(500)})
        direct.set("nearcache:tune", "prefix without its colon")
        direct.set("nearcache:tunex:1", "a longer prefix")
        direct.set("app:ttl", "x", ex=1000)
        before = snapshot(direct)
        start = time.monotonic()
        r = tune(s, "--duration", "2s", "--keys", "3000", "--clients", "2", "--json")
        elapsed = time.monotonic() - start
        expect(r.returncode == 0, f"exit status {r.returncode}: {r.stderr}")
        expect(elapsed < 15, f"a 2 s run took {elapsed:.1f} s")
        report = json.loads(r.stdout)
        passes = report["passes"]
        for name in ("cold", "warm", "load"):
            lat = passes[name]["latency_us"]
            expect(passes[name]["reads"] > 0 and 0 < lat["p50"] <= lat["p99"] <= lat["max"],
                   f"{name} pass: {passes[name]}")
            expect(passes[name]["errors"] == 0 and passes[name]["wrong"] == 0,
                   f"{name} pass errors: {passes[name]}")
        expect(passes["cold"]["proxy_misses"] >= passes["cold"]["reads"] and
               passes["cold"]["proxy_hits"] == 0, f"cold pass not all misses: {passes['cold']}")
        expect(passes["warm"]["hit_ratio"] > 0.9, f"warm pass: {passes['warm']}")
        expect(passes["load"]["reads_per_sec"] > 0, "no throughput")
        settings = [x["setting"] for x in report["recommendations"]]
        expect(settings == ["upstream.pool_size", "cache.max_memory", "rules"],
               f"recommendations: {settings}")
        expect(all(x["advice"] and x["based_on"] for x in report["recommendations"]),
               "a recommendation without its advice or figures")
        expect(report["deleted"] == 3000, f"deleted {report['deleted']}")
        after = snapshot(direct)
        expect(after == before, f"keys outside the prefix changed: {set(after) ^ set(before)}")
        expect(0 < direct.ttl("app:ttl") <= 1000, "the TTL of app:ttl")
        r = tune(s, "--duration", "1s", "--keys", "100")
        expect(r.returncode == 0 and "upstream.pool_size:" in r.stdout and
               "deleted 100 scratch keys" in r.stdout, f"text output: {r.stdout} {r.stderr}")
        expect(snapshot(direct) == before, "the text run left keys")


def check_tune_refuse(binary):
    with Stack(binary) as s:
        direct = s.direct()
        direct.set("nearcache:tune:mine", "keep me")
        r = tune(s, "--duration", "1s", "--keys", "100")
        expect(r.returncode == 1 and "--force" in r.stderr, f"not refused: {r.returncode} "
               f"{r.stderr!r}")
        expect(direct.dbsize() == 1 and direct.get("nearcache:tune:mine") == b"keep me",
               "a refused run touched keys")
        r = tune(s, "--duration", "1s", "--keys", "100", "--force")
        expect(r.returncode == 0, f"--force: {r.returncode} {r.stderr!r}")
        expect(direct.dbsize() == 1 and direct.get("nearcache:tune:mine") == b"keep me",
               "--force: keys outside its own names touched or left")
        for bad in (["--prefix", ""], ["--prefix", "a*"], ["--prefix", "a?b:"],
                    ["--prefix", "x[1]"], ["--duration", "61s"], ["--clients", "0"],
                    ["--keys", "nope"]):
            r = tune(s, *bad)
            expect(r.returncode == 2, f"tune {bad}: exit status {r.returncode} {r.stderr!r}")
        r = s.run("tune", "--proxy", s.redis_addr, "--duration", "1s")
        expect(r.returncode == 1 and "NEARCACHE" in r.stderr, f"on Redis itself: {r.stderr!r}")
        expect(direct.dbsize() == 1, "a run on Redis itself wrote keys")


def check_tune_interrupt(binary):
    with Stack(binary) as s:
        direct = s.direct()
        direct.set("other", "1")
        proc = subprocess.Popen([binary, "tune", "--proxy", s.proxy_addr, "--duration", "30s",
                                 "--keys", "20000"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            expect(wait_until(lambda: direct.dbsize() > 1000, 20), "the keys were not written")
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        expect(proc.returncode == 1 and "(interrupted)" in out, f"exit {proc.returncode}: {out}")
        expect(direct.dbsize() == 1 and direct.get("other") == b"1",
               f"after SIGINT: {direct.dbsize()} keys")


def check_tune_small_tier(binary):
    with Stack(binary, settings=("cache.max_memory=1mb",)) as s:
        r = tune(s, "--duration", "2s", "--keys", "20000", "--value-size", "300", "--json")
        expect(r.returncode == 0, f"exit status {r.returncode}: {r.stderr}")
        report = json.loads(r.stdout)
        tier = report["recommendations"][1]
        expect(tier["setting"] == "cache.max_memory" and tier["recommend"] is not None and
               tier["advice"].startswith("raise"), f"tier advice: {tier}")
        expect(tier["based_on"]["working_set_bytes"] > tier["based_on"]["max_bytes"] or
               tier["based_on"]["evictions"] > 0, f"figures: {tier['based_on']}")
        expect(s.direct().dbsize() == 0, "scratch keys left")


CHECKS = (
    ("bulk-results", check_bulk_results),
    ("bulk-batches", check_bulk_batches),
    ("bulk-invalidate", check_bulk_invalidate),
    ("bulk-usage", check_bulk_usage),
    ("tune-run", check_tune_run),
    ("tune-refuse", check_tune_refuse),
    ("tune-interrupt", check_tune_interrupt),
    ("tune-small-tier", check_tune_small_tier),
)

if __name__ == "__main__":
    sys.exit(checks.main(__doc__, CHECKS))
