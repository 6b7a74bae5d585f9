#!/usr/bin/env python3
"""Convergence curves: RESULTS/<app>/curve.png and RESULTS/convergence.png."""
import csv, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import converge
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

res = sys.argv[1]
apps = sorted(d for d in os.listdir(res) if os.path.isfile(os.path.join(res, d, "curve.csv")))
curves = {}
for app in apps:
    rows = list(csv.DictReader(open(os.path.join(res, app, "curve.csv"))))
    xs = [float(r["seconds"]) for r in rows]
    ys = [int(r["distinct_syscalls"]) for r in rows]
    mining = json.load(open(os.path.join(res, app, "mining.json")))
    end = mining["wall_s"]
    # a step curve extended to the end of the run: the flat tail is the point
    xs2, ys2 = [0.0] + xs + [end], [0] + ys + [ys[-1] if ys else 0]
    curves[app] = (xs2, ys2, mining)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.step(xs2, ys2, where="post")
    cv = converge.analyse(os.path.join(res, app))
    ax.axvline(cv["workload_end_s"], ls=":", c="red", lw=0.8, label="workload ends / container stopped")
    ax.set_title(f"{app}: distinct syscalls while mining\n(last new during workload at {cv['converge_s']:.1f} s; +{cv['n_at_stop']} at stop)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("seconds since mining started")
    ax.set_ylabel("distinct syscalls")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(res, app, "curve.png"), dpi=110)
    plt.close(fig)
if curves:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for app, (xs, ys, _) in curves.items():
        ax.step(xs, ys, where="post", label=app)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("seconds since mining started (symlog)")
    ax.set_ylabel("distinct syscalls seen")
    ax.set_title("Convergence of mined sandboxes (sandmine mine-image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(res, "convergence.png"), dpi=110)
print(f"plot.py: {len(curves)} curves", file=sys.stderr)
