#!/usr/bin/python3
"""node_clients.py - runs node_clients.js (ioredis, node-redis v5) through nearcache.

Installs the exact versions of package-lock.json with `npm ci` into a work
directory outside the source tree (kept and reused while the lock file is
unchanged), starts redis-server and nearcache on free loopback ports, runs
node_clients.js against them and stops both by pid. The checks and why are at
the top of node_clients.js.

  python3 tests/clients/node_clients.py --bin build/nearcache [--work DIR]
  python3 tests/clients/node_clients.py --bin build/nearcache \\
      --set cache.enabled=false     # self-test: `hits` must FAIL

Exits 77 (skipped) if node or npm is not installed; 1 if a check failed or
the install failed.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside servers.py in the source tree
import servers  # first: it runs Debian's python3 if this one has no redis module
import argparse
import filecmp
import shutil
import subprocess
import tempfile

from servers import Servers

HERE = os.path.dirname(os.path.abspath(__file__))
SKIPPED = 77
NODE_TIMEOUT = 120


def install(work, source=HERE):
    """npm ci of source's package.json and package-lock.json into work, unless
    the same lock file is already installed there; work/node_modules."""
    os.makedirs(work, exist_ok=True)
    lock = os.path.join(work, "package-lock.json")
    modules = os.path.join(work, "node_modules")
    done = os.path.join(modules, ".package-lock.json")   # written last by npm
    if os.path.exists(done) and filecmp.cmp(lock, os.path.join(source, "package-lock.json"),
                                            shallow=False):
        return modules
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(source, name), work)
    npm = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=1",
           "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=5000"]
    run = subprocess.run(npm, cwd=work, stdin=subprocess.DEVNULL, timeout=600)
    if run.returncode != 0:
        # A machine behind a TLS-intercepting proxy whose CA it does not have
        # (a fresh CI root): the lock file's sha512 integrity of every package
        # still pins what is installed, so only the transport goes unverified.
        print("npm ci failed; again without TLS verification (the lock file's sha512 "
              "hashes are checked)", flush=True)
        run = subprocess.run(npm + ["--strict-ssl=false"], cwd=work, stdin=subprocess.DEVNULL,
                             timeout=600)
    if run.returncode != 0:
        sys.exit(f"npm ci in {work} failed with status {run.returncode}")
    return modules


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/nearcache", help="the nearcache binary")
    p.add_argument("--work", help="where to install the packages (default: a temporary "
                                  "directory, removed afterwards)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra proxy setting (repeatable)")
    args = p.parse_args()
    missing = [tool for tool in ("node", "npm") if not shutil.which(tool)]
    if missing:
        print(f"skipped: {' and '.join(missing)} not installed (Debian: apt-get install "
              "nodejs npm)")
        return SKIPPED
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    print(f"node {version.strip()}", flush=True)
    work = args.work or tempfile.mkdtemp(prefix="nearcache-node-")
    try:
        env = dict(os.environ, NODE_PATH=install(work))
        with Servers(args.bin, args.set) as servers:
            run = subprocess.run(["node", os.path.join(HERE, "node_clients.js"),
                                  str(servers.proxy_port), str(servers.redis_port)],
                                 env=env, stdin=subprocess.DEVNULL, timeout=NODE_TIMEOUT)
            if run.returncode != 0:
                print("nearcache log tail:\n" + servers.log_tail(), end="")
            return 1 if run.returncode else 0
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
