#!/usr/bin/env bash
# Decode + row building, two fleetgen builds side by side: each rep runs
# `fleetgen prepare --timing 5` (one interval of N hosts; the median of 5
# single-thread decodes and of 5 `rows::explode`) with both binaries, in a
# random order per rep, against a nats-server of its own.
#
#   benchmarks/fleet/ab_decode.sh BEFORE AFTER [REPS] [SEED]
#   N=2000 MODEL=uniform
#
# One JSON line per run on stdout; a summary (per-rep ratios after/before,
# mean and 95 % t interval) on stderr.
set -euo pipefail
before=$1 after=$2 reps=${3:-8} seed=${4:-$$}
N=${N:-2000} MODEL=${MODEL:-uniform}
work=$(mktemp -d /tmp/sandmine-abdecode.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nats-server -p "$port" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
np=$!
trap 'kill $np 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
RANDOM=$seed
out=$work/runs.jsonl
for r in $(seq "$reps"); do
    order="before after"; [ $((RANDOM % 2)) = 1 ] && order="after before"
    for which in $order; do
        bin=$before; [ "$which" = after ] && bin=$after
        "$bin" prepare --nats "nats://127.0.0.1:$port" --stream "S$r$which" --subject "s.$r.$which" \
            --hosts "$N" --model "$MODEL" --timing 5 |
            jq -c --arg w "$which" --argjson r "$r" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
                '{rep:$r, build:$w, decode_s, explode_s, envelopes, payload_bytes, loadavg:$load}' | tee -a "$out"
    done
done
python3 - "$out" "$seed" >&2 <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
t95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201}
by = {}
for r in runs:
    by.setdefault(r["rep"], {})[r["build"]] = r
for k in ("decode_s", "explode_s"):
    ratios = [p["after"][k] / p["before"][k] for p in by.values()]
    n = len(ratios); m = statistics.mean(ratios)
    h = t95.get(n - 1, 2.0) * statistics.stdev(ratios) / n ** 0.5 if n > 1 else float("nan")
    print(json.dumps({"seed": int(sys.argv[2]), "metric": k, "after_over_before_mean": round(m, 4),
                      "ci95": [round(m - h, 4), round(m + h, 4)], "pairs": n,
                      "median_before": statistics.median(p["before"][k] for p in by.values()),
                      "median_after": statistics.median(p["after"][k] for p in by.values())}))
PY
