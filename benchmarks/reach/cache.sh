#!/usr/bin/env bash
# The host's analysis cache (`--reach-cache`), side by side: postgres's
# executed binaries (postgres, pg_ctl, initdb, bash, sh: one run, every
# library once) analysed with an empty cache (cold: every object analysed
# and written) and with a full one (warm: every object read), REPS pairs in
# a random order each (SEED), each run under /usr/bin/time -v. One JSON
# line per run in results-cache/runs.jsonl, the summary (warm over cold,
# mean and 95 % t interval) in results-cache/summary.json.
#
#   benchmarks/reach/cache.sh SANDMINE [REPS] [SEED]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 reps=${2:-8} seed=${3:-$$}
pg=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
files=("$pg/postgres" "$pg/pg_ctl" "$pg/initdb" /usr/bin/bash /usr/bin/sh)
out=${OUT:-$here/results-cache}
mkdir -p "$out"
work=$(mktemp -d /tmp/sandmine-reachcache.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 700 "$work"
# The warm cache, filled once; the answer every run must print.
"$bin" analyze "${files[@]}" --format json --reach-cache "$work/warm" > "$work/expected.json" 2>/dev/null
{
    echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs; $("$bin" --version); seed $seed; load: $(cut -d" " -f1-3 /proc/loadavg)"
    echo "# command: $bin analyze ${files[*]} --format json --reach-cache DIR"
} > "$out/summary.txt"
: > "$out/runs.jsonl"
RANDOM=$seed
for r in $(seq "$reps"); do
    order="cold warm"; [ $((RANDOM % 2)) = 1 ] && order="warm cold"
    for w in $order; do
        dir=$work/warm
        [ "$w" = cold ] && dir=$work/cold-$r
        /usr/bin/time -v -o "$work/time" "$bin" analyze "${files[@]}" --format json --reach-cache "$dir" \
            > "$work/got.json" 2> "$work/stderr"
        cmp -s "$work/got.json" "$work/expected.json" || { echo "cache.sh: a $w run printed another answer" >&2; exit 1; }
        secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + a[k]; print s}' "$work/time")
        kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
        line=$(grep -o 'analysis cache .*' "$work/stderr" || true)
        jq -cn --arg w "$w" --argjson r "$r" --argjson s "$secs" --argjson kb "$kb" --arg cache "$line" \
            --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
            '{cache:$w, rep:$r, secs:$s, max_rss_kib:$kb, stderr:$cache, loadavg:$load}' | tee -a "$out/runs.jsonl"
    done
done
python3 - "$out/runs.jsonl" > "$out/summary.json" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
t95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201}
by = {}
for r in runs:
    by.setdefault(r["rep"], {})[r["cache"]] = r
out = {"pairs": len(by)}
for k in ("secs", "max_rss_kib"):
    v = [p["warm"][k] / p["cold"][k] for p in by.values()]
    m = statistics.mean(v)
    h = t95.get(len(v) - 1, 2.0) * statistics.stdev(v) / len(v) ** 0.5 if len(v) > 1 else None
    out[k] = {"warm_over_cold": v, "mean": m, "ci95": None if h is None else [m - h, m + h],
              "median_cold": statistics.median(p["cold"][k] for p in by.values()),
              "median_warm": statistics.median(p["warm"][k] for p in by.values())}
print(json.dumps(out, indent=1))
PY
cat "$out/summary.json"
