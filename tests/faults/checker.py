#!/usr/bin/python3
"""checker.py - nearcache's fault suite: correctness under faults, measured.

It starts its own redis-server (AOF, appendfsync always) and nearcache on free
loopback ports, runs a load through the proxy, injects one fault per scenario
(faults.py) and counts, per scenario:

  wrong        a reply that is not what the request asked for: a value of another
               key, a garbled value, a value never written, or a SET not answered
               +OK. MUST be 0.
  stale        a read of a proxy-written key (fp:*) that returns n although a
               write of a larger n was acknowledged before the read was sent. MUST
               be 0.
  lost         after the scenario, Redis holds a smaller n for a key than the last
               acknowledged one. MUST be 0.
  diverged     after the scenario, with the load paused for 0.5 s, GET through the
               proxy differs from Redis. MUST be 0.
  dropped      a request whose bytes were written and whose connection then closed
               without a reply. MUST be 0; in the sigterm scenario only requests
               written 50 ms or more before SIGTERM count (those written in the
               last 50 ms are reported as dropped_late, later ones as errors).
  window       for keys written straight on Redis (fd:*): a read sent at t that
               returns n although n' > n was acked at t' < t, aged t - t'. These
               are allowed within the tracking delivery window: count, p50, p99 and
               max are reported, and the scenario fails if max > --window-bound.
  tracking     NEARCACHE STATS must show tracking back to "on" ("off" when the
               settings turn it off) within 5 s after the fault; if not, the
               proxy is restarted so that the next scenario starts clean.
  spurious-timeout
               with only the proxy stopped (SIGSTOP) past upstream.timeout, no
               request may be answered `upstream timeout`: Redis never stalled.
  exit-status, reload, proxy-exited, fault
               SIGTERM must end the proxy with status 0; reloads of a valid file
               must succeed; the proxy must not die; the fault must find its target.

Errors the proxy documents (upstream unavailable / connection lost / timeout),
connection failures and client timeouts are counted per kind, not as failures.

  python3 tests/faults/checker.py --bin build/nearcache            # short suite, ~65 s
  python3 tests/faults/checker.py --bin build/nearcache --long     # ~6 min
  python3 tests/faults/checker.py --bin build/nearcache --soak 600  # faults in rotation
  python3 tests/faults/checker.py --bin build/nearcache --scenario baseline \\
      --set cache.tracking=false --expect-fail    # self-test: must see staleness

The last line is "N passed, M failed"; the exit status is 1 if a scenario
failed (with --expect-fail: 1 unless every scenario failed).
"""
import procs  # first: it runs Debian's python3 if this one has no redis module
import argparse
import itertools
import json
import os
import shutil
import signal
import sys
import tempfile
import time

import faults
import workload

UPSTREAM_TIMEOUT = 0.5
DRAIN_TIMEOUT = 1.0
PROXY_SETTINGS = [f"upstream.timeout={int(UPSTREAM_TIMEOUT * 1000)}ms",
                  "upstream.connect_timeout=500ms", "upstream.reconnect_max=500ms",
                  f"shutdown.drain_timeout={int(DRAIN_TIMEOUT)}s",
                  "cache.enabled=true", "cache.tracking=true"]
PROXY_KEYS, DIRECT_KEYS, WRITERS, READERS = 140, 60, 4, 4
SHORT_SECONDS, LONG_FACTOR = 5.0, 6
QUIET_SECONDS = 0.5       # load paused before the convergence check
DROP_MARGIN = 0.05        # a request written this close to SIGTERM may be dropped
SOAK_FAULT_EVERY, SOAK_PRINT_EVERY = 20.0, 30.0
OFF_WORDS = ("false", "no", "off")


class Env:
    """The processes and the state the fault injectors act on."""

    def __init__(self, args, workdir):
        self.t0 = time.monotonic()
        self.redis = procs.RedisServer(workdir)
        self.config_path = os.path.join(workdir, "nearcache.yaml")
        self.variant = 0
        procs.write_config(self.config_path, self.variant)
        settings = PROXY_SETTINGS + args.set
        self.proxy = procs.Proxy(args.bin, workdir, self.config_path, self.redis.port, settings)
        values = dict(s.partition("=")[::2] for s in settings)   # the last one wins
        self.tracking_expected = "off" if values["cache.tracking"].lower() in OFF_WORDS else "on"
        self.timeout = UPSTREAM_TIMEOUT
        self.stall = 2 * UPSTREAM_TIMEOUT
        self.drain = DRAIN_TIMEOUT
        self.round = 0
        self.tally = workload.Tally("setup")

    def clock(self, t):
        """Seconds since the run started, for examples."""
        return t - self.t0


