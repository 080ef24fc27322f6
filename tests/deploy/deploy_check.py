#!/usr/bin/env python3
"""deploy_check.py - checks that the files of deploy/ work with the proxy.

static: yamllint; --check-config on the ConfigMap's nearcache.yaml; the Deployments'
mount (a directory, never subPath), probe ports and grace periods; systemd-analyze
verify on the unit; promtool check config on prometheus.yml.
live: redis-server and the proxy on the ConfigMap's file, laid out as kubelet does:
the Dockerfile's HEALTHCHECK, the probe paths, /metrics linted and scraped by
Prometheus, ConfigMap updates reloaded, /readyz and /healthz with Redis gone.

usage: deploy_check.py --bin build/nearcache --source . [--only static|live]
A check whose tool is missing (systemd-analyze, promtool, prometheus) is skipped.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import procs  # noqa: E402  first: it runs Debian's python3 if this one has no redis module
import redis
import yaml

CONFIG = "/etc/nearcache/nearcache.yaml"   # where the Deployments mount the ConfigMap's file
HOST = procs.HOST
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
URLS = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # never an HTTP proxy


class Failure(Exception):
    """A check that did not pass; the message says what and why."""


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, **kwargs)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def seconds(value):
    """A duration setting ("5s", "500ms", "1m", or plain milliseconds) in seconds."""
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", str(value)).groups()
    return int(number) * {"s": 1, "m": 60}.get(unit, 0.001)


def manifests(src):
    """(file name, document) of every document of deploy/kubernetes/*.yaml."""
    for path in sorted(glob.glob(os.path.join(src, "deploy/kubernetes/*.yaml"))):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                yield os.path.basename(path), doc


def configmap_text(src):
    texts = [doc["data"]["nearcache.yaml"] for _, doc in manifests(src)
             if doc["kind"] == "ConfigMap" and "nearcache.yaml" in doc.get("data", {})]
    if len(texts) != 1:
        raise Failure(f"{len(texts)} ConfigMaps hold a nearcache.yaml, not one")
    return texts[0]


def sidecars(src):
    """(file name, pod template, nearcache container) of every Deployment."""
    for name, doc in manifests(src):
        if doc["kind"] == "Deployment":
            template = doc["spec"]["template"]
            found = [c for c in template["spec"].get("initContainers", [])
                     + template["spec"]["containers"] if c["name"] == "nearcache"]
            if len(found) != 1:
                raise Failure(f"{name}: no container named nearcache")
            yield name, template, found[0]


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path; status 0 if it could not connect."""
    try:
        with URLS.open(f"http://{HOST}:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except urllib.error.URLError as e:
        return 0, str(e.reason)


# ---- static ------------------------------------------------------------------

def check_lint(src):
    files = (glob.glob(os.path.join(src, "deploy/**/*.y*ml"), recursive=True)
             + glob.glob(os.path.join(src, ".*.yaml")) + [os.path.join(src, ".yamllint")])
    r = run(["yamllint", "-s", "-c", os.path.join(src, ".yamllint")] + files)
    if r.returncode != 0:
        raise Failure("\n" + r.stdout + r.stderr)
    return f"{len(files)} files"


def check_configmap(src, binary, tmp):
    write(os.path.join(tmp, "configmap.yaml"), configmap_text(src))
    r = run([binary, "--check-config", "-c", os.path.join(tmp, "configmap.yaml")])
    rules = re.search(r": ok \((\d+) policy rules\)", r.stdout)
    if r.returncode != 0 or not rules or rules.group(1) == "0":
        raise Failure(f"--check-config exit {r.returncode}: {r.stdout}{r.stderr}")
    return f"{rules.group(1)} policy rules"


def check_deployments(src):
    settings = yaml.safe_load(configmap_text(src))
    admin = int(settings.get("admin", {}).get("listen", "127.0.0.1:9470").rsplit(":", 1)[1])
    drain = seconds(settings.get("shutdown", {}).get("drain_timeout", "5s"))
    names = []
    for name, template, c in sidecars(src):
        names.append(name)
        if c.get("args", [])[:2] != ["-c", CONFIG]:
            raise Failure(f"{name}: nearcache's args do not start with -c {CONFIG}")
        mounts = [m for m in c.get("volumeMounts", []) if CONFIG.startswith(m["mountPath"] + "/")]
        if len(mounts) != 1 or "subPath" in mounts[0]:
            raise Failure(f"{name}: {os.path.dirname(CONFIG)} is not one directory mount")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        probed = {ports.get(c[p]["httpGet"]["port"], c[p]["httpGet"]["port"])
                  for p in PROBES if p in c}
        probed.add(int(template["metadata"]["annotations"]["prometheus.io/port"]))
        if probed != {admin}:
            raise Failure(f"{name}: probes and scrape go to ports {probed}, admin.listen to {admin}")
        stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        sleep = int(stop[1]) if stop[:1] == ["sleep"] else 0
        grace = template["spec"].get("terminationGracePeriodSeconds", 30)
        if grace <= sleep + drain:
            raise Failure(f"{name}: grace period {grace} s <= preStop {sleep} s + drain {drain} s")
    return ", ".join(names)


