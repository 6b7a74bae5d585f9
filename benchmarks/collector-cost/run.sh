#!/usr/bin/env bash
# run.sh - what does watching syscalls cost each syscall?
#
# Runs a getppid loop (loop.c) under several configurations, interleaved
# round by round, and reports median ns/call, the cost added over "none",
# and that added cost relative to the floor (an empty BPF program) and to
# bpftrace. See ../README.md, "Collector cost per syscall".
#
# Usage (as root):   benchmarks/collector-cost/run.sh
#
# Environment:
#   ROUNDS=7          rounds; every configuration runs once per round
#   N=5000000         getppid calls per measurement
#   N_STRACE=200000   getppid calls per measurement under strace (it is slow)
#   CONFIGS="none floor_raw_tp floor_tp_btf sandmine bpftrace strace"
#                     configurations to run, by name; leaving one out is the
#                     only way to skip it (the table then says "not run")
#   SANDMINE=PATH     sandmine binary; default: <repo>/target/release/sandmine
#                     or $CARGO_TARGET_DIR/release/sandmine, whichever exists
#                     (first one found; its path and mtime are recorded)
#   BUILD_SANDMINE=1  cargo build --release first (CARGO_TARGET_DIR is honoured,
#                     default /work/target-bench)
#   OUT=FILE.csv      raw results; default results/<UTC time>.csv here
#   BUILD_DIR=DIR     where loop, loader and the BPF object go; default ./build
#   SETTLE=0.5        seconds to sleep between measurements
#   QUIET_WAIT=120    before each measurement, wait up to this many seconds
#                     until no one else's BPF program is on sys_enter or sys_exit, then
#                     until the machine is quiet (busy < QUIET_BUSY CPUs over
#                     0.5 s; only 2 s once that has timed out, until it is
#                     quiet again); after that, measure anyway: the CSV says so
#   QUIET_BUSY=1.0    see QUIET_WAIT (1.0: a CPU is free for the loop)
#   SCHED=fifo        run the loop under SCHED_FIFO (chrt -f 10), so it is not
#                     preempted; SCHED=normal runs it as a normal task
#
# Everything it starts is stopped on exit (also on Ctrl-C / SIGTERM), and it
# checks that its BPF programs are gone; the loader and bpftrace also get
# SIGTERM if this script dies (PR_SET_PDEATHSIG).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

ROUNDS=${ROUNDS:-7}
N=${N:-5000000}
N_STRACE=${N_STRACE:-200000}
ALL_CONFIGS="none floor_raw_tp floor_tp_btf collector collector_untracked allow_all_filter sandmine bpftrace strace"
CONFIGS=${CONFIGS:-$ALL_CONFIGS}
BUILD_DIR=${BUILD_DIR:-$HERE/build}
SETTLE=${SETTLE:-0.5}
QUIET_WAIT=${QUIET_WAIT:-120}
QUIET_BUSY=${QUIET_BUSY:-1.0}
SCHED=${SCHED:-fifo}
NCPU=$(nproc)
HZ=$(getconf CLK_TCK)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}
BPFTRACE_PROG='tracepoint:raw_syscalls:sys_enter { @[cgroup, args->id] = count(); }'

die() { echo "run.sh: error: $*" >&2; exit 1; }
note() { echo "run.sh: $*" >&2; }

# ---------------------------------------------------------------- checks
[ "$(id -u)" = 0 ] || die "needs root (loading BPF programs, bpftrace, cgroups)"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
[[ "$N_STRACE" =~ ^[1-9][0-9]*$ ]] || die "N_STRACE must be a positive integer, got '$N_STRACE'"
[[ "$QUIET_WAIT" =~ ^[0-9]+$ ]] || die "QUIET_WAIT must be a whole number of seconds, got '$QUIET_WAIT'"

read -r -a CFGS <<<"$CONFIGS"
[ "${#CFGS[@]}" -gt 0 ] || die "CONFIGS is empty"
has_cfg() { local c; for c in "${CFGS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }
for c in "${CFGS[@]}"; do
    case " $ALL_CONFIGS " in *" $c "*) ;; *) die "unknown config '$c' (known: $ALL_CONFIGS)";; esac
