#!/usr/bin/env python3
"""Summarizes bench/scripts/run.sh's runs: medians per workload and target, the
ratios of nearcache to direct Redis and to twemproxy, as a Markdown table
(printed and written to results.md), a CSV and two gnuplot PNG charts; and the
CPU time per request of each target process and of the Redis behind a proxy
(loadgen --cpu: user + system seconds over the measured phase, from /proc),
with nearcache's ratios to Redis's own and to twemproxy's, and for the writes
those of a nearcache with the tier off; and each process's CPU split into
user and system time.

usage: bench/report.py OUT_DIR MACHINE ROUNDS SECONDS
"""
import collections
import json
import statistics
import subprocess
import sys

TARGETS = ("redis", "twemproxy", "nearcache")
BASE = "nearcache-base"  # run.sh with BASE=dir: an earlier build, in the same rounds
NOTIER = "nearcache-notier"  # the tier off: run for the writes only


def load(path):
    runs = collections.defaultdict(list)
    order = []
    for line in open(path):
        r = json.loads(line)
        key = (r["workload"], r["target"])
        runs[key].append(r)
        if r["workload"] not in order:
            order.append(r["workload"])
    return runs, order


def median(runs, field, sub=None):
    values = [(r[field][sub] if sub else r[field]) for r in runs]
    return statistics.median(values)


def cpu_split(rs):
    """The target process's user and system µs per request (medians), or []."""
    if not all(r["requests"] and r.get("cpu_user_s") for r in rs):
        return []
    user = [r["cpu_user_s"][0] * 1e6 / r["requests"] for r in rs]
    total = [r["cpu_s"][0] * 1e6 / r["requests"] for r in rs]
    return [statistics.median(user), statistics.median(t - u for t, u in zip(total, user))]


def summarize(runs, order):
    rows = []
    for w in order:
        row = {"workload": w}
        for t in TARGETS + (BASE, NOTIER):
            rs = runs.get((w, t), [])
            if not rs:
                continue
            row[t] = {
                "rps": median(rs, "rps"),
                "p50": median(rs, "latency_us", "p50"),
                "p99": median(rs, "latency_us", "p99"),
                "errors": sum(sum(r["errors"].values()) for r in rs),
                "wrong": sum(r["wrong"] for r in rs),
                # µs per request of the target process, then of the Redis behind it
                "cpu": [statistics.median(r["cpu_s"][i] * 1e6 / r["requests"] for r in rs)
                        for i in range(len(rs[0].get("cpu_s", [])))] if all(
                            r["requests"] for r in rs) else [],
                "split": cpu_split(rs),
            }
        rows.append(row)
    return rows


def ratio(row, a, b):
    return row[a]["rps"] / row[b]["rps"] if a in row and b in row and row[b]["rps"] else float("nan")


