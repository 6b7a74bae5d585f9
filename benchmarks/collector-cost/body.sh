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
# TRACK_BEFORE=PATH adds a column for another build's `track` (an older
# program, measured in the same rounds: before/after side by side). The
# order of the programs rotates from round to round.
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

# stats NAME [AFTER_ID] -> "id run_time_ns run_cnt newer" of the newest
# loaded program called NAME (a previous run's program may still be going
# away), and how many programs called NAME are newer than AFTER_ID: more
# than one means someone else (another test on a shared machine) loaded a
# program of that name meanwhile, and the newest may not be ours.
stats() {
    bpftool -j prog show | python3 -c '
import json, sys
ps = [p for p in json.load(sys.stdin) if p.get("name") == sys.argv[1]]
newer = sum(1 for p in ps if p["id"] > int(sys.argv[2]))
if ps:
    p = max(ps, key=lambda p: p["id"])
    print(p["id"], p.get("run_time_ns", 0), p.get("run_cnt", 0), newer)
else:
    print(0, 0, 0, 0)
' "$1" "${2:-0}"
}

# sample NAME [AFTER_ID]: ns per run over one second of the loop, from one
# program (newer than AFTER_ID: the one just started)
sample() {
    local tries=0
    sleep 0.5
    read -r i1 t1 c1 n1 < <(stats "$1" "${2:-0}")
    while [ "$i1" -le "${2:-0}" ] && [ "$tries" -lt 50 ]; do
        sleep 0.1; tries=$((tries + 1))
        read -r i1 t1 c1 n1 < <(stats "$1" "${2:-0}")
    done
    sleep 1
    read -r i2 t2 c2 n2 < <(stats "$1" "${2:-0}")
    if [ "$i1" = 0 ] || [ "$i1" != "$i2" ] || [ "$c2" -le "$c1" ] || [ "$n1" != 1 ] || [ "$n2" != 1 ]; then
        echo "body.sh: no steady sample of $1 (ids $i1/$i2, runs $c1/$c2, new programs of that name $n1/$n2)" >&2
        echo NA
        return
    fi
    python3 -c "print(f'{($t2-$t1)/($c2-$c1):.1f}')"
}

# LOOP_ARGS="NR [A0...]": the loop makes that call instead of getppid
# (loop.c), e.g. LOOP_ARGS="135 0xffffffff" (personality, whose argument
# sandmine records: issue 11).
read -r -a LOOP_ARGS <<<"${LOOP_ARGS:-}"
TRACK_BEFORE=${TRACK_BEFORE:-}
[ -z "$TRACK_BEFORE" ] || [ -x "$TRACK_BEFORE" ] || { echo "body.sh: missing $TRACK_BEFORE" >&2; exit 1; }
# EXIT=1 also measures the denial counter's tp_btf/sys_exit program
# (sm_sys_exit) on every call, beside an empty program on the same hook,
# and on calls a seccomp filter denies: the loop under `sandmine run` with
# DENY_PROFILE (getppid -> EPERM), tracked. Needs SANDMINE (a sandmine
# binary; default target/release/sandmine). Not with TRACK_BEFORE.
EXIT=${EXIT:-0}
SANDMINE=${SANDMINE:-$REPO/target/release/sandmine}
if [ "$EXIT" = 1 ]; then
    [ -z "$TRACK_BEFORE" ] || { echo "body.sh: EXIT=1 and TRACK_BEFORE exclude each other" >&2; exit 1; }
    [ -x "$SANDMINE" ] || { echo "body.sh: missing $SANDMINE (set SANDMINE)" >&2; exit 1; }
    DENY_PROFILE=$(mktemp --suffix=.json)
    trap 'cleanup; rm -f "$DENY_PROFILE"' EXIT
    cat >"$DENY_PROFILE" <<'JSON'
{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
 "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}
JSON
fi

empty() {   # empty PROG_NAME
    local lpid looppid e before
    read -r before _ < <(stats "$1")
    "$BUILD/loader" "$BUILD/empty.bpf.o" "$1" >/dev/null 2>&1 &
    lpid=$!
    sleep 0.5
    "$BUILD/loop" 40000000 "${LOOP_ARGS[@]}" >/dev/null &
    looppid=$!
    e=$(sample "$1" "$before")
    kill "$looppid" 2>/dev/null || true; wait "$looppid" 2>/dev/null || true
    kill "$lpid"; wait "$lpid" 2>/dev/null || true
    echo "$e"
}

tracked() {   # tracked TRACK_BINARY [PROG [CMD_PREFIX...]]: PROG's ns per run
    local track=$1 prog=${2:-sm_sys_enter} tpid s before
    shift 2 2>/dev/null || shift $#
    read -r before _ < <(stats "$prog")
    "$track" -- "$@" "$BUILD/loop" 40000000 "${LOOP_ARGS[@]}" >/dev/null 2>&1 &
    tpid=$!
    s=$(sample "$prog" "$before")
    pkill -f "$BUILD/loop 40000000" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    echo "$s"
}

echo "# loop call: ${LOOP_ARGS[*]:-getppid}"
if [ -n "$TRACK_BEFORE" ]; then
    echo "# before: $TRACK_BEFORE ($(stat -c %y "$TRACK_BEFORE"))"
    echo "# after:  $TRACK ($(stat -c %y "$TRACK"))"
    echo "round,empty_tp_btf_ns_per_run,before_sm_sys_enter_ns_per_run,after_sm_sys_enter_ns_per_run"
elif [ "$EXIT" = 1 ]; then
    echo "# track: $TRACK ($(stat -c %y "$TRACK")); sandmine: $SANDMINE"
    echo "round,empty_tp_btf_ns_per_run,sm_sys_enter_ns_per_run,empty_tp_btf_exit_ns_per_run,sm_sys_exit_allowed_ns_per_run,sm_sys_exit_denied_ns_per_run"
else
    echo "round,empty_tp_btf_ns_per_run,sm_sys_enter_ns_per_run"
fi
for r in $(seq "$ROUNDS"); do
    declare -A v=()
    order=(empty after)
    [ -z "$TRACK_BEFORE" ] || order=(empty before after)
    [ "$EXIT" != 1 ] || order=(empty after empty_exit exit_allowed exit_denied)
    n=${#order[@]}
    for i in $(seq 0 $((n - 1))); do
        what=${order[$(((i + r) % n))]}
        case $what in
            empty) v[empty]=$(empty cc_empty_btf) ;;
            before) v[before]=$(tracked "$TRACK_BEFORE") ;;
            after) v[after]=$(tracked "$TRACK") ;;
            empty_exit) v[empty_exit]=$(empty cc_empty_btf_exit) ;;
            exit_allowed) v[exit_allowed]=$(tracked "$TRACK" sm_sys_exit) ;;
            exit_denied) v[exit_denied]=$(tracked "$TRACK" sm_sys_exit "$SANDMINE" run --profile "$DENY_PROFILE" --) ;;
        esac
    done
    if [ -n "$TRACK_BEFORE" ]; then
        echo "$r,${v[empty]},${v[before]},${v[after]}"
    elif [ "$EXIT" = 1 ]; then
        echo "$r,${v[empty]},${v[after]},${v[empty_exit]},${v[exit_allowed]},${v[exit_denied]}"
    else
        echo "$r,${v[empty]},${v[after]}"
    fi
    unset v
done
