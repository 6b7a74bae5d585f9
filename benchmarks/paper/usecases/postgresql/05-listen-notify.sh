#!/usr/bin/env bash
# Use case: asynchronous notifications: one session LISTENs, another sends NOTIFY and pg_notify() with payloads, the listener receives both.
# Source: PostgreSQL 15 docs: LISTEN; NOTIFY; pg_notify
. "$(dirname "$0")/../lib.sh"
ch=uc05_$$
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
PGPASSWORD="$PG_PASSWORD" timeout 20 psql -X -h "$HOST" -p "$PORT" -U "$PG_USER" -d "$PG_DB" \
    -c "LISTEN $ch" -c "SELECT pg_sleep(2)" -c "SELECT 1" >"$tmp" 2>&1 &
pid=$!
for _ in $(seq 1 40); do
    [ "$(pgq -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(2)%' AND usename = current_user AND pid <> pg_backend_pid()")" -ge 1 ] && break
    sleep 0.1
done
pgq -c "NOTIFY $ch, 'hello-listener'" || fail "NOTIFY failed"
pgq -c "SELECT pg_notify('$ch', 'second-payload')" >/dev/null || fail "pg_notify failed"
wait $pid || fail "listener session failed: $(tail -c 200 "$tmp")"
grep -q "notification \"$ch\" with payload \"hello-listener\"" "$tmp" || fail "NOTIFY not received: $(cat "$tmp" | tr '\n' ' ')"
grep -q "payload \"second-payload\"" "$tmp" || fail "pg_notify not received"
