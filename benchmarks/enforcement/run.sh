#!/usr/bin/env bash
# run.sh - what does enforcing a generated seccomp profile cost per syscall?
#
# Runs loop.c (N calls of one syscall: getppid, which every profile allows,
# acct, which every profile here denies, or personality(PER_LINUX = 0),
# allowed by name or by argument rules) under the configurations below,
# interleaved round by round (the order rotates each round), and reports
# median ns/call and the cost added over no filter (analyze.py):
#
#   host_none          the loop as nobody on the host, no filter
#   host_sandmine      the same under the generated profile's raw BPF program
#                      (bpf/x86_64.bpf, installed by loader.c)
#   docker_unconfined  docker run --security-opt seccomp=unconfined
#   docker_default     docker run (Docker's built-in default profile)
#   docker_sandmine    docker run --security-opt seccomp=<generated seccomp.json>
#   docker_sandmine_log  the same profile with getppid moved from the allow
#                      rule to an SCMP_ACT_LOG rule, as the reachability log
#                      tier writes it: the call runs, skips the kernel's
#                      action cache and writes an audit record
#   docker_sandmine_args1  the profile with personality's name-only allow
#                      replaced by one SCMP_ACT_ALLOW rule with
#                      args [{index 0, value (mask) 0xffffffff, valueTwo 0,
#                      SCMP_CMP_MASKED_EQ}]: the loop's value
#   docker_sandmine_args8  the same with 8 such rules, the loop's value last
#                      (last in the profile, which filter.rs follows, and the
#                      smallest, which runc's libseccomp compares last)
#   host_run           the loop as nobody under `sandmine run --profile
#                      <generated seccomp.json>` (sandmine's own BPF compiler,
#                      policy-compiler/src/filter.rs): the name-only baseline
#                      of the two below
#   host_run_args1     sandmine run with the args1 profile
#   host_run_args8     sandmine run with the args8 profile
# The argument-rule configurations and host_run run personality only (the
# only call they change); the others run every call in SYSCALLS.
#
# The generated profile comes from policy-compiler's example
# `enforcement_profile` (an enforced allow-list of what runc and the loop
# need; acct not in it). In the containers the loop runs as root without
# CAP_SYS_PACCT, on the host as nobody: with no filter acct fails at the
# capability check with EPERM, under a filter the filter answers EPERM.
#
# Usage (root, dockerd running, image sandmine-test/busybox:1 present):
#   benchmarks/enforcement/run.sh
# Environment:
#   ROUNDS=7    rounds; every (configuration, syscall) runs once per round
#   N=2000000   calls per measurement
#   OUT=FILE    raw CSV; default results/<UTC time>.csv here
#   IMAGE=sandmine-test/busybox:1
#   CONFIGS="host_none host_sandmine docker_unconfined docker_default docker_sandmine docker_sandmine_log
#            docker_sandmine_args1 docker_sandmine_args8 host_run host_run_args1 host_run_args8"
#   SYSCALLS="getppid acct personality"
#   SANDMINE=PATH  the sandmine binary for host_run*; default: cargo build
#               --release -p sandmine, then $CARGO_TARGET_DIR/release/sandmine
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-7}
N=${N:-2000000}
IMAGE=${IMAGE:-sandmine-test/busybox:1}
ALL_CONFIGS="host_none host_sandmine docker_unconfined docker_default docker_sandmine docker_sandmine_log docker_sandmine_args1 docker_sandmine_args8 host_run host_run_args1 host_run_args8"
CONFIGS=${CONFIGS:-$ALL_CONFIGS}
ALL_SYSCALLS="getppid acct personality"
SYSCALLS=${SYSCALLS:-$ALL_SYSCALLS}
# The argument-rule variants narrow personality only; host_run is their
# name-only baseline. They run personality and nothing else.
ARGS_ONLY="docker_sandmine_args1 docker_sandmine_args8 host_run host_run_args1 host_run_args8"
# PER_LINUX (0, the loop's value) and seven other values, the loop's last:
# Docker's default profile's other values (the query 0xffffffff,
# UNAME26|PER_LINUX32, UNAME26, PER_LINUX32) and ADDR_NO_RANDOMIZE alone and
# with PER_LINUX32, READ_IMPLIES_EXEC. Descending, as libseccomp orders them.
ARG_VALUES_8="4294967295 4194304 262152 262144 131080 131072 8 0"
ARG_VALUE_1="0"
BUILD=$HERE/build
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-bench}

