#!/usr/bin/env bash
# The fleet fault matrix, many times: every fault × broker cell of
# tests/fleet_cli.rs (fleet_totals_stay_exact_through_faults on NATS,
# kafka_totals_stay_exact_through_faults on Kafka/tansu), each run at a
# seeded random point with the exact ground-truth check.
#
#   benchmarks/faults/run.sh [RUNS_PER_CELL] [RUNS_PER_INVOCATION]
#
# Defaults: 20 runs per cell, in invocations of 5 (each invocation starts
# fresh services and draws a fresh seed; both tests run in parallel, as
# under `cargo test`). Writes, under benchmarks/faults/results/:
#   <UTC timestamp>.csv  one line per cell run:
#                        cell,broker,seed,rep,n,window,exact,seconds,invocation
#   <UTC timestamp>.log  the full output, with each invocation's seed,
#                        command and exit status
# and prints the per-cell summary (summarise.py).
#
# Needs what the fleet tests need: root, dockerd, nats-server,
# clickhouse-server, tansu, sqlite3 (scripts/install-deps.sh).
set -euo pipefail
runs=${1:-20}
per=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$here/results"
mkdir -p "$out"
csv="$out/$stamp.csv"
log="$out/$stamp.log"
cd "$root"
echo "cell,broker,seed,rep,n,window,exact,seconds,invocation" > "$csv"
{
    echo "# benchmarks/faults/run.sh $runs $per"
    echo "# started $(date -u +%FT%TZ) on $(uname -srm), $(nproc) cores"
    echo "# commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- . || echo ' (with local changes)')"
} | tee "$log"
nice -n 10 cargo test --test fleet_cli --no-run 2>&1 | tail -n 3 | tee -a "$log"
invocations=$(( (runs + per - 1) / per ))
for i in $(seq 1 "$invocations"); do
    left=$(( runs - (i - 1) * per ))
    reps=$(( left < per ? left : per ))
    seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
    cmd="SANDMINE_FAULT_SEED=$seed SANDMINE_FAULT_REPS=$reps cargo test --test fleet_cli -- --nocapture --exact fleet_totals_stay_exact_through_faults kafka_totals_stay_exact_through_faults"
    echo "# invocation $i/$invocations: $cmd" | tee -a "$log"
    t0=$(date +%s)
    set +e
    SANDMINE_FAULT_SEED=$seed SANDMINE_FAULT_REPS=$reps nice -n 10 cargo test --test fleet_cli \
        -- --nocapture --exact fleet_totals_stay_exact_through_faults \
        kafka_totals_stay_exact_through_faults >> "$log" 2>&1
    rc=$?
    set -e
    echo "# invocation $i exit $rc after $(( $(date +%s) - t0 )) s, $(date -u +%FT%TZ)" | tee -a "$log"
    grep -a '^FAULT-CELL,' "$log" | sed -n "$(( $(tail -n +2 "$csv" | wc -l) + 1 )),\$p" \
        | sed "s/^FAULT-CELL,//; s/\$/,$i/" >> "$csv"
done
echo "# finished $(date -u +%FT%TZ)" | tee -a "$log"
python3 "$here/summarise.py" "$csv" | tee -a "$log"
