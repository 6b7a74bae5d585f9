#!/usr/bin/env bash
# Use case: lock contention: a session holds an ACCESS EXCLUSIVE lock, another session with lock_timeout 500ms fails with a lock timeout, and succeeds after the first commits; an advisory lock is taken and released.
# Source: PostgreSQL 15 docs: Explicit Locking (13.3) — table-level locks, advisory locks; lock_timeout
. "$(dirname "$0")/../lib.sh"
t=uc20_$$
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t (x int); INSERT INTO $t VALUES (1)" || fail "setup failed"
PGPASSWORD="$PG_PASSWORD" timeout 20 psql -X -q -h "$HOST" -p "$PORT" -U "$PG_USER" -d "$PG_DB" \
    -c "BEGIN; LOCK TABLE $t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 40); do [ "$(pgq -c "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = '$t' AND l.mode = 'AccessExclusiveLock' AND l.granted")" -ge 1 ] && break; sleep 0.1; done
out=$(pgq -c "SET lock_timeout = '500ms'; SELECT * FROM $t" 2>&1) && fail "read through an exclusive lock"
echo "$out" | grep -q 'canceling statement due to lock timeout' || fail "lock timeout error: $out"
wait $pid
[ "$(pgq -c "SET lock_timeout = '5s'; SELECT x FROM $t")" = 1 ] || fail "read after the lock was released failed"
[ "$(pgq -c "SELECT pg_try_advisory_lock(4242), pg_advisory_unlock(4242)")" = "t|t" ] || fail "advisory lock failed"
pgq -c "DROP TABLE $t"