done
has_cfg none || note "warning: 'none' is not in CONFIGS: no added cost can be computed"

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (apt package $2)"); }
need gcc gcc
need python3 python3
need bpftool bpftool
need setpriv util-linux
need flock util-linux
[ "$SCHED" = fifo ] && need chrt util-linux
if has_cfg floor_raw_tp || has_cfg floor_tp_btf; then
    need clang clang
    [ -f /usr/include/bpf/libbpf.h ] || missing+=("/usr/include/bpf/libbpf.h (apt package libbpf-dev)")
fi
has_cfg bpftrace && need bpftrace bpftrace
has_cfg strace && need strace strace
if [ "${#missing[@]}" -gt 0 ]; then
    printf 'run.sh: error: missing: %s\n' "${missing[@]}" >&2
    die "install with: apt-get install -y clang libbpf-dev bpftool bpftrace strace gcc python3 util-linux"
fi

# One benchmark at a time on this machine.
exec 9>/tmp/sandmine-collector-cost.lock
flock -n 9 || die "another run.sh is running (lock /tmp/sandmine-collector-cost.lock)"

# bpftrace resolves tracepoints through tracefs; it may not be mounted here.
if has_cfg bpftrace && [ ! -d /sys/kernel/tracing/events/raw_syscalls ] \
        && [ ! -d /sys/kernel/debug/tracing/events/raw_syscalls ]; then
    note "tracefs is not mounted; mounting it at /sys/kernel/tracing (left mounted)"
    mount -t tracefs nodev /sys/kernel/tracing || die "cannot mount tracefs; bpftrace needs it"
fi

# ---------------------------------------------------------------- sandmine
SANDMINE_DESC="-"
if has_cfg sandmine || has_cfg collector || has_cfg collector_untracked || has_cfg allow_all_filter; then
    if [ "${BUILD_SANDMINE:-0}" = 1 ]; then
        note "building sandmine (cargo build --release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
        (cd "$REPO" && cargo build --release --bin sandmine && cargo build --release -p collector --example track) ||
            die "cargo build of sandmine failed"
        SANDMINE=${SANDMINE:-$CARGO_TARGET_DIR/release/sandmine}
    fi
    if [ -z "${SANDMINE:-}" ]; then
        for cand in "$REPO/target/release/sandmine" "$CARGO_TARGET_DIR/release/sandmine"; do
            if [ -x "$cand" ]; then SANDMINE=$cand; break; fi
        done
    fi
    if [ -z "${SANDMINE:-}" ] || [ ! -x "$SANDMINE" ]; then
        die "sandmine binary not found (looked at ${SANDMINE:-$REPO/target/release/sandmine and $CARGO_TARGET_DIR/release/sandmine}).
  Build it:   BUILD_SANDMINE=1 $0      (or: cd $REPO && cargo build --release)
  Point at it: SANDMINE=/path/to/sandmine $0
  Or leave the config out explicitly: CONFIGS=\"${ALL_CONFIGS/sandmine /}\" $0"
    fi
    SANDMINE=$(readlink -f "$SANDMINE")
    # The collector alone (no seccomp filter): collector/examples/track.rs,
    # built next to the binary.
    TRACK=$(dirname "$SANDMINE")/examples/track
    [ -x "$TRACK" ] || die "$TRACK not found: cargo build --release -p collector --example track (or BUILD_SANDMINE=1)"
    ALLOW_ALL=$BUILD_DIR/allow-all.json
    SANDMINE_DESC="$SANDMINE (mtime $(date -u -r "$SANDMINE" +%Y-%m-%dT%H:%M:%SZ))"
    note "sandmine: $SANDMINE_DESC"
fi

# ---------------------------------------------------------------- build
mkdir -p "$BUILD_DIR"
note "building into $BUILD_DIR"
gcc -O2 -Wall -o "$BUILD_DIR/loop" "$HERE/loop.c"
# The allow-all filter `sandmine mine` runs the command under (one rule, as
# in mine-image's mining profile, so the filter is not trivially empty).
printf '%s\n' '{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["uselib"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}' >"$BUILD_DIR/allow-all.json"
if has_cfg floor_raw_tp || has_cfg floor_tp_btf; then
    clang -O2 -g -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 \
        -I"/usr/include/$(gcc -dumpmachine)" \
        -c "$HERE/empty.bpf.c" -o "$BUILD_DIR/empty.bpf.o"
    gcc -O2 -Wall -Wextra -o "$BUILD_DIR/loader" "$HERE/loader.c" -lbpf
