#!/usr/bin/env bash
# run.sh - containers an image needs to reach `enforce`, without and with a
# known reachable set, on the same generated fleets, and the held-out
# containers each enforced profile breaks (issue 10, "Confidence").
#
#   benchmarks/reach-confidence/run.sh [SEEDS [HELD_OUT]]   # default 20 1000
#
# Runs policy-compiler's example `reach_confidence` (the model is in its
# header), writes the raw CSV to results/<UTC time>.csv and prints the
# summary (summarize.py).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SEEDS=${1:-20}
HELD=${2:-1000}
[[ $SEEDS =~ ^[1-9][0-9]*$ && $HELD =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: SEEDS and HELD_OUT are positive integers" >&2; exit 2; }
OUT=$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).csv
mkdir -p "$HERE/results"
{
    echo "# command: benchmarks/reach-confidence/run.sh $SEEDS $HELD"
    echo "# commit: $(git -C "$REPO" rev-parse --short HEAD)$(git -C "$REPO" diff --quiet HEAD -- policy-compiler || echo '+changes')"
    (cd "$REPO" && cargo run -q --release -p policy-compiler --example reach_confidence -- "$SEEDS" "$HELD")
} >"$OUT"
echo "raw: $OUT" >&2
python3 "$HERE/summarize.py" "$OUT"
