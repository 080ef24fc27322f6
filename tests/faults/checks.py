"""checks.py - what the end-to-end test scripts share: the check runner and its assertions.

A script (tests/admin, tests/tls, tests/sentinel, tests/cluster) is a table of checks, each a
function that raises on failure; checks.main runs them:

  python3 SCRIPT --bin build/nearcache [--check NAME]...

One line per check, PASS or FAIL (with the reason and the notes added to the
exception, such as the proxy's log tail); the last line is "N passed, M
failed"; the exit status is 1 if one failed, 77 (after "SKIP: reason") if
the checks cannot run here. Imported after procs (which brings redis-py).
"""
import argparse
import bisect
import contextlib
import http.client
import time
from collections import namedtuple

import redis

from procs import HOST

# the errors the proxy answers for Redis it cannot reach or that stopped answering
UPSTREAM_ERRORS = ("upstream connection lost", "upstream unavailable", "upstream timeout")

Reply = namedtuple("Reply", "status headers body")


class Failed(Exception):
    """A check's expectation that did not hold; the message says which."""


class Skip(Exception):
    """The checks cannot run on this machine; the message says why."""


def expect(condition, what):
    if not condition:
        raise Failed(what)


def expect_move(proxy, event, old, new):
    """The log events `event` of proxy (a procs.Proxy), one of which says
    its upstream moved from old to new."""
    events = proxy.events(event)
    expect(any(e.get("from") == old and e.get("to") == new for e in events),
           f"no {event} event from {old} to {new}: {[e['line'] for e in events]}")
    return events


def attempt(call, *args):
    """(value, error) of call(*args): error is None if it was answered, a
    reply error's message, or a connection's error with its type
    ("ConnectionError: ...")."""
    try:
        return call(*args), None
    except redis.ResponseError as e:
        return None, str(e)
    except redis.RedisError as e:  # ConnectionError, TimeoutError: the client's own
        return None, f"{type(e).__name__}: {e}"


def error_reply(call, *args):
    """The error call(*args) is answered with, as attempt says it ("" if none)."""
    return attempt(call, *args)[1] or ""


def http_request(port, method, path, headers=None, timeout=3.0):
    """One HTTP request on a connection of its own to HOST:port; a Reply
    whose body is decoded."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return Reply(r.status, r.headers, r.read().decode())
    finally:
        conn.close()


class Floor:
    """The largest value acknowledged (at end times given in any order) before a time."""

    def __init__(self, acked):
        acked = sorted(acked)  # (end, value)
        self.ends = [end for end, _ in acked]
        self.floor, top = [], 0
        for _, value in acked:
            top = max(top, value)
            self.floor.append(top)

    def before(self, t):
        i = bisect.bisect_left(self.ends, t)
        return self.floor[i - 1] if i else 0


def run_check(name, check, args):
    """Runs check(*args) and prints its PASS or FAIL line; True if it passed."""
    start = time.monotonic()
    try:
        check(*args)
        print(f"PASS {name} ({time.monotonic() - start:.1f} s)", flush=True)
        return True
    except Exception as e:  # noqa: BLE001  (one check's failure, whatever it is)
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        print("".join(getattr(e, "__notes__", [])), end="", flush=True)
        return False


def main(doc, checks, setup=None, options=None):
    """Parses the command line (--bin, --check, and what options(parser)
    adds), runs the checks asked for, each as check(binary, *extra), and
    returns the exit status. setup(args), if given, is a context manager
    around all the checks whose value is extra (none without it); it raises
    Skip if they cannot run here."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--bin", default="build/nearcache", help="the nearcache binary")
    p.add_argument("--check", action="append", choices=[name for name, _ in checks],
                   help="run only this check (repeatable)")
    if options:
        options(p)
    args = p.parse_args()
    chosen = [(n, f) for n, f in checks if not args.check or n in args.check]
    failed = 0
    try:
        with setup(args) if setup else contextlib.nullcontext(()) as extra:
            for name, check in chosen:
                failed += not run_check(name, check, (args.bin, *extra))
    except Skip as e:
        print(f"SKIP: {e}")
        return 77
    print(f"{len(chosen) - failed} passed, {failed} failed")
    return 1 if failed else 0