fi
LOOP=$BUILD_DIR/loop
# The measured process: the loop, under SCHED_FIFO by default so that other
# work on this shared 2-CPU machine cannot preempt it (wall time then equals
# its CPU time); the tracers themselves keep normal priority.
case "$SCHED" in
fifo) LOOP_CMD=(chrt -f 10 "$LOOP") ;;
normal) LOOP_CMD=("$LOOP") ;;
*) die "SCHED must be fifo or normal, got '$SCHED'" ;;
esac

# ---------------------------------------------------------------- processes
TMP=$(mktemp -d /tmp/collector-cost.XXXXXX)
FG_PID=""       # the measured command (loop, or sandmine/strace around it)
LOADER_PID=""   # the empty-program loader, while it runs
BPFTRACE_PID="" # bpftrace, while it runs

# True if PID is still running (not just a zombie).
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# Stop one process: SIGTERM (or $2), up to 5 s, then SIGKILL; reap it.
stop_pid() {
    local pid=$1 sig=${2:-TERM} i
    [ -n "$pid" ] || return 0
    if alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for i in $(seq 50); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            note "pid $pid ignored SIG$sig; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# Wait until no loaded BPF program has this name (freeing lags detaching by
# an RCU grace period, ~0.3 s here).
wait_prog_gone() {
    local name=$1 i
    for i in $(seq 100); do
        bpftool prog show name "$name" 2>/dev/null | grep -q "name $name" || return 0
        sleep 0.1
    done
    return 1
}

# Number of BPF programs attached to sys_enter or sys_exit right now:
# raw_tp/tp_btf links plus perf-event (classic tracepoint) attachments,
# counted once per program (a raw_tp link shows up in both lists). Any of
# them puts every task's syscalls on the slower traced entry path.
count_syscall_tp() {
    { bpftool -j link list 2>/dev/null || echo '[]'; echo; echo '#'; bpftool -j perf list 2>/dev/null || echo '[]'; } |
        python3 -c '
import json, sys
links_txt, perf_txt = sys.stdin.read().split("\n#\n", 1)
def load(t):
    t = t.strip()
    return json.loads(t) if t else []
tps = ("sys_enter", "sys_exit")
progs = {l.get("prog_id") for l in load(links_txt) if l.get("tp_name") in tps}
progs |= {p.get("prog_id") for p in load(perf_txt) if p.get("tracepoint") in tps}
print(len(progs))'
}

CLEANED=0
cleanup() {
    local rc=$?
    [ "$CLEANED" = 1 ] && return
    CLEANED=1
    trap - EXIT INT TERM
    [ -n "$FG_PID" ] && stop_pid "$FG_PID"
    [ -n "$LOADER_PID" ] && stop_pid "$LOADER_PID"
    [ -n "$BPFTRACE_PID" ] && stop_pid "$BPFTRACE_PID"
    local bad=0 name
    for name in cc_empty_raw cc_empty_btf; do
        if ! wait_prog_gone "$name"; then
            note "ERROR: BPF program $name is still loaded after cleanup (bpftool prog show name $name)"
            bad=1
        fi
    done
    rm -rf "$TMP"
    [ "$bad" = 0 ] || exit 1
    exit "$rc"
}
trap cleanup EXIT
trap 'note "interrupted"; exit 130' INT
trap 'note "terminated"; exit 143' TERM

# Wait (up to $3 s) until file $1 contains regex $2, or process $4 dies.
wait_for_line() {
    local file=$1 re=$2 timeout=$3 pid=$4 i
    for i in $(seq $((timeout * 20))); do
        grep -qE "$re" "$file" 2>/dev/null && return 0
        alive "$pid" || return 1
        sleep 0.05
    done
    return 1
}

# CPU time (in USER_HZ ticks) spent busy and in total, all CPUs, so far.
cpu_ticks() {   # -> "busy total steal"
    local _c u n s i w q sq st rest
    read -r _c u n s i w q sq st rest </proc/stat
    echo "$((u + n + s + q + sq + st)) $((u + n + s + q + sq + st + i + w)) $st"
}

# Before each measurement: wait until no one else's BPF program is on
# sys_enter or sys_exit (at most QUIET_WAIT s: such a program taxes every syscall, and
# analyze.py drops rows measured with one), then until the machine is quiet
# (busy < QUIET_BUSY CPUs over 0.5 s; at most QUIET_WAIT s, or 2 s once a
# wait for quiet has timed out, until a quiet moment is seen again, so a
# machine that stays busy does not stall the run). Measures anyway after a
# timeout. Sets WAITED: seconds waited, or "timeout" (kept in the CSV).
WAITED=0
BUSY_TIMED_OUT=0
quiet_gate() {
    local t0 now a b f busy limit next_note=0 timed_out=0
    t0=$(date +%s)
    while :; do
        f=$(count_syscall_tp)
        now=$(date +%s)
        [ "$f" = 0 ] && break
        if [ $((now - t0)) -ge "$QUIET_WAIT" ]; then
            note "  someone else's program still on sys_enter/sys_exit after ${QUIET_WAIT}s ($f); measuring anyway"
            timed_out=1; break
        fi
        if [ $((now - t0)) -ge "$next_note" ]; then
            note "  waiting for someone else's program(s) on sys_enter/sys_exit to go: $f"
            next_note=$((now - t0 + 30))
        fi
        sleep 0.5
    done
    limit=$QUIET_WAIT
    [ "$BUSY_TIMED_OUT" = 1 ] && [ "$limit" -gt 2 ] && limit=2
    local t1=$now
    next_note=0
    while :; do
        a=$(cpu_ticks); sleep 0.5; b=$(cpu_ticks)
        busy=$(awk -v a="$a" -v b="$b" -v ncpu="$NCPU" 'BEGIN {
            split(a, x, " "); split(b, y, " "); dt = y[2] - x[2];
            printf "%.2f", (dt > 0 ? (y[1] - x[1]) / dt * ncpu : 0) }')
        now=$(date +%s)
        if awk -v b="$busy" -v m="$QUIET_BUSY" 'BEGIN { exit !(b + 0 < m + 0) }'; then
            BUSY_TIMED_OUT=0; break
        fi
        if [ $((now - t1)) -ge "$limit" ]; then
            [ "$BUSY_TIMED_OUT" = 1 ] || note "  machine still busy after ${limit}s ($busy CPUs); measuring anyway (and waiting at most 2 s from now on)"
            BUSY_TIMED_OUT=1; timed_out=1; break
        fi
        if [ "$limit" -gt 2 ] && [ $((now - t1)) -ge "$next_note" ]; then
            note "  waiting for a quiet machine: $busy CPUs busy"
            next_note=$((now - t1 + 30))
        fi
    done
    if [ "$timed_out" = 1 ]; then WAITED=timeout; else WAITED=$((now - t0)); fi
}

# Run the measured command in the background (so traps stay responsive),
# wait for it, parse the loop's line. Sets RESULT (wall ns/call), CPU_RESULT
# (the loop's CPU ns/call), OTHER_CPU (CPUs kept busy by everything except
# the loop during the measurement) and STEAL_CPU (CPUs' worth of time the
# hypervisor took).
RESULT=""
CPU_RESULT=""
OTHER_CPU=""
STEAL_CPU=""
measure() {
    local tag=$1; shift
    local out=$TMP/$tag.out err=$TMP/$tag.err rc=0 a b t0 t1 loop_cpu
    a=$(cpu_ticks); t0=$(date +%s%N)
    "$@" >"$out" 2>"$err" &
    FG_PID=$!
    wait "$FG_PID" || rc=$?
    FG_PID=""
    b=$(cpu_ticks); t1=$(date +%s%N)
    RESULT=$(sed -n 's/^loop: .* ns_per_call=\([0-9.]*\).*/\1/p' "$out" | tail -n 1)
    CPU_RESULT=$(sed -n 's/^loop: .* cpu_ns_per_call=\([0-9.]*\).*/\1/p' "$out" | tail -n 1)
    loop_cpu=$(sed -n 's/^loop: .*cpu_ns=\([0-9]*\).*/\1/p' "$out" | tail -n 1)
    if [ "$rc" != 0 ] || [ -z "$RESULT" ] || [ -z "$CPU_RESULT" ]; then
        note "ERROR: $tag: '$*' exited $rc, loop result '${RESULT}'"
        note "--- stdout:"; tail -n 20 "$out" >&2 || true
        note "--- stderr:"; tail -n 20 "$err" >&2 || true
        exit 1
    fi
    # Whole command's wall time (a bit longer than the loop's timed part,
    # which only makes this estimate of the others' load conservative-low).
    OTHER_CPU=$(awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" -v lc="${loop_cpu:-0}" -v hz="$HZ" 'BEGIN {
        split(a, x, " "); split(b, y, " "); wall = (t1 - t0) / 1e9;
        busy = (y[1] - x[1]) / hz;
        o = (busy - lc / 1e9) / wall; if (o < 0) o = 0; printf "%.2f", o }')
    STEAL_CPU=$(awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" -v hz="$HZ" 'BEGIN {
        split(a, x, " "); split(b, y, " "); printf "%.2f", (y[3] - x[3]) / hz / ((t1 - t0) / 1e9) }')
}

start_loader() {   # start_loader PROG_NAME
    local prog=$1 out=$TMP/loader.out
    : >"$out"
    setpriv --pdeathsig TERM "$BUILD_DIR/loader" "$BUILD_DIR/empty.bpf.o" "$prog" >"$out" 2>"$TMP/loader.err" &
    LOADER_PID=$!
    if ! wait_for_line "$out" '^ready' 10 "$LOADER_PID"; then
        cat "$TMP/loader.err" >&2 || true
        die "loader for $prog did not become ready"
    fi
}
stop_loader() {   # stop_loader PROG_NAME
    stop_pid "$LOADER_PID"
    LOADER_PID=""
    wait_prog_gone "$1" || die "BPF program $1 still loaded after its loader exited"
}

start_bpftrace() {
    local out=$TMP/bpftrace.out i
    : >"$out"
    # bpftrace warns that it cannot raise RLIMIT_MEMLOCK here; harmless on
    # kernels with memcg accounting of BPF memory (5.11+).
    setpriv --pdeathsig TERM bpftrace -e "$BPFTRACE_PROG" >"$out" 2>"$TMP/bpftrace.err" &
    BPFTRACE_PID=$!
    if ! wait_for_line "$out" '^Attaching' 30 "$BPFTRACE_PID"; then
        cat "$TMP/bpftrace.err" >&2 || true
        die "bpftrace did not print 'Attaching'"
    fi
    # "Attaching" is printed just before attaching: wait for the attachment.
    for i in $(seq 100); do
        bpftool -j perf list 2>/dev/null | grep -q "\"pid\":$BPFTRACE_PID,[^}]*\"tracepoint\":\"sys_enter\"" && return 0
        sleep 0.05
    done
    die "bpftrace printed 'Attaching' but no sys_enter attachment of pid $BPFTRACE_PID appeared"
}
stop_bpftrace() {
    # SIGINT: bpftrace detaches, prints its map (to $TMP) and exits.
    stop_pid "$BPFTRACE_PID" INT
    BPFTRACE_PID=""
}

# Programs on sys_enter/sys_exit that are not ours (own = how many we attached).
foreign() { echo $(($(count_syscall_tp) - $1)); }

# run_config CONFIG N  -> RESULT, OTHER_CPU, FOREIGN_BEFORE, FOREIGN_AFTER
FOREIGN_BEFORE=""
FOREIGN_AFTER=""
run_config() {
    local cfg=$1 n=$2
    case "$cfg" in
    none)
        FOREIGN_BEFORE=$(foreign 0)
        measure "$cfg" "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 0) ;;
    floor_raw_tp | floor_tp_btf)
        local prog=cc_empty_raw
        [ "$cfg" = floor_tp_btf ] && prog=cc_empty_btf
        start_loader "$prog"
        FOREIGN_BEFORE=$(foreign 1)
        measure "$cfg" "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 1)
        stop_loader "$prog" ;;
    sandmine)
        # sandmine attaches before it starts the workload and detaches when
        # it exits, so outside its run nothing of it should be attached.
        FOREIGN_BEFORE=$(foreign 0)
        measure "$cfg" setpriv --pdeathsig TERM "$SANDMINE" mine -o /dev/null --backend ebpf -- "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 0) ;;
    collector)
        # sandmine's collector tracking the loop, with no seccomp filter.
        FOREIGN_BEFORE=$(foreign 0)
        measure "$cfg" setpriv --pdeathsig TERM "$TRACK" -- "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 0) ;;
    collector_untracked)
        # The collector loaded while the loop is NOT tracked: what every
        # other process on a host pays while sandmine mines something.
        FOREIGN_BEFORE=$(foreign 0)
        measure "$cfg" setpriv --pdeathsig TERM "$TRACK" --untracked -- "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 0) ;;
    allow_all_filter)
        # The allow-all seccomp filter alone, as `sandmine run` installs it.
        FOREIGN_BEFORE=$(foreign 0)
        measure "$cfg" "$SANDMINE" run --profile "$ALLOW_ALL" -- "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 0) ;;
    bpftrace)
        start_bpftrace
        FOREIGN_BEFORE=$(foreign 1)
        measure "$cfg" "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 1)
        stop_bpftrace ;;
    strace)
        FOREIGN_BEFORE=$(foreign 0)
        measure "$cfg" strace -f -c -o /dev/null "${LOOP_CMD[@]}" "$n"
        FOREIGN_AFTER=$(foreign 0) ;;
    *) die "internal: unknown config $cfg" ;;
    esac
}

