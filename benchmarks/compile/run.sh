#!/usr/bin/env bash
# run.sh - the compile benchmark: 10,000 distinct images, every format.
#
# Builds the bench_compile example (release) and runs it once under
# /usr/bin/time -v: the inputs are built first (in parallel, not timed), then
# BENCH_ROUNDS rounds (default 5) each compile all of them on 1 thread and on
# THREADS threads, in a random order. The raw output goes to
# benchmarks/compile/results/<UTC time>.txt (and stdout).
#
# Usage: benchmarks/compile/run.sh
# Environment: IMAGES=10000  THREADS=2  BENCH_ROUNDS=5
#   CARGO_TARGET_DIR (default: the workspace's target/)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
IMAGES=${IMAGES:-10000}
THREADS=${THREADS:-2}
export BENCH_ROUNDS=${BENCH_ROUNDS:-5}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
mkdir -p "$HERE/results"
OUT="$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).txt"

(cd "$REPO" && CARGO_TARGET_DIR="$TARGET" cargo build -q --release -p policy-compiler --example bench_compile)
{
    echo "# benchmarks/compile/run.sh: IMAGES=$IMAGES THREADS=$THREADS BENCH_ROUNDS=$BENCH_ROUNDS"
    echo "# commit $(cd "$REPO" && git rev-parse --short HEAD)$(cd "$REPO" && git diff --quiet || echo ' (dirty)'), $(date -u +%FT%TZ), $(nproc) CPUs, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    /usr/bin/time -v "$TARGET/release/examples/bench_compile" "$IMAGES" "$THREADS" 2>&1
} | tee "$OUT"
echo "raw output: $OUT"
