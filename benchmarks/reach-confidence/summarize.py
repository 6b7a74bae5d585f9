#!/usr/bin/env python3
"""Summarise a reach-confidence CSV (run.sh): per variant, the containers
to reach enforce (median, min-max over seeds), the allowed+logged count,
and the held-out containers broken."""
import csv
import statistics
import sys

rows = list(csv.DictReader(l for l in open(sys.argv[1]) if not l.startswith("#")))
print(f"{len(rows)} seeds; raw: {sys.argv[1]}\n")
print("| variant | containers to enforce: median (min-max) | never within the cap | running syscalls: median | held-out broken: total (per seed max) |")
print("|---|---|---|---|---|")
for v in ("without", "with"):
    n = [int(r[f"{v}_containers"]) for r in rows if not r[f"{v}_containers"].startswith(">")]
    never = sum(r[f"{v}_containers"].startswith(">") for r in rows)
    run = [int(r[f"{v}_running"]) for r in rows if not r[f"{v}_containers"].startswith(">")]
    broken = [int(r[f"{v}_broken"]) for r in rows]
    held = None
    med = f"{statistics.median(n):g} ({min(n)}-{max(n)})" if n else "-"
    print(f"| {v} reachability | {med} | {never} | {statistics.median(run) if run else '-'} | {sum(broken)} ({max(broken)}) |")
pairs = [(int(r["without_containers"]), int(r["with_containers"])) for r in rows
         if not r["without_containers"].startswith(">") and not r["with_containers"].startswith(">")]
if pairs:
    ratios = sorted(w / x for x, w in pairs)
    print(f"\nper seed, containers with / without: median {statistics.median(ratios):.3f} (min {ratios[0]:.3f}, max {ratios[-1]:.3f})")
