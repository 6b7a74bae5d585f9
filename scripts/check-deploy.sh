#!/usr/bin/env bash
# Offline checks of deploy/ (a step of scripts/test.sh; needs no running
# systemd, only systemd-analyze from Debian's `systemd`, scripts/install-deps.sh):
#
#   1. `systemd-analyze verify` on every unit in deploy/systemd/. Verify
#      insists that ExecStart='s binary exists, so the units are checked
#      from a copy whose /usr/local/bin/sandmine points at a stub; and it
#      exits 0 on unknown keys, so any output at all is a failure.
#   2. `systemd-analyze security --offline=yes` per service, failing when a
#      unit's exposure rises above the score recorded in THRESHOLDS below
#      (and in deploy/README.md).
#   3. deploy/systemd/security.txt (the raw output of 2, committed) is
#      current: a change to a unit that changes its review must update it
#      (`scripts/check-deploy.sh --update` rewrites it).
#   4. Each check is known to check: a unit with a typo'd directive must
#      make step 1 fail, and a unit with its hardening stripped must make
#      step 2 fail. If either passes, this script fails.
#
# Usage: scripts/check-deploy.sh [--update]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
units=$root/deploy/systemd
report=$units/security.txt

# Exposure x 10 (systemd-analyze's --threshold scale): the recorded scores.
declare -A THRESHOLDS=(
    [sandmine-collect.service]=34
    [sandmine-aggregate.service]=26
    [sandmine-publish.service]=26
)

update=0
case ${1:-} in
--update) update=1 ;;
"") ;;
*)
    echo "check-deploy: unknown argument $1 (see the header)" >&2
    exit 2
    ;;
esac

command -v systemd-analyze >/dev/null || {
    echo "check-deploy: systemd-analyze missing; run scripts/install-deps.sh" >&2
    exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$work/sandmine"
chmod 755 "$work/sandmine"
mkdir "$work/units" "$work/broken"

# stage DIR FILE...: copies of the units, the binary path on the stub.
stage() {
    local dir=$1 f
    shift
    for f in "$@"; do
        sed "s|/usr/local/bin/sandmine|$work/sandmine|g" "$f" >"$dir/$(basename "$f")"
    done
}

# verify FILE...: rc 0 and no output, or fail with the output.
verify() {
    local out rc=0
    out=$(systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
    if ((rc != 0)) || [[ -n $out ]]; then
        printf '%s\n' "$out"
        return 1
    fi
}

# security UNIT-FILE: the offline review; fails above the unit's threshold.
security() {
    local name
    name=$(basename "$1")
    systemd-analyze security --offline=yes --no-pager \
        --threshold="${THRESHOLDS[$name]}" "$1" 2>&1
}

fail=0
shopt -s nullglob
all=("$units"/*.service "$units"/*.timer)
services=("$units"/*.service)
if ((${#services[@]} == 0)); then
    echo "check-deploy: no units in $units" >&2
    exit 1
fi
stage "$work/units" "${all[@]}"

echo "== systemd-analyze verify (${#all[@]} units)"
if verify "$work"/units/*; then
    echo "ok"
else
    echo "check-deploy: systemd-analyze verify failed" >&2
    fail=1
fi

echo "== systemd-analyze security --offline=yes"
fresh=$work/security.txt
{
    echo "# systemd-analyze security --offline=yes UNIT (systemd $(systemd-analyze --version | sed -n '1s/^systemd //p'))"
    echo "# written by scripts/check-deploy.sh --update; checked by scripts/check-deploy.sh"
} >"$fresh"
for f in "${services[@]}"; do
    name=$(basename "$f")
    [[ -n ${THRESHOLDS[$name]:-} ]] || {
        echo "check-deploy: no threshold for $name" >&2
        fail=1
        continue
    }
    rc=0
    out=$(security "$work/units/$name") || rc=$?
    {
        echo
        echo "\$ systemd-analyze security --offline=yes $name"
        printf '%s\n' "$out"
    } >>"$fresh"
    printf '%s\n' "$out" | tail -n 1
    if ((rc != 0)); then
        echo "check-deploy: $name is above its recorded exposure ${THRESHOLDS[$name]}/10" >&2
        fail=1
    fi
done

if ((update)); then
    cp "$fresh" "$report"
    echo "check-deploy: wrote $report"
elif ! diff -u "$report" "$fresh"; then
    echo "check-deploy: $report is stale (scripts/check-deploy.sh --update)" >&2
    fail=1
fi

echo "== the checks check (deliberately broken samples)"
collect=$work/units/sandmine-collect.service
# A typo'd directive: verify must complain.
sed 's/^NoNewPrivileges=/NoNewPrivilege=/' "$collect" >"$work/broken/sandmine-collect.service"
if verify "$work/broken/sandmine-collect.service" >/dev/null; then
    echo "check-deploy: verify accepted a unit with a typo'd directive (NoNewPrivilege=)" >&2
    fail=1
else
    echo "ok: verify rejects a typo'd directive"
fi
# Hardening stripped: the security review must exceed the threshold.
grep -vE '^(Protect|Private|Restrict|CapabilityBoundingSet|NoNewPrivileges|MemoryDeny|LockPersonality|SystemCallArchitectures)' \
    "$collect" >"$work/broken/sandmine-collect.service"
if security "$work/broken/sandmine-collect.service" >/dev/null; then
    echo "check-deploy: the security review accepted a unit with its hardening stripped" >&2
    fail=1
else
    echo "ok: the security review rejects a unit with its hardening stripped"
fi

if ((fail)); then
    echo "check-deploy: FAILED" >&2
    exit 1
fi
echo "check-deploy: all passed"
