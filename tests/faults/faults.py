"""faults.py - the fault injectors: each function injects its fault once and
returns when the fault is over (Redis back, proxy restarted, ...).

They act through `env` (see checker.Env): env.redis, env.proxy, env.tally,
env.config_path and env.variant (the policy in it), env.timeout
(upstream.timeout in seconds), env.stall (a stall past it), env.drain and
env.round (the injection's number in its scenario). Control connections to
Redis are named "faults-..." so that they are never taken for the proxy's.
"""
import collections
import random
import signal
import time

import redis

import procs
from procs import HOST
from workload import Failure, Link

Fault = collections.namedtuple("Fault", "name inject times gap")


def control(port, timeout=5.0):
    """A fresh direct client to Redis, named so that CLIENT LIST tells it apart."""
    return redis.Redis(host=HOST, port=port, socket_timeout=timeout,
                       socket_connect_timeout=1.0, retry_on_timeout=False,
                       client_name="faults-control")


def proxy_stats(port):
    """NEARCACHE STATS of the proxy as a dict of strings, {} if it does not answer."""
    link = Link(port, timeout=2.0)
    try:
        text = link.call("NEARCACHE", "STATS")
    except Failure:
        return {}
    finally:
        link.close()
    return dict(line.split(":", 1) for line in text.decode().splitlines() if ":" in line)


def proxy_data_connections(client):
    """Ids of the proxy's shared connections: every client that is not ours
    (named faults-*), not the subscriber (P flag, cmd=subscribe) and not the
    BCAST registration connection (B flag)."""
    return [c["id"] for c in client.client_list()
            if not c.get("name", "").startswith("faults-")
            and "P" not in c["flags"] and "B" not in c["flags"]
            and c.get("cmd") != "subscribe"]


def baseline(env):
    """No fault."""


def redis_kill9(env):
    env.redis.kill9()
    time.sleep(0.2)
    env.redis.start()


def redis_sigstop(env):
    env.redis.pause()
    try:
        time.sleep(env.stall)
    finally:
        env.redis.resume()


def proxy_sigstop(env):
    """Stop the proxy, not Redis, past upstream.timeout. The replies waiting in its
    sockets when it resumes are progress: no request may get `upstream timeout`."""
    before = env.tally.errors["upstream timeout"]
    env.proxy.signal(signal.SIGSTOP)
    try:
        time.sleep(env.stall)
    finally:
        env.proxy.signal(signal.SIGCONT)
    time.sleep(env.timeout)
    spurious = env.tally.errors["upstream timeout"] - before
    if spurious:
        env.tally.violate("spurious-timeout", f"{spurious} requests answered `upstream timeout` "
                                              f"after the proxy (not Redis) stopped for "
                                              f"{env.stall} s")


def subscriber_kill(env):
    with control(env.redis.port) as client:
        client.client_kill_filter(_type="pubsub")


def subscriber_storm(env, seconds=2.0):
    deadline = time.monotonic() + seconds
    with control(env.redis.port) as client:
        while time.monotonic() < deadline:
            client.client_kill_filter(_type="pubsub")
            time.sleep(random.uniform(0.02, 0.05))


def shared_conn_kill(env):
    with control(env.redis.port) as client:
        ids = proxy_data_connections(client)
        if not ids:
            env.tally.violate("fault", "no proxy data connection found in CLIENT LIST")
        for client_id in ids:
            client.client_kill_filter(_id=client_id)
            time.sleep(0.1)


def debug_sleep(env):
    """DEBUG SLEEP on a connection of its own, blocking this thread only."""
    with control(env.redis.port, env.stall + 5) as client:
        client.execute_command("DEBUG", "SLEEP", env.stall)


def subscriber_kill_then_stall(env):
    """Kill the subscriber, watch for the new one, and stall Redis past
    upstream.timeout the moment it shows: the stall then catches the shared
    connections' CLIENT TRACKING for it in flight, a failed attempt that must
    never be taken as a refusal. Returns once tracking is not down (at most 1 s)."""
    with control(env.redis.port, env.timeout + 5) as client:
        old = {c["id"] for c in client.client_list(_type="pubsub")}
        client.client_kill_filter(_type="pubsub")
        procs.wait_until(lambda: {c["id"] for c in client.client_list(_type="pubsub")} - old,
                         1.0, step=0)
        client.execute_command("DEBUG", "SLEEP", env.timeout + 0.1)
    procs.wait_until(lambda: proxy_stats(env.proxy.port).get("tracking") != "down", 1.0)


def reload(env, seconds=2.5, period=0.1):
    """Flip the policy file and reload, by SIGHUP and by NEARCACHE RELOAD in turn."""
    failed_before = int(proxy_stats(env.proxy.port).get("reloads_failed", 0))
    link = Link(env.proxy.port)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        env.variant ^= 1
        procs.write_config(env.config_path, env.variant)
        if env.variant:
            env.proxy.signal(signal.SIGHUP)
        else:
            reload_by_command(env, link)
        time.sleep(period)
    link.close()
    time.sleep(0.2)
    failed = int(proxy_stats(env.proxy.port).get("reloads_failed", 0)) - failed_before
    if failed:
        env.tally.violate("reload", f"{failed} reloads of a valid file failed (reloads_failed)")


def reload_by_command(env, link):
    try:
        reply = link.call("NEARCACHE", "RELOAD")
    except Failure as f:
        reply = f.kind
    if reply != b"OK":
        env.tally.violate("reload", f"NEARCACHE RELOAD answered {reply!r}")


def sigterm(env):
    """SIGTERM the proxy, which must answer the requests sent before and exit 0;
    then start it again. Every other round (the first included) the proxy is
    stopped for a moment first, so that requests are still unread in its
    sockets when SIGTERM comes."""
    stopped = env.round % 2 == 0
    if stopped:
        env.proxy.signal(signal.SIGSTOP)
        time.sleep(0.2)
    sigterm_at = time.monotonic()
    env.proxy.signal(signal.SIGTERM)
    if stopped:
        env.proxy.signal(signal.SIGCONT)
    status = env.proxy.wait_exit(env.drain + 5)
    exited_at = time.monotonic()
    if status is None:
        env.tally.violate("exit-status", f"still running {env.drain + 5:.0f}s after SIGTERM")
        env.proxy.stop()
    elif status != 0:
        env.tally.violate("exit-status", f"exited with status {status} after SIGTERM")
    env.proxy.start()
    env.tally.shutdowns.append((sigterm_at, exited_at, time.monotonic()))


FAULTS = [
    Fault("baseline", baseline, 0, 0),
    Fault("redis-kill9", redis_kill9, 2, 1.5),
    Fault("redis-sigstop", redis_sigstop, 1, 2),
    Fault("proxy-sigstop", proxy_sigstop, 1, 1),
    Fault("subscriber-kill", subscriber_kill, 1, 1),
    Fault("subscriber-storm", subscriber_storm, 1, 1),
    Fault("shared-conn-kill", shared_conn_kill, 1, 1),
    Fault("debug-sleep", debug_sleep, 1, 2),
    Fault("subscriber-kill-then-stall", subscriber_kill_then_stall, 10, 0.1),
    Fault("reload", reload, 1, 1),
    Fault("sigterm", sigterm, 3, 0.5),
]
