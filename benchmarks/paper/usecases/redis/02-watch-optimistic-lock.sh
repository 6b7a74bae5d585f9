#!/usr/bin/env bash
# Use case: optimistic locking: WATCH a key, another client changes it before EXEC, the transaction is aborted; an undisturbed one commits.
# Source: Redis docs: Transactions — Optimistic locking using check-and-set (WATCH)
. "$(dirname "$0")/../lib.sh"
k=uc:02:$(uniq_tag)
rcli SET "$k" 1 >/dev/null || fail "SET failed"
# disturbed: another client writes 100 between WATCH and EXEC -> INCR must not apply
{ printf 'WATCH %s\nMULTI\nINCR %s\n' "$k" "$k"; sleep 1; printf 'EXEC\n'; } | rcli >/dev/null &
pid=$!
sleep 0.4
rcli SET "$k" 100 >/dev/null || fail "concurrent SET failed"
wait $pid
[ "$(rcli GET "$k")" = 100 ] || fail "EXEC after a concurrent write was not aborted (value $(rcli GET "$k"))"
# undisturbed: commits
out=$(printf 'WATCH %s\nMULTI\nINCR %s\nEXEC\n' "$k" "$k" | rcli)
[ "$(rcli GET "$k")" = 101 ] || fail "undisturbed WATCH/EXEC did not commit: $(echo $out)"
expect_redis OK UNWATCH
rcli DEL "$k" >/dev/null