def populate(env):
    """Every key holds "<key>:0" before the proxy starts; the KeyBook of the run."""
    proxy_keys = [f"{workload.PROXY_PREFIX}{i}" for i in range(PROXY_KEYS)]
    direct_keys = [f"{workload.DIRECT_PREFIX}{i}" for i in range(DIRECT_KEYS)]
    with faults.control(env.redis.port) as client:
        client.mset({k: f"{k}:0" for k in proxy_keys + direct_keys})
    return workload.KeyBook(proxy_keys, direct_keys, time.monotonic())


def wait_tracking(env, timeout=5.0):
    """Wait until NEARCACHE STATS shows the expected tracking state; the last state."""
    deadline = time.monotonic() + timeout
    while True:
        state = faults.proxy_stats(env.proxy.port).get("tracking", "no answer")
        if state == env.tracking_expected or time.monotonic() >= deadline:
            return state
        time.sleep(0.05)


def inject_during(env, fault, seconds, repeat):
    """After 1 s of load, inject fault.times times (with repeat: as often as fits)
    fault.gap apart; then let the load run until `seconds` are over."""
    deadline = time.monotonic() + seconds
    time.sleep(1.0)
    env.round = 0
    while fault.times and (env.round < fault.times or
                           (repeat and time.monotonic() + fault.gap + 1 < deadline)):
        if env.round:
            time.sleep(fault.gap)
        fault.inject(env)
        env.round += 1
    time.sleep(max(0.0, deadline - time.monotonic()))
    return env.round


def recover(env, tally):
    """Redis answering, the proxy running and tracking back; violations otherwise."""
    if not procs.wait_until(env.redis.up, 10):
        raise RuntimeError("redis-server did not come back")
    if not env.proxy.alive():
        tally.violate("proxy-exited", f"nearcache exited with status {env.proxy.proc.returncode}")
        env.proxy.start()
    state = wait_tracking(env)
    if state != env.tracking_expected:
        tally.violate("tracking", f"NEARCACHE STATS tracking:{state} 5 s after the fault, "
                                  f"expected {env.tracking_expected}")
    return state


def check_lost(env, book, tally):
    """Redis must hold at least the last acknowledged n of every key."""
    acked = dict(book.acked)
    with faults.control(env.redis.port) as client:
        stored = client.mget(book.keys)
    for key, value in zip(book.keys, stored):
        try:
            n = workload.parse_value(key, value)
        except ValueError as e:
            n, value = -1, e
        if n < acked[key][0]:
            tally.violate("lost", f"Redis holds {key}={value!r}, but n={acked[key][0]} "
                                  f"was acked at t={env.clock(acked[key][1]):.3f}s")


def check_converged(env, book, tally):
    """With the load paused, GET through the proxy must answer what Redis holds."""
    link = workload.Link(env.proxy.port)
    with faults.control(env.redis.port) as client:
        for key in book.keys:
            try:
                via = link.call("GET", key)
            except workload.Failure as f:
                via = f.kind
            direct = client.get(key)
            if via != direct:
                tally.violate("diverged", f"{QUIET_SECONDS} s after the load paused, GET "
                                          f"{key} answers {via!r} through the proxy, Redis "
                                          f"holds {direct!r}")
    link.close()


def settle(env, load, book, tally):
    """Pause the load, then check convergence and acknowledged writes."""
    if not load.pause():
        raise RuntimeError("load threads did not pause")
    time.sleep(QUIET_SECONDS)
    check_converged(env, book, tally)
    check_lost(env, book, tally)


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def window_figures(windows):
    values = sorted(windows)
    if not values:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    return {"count": len(values), "p50_ms": round(percentile(values, 0.5), 2),
            "p99_ms": round(percentile(values, 0.99), 2), "max_ms": round(values[-1], 2)}


def classify_drops(tally):
    """Turn the tally's drops into violations, late drops (written less than
    DROP_MARGIN before a SIGTERM) and errors (written after it); the late count."""
    late = 0
    for written, example in tally.drops:
        if any(sent <= written < restarted for sent, _, restarted in tally.shutdowns):
            tally.error("closed during shutdown")
        elif any(sent - DROP_MARGIN <= written < sent for sent, _, _ in tally.shutdowns):
            late += 1
        else:
            later = [sent - written for sent, _, _ in tally.shutdowns if sent > written]
            when = f" {min(later) * 1000:.0f} ms before a SIGTERM," if later else ""
            tally.violate("dropped", f"{example},{when} closed without a reply")
    return late


