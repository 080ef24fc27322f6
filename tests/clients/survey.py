#!/usr/bin/python3
"""survey.py - real client libraries, configured as their users configure
them, through nearcache: same results as direct Redis, and served from the tier?

For each configuration (a library with a client name, a password, an ACL
user, a database, RESP3, or a combination) it runs a fixed workload (SET/GET,
a missing key, HSET/HGETALL, MGET, CLIENT GETNAME, then GETs of one key) twice
with the same library and settings: once connected to Redis directly, once to
nearcache in front of it. It reports:

  identical   every value the library returned (errors included), and the
              database the keys landed in, are the same both ways
  tier        after the first fills, 20 repeated GETs of one key raised
              NEARCACHE STATS `hits` by at least 18 (up to 5 tries of 20,
              so that a lane opened by this client gets tracked)

and, for every configuration not served from the tier or with differing
results, what the library sent on connect (recorded by a relay in front of
Redis during the direct run; passwords redacted) and what the proxy's
counters showed.

Redis is started three ways (tests/clients/servers.py, with extra arguments):
open; with `requirepass pw` (proxy: upstream.password=pw); with `requirepass
pw` and an ACL user app/apw (proxy: upstream.username=app,
upstream.password=apw). A client authenticates with the proxy's own upstream
credentials, which the proxy accepts itself.

Libraries (each skipped, not failed, when it is not installed):
  redis-py        python3-redis                    survey_redispy.py
  ruby-redis      ruby-redis (+ ruby-hiredis)      survey_ruby.rb
  perl-redis      libredis-perl                    survey_perl.pl
  redis-fast      libredis-fast-perl               survey_perl.pl
  phpredis        php-cli php-redis                survey_php.php
  predis          php-cli php-predis               survey_php.php
  ioredis         npm ioredis                      survey_node.js
  node-redis4/5   npm redis@4, redis@5             survey_node.js
  redigo          golang-go golang-github-gomodule-redigo-dev   survey_redigo.go
  go-redis5       golang-go golang-gopkg-redis.v5-dev           survey_goredis.go
  redis-cli, redis-benchmark (redis-tools)         driven from here

The npm packages are installed (`npm install`, pinned versions) into
--npm-dir, outside the source tree, unless --no-install; the Go drivers are
built offline in GOPATH mode against Debian's Go sources into a temporary
directory.

  python3 tests/clients/survey.py --bin build/nearcache
  python3 tests/clients/survey.py --bin build/nearcache --only phpredis,predis -v

Exit status 0 once the survey ran (its findings are in the table); 1 with
--strict if a configuration was not served from the tier or differed; 2 if
the servers could not be started.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside servers.py in the source tree
import servers  # first: it runs Debian's python3 if this one has no redis module
import argparse
import json
import tempfile
import time

import redis
from servers import HOST, Servers
from survey_drivers import (ACL_PASSWORD, ACL_USER, NAME, PASSWORD, Clients, DriverError,
                            Spy, redis_conn)

HOT_READS = 20
HIT_THRESHOLD = 18
TRIES = 5

# The three ways Redis and nearcache are started: redis-server arguments, proxy
# settings, and the credentials of the survey's own connections (ping, key
# lookups).
SETUPS = {
    "open": ([], [], None),
    "pw": (["--requirepass", PASSWORD], [f"upstream.password={PASSWORD}"], (None, PASSWORD)),
    "acl": (["--requirepass", PASSWORD, "--user", ACL_USER, "on", ">" + ACL_PASSWORD, "~*",
             "&*", "+@all"],
            [f"upstream.username={ACL_USER}", f"upstream.password={ACL_PASSWORD}"],
            (ACL_USER, ACL_PASSWORD)),
}

PW = {"password": PASSWORD}
ACL = {"user": ACL_USER, "password": ACL_PASSWORD}
N = {"name": NAME}
DB1 = {"db": 1}
DB0 = {"db": 0}
R3 = {"resp": 3}


def c(*parts, **extra):
    out = {}
    for p in parts:
        out.update(p)
    out.update(extra)
    return out


# (client, setup, configuration label, configuration)
CONFIGS = [
    ("redis-py", "open", "default", {}),
    ("redis-py", "open", "client_name", c(N)),
    ("redis-py", "open", "db=1", c(DB1)),
    ("redis-py", "open", "from_url /1?client_name", c(N, DB1, style="url")),
    ("redis-py", "pw", "password", c(PW)),
    ("redis-py", "pw", "password+name+db=1", c(PW, N, DB1)),
    ("redis-py", "acl", "username+password", c(ACL)),
    ("redis-py", "acl", "username+password+name+db=1", c(ACL, N, DB1)),

    ("ruby-redis", "open", "default", {}),
    ("ruby-redis", "open", "id (name)", c(N)),
    ("ruby-redis", "open", "db: 1", c(DB1)),
    ("ruby-redis", "open", "driver: :hiredis, db: 1", c(DB1, style="hiredis")),
    ("ruby-redis", "pw", "url redis://:pw@/1 + id", c(PW, N, DB1, style="url")),
    ("ruby-redis", "acl", "username+password+id+db", c(ACL, N, DB1)),

    ("perl-redis", "open", "default", {}),
    ("perl-redis", "open", "name", c(N)),
    ("perl-redis", "open", "select(1)", c(DB1)),
    ("perl-redis", "pw", "password+name+select(1)", c(PW, N, DB1)),
    ("perl-redis", "acl", "username+password", c(ACL)),

    ("redis-fast", "open", "default", {}),
    ("redis-fast", "open", "name+select(1)", c(N, DB1)),
    ("redis-fast", "pw", "password", c(PW)),
    ("redis-fast", "acl", "on_connect auth(user,pw)+select(1)", c(ACL, DB1, style="on_connect")),

    ("phpredis", "open", "default", {}),
    ("phpredis", "open", "select(0)", c(DB0)),
    ("phpredis", "open", "select(1)+client setname", c(DB1, N)),
    ("phpredis", "open", "pconnect+select(1)", c(DB1, style="pconnect")),
    ("phpredis", "pw", "auth(pw)+select(0)", c(PW, DB0)),
    ("phpredis", "pw", "auth(pw)+select(1)+setname", c(PW, DB1, N)),
    ("phpredis", "acl", "auth([user,pw])+select(1)", c(ACL, DB1)),
    ("phpredis", "acl", "connect context auth", c(ACL, style="context")),

    ("predis", "open", "default", {}),
    ("predis", "open", "database=0", c(DB0)),
    ("predis", "open", "database=1+client setname", c(DB1, N)),
    ("predis", "pw", "password+database=0", c(PW, DB0)),
    ("predis", "pw", "uri redis://:pw@/1", c(PW, DB1, style="uri")),
    ("predis", "acl", "username+password+database=1", c(ACL, DB1)),

    ("ioredis", "open", "default", {}),
    ("ioredis", "open", "connectionName", c(N)),
    ("ioredis", "open", "db: 1", c(DB1)),
    ("ioredis", "pw", "password+connectionName+db", c(PW, N, DB1)),
    ("ioredis", "acl", "username+password", c(ACL)),

    ("node-redis4", "open", "default", {}),
    ("node-redis4", "open", "name+database: 1", c(N, DB1)),
    ("node-redis4", "pw", "url redis://:pw@/1", c(PW, DB1, style="url")),
    ("node-redis4", "acl", "username+password+name", c(ACL, N)),

    ("node-redis5", "open", "default", {}),
    ("node-redis5", "open", "name+database: 1", c(N, DB1)),
    ("node-redis5", "open", "RESP: 3", c(R3)),
    ("node-redis5", "open", "RESP: 3+name+database: 1", c(R3, N, DB1)),
    ("node-redis5", "open", "RESP: 3+clientSideCache", c(R3, style="csc")),
    ("node-redis5", "pw", "password+name", c(PW, N)),
    ("node-redis5", "pw", "RESP: 3+password+database: 1", c(R3, PW, DB1)),
    ("node-redis5", "acl", "username+password", c(ACL)),
    ("node-redis5", "acl", "RESP: 3+username+password+name", c(R3, ACL, N)),

    ("redis-cli", "open", "default", {}),
    ("redis-cli", "open", "-n 1", c(DB1)),
    ("redis-cli", "open", "-3", c(R3)),
    ("redis-cli", "pw", "-a pw -n 1", c(PW, DB1)),
    ("redis-cli", "pw", "-a pw -3", c(PW, R3)),
    ("redis-cli", "acl", "--user --pass -n 1", c(ACL, DB1)),

    ("redis-benchmark", "open", "default", {}),
    ("redis-benchmark", "open", "--dbnum 1", c(DB1)),
    ("redis-benchmark", "open", "-3", c(R3)),
    ("redis-benchmark", "pw", "-a pw --dbnum 1", c(PW, DB1)),
    ("redis-benchmark", "acl", "--user -a", c(ACL)),

    ("redigo", "open", "default", {}),
    ("redigo", "open", "DialClientName+DialDatabase(1)", c(N, DB1)),
    ("redigo", "pw", "DialPassword", c(PW)),
    ("redigo", "acl", "DialUsername+Password+Name+DB(1)", c(ACL, N, DB1)),

    ("go-redis5", "open", "DB: 1", c(DB1)),
    ("go-redis5", "pw", "Password+DB: 1", c(PW, DB1)),
]


class SurveyServers(Servers):
    """servers.Servers with extra redis-server arguments (requirepass, ACL user)."""

    def __init__(self, binary, settings, redis_args, creds):
        super().__init__(binary, settings)
        self.redis_args = redis_args
        self.creds = creds

    def _spawn(self, argv, log):
        if argv[0] == "redis-server":
            argv = argv + self.redis_args
        return super()._spawn(argv, log)

    def __enter__(self):
        # servers.Servers pings without credentials; with requirepass Redis
        # needs them (the proxy, client authentication off, accepts its own).
        plain = servers.answers_ping
        creds = self.creds

        def answers_ping(port):
            client = redis_conn(port, creds)
            try:
                client.socket_timeout = 0.5
                return client.ping()
            except redis.RedisError:
                return False
            finally:
                client.close()

        servers.answers_ping = answers_ping
        try:
            return super().__enter__()
        finally:
            servers.answers_ping = plain


# --------------------------------------------------------------------- survey

class Result:
    def __init__(self, client, setup, label):
        self.client, self.setup, self.label = client, setup, label
        self.identical = None
        self.served = None
        self.error = None
        self.diff = ""
        self.handshake = ""
        self.deltas = {}
        self.tries = 0
        self.tier_state = {}


def key_dbs(admin_by_db, key):
    return [db for db, conn in admin_by_db.items() if conn.exists(key)]


def first_difference(direct, proxied):
    if len(direct) != len(proxied):
        return f"{len(direct)} results direct, {len(proxied)} through the proxy"
    for i, (d, p) in enumerate(zip(direct, proxied)):
        if d != p:
            return f"result {i}: direct {json.dumps(d)[:120]}, proxy {json.dumps(p)[:120]}"
    return ""


def survey_one(clients, srv, creds, admin_by_db, idx, client, setup, label, cfg):
    res = Result(client, setup, label)
    tag = f"sv{idx}:"
    d_prefix, p_prefix = tag + "d:", tag + "p:"

    # Direct to Redis, through a relay that records what the library sends.
    spy = Spy(srv.redis_port)
    drv = None
    try:
        drv = clients.start(client, dict(cfg, host=HOST, port=spy.port))
        d_work = drv.workload(d_prefix)
        d_gets = drv.gets(d_prefix + "hot", HOT_READS)
    except DriverError as e:
        res.error = f"direct run failed: {e}"
        return res
    finally:
        if drv:
            drv.close()
        spy.stop()
    res.handshake = spy.handshake(d_prefix)

    # Through nearcache.
    drv = None
    try:
        drv = clients.start(client, dict(cfg, host=HOST, port=srv.proxy_port))
        p_work = drv.workload(p_prefix)
        p_gets = drv.gets(p_prefix + "hot", HOT_READS)      # fills
        served = False
        for attempt in range(TRIES):
            before = srv.stats()
            again = drv.gets(p_prefix + "hot", HOT_READS)
            after = srv.stats()
            res.tries = attempt + 1
            res.deltas = {k: after.get(k, 0) - before.get(k, 0)
                          for k in ("hits", "misses", "total_requests", "bypassed", "fills",
                                    "fills_refused")}
            res.deltas["total_requests"] -= 1    # the first NEARCACHE STATS itself
            res.tier_state = {k: after.get(k) for k in ("cache_enabled", "cache_active",
                                                        "tracking")}
            if again != p_gets:
                res.diff = f"repeated GETs through the proxy changed: {again[:2]} vs {p_gets[:2]}"
            if res.deltas["hits"] >= HIT_THRESHOLD:
                served = True
                break
            time.sleep(0.1 * (attempt + 1))
        res.served = served
    except DriverError as e:
        res.error = f"proxy run failed: {e}"
        return res
    finally:
        if drv:
            drv.close()

    d_dbs, p_dbs = key_dbs(admin_by_db, d_prefix + "s"), key_dbs(admin_by_db, p_prefix + "s")
    diffs = [x for x in (first_difference(d_work, p_work),
                         first_difference(d_gets, p_gets),
                         f"keys in db {d_dbs} direct, db {p_dbs} through the proxy"
                         if d_dbs != p_dbs else "", res.diff) if x]
    res.identical = not diffs
    res.diff = "; ".join(diffs)
    # A workload that failed the same way both ways proves nothing.
    errs = [r for r in d_work if isinstance(r, dict) and "err" in r]
    if errs and client not in ("redis-cli", "redis-benchmark"):
        res.diff = (res.diff + "; " if res.diff else "") + f"direct run had errors: {errs[0]}"
    return res


def explain(res):
    d = res.deltas
    if res.error:
        return res.error
    notes = []
    if not res.served and d:
        if res.tier_state.get("cache_active") != 1:
            notes.append("the tier is not active: " + ", ".join(
                f"{k}:{v}" for k, v in res.tier_state.items()))
        elif d["total_requests"] < HOT_READS:
            notes.append(f"only {d['total_requests']} of {HOT_READS} GETs reached the proxy "
                         "(the library's own client-side cache answered the rest)")
        elif d["hits"] + d["misses"] == 0 and d["bypassed"] == 0:
            notes.append("GETs never looked up in the tier: the client is on a dedicated "
                         "connection")
        elif d["bypassed"]:
            notes.append(f"tier off: {d['bypassed']} reads bypassed")
        else:
            notes.append(f"tier lookups missed: hits +{d['hits']}, misses +{d['misses']}, "
                         f"fills +{d['fills']}, fills_refused +{d['fills_refused']}")
    if res.diff:
        notes.append(res.diff)
    return "; ".join(notes)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default="build/nearcache", help="the nearcache binary")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an extra proxy setting (repeatable)")
    p.add_argument("--only", default="", help="comma-separated clients to survey")
    p.add_argument("--npm-dir", default=os.path.join(tempfile.gettempdir(),
                                                     "nearcache-survey-npm"),
                   help="where the npm packages are installed (outside the source tree)")
    p.add_argument("--no-install", action="store_true", help="do not run npm install")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 if a configuration was not served or differed")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="print each configuration's handshake and counters as it runs")
    args = p.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"{args.bin}: not an executable nearcache binary")

    only = {x.strip() for x in args.only.split(",") if x.strip()}
    configs = [cf for cf in CONFIGS if not only or cf[0] in only]
    wanted = []
    for cf in configs:
        if cf[0] not in wanted:
            wanted.append(cf[0])

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nearcache-survey-") as tmp:
        clients = Clients(args, tmp)
        clients.probe(wanted)
        if not clients.hiredis:
            configs = [cf for cf in configs if cf[3].get("style") != "hiredis"]
        results = []
        idx = 0
        for setup, (redis_args, settings, creds) in SETUPS.items():
            todo = [cf for cf in configs if cf[1] == setup and cf[0] not in clients.skipped]
            if not todo:
                continue
            try:
                srv_ctx = SurveyServers(args.bin, settings + args.set, redis_args, creds)
                srv = srv_ctx.__enter__()
            except RuntimeError as e:
                print(f"cannot start the servers ({setup}): {e}", file=sys.stderr)
                return 2
            try:
                admin_by_db = {db: redis_conn(srv.redis_port, creds, db) for db in (0, 1)}
                for client, _, label, cfg in todo:
                    idx += 1
                    res = survey_one(clients, srv, creds, admin_by_db, idx, client, setup,
                                     label, cfg)
                    results.append(res)
                    if args.verbose:
                        print(f"[{time.monotonic() - started:5.1f}s] {client} / {label} "
                              f"({setup}): identical={res.identical} served={res.served} "
                              f"tries={res.tries} {res.deltas}\n    connect: {res.handshake}"
                              + (f"\n    {explain(res)}" if explain(res) else ""), flush=True)
                for conn in admin_by_db.values():
                    conn.close()
            finally:
                srv_ctx.__exit__(None, None, None)

    # The table.
    yn = lambda v: "yes" if v else ("ERR" if v is None else "no")  # noqa: E731
    rows = [(r.client + (f" {clients.versions.get(r.client)}" if clients.versions.get(r.client)
                         else ""),
             f"{r.label} [{r.setup}]", yn(r.identical), yn(r.served)) for r in results]
    for client in wanted:
        if client in clients.skipped:
            rows.append((client, "(all)", "skipped", clients.skipped[client]))
    widths = [max(len(row[i]) for row in rows + [("client", "configuration", "identical",
                                                    "tier")]) for i in range(3)]
    header = ("client", "configuration", "identical", "tier")
    print()
    for row in [header] + rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")

    bad = [r for r in results if not r.served or not r.identical]
    if bad:
        print("\nNot served from the tier, or different results:")
        for r in bad:
            print(f"- {r.client} / {r.label} [{r.setup}]: {explain(r)}\n"
                  f"    connect: {r.handshake}")
    served = sum(1 for r in results if r.served)
    differing = sum(1 for r in results if r.identical is not True)
    print(f"\n{served} of {len(results)} configurations served from the tier; "
          f"{differing} with differing results"
          + (f"; {len(clients.skipped)} clients skipped" if clients.skipped else "")
          + f" ({time.monotonic() - started:.0f} s)")
    return 1 if args.strict and bad else 0


if __name__ == "__main__":
    sys.exit(main())
