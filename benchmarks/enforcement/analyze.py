#!/usr/bin/env python3
"""Summarise an enforcement CSV written by run.sh (standard library only).

Usage: analyze.py RESULTS.csv

Per (configuration, syscall): runs, median ns/call (wall and the loop's own
CPU time), and the cost a filter adds over the same setting without one
(host_sandmine - host_none; docker_default and docker_sandmine -
docker_unconfined), as the difference of medians and as the median of the
per-round paired differences (which cancels slow drift of the machine), and
the generated profile's added cost as a share of Docker's default's.

Argument rules (issue 11): for personality, each argument-rule variant
against its name-only baseline in the same round (docker_sandmine_args1/8
against docker_sandmine, host_run_args1/8 against host_run): the median of
the per-round differences (the ns an argument-checked call adds over a
name-only allowed one) and of the per-round ratios, each with a
distribution-free confidence interval for the median (order statistics
k and n+1-k of the n rounds, the largest k whose coverage, printed, is at
least 95%).
"""
import csv
import math
import statistics
import sys

ORDER = ["host_none", "host_sandmine", "host_run", "host_run_args1", "host_run_args8",
         "docker_unconfined", "docker_default", "docker_sandmine", "docker_sandmine_log",
         "docker_sandmine_args1", "docker_sandmine_args8"]
BASE = {"host_sandmine": "host_none", "host_run": "host_none", "host_run_args1": "host_none",
        "host_run_args8": "host_none", "docker_default": "docker_unconfined",
        "docker_sandmine": "docker_unconfined", "docker_sandmine_log": "docker_unconfined",
        "docker_sandmine_args1": "docker_unconfined", "docker_sandmine_args8": "docker_unconfined"}
SYSCALLS = ["getppid", "acct", "personality"]
LABEL = {"getppid": "getppid (allowed)", "acct": "acct (denied)", "personality": "personality"}
# (argument-rule configuration, its name-only baseline), for personality.
ARG_PAIRS = [("docker_sandmine_args1", "docker_sandmine"), ("docker_sandmine_args8", "docker_sandmine"),
             ("docker_sandmine_args8", "docker_sandmine_args1"), ("docker_default", "docker_sandmine"),
             ("host_run_args1", "host_run"), ("host_run_args8", "host_run"),
             ("host_run_args8", "host_run_args1")]
# Added costs below this many ns are not told apart from noise here (the
# spread of one configuration's rounds is tens of ns on a shared machine).
NOISE = 5.0


def median_ci(vals, level=0.95):
    """Median of vals and a distribution-free interval for it: the k-th
    smallest and k-th largest, k the largest with coverage >= level
    (coverage = 1 - 2 P(Binomial(n, 1/2) <= k - 1)). None when n is too
    small for any k."""
    v = sorted(vals)
    n = len(v)
    best = None
    for k in range(1, n // 2 + 1):
        tail = sum(math.comb(n, i) for i in range(k)) / 2 ** n
        cover = 1 - 2 * tail
        if cover >= level:
            best = (k, cover)
    if best is None:
        return statistics.median(v), None
    k, cover = best
    return statistics.median(v), (v[k - 1], v[n - k], k, cover)


def fmt_ci(med, ci, digits, sign):
    f = f"{{:{'+' if sign else ''}.{digits}f}}".format
    if ci is None:
        return f"{f(med)} (too few rounds for an interval)"
    lo, hi, k, cover = ci
    return f"{f(med)} [{f(lo)}, {f(hi)}] ({cover:.1%}, k={k})"


def arg_rules(by, idx):
    sc = "personality"
    lines = []
    for cfg, base in ARG_PAIRS:
        a, b = by.get((cfg, sc)), by.get((base, sc))
        if not a or not b:
            continue
        keys = sorted(k for k in a if k in b)
        if not keys:
            continue
        d = [a[k][idx] - b[k][idx] for k in keys]
        r = [a[k][idx] / b[k][idx] for k in keys]
        dm, dci = median_ci(d)
        rm, rci = median_ci(r)
        lines.append(f"| {cfg} - {base} | {len(keys)} | {fmt_ci(dm, dci, 1, True)} | "
                     f"{fmt_ci(rm, rci, 3, False)} |")
    if lines:
        print(f"\n### personality: argument rules vs the name-only allow, paired by round\n")
        print("(CI: the k-th smallest and k-th largest of the per-round values, a distribution-free")
        print("interval for their median with the coverage shown)\n")
        print("| configuration - baseline | rounds | added ns per call: median [CI] | ratio: median [CI] |")
        print("|---|---|---|---|")
        for line in lines:
            print(line)


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
        scs = [sc for sc in SYSCALLS if any(k[1] == sc for k in by)]
        print("| configuration | " + " | ".join(f"{LABEL[sc]}: median (min-max) | added" for sc in scs) + " |")
        print("|---" * (1 + 2 * len(scs)) + "|")
        med = {}
        for cfg in ORDER:
            cells = []
            for sc in scs:
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
        for sc in ("getppid", "acct"):
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
        arg_rules(by, idx)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
