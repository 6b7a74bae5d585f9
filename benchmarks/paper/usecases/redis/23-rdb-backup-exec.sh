#!/usr/bin/env bash
# Use case: backup from inside the container: redis-cli --rdb streams a snapshot to a file (docker exec), the file starts with the REDIS magic.
# Source: Redis docs: redis-cli — Remote backups of RDB files
. "$(dirname "$0")/../lib.sh"
rcli SET uc:23:k v >/dev/null
for _ in $(seq 1 40); do rcli INFO persistence | grep -q 'rdb_bgsave_in_progress:0' && break; sleep 0.25; done
out=$(dexec redis-cli -h 127.0.0.1 -p "$PORT" --rdb /tmp/uc23-backup.rdb 2>&1) || fail "redis-cli --rdb failed in the container: $(echo $out | tail -c 200)"
magic=$(dexec head -c 5 /tmp/uc23-backup.rdb) || fail "cannot read backup file"
[ "$magic" = REDIS ] || fail "backup file does not start with REDIS: $magic"
dexec rm -f /tmp/uc23-backup.rdb
rcli DEL uc:23:k >/dev/null
