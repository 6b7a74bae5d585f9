#!/usr/bin/env python3
"""Per-cell summary of benchmarks/faults/run.sh CSVs (one or more, taken
together), as a Markdown table: runs, window hit, exact, median seconds.

    summarise.py results/A.csv [results/B.csv ...]
"""
import csv
import statistics
import sys

rows = [r for path in sys.argv[1:] for r in csv.DictReader(open(path))]
cells = {}
for r in rows:
    cells.setdefault((r["broker"], r["cell"]), []).append(r)
print("| broker | cell | runs | window hit | exact | median s |")
print("|---|---|---:|---:|---:|---:|")
for (broker, cell), rs in sorted(cells.items()):
    secs = statistics.median(float(r["seconds"]) for r in rs)
    hit = sum(r["window"] == "yes" for r in rs)
    exact = sum(r["exact"] == "yes" for r in rs)
    print(f"| {broker} | {cell} | {len(rs)} | {hit} | {exact} | {secs:.1f} |")