die() { echo "run.sh: error: $*" >&2; exit 1; }
note() { echo "run.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || die "needs root (docker, setpriv)"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"
for t in gcc python3 setpriv docker cargo; do
    command -v "$t" >/dev/null || die "missing $t"
done
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || die "static glibc missing (apt-get install libc6-dev)"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "docker image $IMAGE not found (is dockerd running? scripts/start-dockerd.sh)"
read -r -a CFGS <<<"$CONFIGS"
for c in "${CFGS[@]}"; do
    case " $ALL_CONFIGS " in *" $c "*) ;; *) die "unknown config '$c' (known: $ALL_CONFIGS)";; esac
done
read -r -a SCS <<<"$SYSCALLS"
for s in "${SCS[@]}"; do
    case " $ALL_SYSCALLS " in *" $s "*) ;; *) die "unknown syscall '$s' (known: $ALL_SYSCALLS)";; esac
done
NEED_SANDMINE=0
for c in "${CFGS[@]}"; do case "$c" in host_run*) NEED_SANDMINE=1 ;; esac; done

exec 9>/tmp/sandmine-enforcement.lock
flock -n 9 || die "another run.sh is running"

# ---------------------------------------------------------------- build
mkdir -p "$BUILD"
gcc -O2 -Wall -Wextra -static -o "$BUILD/loop" "$HERE/loop.c"
gcc -O2 -Wall -Wextra -o "$BUILD/loader" "$HERE/loader.c"
rm -rf "$BUILD/profile"
(cd "$REPO" && cargo run -q --release -p policy-compiler --example enforcement_profile -- "$BUILD/profile") >&2 ||
    die "generating the profile failed"
BPF=$BUILD/profile/bpf/x86_64.bpf
JSON=$BUILD/profile/seccomp.json
[ -f "$BPF" ] && [ -f "$JSON" ] || die "the example wrote no $BPF / $JSON"
# The log tier: getppid leaves the allow rule for a rule of its own with
# SCMP_ACT_LOG, as policy-compiler writes a reachable, never observed call.
JSON_LOG=$BUILD/profile/seccomp-log.json
python3 - "$JSON" "$JSON_LOG" <<'PY' || die "writing the log-tier profile failed"
import json, sys
p = json.load(open(sys.argv[1]))
allow = [r for r in p["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "getppid" in r["names"]]
assert len(allow) == 1, "getppid must be in exactly one allow rule"
allow[0]["names"].remove("getppid")
p["syscalls"].append({"names": ["getppid"], "action": "SCMP_ACT_LOG"})
json.dump(p, open(sys.argv[2], "w"), indent=1)
PY
# Argument rules: personality leaves the allow rule for one SCMP_ACT_ALLOW
# rule per value, each comparing the whole low 32 bits of the first
# argument (SCMP_CMP_MASKED_EQ, value = mask, valueTwo = the masked value),
# as policy-compiler writes a syscall narrowed on an argument.
JSON_ARGS1=$BUILD/profile/seccomp-args1.json
JSON_ARGS8=$BUILD/profile/seccomp-args8.json
for v in "$JSON_ARGS1:$ARG_VALUE_1" "$JSON_ARGS8:$ARG_VALUES_8"; do
    python3 - "$JSON" "${v%%:*}" ${v#*:} <<'PY' || die "writing the argument-rule profile ${v%%:*} failed"
import json, sys
p = json.load(open(sys.argv[1]))
allow = [r for r in p["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "personality" in r["names"]]
assert len(allow) == 1, "personality must be in exactly one allow rule"
assert not any("personality" in r["names"] for r in p["syscalls"] if r is not allow[0]), "personality in another rule"
allow[0]["names"].remove("personality")
for v in sys.argv[3:]:
    p["syscalls"].append({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 0, "value": 4294967295, "valueTwo": int(v), "op": "SCMP_CMP_MASKED_EQ"}]})
json.dump(p, open(sys.argv[2], "w"), indent=1)
PY
done
if [ "$NEED_SANDMINE" = 1 ]; then
    if [ -z "${SANDMINE:-}" ]; then
        (cd "$REPO" && cargo build -q --release -p sandmine) >&2 || die "building sandmine failed"
        SANDMINE=$CARGO_TARGET_DIR/release/sandmine
    fi
    [ -x "$SANDMINE" ] || die "no sandmine binary at $SANDMINE"
fi
grep -qw log /proc/sys/kernel/seccomp/actions_logged ||
    die "kernel.seccomp.actions_logged lacks 'log': a logged call would write no record"

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all)
DOCKER=(docker run --rm --network none -v "$BUILD/loop:/loop:ro")

# run_config CONFIG SYSCALL N -> RESULT (wall ns/call), CPU_RESULT
RESULT=""; CPU_RESULT=""
run_config() {
    local cfg=$1 sc=$2 n=$3 out
    case "$cfg" in
    host_none) out=$("${NOBODY[@]}" "$BUILD/loop" "$sc" "$n") ;;
    host_sandmine) out=$("${NOBODY[@]}" "$BUILD/loader" "$BPF" "$BUILD/loop" "$sc" "$n") ;;
    docker_unconfined) out=$("${DOCKER[@]}" --security-opt seccomp=unconfined "$IMAGE" /loop "$sc" "$n") ;;
    docker_default) out=$("${DOCKER[@]}" "$IMAGE" /loop "$sc" "$n") ;;
    docker_sandmine) out=$("${DOCKER[@]}" --security-opt "seccomp=$JSON" "$IMAGE" /loop "$sc" "$n") ;;
    docker_sandmine_log) out=$("${DOCKER[@]}" --security-opt "seccomp=$JSON_LOG" "$IMAGE" /loop "$sc" "$n") ;;
    docker_sandmine_args1) out=$("${DOCKER[@]}" --security-opt "seccomp=$JSON_ARGS1" "$IMAGE" /loop "$sc" "$n") ;;
    docker_sandmine_args8) out=$("${DOCKER[@]}" --security-opt "seccomp=$JSON_ARGS8" "$IMAGE" /loop "$sc" "$n") ;;
    host_run) out=$("${NOBODY[@]}" "$SANDMINE" run --profile "$JSON" -- "$BUILD/loop" "$sc" "$n") ;;
    host_run_args1) out=$("${NOBODY[@]}" "$SANDMINE" run --profile "$JSON_ARGS1" -- "$BUILD/loop" "$sc" "$n") ;;
    host_run_args8) out=$("${NOBODY[@]}" "$SANDMINE" run --profile "$JSON_ARGS8" -- "$BUILD/loop" "$sc" "$n") ;;
    esac || die "$cfg $sc failed"
    RESULT=$(sed -n 's/^loop: .* ns_per_call=\([0-9.]*\).*/\1/p' <<<"$out")
    CPU_RESULT=$(sed -n 's/^loop: .* cpu_ns_per_call=\([0-9.]*\).*/\1/p' <<<"$out")
    [ -n "$RESULT" ] && [ -n "$CPU_RESULT" ] || die "$cfg $sc: no result in '$out'"
}

