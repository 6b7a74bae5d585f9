#!/usr/bin/env python3
"""Summarise an enforcement CSV written by run.sh (standard library only).

Usage: analyze.py RESULTS.csv

Per (configuration, syscall): runs, median ns/call (wall and the loop's own
CPU time), and the cost a filter adds over the same setting without one
(host_sandmine - host_none; docker_default and docker_sandmine -
docker_unconfined), as the difference of medians and as the median of the
per-round paired differences (which cancels slow drift of the machine), and
the generated profile's added cost as a share of Docker's default's.
"""
import csv
import statistics
import sys

ORDER = ["host_none", "host_sandmine", "docker_unconfined", "docker_default", "docker_sandmine", "docker_sandmine_log"]
BASE = {"host_sandmine": "host_none", "docker_default": "docker_unconfined",
        "docker_sandmine": "docker_unconfined", "docker_sandmine_log": "docker_unconfined"}
SYSCALLS = ["getppid", "acct"]
# Added costs below this many ns are not told apart from noise here (the
# spread of one configuration's rounds is tens of ns on a shared machine).
NOISE = 5.0


def main(path):
    lines = [l for l in open(path) if not l.startswith("#") and l.strip()]
    meta = [l.rstrip() for l in open(path) if l.startswith("#")]
    rows = list(csv.DictReader(lines))
    by = {}
    for r in rows:
        key = (r["config"], r["syscall"])
        by.setdefault(key, {})[int(r["round"])] = (float(r["ns_per_call"]), float(r["cpu_ns_per_call"]))
    for m in meta:
        print(m)
    for metric, idx in (("wall ns/call", 0), ("CPU ns/call", 1)):
        print(f"\n## {metric} (median of {max(len(v) for v in by.values())} rounds; added = paired median vs the same setting unfiltered)\n")
        print("| configuration | getppid (allowed): median (min-max) | added | acct (denied): median (min-max) | added |")
        print("|---|---|---|---|---|")
        med = {}
        for cfg in ORDER:
            cells = []
            for sc in SYSCALLS:
                runs = by.get((cfg, sc))
                if not runs:
                    cells += ["not run", ""]
                    continue
                vals = [v[idx] for v in runs.values()]
                m = statistics.median(vals)
                med[(cfg, sc)] = m
                added = ""
                base = by.get((BASE.get(cfg), sc))
                if base:
                    d = [runs[k][idx] - base[k][idx] for k in runs if k in base]
                    if d:
                        added = f"{statistics.median(d):+.1f}"
                        med[(cfg, sc, "added")] = statistics.median(d)
                cells += [f"{m:.1f} ({min(vals):.0f}-{max(vals):.0f})", added]
            print(f"| {cfg} | " + " | ".join(cells) + " |")
        print()
        for sc in SYSCALLS:
            a = med.get(("docker_sandmine", sc, "added"))
            b = med.get(("docker_default", sc, "added"))
            if a is not None and b is not None:
                ratio = f"ratio {a / b:.2f}" if a > NOISE and b > NOISE else \
                    f"no ratio: an added cost under {NOISE:.0f} ns is within this machine's noise"
                print(f"- {sc}: sandmine profile adds {a:+.1f} ns, Docker default {b:+.1f} ns; {ratio}")
            s = med.get(("docker_sandmine", sc))
            d = med.get(("docker_default", sc))
            if s and d:
                print(f"- {sc}: total per call, sandmine / Docker default = {s / d:.2f}")
            lg = med.get(("docker_sandmine_log", sc))
            if s and lg and sc == "getppid":
                # Only getppid moves to the log tier; acct is denied in both.
                print(f"- getppid: total per call, logged (SCMP_ACT_LOG rule) / allowed = {lg / s:.2f}; "
                      f"the log tier adds {lg - s:+.1f} ns per call")
                a, b = by.get(("docker_sandmine_log", sc), {}), by.get(("docker_sandmine", sc), {})
                r = sorted(a[k][idx] / b[k][idx] for k in a if k in b)
                if len(r) >= 6:
                    # Distribution-free interval for the median: order
                    # statistics k and n+1-k (k = 2 covers >= 97% from n = 9).
                    print(f"  per-round paired ratio: median {statistics.median(r):.2f}, "
                          f"interval for the median [{r[1]:.2f}, {r[-2]:.2f}] (2nd and {len(r) - 1}th of {len(r)} rounds)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
