#!/usr/bin/python3
"""survey_redispy.py - the redis-py driver of survey.py (one configuration).

  survey_redispy.py CONFIG_JSON      then JSON requests on stdin, one a line

The protocol of every survey driver: argv[1] is the configuration (host,
port, and optionally name, user, password, db, resp, style); each request
line is {"op": "workload", "p": PREFIX} or {"op": "gets", "key": K, "n": N},
answered by one line {"ok": RESULT} or {"error": MESSAGE}. A command's error
is a result ({"err": MESSAGE}) so that it is compared like any reply.
"""
import json
import sys

import redis


def connect(cfg):
    style = cfg.get("style", "")
    if style == "url":     # redis://[user:password@]host:port/db?client_name=...
        auth = ""
        if "password" in cfg:
            auth = f"{cfg.get('user', '')}:{cfg['password']}@"
        url = f"redis://{auth}{cfg['host']}:{cfg['port']}/{cfg.get('db', 0)}"
        if "name" in cfg:
            url += f"?client_name={cfg['name']}"
        return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    kw = {"host": cfg["host"], "port": cfg["port"], "decode_responses": True,
          "socket_timeout": 5}
    for key, arg in (("name", "client_name"), ("user", "username"),
                     ("password", "password"), ("db", "db")):
        if key in cfg:
            kw[arg] = cfg[key]
    return redis.Redis(**kw)


def attempt(fn):
    try:
        return fn()
    except redis.RedisError as e:
        return {"err": f"{type(e).__name__}: {e}"}


def workload(c, p):
    return [
        attempt(lambda: c.set(p + "s", "v1")),
        attempt(lambda: c.get(p + "s")),
        attempt(lambda: c.get(p + "missing")),
        attempt(lambda: c.hset(p + "h", mapping={"f1": "a", "f2": "b"})),
        attempt(lambda: c.hgetall(p + "h")),
        attempt(lambda: c.mget([p + "s", p + "missing", p + "h"])),
        attempt(lambda: c.client_getname()),
        attempt(lambda: c.set(p + "hot", "hotvalue")),
        attempt(lambda: c.get(p + "hot")),
    ]


def main():
    cfg = json.loads(sys.argv[1])
    c = connect(cfg)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            if req["op"] == "workload":
                out = {"ok": workload(c, req["p"])}
            else:
                out = {"ok": [attempt(lambda: c.get(req["key"])) for _ in range(req["n"])]}
        except Exception as e:  # noqa: BLE001 - reported to survey.py
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