n_for() { if [ "$1" = strace ]; then echo "$N_STRACE"; else echo "$N"; fi; }

# ---------------------------------------------------------------- run
OUT=${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).csv}
mkdir -p "$(dirname "$OUT")"

BASE_ATTACHED=$(count_syscall_tp)
if [ "$BASE_ATTACHED" != 0 ]; then
    note "WARNING: $BASE_ATTACHED BPF program(s) of someone else attached to sys_enter/sys_exit now;"
    note "         every syscall pays for them, so each measurement first waits (QUIET_WAIT=${QUIET_WAIT}s)"
    note "         for them to go. bpftool link list / bpftool perf list show them."
fi

{
    echo "# collector-cost benchmark (benchmarks/collector-cost/run.sh)"
    echo "# date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# host: $(hostname)"
    echo "# kernel: $(uname -r)"
    echo "# nproc: $(nproc)"
    echo "# cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "# rounds: $ROUNDS"
    echo "# n: $N"
    echo "# n_strace: $N_STRACE"
    echo "# configs: ${CFGS[*]}"
    echo "# not_run: $(for c in $ALL_CONFIGS; do has_cfg "$c" || printf '%s ' "$c"; done)"
    echo "# sandmine: $SANDMINE_DESC"
    echo "# bpftrace: $(command -v bpftrace >/dev/null && bpftrace --version 2>&1 | head -n 1 || echo -)"
    echo "# foreign_syscall_tp_at_start: $BASE_ATTACHED"
    echo "# quiet_wait: $QUIET_WAIT  quiet_busy: $QUIET_BUSY"
    echo "# sched: $SCHED"
    echo "round,order,config,n,ns_per_call,cpu_ns_per_call,foreign_before,foreign_after,other_cpu,steal_cpu,waited_s,loadavg1,time_utc"
} >"$OUT"

