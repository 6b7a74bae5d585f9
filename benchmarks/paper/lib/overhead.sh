#!/usr/bin/env bash
# Step 4: throughput with no filter, Docker's default profile and the mined
# profile, interleaved (the order rotates every repetition), a fresh
# container per measurement. Writes RESULTDIR/overhead.jsonl and overhead.json.
#   overhead.sh APP RESULTDIR REPS
set -uo pipefail
. "$(dirname "$0")/common.sh"
app=$1 r=$2 reps=$3
trap cleanup_containers EXIT
: >"$r/overhead.jsonl"
configs=(none default mined)
for ((i = 0; i < reps; i++)); do
    for ((k = 0; k < 3; k++)); do
        cfg=${configs[$(((i + k) % 3))]}
        sc=$cfg
        [[ $cfg == mined ]] && sc=$r/profile.json
        c=sandmine-eval-$app-bench
        start_container "$c" "$app" "$sc"
        if wait_ready "$app" 120 "$c"; then
            line=$("$LIB/workload.sh" bench "$app" 2>>"$r/overhead.stderr" || true)
        else
            line="throughput= unit= detail=not-ready"
        fi
        stop_container "$c" "$app"
        tp=$(sed -n 's/.*throughput=\([0-9.]*\).*/\1/p' <<<"$line")
        unit=$(sed -n 's/.*unit=\([^ ]*\).*/\1/p' <<<"$line")
        detail=$(sed -n 's/.*detail=\(.*\)/\1/p' <<<"$line")
        jq -cn --arg cfg "$cfg" --argjson rep "$i" --arg tp "$tp" --arg unit "$unit" --arg detail "$detail" \
            '{config:$cfg, rep:$rep, throughput:($tp|tonumber? // null), unit:$unit, detail:$detail}' >>"$r/overhead.jsonl"
        log "$app: overhead rep $((i + 1))/$reps $cfg: ${tp:-FAILED} $unit"
    done
done
python3 - "$r" <<'PY'
import json, statistics, sys
r = sys.argv[1]
rows = [json.loads(l) for l in open(f"{r}/overhead.jsonl")]
out = {"unit": next((x["unit"] for x in rows if x["unit"]), ""), "reps": max(x["rep"] for x in rows) + 1, "configs": {}}
for cfg in ("none", "default", "mined"):
    v = [x["throughput"] for x in rows if x["config"] == cfg and x["throughput"]]
    out["configs"][cfg] = {"values": v, "median": statistics.median(v) if v else None,
                           "min": min(v) if v else None, "max": max(v) if v else None, "failed": sum(1 for x in rows if x["config"] == cfg and not x["throughput"])}
def ratio(a, b):
    ca, cb = out["configs"][a], out["configs"][b]
    if not ca["values"] or not cb["values"]:
        return None
    # per repetition (same rep = adjacent in time), then median and range
    per = []
    for rep in range(out["reps"]):
        x = [t["throughput"] for t in rows if t["config"] == a and t["rep"] == rep and t["throughput"]]
        y = [t["throughput"] for t in rows if t["config"] == b and t["rep"] == rep and t["throughput"]]
        if x and y:
            per.append(x[0] / y[0])
    return {"median_of_medians": ca["median"] / cb["median"], "per_rep": per,
            "per_rep_min": min(per) if per else None, "per_rep_max": max(per) if per else None}
out["mined_vs_none"] = ratio("mined", "none")
out["mined_vs_default"] = ratio("mined", "default")
out["default_vs_none"] = ratio("default", "none")
json.dump(out, open(f"{r}/overhead.json", "w"), indent=1)
PY