def summarize(tally, bound, extra):
    """The scenario's figures as a dict; adds the drop and window violations."""
    late = classify_drops(tally)
    window = window_figures(tally.windows)
    if window["max_ms"] > bound:
        tally.violate("window", f"{tally.worst_window}: {window['max_ms']:.0f} ms stale, "
                                f"over the {bound:.0f} ms bound")
    seconds = time.monotonic() - tally.started
    drains = [exited - sent for sent, exited, _ in tally.shutdowns]
    return dict(extra, name=tally.name, passed=not tally.violations,
                seconds=round(seconds, 1), requests=tally.ok,
                requests_per_second=round(tally.ok / seconds),
                errors=dict(tally.errors), violations=dict(tally.violations),
                examples=tally.examples, dropped_late=late, window=window,
                drain_seconds=round(max(drains, default=0), 2))


def hit_ratio(before, after):
    """Hits / cacheable reads between two NEARCACHE STATS (after alone if the proxy
    restarted in between)."""
    fields = ("hits", "misses", "bypassed")
    delta = [int(after.get(f, 0)) - int(before.get(f, 0)) for f in fields]
    if min(delta) < 0:
        delta = [int(after.get(f, 0)) for f in fields]
    return round(delta[0] / max(1, sum(delta)), 3)


def scenario_line(result):
    v, w = result["violations"], result["window"]
    parts = [f"{'PASS' if result['passed'] else 'FAIL'} {result['name']:<26}",
             f"{result['seconds']:5.1f}s {result['requests']:7d} req "
             f"({result['requests_per_second']}/s)"]
    parts += [f"{name} {v.get(name, 0)}" for name in ("wrong", "stale", "lost", "diverged")]
    parts.append(f"dropped {v.get('dropped', 0)}+{result['dropped_late']} late")
    parts.append(f"window n={w['count']} p50={w['p50_ms']} p99={w['p99_ms']} "
                 f"max={w['max_ms']}ms")
    parts.append(f"tracking {result['tracking']}  hits {result['hit_ratio']:.0%}")
    if result["drain_seconds"]:
        parts.append(f"drain {result['drain_seconds']}s")
    errors = ", ".join(f"{k} {n}" for k, n in sorted(result["errors"].items()))
    parts.append("errors: " + (errors or "none"))
    return "  ".join(parts)


def print_result(result, env):
    print(scenario_line(result), flush=True)
    if result["passed"]:
        return
    for invariant, count in result["violations"].items():
        print(f"  {result['name']}: {invariant} x{count}, e.g. {result['examples'][invariant]}")
    print("  proxy log tail:\n    " + env.proxy.log_tail().rstrip().replace("\n", "\n    "),
          flush=True)


def run_scenario(env, load, book, fault, args):
    tally = workload.Tally(fault.name)
    env.tally = tally
    before = faults.proxy_stats(env.proxy.port)
    load.resume(tally)
    injections = inject_during(env, fault, args.seconds_per_scenario, args.long)
    tracking = recover(env, tally)
    settle(env, load, book, tally)
    extra = {"injections": injections, "tracking": tracking,
             "hit_ratio": hit_ratio(before, faults.proxy_stats(env.proxy.port))}
    result = summarize(tally, args.window_bound, extra)
    print_result(result, env)
    if tracking != env.tracking_expected:
        print(f"  restarting the proxy (tracking {tracking}) for the next scenarios")
        env.proxy.stop()
        env.proxy.start()
    return result, tally


def soak_line(env, tally, since, done_before):
    v = tally.violations
    rate = (tally.ok - done_before) / (time.monotonic() - since)
    print(f"  t={env.clock(time.monotonic()):6.0f}s {rate:7.0f} req/s  errors "
          f"{sum(tally.errors.values())}  wrong {v.get('wrong', 0)}  stale {v.get('stale', 0)}"
          f"  window max {window_figures(tally.windows)['max_ms']}ms  "
          f"rss {env.proxy.rss_kb()} kB", flush=True)


