"""Time to converge, from a mining curve: the last time a new syscall was
first seen WHILE THE WORKLOAD RAN. Syscalls first seen when the container is
stopped (graceful shutdown: the stop signal's handler, unlink of pid files...)
come after the workload; they are counted separately.

The curve's times are sandmine's (seconds since mining started, in steps of
its ~0.1 s collection interval). The workload's end comes from
workload-times.txt (epochs written by workload.sh: invoked / ready / end),
placed on the curve's clock by taking "invoked" as the curve's first point
(the workload is started with --workload-delay 0s, as the container starts).
Without that file (older runs): rows within 1.5 s of the end of the run are
taken as stop-time rows."""
import csv
import json
import os


def analyse(appdir):
    rows = [(float(r["seconds"]), int(r["distinct_syscalls"])) for r in csv.DictReader(open(os.path.join(appdir, "curve.csv")))]
    mining = json.load(open(os.path.join(appdir, "mining.json")))
    wall = mining["wall_s"]
    first = rows[0][0] if rows else 0.0
    tf = os.path.join(appdir, "workload-times.txt")
    how = "heuristic"
    ready_rel = None
    if os.path.exists(tf):
        t = dict(l.split() for l in open(tf) if len(l.split()) == 2)
        if "end" in t and "invoked" in t:
            end_rel = float(t["end"]) - float(t["invoked"]) + first
            if "ready" in t:
                ready_rel = float(t["ready"]) - float(t["invoked"]) + first
            how = "workload-times"
    if how == "heuristic":
        end_rel = wall - 1.5
    during = [(s, n) for s, n in rows if s <= end_rel + 0.15]
    after = [(s, n) for s, n in rows if s > end_rel + 0.15]
    return {
        "converge_s": during[-1][0] if during else 0.0,
        "n_during": during[-1][1] if during else 0,
        "n_at_stop": len(after),
        "n_total": rows[-1][1] if rows else 0,
        "workload_end_s": end_rel,
        "ready_s": ready_rel,
        "wall_s": wall,
        "method": how,
        "rows": rows,
    }
