#!/usr/bin/env bash
# The BPF program's own run time per syscall, from the kernel's BPF
# statistics (kernel.bpf_stats_enabled: run_time_ns / run_cnt per program),
# for sandmine's sm_sys_enter (tracking the loop) and for the empty tp_btf
# program, sampled while the loop runs. Unlike the wall-clock comparison in
# run.sh, this is not swamped by scheduling noise; the difference of the
# two is what sandmine's program body costs beyond an empty program. The
# statistics add their own overhead (two clock reads per run) to both.
#
# Usage (root): benchmarks/collector-cost/body.sh [ROUNDS]   (default 5)
# Needs: run.sh's build dir (loop, loader, empty.bpf.o; run.sh builds them)
# and the release `track` example (cargo build --release -p collector --example track).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD_DIR:-$HERE/build}
TRACK=${TRACK:-$REPO/target/release/examples/track}
ROUNDS=${1:-5}
for f in "$BUILD/loop" "$BUILD/loader" "$BUILD/empty.bpf.o" "$TRACK"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "body.sh: missing $f (run run.sh once, and build the track example)" >&2; exit 1; }
done
old=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() { sysctl -qw kernel.bpf_stats_enabled="$old"; pkill -f "$BUILD/loader" 2>/dev/null || true; }
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1

# stats NAME -> "run_time_ns run_cnt" of the loaded program called NAME
stats() {
    bpftool -j prog show | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p.get("name") == sys.argv[1]:
        print(p.get("run_time_ns", 0), p.get("run_cnt", 0)); break
' "$1"
}

# sample NAME: ns per run over one second of the loop
sample() {
    sleep 0.5
    read -r t1 c1 < <(stats "$1")
    sleep 1
    read -r t2 c2 < <(stats "$1")
    python3 -c "print(f'{($t2-$t1)/max(1,$c2-$c1):.1f}')"
}

echo "round,empty_tp_btf_ns_per_run,sm_sys_enter_ns_per_run"
for r in $(seq "$ROUNDS"); do
    "$BUILD/loader" "$BUILD/empty.bpf.o" cc_empty_btf >/dev/null 2>&1 &
    lpid=$!
    sleep 0.5
    "$BUILD/loop" 40000000 >/dev/null &
    looppid=$!
    e=$(sample cc_empty_btf)
    kill "$looppid" 2>/dev/null || true; wait "$looppid" 2>/dev/null || true
    kill "$lpid"; wait "$lpid" 2>/dev/null || true

    "$TRACK" -- "$BUILD/loop" 40000000 >/dev/null 2>&1 &
    tpid=$!
    s=$(sample sm_sys_enter)
    pkill -f "$BUILD/loop 40000000" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    echo "$r,$e,$s"
done