def run_soak(env, load, book, args):
    """Mixed load for args.soak seconds, a fault every SOAK_FAULT_EVERY seconds in
    rotation (sigterm left out: the proxy is kept to follow its memory)."""
    tally = workload.Tally("soak")
    env.tally = tally
    load.resume(tally)
    rotation = itertools.cycle(f for f in faults.FAULTS if f.times and f.name != "sigterm")
    before = faults.proxy_stats(env.proxy.port)
    start = time.monotonic()
    rss_start = env.proxy.rss_kb()
    next_fault, next_print = start + SOAK_FAULT_EVERY, start + SOAK_PRINT_EVERY
    printed_at, done_before = start, 0
    env.round = 0
    while time.monotonic() < start + args.soak:
        now = time.monotonic()
        if now >= next_fault:
            fault = next(rotation)
            print(f"  t={env.clock(now):6.0f}s inject {fault.name}", flush=True)
            fault.inject(env)
            env.round += 1
            next_fault += SOAK_FAULT_EVERY
        if now >= next_print:
            soak_line(env, tally, printed_at, done_before)
            printed_at, done_before = now, tally.ok
            next_print += SOAK_PRINT_EVERY
        time.sleep(0.1)
    tracking = recover(env, tally)
    rss_end = env.proxy.rss_kb()
    settle(env, load, book, tally)
    result = summarize(tally, args.window_bound,
                       {"injections": env.round, "tracking": tracking,
                        "hit_ratio": hit_ratio(before, faults.proxy_stats(env.proxy.port)),
                        "rss_kb": {"start": rss_start, "end": rss_end}})
    print_result(result, env)
    print(f"proxy RSS: {rss_start} kB at start, {rss_end} kB at end")
    return result, tally


def run(args, workdir):
    """Start everything, run the scenarios or the soak; (results, tallies)."""
    env = Env(args, workdir)
    load = None
    try:
        env.redis.start()
        book = populate(env)
        env.proxy.start()
        if wait_tracking(env) != env.tracking_expected:
            raise RuntimeError("tracking did not come up:\n" + env.proxy.log_tail())
        load = workload.Load(book, env.proxy.port, env.redis.port, WRITERS, READERS,
                             env.clock)
        if args.soak:
            return [run_soak(env, load, book, args)]
        chosen = [f for f in faults.FAULTS if not args.scenario or f.name in args.scenario]
        return [run_scenario(env, load, book, f, args) for f in chosen]
    finally:
        if load:
            load.stop()
        env.proxy.stop()
        env.redis.stop()


def overall(results, tallies):
    windows = [w for t in tallies for w in t.windows]
    return {"requests": sum(r["requests"] for r in results),
            "errors": sum(sum(r["errors"].values()) for r in results),
            "passed": sum(r["passed"] for r in results),
            "failed": sum(not r["passed"] for r in results),
            "window": window_figures(windows)}


def parse_args():
    names = [f.name for f in faults.FAULTS]
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/nearcache", help="the nearcache binary")
    p.add_argument("--scenario", action="append", choices=names, metavar="NAME",
                   help="run only these scenarios (repeatable): " + ", ".join(names))
    p.add_argument("--seconds-per-scenario", type=float)
    p.add_argument("--long", action="store_true",
                   help=f"{LONG_FACTOR}x longer scenarios with repeated faults")
    p.add_argument("--soak", type=float, metavar="SECONDS",
                   help="mixed load with the faults in rotation instead of the scenarios")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument("--window-bound", type=float, default=1000.0, metavar="MS",
                   help="largest staleness allowed for keys written on Redis directly")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra proxy setting (repeatable)")
    p.add_argument("--expect-fail", action="store_true",
                   help="self-test: exit 0 only if every scenario failed")
    args = p.parse_args()
    if args.seconds_per_scenario is None:
        args.seconds_per_scenario = SHORT_SECONDS * (LONG_FACTOR if args.long else 1)
    return args


def main():
    args = parse_args()
    sys.setswitchinterval(0.001)  # threads take turns 5x more often: times taken are closer
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with & by sh
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    workdir = tempfile.mkdtemp(prefix="nearcache-faults-")
    started = time.monotonic()
    try:
        pairs = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = [r for r, _ in pairs]
    total = overall(results, [t for _, t in pairs])
    w = total["window"]
    print(f"total {time.monotonic() - started:.0f}s, {total['requests']} requests, "
          f"{total['errors']} errors, direct-key staleness n={w['count']} p50={w['p50_ms']} "
          f"p99={w['p99_ms']} max={w['max_ms']}ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scenarios": results, "overall": total}, f, indent=2)
    failed = total["failed"]
    ok = failed == len(results) if args.expect_fail else failed == 0
    if args.expect_fail:
        print("expected failures: " + ("seen" if ok else "NOT seen in every scenario"))
    print(f"{total['passed']} passed, {failed} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
