#!/usr/bin/env python3
"""Summarise a collector-cost CSV written by run.sh (standard library only).

Usage: analyze.py RESULTS.csv [--markdown] [--all] [--metric wall|cpu]

For each configuration: number of runs, median ns/call, spread (min-max and
interquartile range), the cost added over "none" (difference of medians,
with a 95% bootstrap interval, and the median of per-round paired
differences, which cancels slow drift of the machine), and that added cost
as a multiple of the floor's added cost and of bpftrace's. The floor is the cheaper (by median) of the two
empty programs, floor_raw_tp and floor_tp_btf.

Metrics: "wall" is the loop's CLOCK_MONOTONIC time per call (the primary
figure); "cpu" is its own CPU time per call (CLOCK_THREAD_CPUTIME_ID),
which leaves out time spent preempted. Without --metric both are printed.

Rows measured while someone else's BPF program was on sys_enter or sys_exit
(foreign_before/foreign_after > 0) are left out, and counted, unless --all:
such a program taxes every syscall on the machine, and not evenly across
configurations.

Goals for sandmine: added cost <= 1.5x the floor's and <= 0.5x bpftrace's.
"""
import csv
import random
import statistics
import sys

ORDER = ["none", "floor_raw_tp", "floor_tp_btf", "collector", "collector_untracked",
         "allow_all_filter", "sandmine", "bpftrace", "strace"]
LABEL = {
    "none": "none",
    "floor_raw_tp": "floor: empty prog, raw_tracepoint/sys_enter",
    "floor_tp_btf": "floor: empty prog, tp_btf/sys_enter",
    "collector": "sandmine's collector, tracking the loop",
    "collector_untracked": "sandmine's collector loaded, loop not tracked",
    "allow_all_filter": "allow-all seccomp filter only (sandmine run)",
    "sandmine": "sandmine mine --backend ebpf (collector + allow-all filter)",
    "bpftrace": "bpftrace @[cgroup, args->id] = count()",
    "strace": "strace -f -c",
}
METRIC_COLUMN = {"wall": "ns_per_call", "cpu": "cpu_ns_per_call"}
METRIC_TITLE = {"wall": "wall time per call (CLOCK_MONOTONIC)",
                "cpu": "the loop's CPU time per call (CLOCK_THREAD_CPUTIME_ID)"}
GOAL_VS_FLOOR = 1.5
GOAL_VS_BPFTRACE = 0.5


def read(path):
    meta, lines = {}, []
    with open(path, newline="") as f:
        for line in f:
            if line.startswith("#"):
                key, _, val = line[1:].partition(":")
                meta[key.strip()] = val.strip()
            elif line.strip():
                lines.append(line)
    rows = list(csv.DictReader(lines))
    for r in rows:
        r["round"] = int(r["round"])
        r["wall"] = float(r["ns_per_call"])
        r["cpu"] = float(r["cpu_ns_per_call"])
        r["foreign"] = max(int(r["foreign_before"]), int(r["foreign_after"]))
        r["other_cpu"] = float(r["other_cpu"])
        r["steal_cpu"] = float(r["steal_cpu"])
    return meta, rows


def iqr(xs):
    if len(xs) < 2:
        return 0.0
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[2] - q[0]


def boot_added(xs, base, iters=2000, seed=1):
    """95% percentile-bootstrap interval of median(xs) - median(base)."""
    rng = random.Random(seed)
    d = sorted(statistics.median(rng.choices(xs, k=len(xs)))
               - statistics.median(rng.choices(base, k=len(base)))
               for _ in range(iters))
    return d[int(0.025 * iters)], d[int(0.975 * iters) - 1]


def summarise(rows, metric):
    by = {}
    for r in rows:
        by.setdefault(r["config"], []).append(r)
    none_by_round = {r["round"]: r[metric] for r in by.get("none", [])}
    s = {}
    for cfg, rs in by.items():
        xs = [r[metric] for r in rs]
        paired = [r[metric] - none_by_round[r["round"]]
                  for r in rs if r["round"] in none_by_round]
        s[cfg] = {
            "runs": len(xs),
            "median": statistics.median(xs),
            "min": min(xs),
            "max": max(xs),
            "iqr": iqr(xs),
            "paired": statistics.median(paired) if paired else None,
            "other_cpu": statistics.median(r["other_cpu"] for r in rs),
        }
    base = s.get("none", {}).get("median")
    base_xs = [r[metric] for r in by.get("none", [])]
    for cfg, v in s.items():
        v["added"] = v["median"] - base if base is not None else None
        v["ci"] = (boot_added([r[metric] for r in by[cfg]], base_xs)
                   if base_xs and cfg != "none" else None)
    floors = [c for c in ("floor_raw_tp", "floor_tp_btf") if c in s]
    floor = min(floors, key=lambda c: s[c]["median"]) if floors else None
    for v in s.values():
        for key, ref in (("x_floor", floor), ("x_bpftrace", "bpftrace")):
            ra = s.get(ref, {}).get("added") if ref else None
            v[key] = (v["added"] / ra) if (v["added"] is not None and ra) else None
    return s, floor


def fmt(x, nd=1):
    return "–" if x is None else f"{x:.{nd}f}"


def fmt_signed(x):
    return "–" if x is None else f"{x:+.1f}"


