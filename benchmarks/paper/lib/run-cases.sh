#!/usr/bin/env bash
# The smoke version of usecases/run-usecases.sh (same output format):
#   run-cases.sh CASEDIR CONTAINER PORT
set -u
dir=$1 CONTAINER=$2 PORT=$3
export CONTAINER PORT
pass=0 failn=0 total=0
for c in "$dir"/[0-9][0-9]-*.sh; do
    name=$(basename "$c" .sh); total=$((total + 1))
    if out=$(timeout -k 5 30 bash "$c" 2>&1); then
        echo "PASS $name"; pass=$((pass + 1))
    else
        echo "FAIL $name $(tail -n 1 <<<"$out")"; failn=$((failn + 1))
    fi
done
echo "smoke: $pass/$total passed, $failn failed"
[ $failn -eq 0 ]
