#!/usr/bin/env bash
# Step 3: the app's use cases under its mined profile, then, per failing
# case, the syscalls it needed that the profile lacks.
#   usecases.sh APP RESULTDIR
# Writes RESULTDIR/usecases.txt (runner output), usecases.json, denials.txt.
#
# Finding the denied syscalls of a failing case: the case is rerun alone in a
# fresh container started with a copy of the mined profile whose
# defaultAction is SCMP_ACT_LOG (every call the profile would deny is allowed
# and logged by the kernel as an audit type=1326 record with code 0x7ffc0000);
# the new records' syscall numbers are the names the case needed. The printk
# rate limit is lifted for this (kernel.printk_ratelimit=0, restored by run.sh).
set -uo pipefail
. "$(dirname "$0")/common.sh"
app=$1 r=$2
trap cleanup_containers EXIT
p=${PORT[$app]}
tbl=$REPO/schemas/gen/linux-v6.18/arch/x86/entry/syscalls/syscall_64.tbl
if [[ $app == busybox ]]; then casedir=$LIB/smoke-usecases; else casedir=$PAPER_DIR/usecases/$app; fi
[[ -d $casedir ]] || { log "$app: no use cases in $casedir"; echo '{"total":0,"passed":0,"cases":[],"missing":true}' >"$r/usecases.json"; exit 0; }

# audit records of seccomp (type=1326) stamped at or after epoch $1; kauditd
# prints them asynchronously, so callers wait a little before reading.
audit_since() {
    dmesg | grep 'type=1326' | T=$1 perl -ne 'print if /audit\(([0-9.]+):/ && $1 >= $ENV{T}'
}
name_of() { awk -v n="$1" '$1 == n && ($2 == "common" || $2 == "64") {print $3}' "$tbl"; }

c=sandmine-eval-$app-uc
if [[ ${DIAG_ONLY:-0} == 1 ]]; then
    log "$app: DIAG_ONLY: reusing $r/usecases.txt"
else
log "$app: use cases under the mined profile"
before=$(date +%s.%N)
start_container "$c" "$app" "$r/profile.json"
if wait_ready "$app" 120 "$c"; then
    # shellcheck disable=SC2086
    ${UC_RUNNER[$app]} "$c" "$p" >"$r/usecases.txt" 2>&1 </dev/null || true
else
    echo "CONTAINER-FAILED the container did not answer within 120 s under the mined profile" >"$r/usecases.txt"
    docker logs --tail 30 "$c" >"$r/container-start.log" 2>&1 || true
fi
stop_container "$c" "$app"
sleep 2
audit_since "$before" >"$r/dmesg-1326-enforced.txt" || true
cat "$r/usecases.txt" >&2
fi

# per failing case: the calls it needed that the profile lacks
jq '.defaultAction = "SCMP_ACT_LOG" | del(.defaultErrnoRet)' "$r/profile.json" >"$r/profile-log.json"
: >"$r/denials.txt"
sysctl -qw kernel.printk_ratelimit=0
while read -r status name _ <&3; do
    [[ $status == CONTAINER-FAILED ]] && name=container-start
    [[ $status == FAIL || $status == CONTAINER-FAILED ]] || continue
    d=sandmine-eval-$app-diag
    before=$(date +%s.%N)
    start_container "$d" "$app" "$r/profile-log.json" </dev/null
    outcome=not-ready
    if [[ $name == container-start ]]; then
        wait_ready "$app" 120 "$d" && outcome=starts-when-logged
    elif wait_ready "$app" 120 "$d"; then
        if CONTAINER=$d PORT=$p timeout -k 10 60 bash "$casedir/$name.sh" >"$r/diag-$name.log" 2>&1 </dev/null; then
            outcome=passes-when-logged
        else
            outcome=fails-even-when-logged
        fi
    fi
    stop_container "$d" "$app" </dev/null
    sleep 2
    audit_since "$before" >"$r/diag-$name.1326" || true
    nrs=$(grep 'code=0x7ffc0000' "$r/diag-$name.1326" |
        sed -n 's/.* syscall=\([0-9]*\) .*/\1/p' | sort -un)
    names=$(for n in $nrs; do name_of "$n"; done | sort -u | tr '\n' ' ')
    comms=$(grep 'code=0x7ffc0000' "$r/diag-$name.1326" |
        sed -n 's/.* comm="\([^"]*\)".* syscall=\([0-9]*\) .*/\1:\2/p' | sort -u |
        while IFS=: read -r cm n; do echo "$(name_of "$n")($cm)"; done | tr '\n' ' ')
    echo -e "$name\t$outcome\t${names% }\t${comms% }" >>"$r/denials.txt"
    log "$app: $name needs: ${names:-(nothing logged)} [$outcome]"
done 3<"$r/usecases.txt"

python3 - "$r" <<'PY'
import json, sys, os
r = sys.argv[1]
cases = []
den = {}
if os.path.exists(f"{r}/denials.txt"):
    for l in open(f"{r}/denials.txt"):
        f = l.rstrip("\n").split("\t")
        den[f[0]] = {"outcome": f[1], "needed": f[2].split() if len(f) > 2 else [], "by_comm": f[3].split() if len(f) > 3 else []}
for l in open(f"{r}/usecases.txt"):
    f = l.rstrip("\n").split(" ", 2)
    if f[0] in ("PASS", "FAIL", "CONTAINER-FAILED"):
        c = {"name": f[1] if f[0] != "CONTAINER-FAILED" else "container-start", "status": "PASS" if f[0] == "PASS" else "FAIL",
             "reason": f[2] if len(f) > 2 else ""}
        c.update(den.get(c["name"], {}))
        cases.append(c)
enforced = [l.strip() for l in open(f"{r}/dmesg-1326-enforced.txt")] if os.path.exists(f"{r}/dmesg-1326-enforced.txt") else []
out = {"total": len(cases), "passed": sum(c["status"] == "PASS" for c in cases), "cases": cases, "dmesg_1326_enforced": enforced}
json.dump(out, open(f"{r}/usecases.json", "w"), indent=1)
PY