def table(s, floor, not_run, markdown):
    head = ["config", "runs", "median ns/call", "min–max", "IQR",
            "added vs none", "95% CI", "added, paired", "× floor added", "× bpftrace added",
            "other CPU"]
    body = []
    for cfg in ORDER + sorted(set(s) - set(ORDER)):
        label = LABEL.get(cfg, cfg)
        if cfg == floor:
            label += " (the floor)"
        if cfg in s:
            v = s[cfg]
            rel = cfg != "none"
            body.append([label, str(v["runs"]), fmt(v["median"]),
                         f"{fmt(v['min'])}–{fmt(v['max'])}", fmt(v["iqr"]),
                         fmt_signed(v["added"]) if rel else "–",
                         f"{fmt_signed(v['ci'][0])}…{fmt_signed(v['ci'][1])}" if v["ci"] else "–",
                         fmt_signed(v["paired"]) if rel else "–",
                         fmt(v["x_floor"], 2) if rel else "–",
                         fmt(v["x_bpftrace"], 2) if rel else "–",
                         fmt(v["other_cpu"], 2)])
        elif cfg in not_run:
            body.append([label, "0", "not run"] + [""] * (len(head) - 3))
    out = []
    if markdown:
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        out += ["| " + " | ".join(row) + " |" for row in body]
    else:
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
        for row in [head] + body:
            out.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])
                                 for i, c in enumerate(row)).rstrip())
    return out


def resolved(v):
    """True if the 95% interval of an added cost lies above zero."""
    return v is not None and v.get("ci") is not None and v["ci"][0] > 0


def verdict(x, goal, ref):
    if x is None:
        return "no figure"
    word = "PASS" if x <= goal else "FAIL"
    if not resolved(ref):
        word += (" (UNRESOLVED: the reference's added cost is not clear of zero at"
                 " this noise; more rounds or a quieter machine)")
    return word


def goal_lines(s, floor):
    lines = []
    if floor and not resolved(s[floor]):
        lines.append(f"note: the floor's added cost ({fmt_signed(s[floor]['added'])} ns, "
                     f"95% CI {fmt_signed(s[floor]['ci'][0]) if s[floor]['ci'] else '?'}…"
                     f"{fmt_signed(s[floor]['ci'][1]) if s[floor]['ci'] else '?'}) is within "
                     f"noise, so the × floor column is not meaningful in this run")
    # The goals are about the collector's cost: the `collector` config
    # (no seccomp filter); `sandmine mine` adds its allow-all filter.
    who = "collector" if "collector" in s else "sandmine"
    if who not in s:
        return lines
    v = s[who]
    return lines + [
        f"goal ({who}): added <= {GOAL_VS_FLOOR}x floor added: "
        f"{fmt(v['x_floor'], 2)}x -> {verdict(v['x_floor'], GOAL_VS_FLOOR, s.get(floor))}",
        f"goal ({who}): added <= {GOAL_VS_BPFTRACE}x bpftrace added: "
        f"{fmt(v['x_bpftrace'], 2)}x -> "
        f"{verdict(v['x_bpftrace'], GOAL_VS_BPFTRACE, s.get('bpftrace'))}"]


def main(argv):
    args, flags, metrics = [], set(), ["wall", "cpu"]
    it = iter(argv[1:])
    for a in it:
        if a == "--metric":
            m = next(it, "")
            if m not in METRIC_COLUMN:
                print("--metric must be wall or cpu", file=sys.stderr)
                return 2
            metrics = [m]
        elif a.startswith("--"):
            flags.add(a)
        else:
            args.append(a)
    unknown = flags - {"--markdown", "--all"}
    if len(args) != 1 or unknown:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    markdown, keep_all = "--markdown" in flags, "--all" in flags
    bullet = "- " if markdown else ""

    meta, rows = read(args[0])
    if not rows:
        print(f"{args[0]}: no results", file=sys.stderr)
        return 1
    dropped = {}
    if not keep_all:
        for r in rows:
            if r["foreign"]:
                dropped[r["config"]] = dropped.get(r["config"], 0) + 1
        rows = [r for r in rows if not r["foreign"]]
        if not rows:
            print(f"{args[0]}: every row was measured with someone else's program "
                  f"on sys_enter/sys_exit; rerun when the machine is quiet, or use --all",
                  file=sys.stderr)
            return 1
    not_run = meta.get("not_run", "").split()

    print(f"{'' if markdown else '# '}{meta.get('date_utc', '?')}, kernel "
          f"{meta.get('kernel', '?')}, nproc {meta.get('nproc', '?')}, "
          f"{meta.get('rounds', '?')} rounds, N={meta.get('n', '?')} "
          f"(strace {meta.get('n_strace', '?')}), loop sched {meta.get('sched', '?')}")
    floor = None
    for metric in metrics:
        s, floor = summarise(rows, metric)
        print()
        print(f"{'**' if markdown else '## '}{METRIC_TITLE[metric]}{'**' if markdown else ''}")
        print()
        for line in table(s, floor, not_run, markdown):
            print(line)
        gl = goal_lines(s, floor)
        if gl:
            print()
        for line in gl:
            print(bullet + line)
    print()
    notes = []
    if floor:
        notes.append(f"floor = {floor}, the cheaper median of the two empty programs")
    if "sandmine" in not_run:
        notes.append("sandmine: not run in this file (pending)")
    if dropped:
        notes.append("left out, measured with someone else's program on sys_enter/sys_exit: "
                     + ", ".join(f"{c} {k}" for c, k in sorted(dropped.items())))
    elif keep_all and any(r["foreign"] for r in rows):
        notes.append("WARNING: --all: some rows were measured with someone else's "
                     "program on sys_enter/sys_exit")
    busy = [r for r in rows if r.get("waited_s") == "timeout"]
    if busy:
        notes.append(f"{len(busy)} of {len(rows)} measurements were taken after the quiet "
                     f"gate timed out (machine busy; see waited_s in the CSV)")
    steal = statistics.median(r["steal_cpu"] for r in rows)
    notes.append(f"other CPU = median CPUs kept busy by everything but the loop during "
                 f"a measurement (includes the tracer's own user space); median steal "
                 f"{steal:.2f} CPUs")
    for line in notes:
        print(bullet + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
