#!/usr/bin/env bash
# Use case: background snapshot: BGSAVE forks a child that writes the RDB file; LASTSAVE advances and the save status is ok.
# Source: Redis docs: Redis persistence — RDB snapshots (BGSAVE, LASTSAVE)
. "$(dirname "$0")/../lib.sh"
before=$(rcli LASTSAVE)
sleep 1.1   # LASTSAVE has a one-second resolution
rcli SET uc:14:k v >/dev/null
out=$(rcli BGSAVE 2>&1)
case $out in *"Background saving started"*|*"scheduled"*) ;; *) fail "BGSAVE refused: $out";; esac
for _ in $(seq 1 80); do
    info=$(rcli INFO persistence)
    echo "$info" | grep -q 'rdb_bgsave_in_progress:0' && [ "$(rcli LASTSAVE)" != "$before" ] && break
    sleep 0.25
done
[ "$(rcli LASTSAVE)" != "$before" ] || fail "LASTSAVE did not advance after BGSAVE"
rcli INFO persistence | grep -q 'rdb_last_bgsave_status:ok' || fail "rdb_last_bgsave_status not ok"
rcli DEL uc:14:k >/dev/null