OUT=${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ).csv}
mkdir -p "$(dirname "$OUT")"
{
    echo "# enforcement benchmark (benchmarks/enforcement/run.sh)"
    echo "# date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "# kernel: $(uname -r)"
    echo "# nproc: $(nproc)"
    echo "# cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "# docker: $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo -)"
    echo "# rounds: $ROUNDS"
    echo "# n: $N"
    echo "# profile: $(sha256sum "$JSON" | cut -c1-64) ($(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(len(p["syscalls"][0]["names"]), "allowed names, default", p["defaultAction"])' "$JSON")); bpf $(($(stat -c %s "$BPF") / 8)) instructions"
    echo "# argument rules: personality arg 0 MASKED_EQ mask 4294967295; args1 values $ARG_VALUE_1; args8 values $ARG_VALUES_8"
    if [ "$NEED_SANDMINE" = 1 ]; then
        echo "# sandmine: $SANDMINE ($(date -u -r "$SANDMINE" +%Y-%m-%dT%H:%M:%SZ))"
    fi
    echo "# loadavg_start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "round,order,config,syscall,n,ns_per_call,cpu_ns_per_call,loadavg1,time_utc"
} >"$OUT"

# Every pair of (config, syscall), rotated each round.
PAIRS=()
for c in "${CFGS[@]}"; do
    for s in "${SCS[@]}"; do
        case " $ARGS_ONLY " in *" $c "*) [ "$s" = personality ] || continue ;; esac
        PAIRS+=("$c:$s")
    done
done
[ "${#PAIRS[@]}" -gt 0 ] || die "nothing to run (the argument-rule configurations run personality only)"
note "preflight (each configuration once, small N)"
for p in "${PAIRS[@]}"; do run_config "${p%%:*}" "${p##*:}" 10000; done
np=${#PAIRS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    for ((k = 0; k < np; k++)); do
        p=${PAIRS[$(((k + r - 1) % np))]}
        run_config "${p%%:*}" "${p##*:}" "$N"
        echo "$r,$((k + 1)),${p%%:*},${p##*:},$N,$RESULT,$CPU_RESULT,$(cut -d' ' -f1 /proc/loadavg),$(date -u +%H:%M:%S)" >>"$OUT"
        note "round $r/$ROUNDS $(printf '%-18s %-8s' "${p%%:*}" "${p##*:}") $RESULT ns/call (cpu $CPU_RESULT)"
    done
done
echo "# loadavg_end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT"
note "raw results: $OUT"
python3 "$HERE/analyze.py" "$OUT"
