#!/usr/bin/env bash
# Run every use case of one app, in NN order, against one running container.
#   run-usecases.sh APP CONTAINER PORT
# Prints "PASS|FAIL <case> <reason>" per case and a final count; exits
# non-zero if any case failed. Each case gets 60 s (70 s hard kill).
set -u
if [ $# -ne 3 ]; then
    echo "usage: $0 APP CONTAINER PORT" >&2
    exit 2
fi
APP=$1 CONTAINER=$2 PORT=$3
DIR=$(cd "$(dirname "$0")" && pwd)
CASES_DIR="$DIR/$APP"
[ -d "$CASES_DIR" ] || { echo "no use cases for app '$APP' in $CASES_DIR" >&2; exit 2; }
export CONTAINER PORT

pass=0 failn=0 total=0
log=$(mktemp); trap 'rm -f "$log"' EXIT
for case in "$CASES_DIR"/[0-9][0-9]-*.sh; do
    name=$(basename "$case" .sh)
    total=$((total + 1))
    start=$SECONDS
    timeout -k 10 60 bash "$case" >"$log" 2>&1
    rc=$?
    dur=$((SECONDS - start))
    if [ $rc -eq 0 ]; then
        if [ "$(docker inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" != true ]; then
            echo "FAIL $name container not running after the case (${dur}s)"
            failn=$((failn + 1))
        else
            echo "PASS $name (${dur}s)"
            pass=$((pass + 1))
        fi
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            reason="timed out after 60s"
        else
            reason=$(grep -v '^#' "$log" | grep -v '^[[:space:]]*$' | tail -n 1)
            [ -n "$reason" ] || reason="exit $rc"
        fi
        echo "FAIL $name $reason"
        [ -n "${UC_VERBOSE:-}" ] && sed 's/^/    | /' "$log"
        failn=$((failn + 1))
    fi
done
echo "$APP: $pass/$total passed, $failn failed"
[ $failn -eq 0 ]
