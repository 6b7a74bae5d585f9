#!/usr/bin/env bash
# Use case: blocking list operations: BLPOP waits for a push from another client; BLPOP times out with nil; BLMOVE between lists.
# Source: Redis docs: BLPOP / BLMOVE commands (Lists — blocking operations)
. "$(dirname "$0")/../lib.sh"
k=uc:21:$(uniq_tag)
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
rcli BLPOP "$k" 10 >"$tmp" 2>&1 &
pid=$!
sleep 0.5
rcli RPUSH "$k" hello >/dev/null
wait $pid || fail "BLPOP client failed: $(cat "$tmp")"
grep -qx hello "$tmp" || fail "BLPOP did not return the pushed value: $(cat "$tmp")"
start=$(date +%s%N)
out=$(rcli BLPOP "$k:empty" 0.3)
el=$(( ($(date +%s%N) - start) / 1000000 ))
[ -z "$out" ] && [ "$el" -ge 250 ] || fail "BLPOP timeout misbehaved: '$out' after ${el}ms"
rcli RPUSH "$k:src" a b >/dev/null
expect_redis b BLMOVE "$k:src" "$k:dst" RIGHT LEFT 1
rcli DEL "$k" "$k:src" "$k:dst" >/dev/null