# Preflight: every configuration once with a small N, not recorded, so a
# broken one fails before the long part (and caches are warm).
note "preflight (each config once, small N)"
for cfg in "${CFGS[@]}"; do
    n=$(( $(n_for "$cfg") / 100 )); [ "$n" -ge 1000 ] || n=1000
    run_config "$cfg" "$n"
    note "  $cfg ok ($RESULT ns/call, n=$n)"
done

ncfg=${#CFGS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    # Rotate the order each round so no configuration always runs first
    # or always follows the same one.
    for ((k = 0; k < ncfg; k++)); do
        cfg=${CFGS[$(((k + r - 1) % ncfg))]}
        n=$(n_for "$cfg")
        sleep "$SETTLE"
        quiet_gate
        run_config "$cfg" "$n"
        load=$(cut -d' ' -f1 /proc/loadavg)
        echo "$r,$((k + 1)),$cfg,$n,$RESULT,$CPU_RESULT,$FOREIGN_BEFORE,$FOREIGN_AFTER,$OTHER_CPU,$STEAL_CPU,$WAITED,$load,$(date -u +%H:%M:%S)" >>"$OUT"
        note "round $r/$ROUNDS  $(printf '%-13s' "$cfg") $(printf '%9s' "$RESULT") ns/call (cpu $CPU_RESULT)  foreign progs $FOREIGN_BEFORE/$FOREIGN_AFTER, other CPU $OTHER_CPU, steal $STEAL_CPU, waited $WAITED"
    done
done

note "raw results: $OUT"
python3 "$HERE/analyze.py" "$OUT"
