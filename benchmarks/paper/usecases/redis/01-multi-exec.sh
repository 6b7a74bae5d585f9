#!/usr/bin/env bash
# Use case: a MULTI/EXEC transaction queues commands and runs them atomically; DISCARD drops a queue.
# Source: Redis docs: Transactions (redis.io/docs/latest/develop/interact/transactions)
. "$(dirname "$0")/../lib.sh"
k=uc:01:$(uniq_tag)
out=$(printf 'MULTI\nSET %s 10\nINCRBY %s 5\nGET %s\nEXEC\n' "$k" "$k" "$k" | rcli) || fail "redis-cli pipe failed"
echo "$out" | grep -qx 15 || fail "EXEC did not return 15: $(echo $out)"
out=$(printf 'MULTI\nSET %s 99\nDISCARD\nGET %s\n' "$k" "$k" | rcli) || fail "redis-cli pipe failed"
echo "$out" | tail -n1 | grep -qx 15 || fail "DISCARD did not drop the queued SET: $(echo $out)"
out=$(printf 'MULTI\nSET %s\nEXEC\n' "$k" | rcli 2>&1)
echo "$out" | grep -q EXECABORT || fail "a queued syntax error did not abort EXEC: $(echo $out)"
rcli DEL "$k" >/dev/null