def table(rows):
    lines = [
        "| workload | redis rps | twemproxy rps | nearcache rps | nc/redis | nc/twem "
        "| p50 µs redis / twem / nc | p99 µs redis / twem / nc | errors, wrong |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        cells = [row["workload"]]
        cells += [f"{row[t]['rps']:.0f}" if t in row else "-" for t in TARGETS]
        cells += [f"{ratio(row, 'nearcache', 'redis'):.2f}", f"{ratio(row, 'nearcache', 'twemproxy'):.2f}"]
        for q in ("p50", "p99"):
            cells.append(" / ".join(f"{row[t][q]:.0f}" if t in row else "-" for t in TARGETS))
        bad = sum(row[t]["errors"] + row[t]["wrong"] for t in TARGETS if t in row)
        cells.append(str(bad) if bad else "0")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_ratio(row, a, b):
    ok = a in row and b in row and row[a]["cpu"] and row[b]["cpu"] and row[b]["cpu"][0]
    return row[a]["cpu"][0] / row[b]["cpu"][0] if ok else float("nan")


def cpu_table(rows):
    """CPU µs per request: each target process, the Redis behind each proxy."""
    lines = [
        "| workload | redis µs/req | twemproxy µs/req (+ redis) | nearcache µs/req (+ redis) "
        "| nc/redis CPU | nc/twem CPU | tier off: nc µs/req (+ redis) | nc/twem CPU |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def cell(row, t):
        cpu = row[t]["cpu"] if t in row else []
        return " (+ ".join(f"{v:.2f}" for v in cpu[:2]) + (")" if len(cpu) > 1 else "") \
            if cpu else "-"

    for row in rows:
        cells = [row["workload"]] + [cell(row, t) for t in TARGETS]
        cells += [f"{cpu_ratio(row, 'nearcache', 'redis'):.2f}",
                  f"{cpu_ratio(row, 'nearcache', 'twemproxy'):.2f}", cell(row, NOTIER),
                  f"{cpu_ratio(row, NOTIER, 'twemproxy'):.2f}" if NOTIER in row else "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def split_table(rows):
    """Each target process's CPU per request split into user and system time:
    what the proxy's own code costs, and what the kernel does for it."""
    targets = TARGETS + (NOTIER,)
    lines = [
        "| workload | redis user / sys | twemproxy user / sys | nearcache user / sys "
        "| tier off: nc user / sys |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]

    def cell(row, t):
        split = row[t]["split"] if t in row else []
        return " / ".join(f"{v:.2f}" for v in split) if split else "-"

    for row in rows:
        lines.append("| " + " | ".join([row["workload"]] + [cell(row, t) for t in targets]) + " |")
    return "\n".join(lines)


def base_table(rows):
    """The earlier build (BASE) beside this one: ratios to Redis's throughput
    and CPU per request, measured in the same rounds."""
    lines = [
        "| workload | nc/redis rps, base | now | nc/redis CPU, base | now "
        "| nc µs/req, base | now |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if BASE not in row:
            continue
        cpu = [row[t]["cpu"][0] if t in row and row[t]["cpu"] else float("nan")
               for t in (BASE, "nearcache")]
        cells = [row["workload"], f"{ratio(row, BASE, 'redis'):.2f}",
                 f"{ratio(row, 'nearcache', 'redis'):.2f}",
                 f"{cpu_ratio(row, BASE, 'redis'):.2f}",
                 f"{cpu_ratio(row, 'nearcache', 'redis'):.2f}", f"{cpu[0]:.2f}", f"{cpu[1]:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def plot(out, rows):
    with open(f"{out}/results.csv", "w") as f:
        f.write("workload redis_rps twemproxy_rps nearcache_rps redis_p99 twemproxy_p99 nearcache_p99\n")
        for row in rows:
            vals = [row[t]["rps"] if t in row else 0 for t in TARGETS]
            vals += [row[t]["p99"] if t in row else 0 for t in TARGETS]
            f.write(row["workload"] + " " + " ".join(f"{v:.1f}" for v in vals) + "\n")
    script = f"""
set terminal pngcairo size 1200,520 font ',10'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set xtics rotate by -30 scale 0
set key top right
set grid ytics
set datafile separator ' '
set key autotitle columnhead
set output '{out}/throughput.png'
set title 'requests per second (median; higher is better)'
set logscale y
plot '{out}/results.csv' using 2:xtic(1) title 'redis' lc rgb '#d62728', \\
     '' using 3 title 'twemproxy' lc rgb '#7f7f7f', '' using 4 title 'nearcache' lc rgb '#1f77b4'
set output '{out}/latency.png'
set title 'p99 latency in µs (median; lower is better)'
plot '{out}/results.csv' using 5:xtic(1) title 'redis' lc rgb '#d62728', \\
     '' using 6 title 'twemproxy' lc rgb '#7f7f7f', '' using 7 title 'nearcache' lc rgb '#1f77b4'
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def main():
    out, machine, rounds, seconds = sys.argv[1:5]
    runs, order = load(f"{out}/raw.jsonl")
    rows = summarize(runs, order)
    text = table(rows) + "\n\nCPU per request (user + system, µs):\n\n" + cpu_table(rows)
    text += "\n\nThe same split into user and system time (µs per request):\n\n" + split_table(rows)
    if base_table(rows):
        text += "\n\nThe base build (BASE) and this one, in the same rounds:\n\n" + base_table(rows)
    print(text)
    with open(f"{out}/results.md", "w") as f:
        f.write(f"machine: {machine}; {rounds} rounds of {seconds} s per run\n\n{text}\n")
    plot(out, rows)
    print(f"\nwritten: {out}/results.md, results.csv, raw.jsonl, throughput.png, latency.png")


if __name__ == "__main__":
    main()