def check_systemd(src, binary, tmp):
    if not shutil.which("systemd-analyze"):
        return "skipped: no systemd-analyze"
    with open(os.path.join(src, "deploy/systemd/nearcache.service")) as f:
        write(os.path.join(tmp, "nearcache.service"),
              f.read().replace("/usr/local/bin/nearcache", binary))
    r = run(["systemd-analyze", "verify", "--man=no", os.path.join(tmp, "nearcache.service")])
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():   # warnings exit 0
        raise Failure(f"exit {r.returncode}\n{r.stdout}{r.stderr}")


def check_prometheus_config(src):
    if not shutil.which("promtool"):
        return "skipped: no promtool"
    r = run(["promtool", "check", "config", os.path.join(src, "deploy/compose/prometheus.yml")])
    if r.returncode != 0:
        raise Failure(r.stdout + r.stderr)


# ---- live --------------------------------------------------------------------

def publish(directory, text, version):
    """Writes text as kubelet updates a ConfigMap volume: into a new directory ..vN,
    then ..data is repointed to it by a rename, and the old one is removed. The
    file the proxy reads, nearcache.yaml, is a symlink to ..data/nearcache.yaml."""
    os.makedirs(os.path.join(directory, f"..v{version}"))
    write(os.path.join(directory, f"..v{version}", "nearcache.yaml"), text)
    os.symlink(f"..v{version}", os.path.join(directory, "..data_tmp"))
    os.replace(os.path.join(directory, "..data_tmp"), os.path.join(directory, "..data"))
    if version == 1:
        os.symlink("..data/nearcache.yaml", os.path.join(directory, "nearcache.yaml"))
    else:
        shutil.rmtree(os.path.join(directory, f"..v{version - 1}"))


def check_healthcheck(src, admin):
    with open(os.path.join(src, "deploy/Dockerfile")) as f:
        found = re.search(r"^HEALTHCHECK .*?\bCMD (.+)$", f.read(), re.M)
    if not found or "127.0.0.1/9470" not in found.group(1):
        raise Failure("deploy/Dockerfile has no one-line HEALTHCHECK on 127.0.0.1/9470")
    status = [run(["sh", "-c", found.group(1).replace("/9470", f"/{port}")]).returncode
              for port in (admin, procs.free_port())]
    if status[0] != 0 or status[1] == 0:
        raise Failure(f"exit {status[0]} on the admin port, {status[1]} on a closed one")


def check_probes(src, admin):
    paths = sorted({c[p]["httpGet"]["path"] for _, _, c in sidecars(src) for p in PROBES if p in c})
    for path in paths:
        if not procs.wait_until(lambda: get(admin, path)[0] == 200, 10):
            raise Failure("GET %s: %d %s" % (path, *get(admin, path)))
    return " ".join(paths)


def prometheus_hits(web):
    """nearcache_cache_hits_total as Prometheus has it, through its query API (-1: none yet)."""
    status, body = get(web, "/api/v1/query?query=nearcache_cache_hits_total")
    result = json.loads(body)["data"]["result"] if status == 200 else []
    return float(result[0]["value"][1]) if result else -1


