#!/usr/bin/env bash
# Use case: session administration: find a long query in pg_stat_activity, pg_cancel_backend cancels it, pg_terminate_backend ends an idle session, pg_locks shows a lock held by a session.
# Source: PostgreSQL 15 docs: Server Signaling Functions (pg_cancel_backend, pg_terminate_backend); The Cumulative Statistics System — pg_stat_activity
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
PGPASSWORD="$PG_PASSWORD" timeout 30 psql -X -h "$HOST" -p "$PORT" -U "$PG_USER" -d "$PG_DB" -c "SELECT pg_sleep(25) /* uc19 */" >"$tmp" 2>&1 &
pid=$!
bp=""
for _ in $(seq 1 40); do bp=$(pgq -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%/* uc19 */%' AND pid <> pg_backend_pid() AND state = 'active'"); [ -n "$bp" ] && break; sleep 0.1; done
[ -n "$bp" ] || fail "long query not in pg_stat_activity"
pgq -c "SELECT pg_cancel_backend($bp)" | grep -qx t || fail "pg_cancel_backend failed"
wait $pid
grep -q 'canceling statement due to user request' "$tmp" || fail "query not cancelled: $(cat "$tmp")"
PGPASSWORD="$PG_PASSWORD" timeout 30 psql -X -h "$HOST" -p "$PORT" -U "$PG_USER" -d "$PG_DB" \
    -c "CREATE TEMP TABLE uc19 (x int); BEGIN; LOCK TABLE uc19 IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(25) /* uc19b */" >"$tmp" 2>&1 &
pid=$!
bp=""
for _ in $(seq 1 40); do bp=$(pgq -c "SELECT pid FROM pg_stat_activity WHERE query LIKE '%/* uc19b */%' AND pid <> pg_backend_pid()"); [ -n "$bp" ] && break; sleep 0.1; done
[ -n "$bp" ] || fail "second session not found"
[ "$(pgq -c "SELECT count(*) FROM pg_locks WHERE pid = $bp AND mode = 'AccessExclusiveLock' AND locktype = 'relation'")" -ge 1 ] || fail "lock not in pg_locks"
pgq -c "SELECT pg_terminate_backend($bp)" | grep -qx t || fail "pg_terminate_backend failed"
wait $pid
grep -q 'terminating connection due to administrator command' "$tmp" || fail "session not terminated: $(cat "$tmp")"
