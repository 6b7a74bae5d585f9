#!/usr/bin/env bash
# Use case: AOF rewrite: BGREWRITEAOF forks a child that rewrites the append-only file; the rewrite status is ok.
# Source: Redis docs: Redis persistence — Log rewriting (BGREWRITEAOF)
. "$(dirname "$0")/../lib.sh"
rcli SET uc:16:k v >/dev/null
for _ in $(seq 1 40); do rcli INFO persistence | grep -q 'rdb_bgsave_in_progress:0' && break; sleep 0.25; done
out=$(rcli BGREWRITEAOF 2>&1)
case $out in *"rewriting started"*|*"scheduled"*) ;; *) fail "BGREWRITEAOF refused: $out";; esac
for _ in $(seq 1 120); do
    rcli INFO persistence | grep -q 'aof_rewrite_in_progress:0' && \
      ! rcli INFO persistence | grep -q 'aof_rewrite_scheduled:1' && break
    sleep 0.25
done
info=$(rcli INFO persistence)
echo "$info" | grep -q 'aof_rewrite_in_progress:0' || fail "AOF rewrite still running"
echo "$info" | grep -q 'aof_last_bgrewrite_status:ok' || fail "aof_last_bgrewrite_status not ok"
rcli DEL uc:16:k >/dev/null
