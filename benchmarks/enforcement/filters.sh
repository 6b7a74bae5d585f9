#!/usr/bin/env bash
# filters.sh - which filter each configuration of run.sh installs, and how
# much of it one call walks: dumps the seccomp filter of a loop running
# under each configuration (dumpfilter.c, PTRACE_SECCOMP_GET_FILTER) and
# walks it (walk.py) for getppid, acct(NULL) and personality(0):
# instructions run, the result, and whether the kernel's action cache
# covers the call (then the filter does not run at all).
#
# Usage (root, after run.sh has built build/): benchmarks/enforcement/filters.sh
# Environment: SANDMINE (default $CARGO_TARGET_DIR/release/sandmine),
#   IMAGE=sandmine-test/busybox:1
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD=$HERE/build
IMAGE=${IMAGE:-sandmine-test/busybox:1}
SANDMINE=${SANDMINE:-${CARGO_TARGET_DIR:-/work/target-bench}/release/sandmine}
P=$BUILD/profile
die() { echo "filters.sh: error: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (ptrace of another user's process, docker)"
for f in "$BUILD/loop" "$P/seccomp.json" "$P/seccomp-args1.json" "$P/seccomp-args8.json"; do
    [ -e "$f" ] || die "missing $f: run run.sh first (ROUNDS=1 N=10000 is enough)"
done
[ -x "$SANDMINE" ] || die "no sandmine binary at $SANDMINE (set SANDMINE)"
gcc -O2 -Wall -Wextra -o "$BUILD/dumpfilter" "$HERE/dumpfilter.c"
D=$BUILD/filters
rm -rf "$D" && mkdir -p "$D"
NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all)
LONG=4000000000 # the loop runs for minutes; it is killed once dumped

# wait_filtered PID: until PID runs the loop under a filter (Seccomp: 2).
wait_filtered() {
    local pid=$1 i
    for ((i = 0; i < 500; i++)); do
        if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = loop ] &&
            grep -q '^Seccomp:[[:space:]]*2' "/proc/$pid/status" 2>/dev/null; then
            return 0
        fi
        sleep 0.01 # poll: the state is observed above
    done
    die "process $pid never ran the loop under a filter"
}

report() {
    local name=$1 f
    for f in "$D/$name".*.bpf; do
        python3 "$HERE/walk.py" "$f" getppid 110 0
        python3 "$HERE/walk.py" "$f" acct 163 0
        python3 "$HERE/walk.py" "$f" personality 135 0
    done
}

for cfg in host_sandmine host_run host_run_args1 host_run_args8; do
    case $cfg in
    host_sandmine) "${NOBODY[@]}" "$BUILD/loader" "$P/bpf/x86_64.bpf" "$BUILD/loop" personality $LONG >/dev/null & ;;
    host_run) "${NOBODY[@]}" "$SANDMINE" run --profile "$P/seccomp.json" -- "$BUILD/loop" personality $LONG >/dev/null & ;;
    host_run_args1) "${NOBODY[@]}" "$SANDMINE" run --profile "$P/seccomp-args1.json" -- "$BUILD/loop" personality $LONG >/dev/null & ;;
    host_run_args8) "${NOBODY[@]}" "$SANDMINE" run --profile "$P/seccomp-args8.json" -- "$BUILD/loop" personality $LONG >/dev/null & ;;
    esac
    pid=$!
    wait_filtered "$pid"
    "$BUILD/dumpfilter" "$pid" "$D/$cfg" >/dev/null
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    report "$cfg"
done
for cfg in docker_default docker_sandmine docker_sandmine_args1 docker_sandmine_args8; do
    case $cfg in
    docker_default) opt=() ;;
    docker_sandmine) opt=(--security-opt "seccomp=$P/seccomp.json") ;;
    docker_sandmine_args1) opt=(--security-opt "seccomp=$P/seccomp-args1.json") ;;
    docker_sandmine_args8) opt=(--security-opt "seccomp=$P/seccomp-args8.json") ;;
    esac
    id=$(docker run -d --network none -v "$BUILD/loop:/loop:ro" "${opt[@]}" "$IMAGE" /loop personality $LONG)
    pid=$(docker inspect -f '{{.State.Pid}}' "$id")
    wait_filtered "$pid"
    "$BUILD/dumpfilter" "$pid" "$D/$cfg" >/dev/null
    docker rm -f "$id" >/dev/null
    report "$cfg"
done