def check_prometheus(src, tmp, admin, proxy):
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        return "skipped: no prometheus or promtool"
    status, body = get(admin, "/metrics")
    r = run(["promtool", "check", "metrics"], input=body)
    if status != 200 or r.returncode != 0:
        raise Failure(f"GET /metrics: {status}; promtool check metrics: {r.stdout}{r.stderr}")
    with open(os.path.join(src, "deploy/compose/prometheus.yml")) as f:   # target on one line
        write(os.path.join(tmp, "prometheus.yml"),
              f.read().replace("nearcache:9470", f"{HOST}:{admin}"))
    web = procs.free_port()
    server = subprocess.Popen(["prometheus", f"--config.file={tmp}/prometheus.yml",
                               f"--storage.tsdb.path={tmp}/prometheus",
                               f"--web.listen-address={HOST}:{web}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def targets():
            status, body = get(web, "/api/v1/targets")
            return json.loads(body)["data"]["activeTargets"] if status == 200 else []
        if not procs.wait_until(lambda: [t["health"] for t in targets()] == ["up"], 30, 0.5):
            raise Failure(f"the scrape target is not up: {targets()}")
        client = redis.Redis(host=HOST, port=proxy.port)
        client.set("product:1", "p")
        for _ in range(3):   # a miss, then hits
            client.get("product:1")
        client.close()
        if not procs.wait_until(lambda: prometheus_hits(web) >= 2, 30, 0.5):
            raise Failure(f"Prometheus's nearcache_cache_hits_total: {prometheus_hits(web)}")
    finally:
        procs.stop_pid(server)
    return "promtool check metrics, target up, nearcache_cache_hits_total queried"


def check_configmap_update(text, proxy, admin, directory):
    def reloads(result):
        found = re.search(rf'^nearcache_reloads_total{{result="{result}"}} (\S+)$',
                          get(admin, "/metrics")[1], re.M)
        return float(found.group(1)) if found else 0
    for version, extra, result in ((2, "# version 2\n", "success"),
                                   (3, "no_such_setting: 1\n", "failure")):
        before = reloads(result)
        publish(directory, text + extra, version)
        if not procs.wait_until(lambda: reloads(result) > before, 20):
            raise Failure(f"version {version}: reloads_total{{result=\"{result}\"}} stayed {before}")
    if not procs.answers_ping(proxy.port):
        raise Failure("the proxy no longer answers PING after a failed reload")


def check_redis_down(redis, admin):
    redis.stop()
    if not procs.wait_until(lambda: get(admin, "/readyz")[0] == 503, 10):
        raise Failure("GET /readyz: %d %s with Redis stopped" % get(admin, "/readyz"))
    if get(admin, "/healthz")[0] != 200:
        raise Failure("GET /healthz is not 200 with Redis stopped: liveness would restart it")


def live(src, binary, tmp, check):
    text = configmap_text(src)
    directory = os.path.join(tmp, "etc-nearcache")
    publish(directory, text, 1)
    admin = procs.free_port()
    redis = procs.RedisServer(tmp)
    proxy = procs.Proxy(binary, tmp, os.path.join(directory, "nearcache.yaml"), redis.port,
                        [f"admin.listen={HOST}:{admin}"])

    def start():
        redis.start()
        proxy.start()
    try:
        if check("start redis-server and nearcache", start):
            check("Dockerfile HEALTHCHECK", check_healthcheck, src, admin)
            check("Deployment probe paths", check_probes, src, admin)
            check("Prometheus", check_prometheus, src, tmp, admin, proxy)
            check("ConfigMap update", check_configmap_update, text, proxy, admin, directory)
            check("Redis down", check_redis_down, redis, admin)
    finally:
        proxy.stop()
        redis.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, help="the nearcache binary")
    parser.add_argument("--source", required=True, help="the repository")
    parser.add_argument("--only", choices=("static", "live"), help="run one part")
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("NEARCACHE_")]:
        del os.environ[name]   # the proxy refuses unknown ones; known ones would skew it
    failed = []

    def check(name, fn, *fn_args):
        try:
            result = fn(*fn_args)
            print(f"ok   {name}" + (f": {result}" if result else ""), flush=True)
            return True
        except Exception as e:   # a failed check, or one that could not run: both fail
            detail = str(e) if isinstance(e, Failure) else f"{type(e).__name__}: {e}"
            print(f"FAIL {name}: {detail}", flush=True)
            failed.append(name)
            return False

    src, binary = os.path.abspath(args.source), os.path.abspath(args.bin)
    with tempfile.TemporaryDirectory(prefix="deploy-check.") as tmp:
        if args.only != "live":
            check("yamllint -s", check_lint, src)
            check("ConfigMap nearcache.yaml", check_configmap, src, binary, tmp)
            check("Deployments", check_deployments, src)
            check("systemd unit", check_systemd, src, binary, tmp)
            check("prometheus.yml", check_prometheus_config, src)
        if args.only != "static":
            live(src, binary, tmp, check)
    if failed:
        print(f"deploy_check: {len(failed)} failed: {', '.join(failed)}")
        return 1
    print("deploy_check: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
