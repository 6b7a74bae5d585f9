#!/usr/bin/env bash
# Use case: authentication failures: a wrong password, an unknown role and an unknown database are refused with the right messages; the right password works.
# Source: PostgreSQL 15 docs: Client Authentication — pg_hba.conf, SCRAM-SHA-256 password authentication (21.5)
. "$(dirname "$0")/../lib.sh"
out=$(PGPASSWORD=wrong PGCONNECT_TIMEOUT=10 timeout 20 psql -X -h "$HOST" -p "$PORT" -U "$PG_USER" -d "$PG_DB" -c 'SELECT 1' 2>&1) && fail "wrong password accepted"
echo "$out" | grep -q 'password authentication failed for user "bench"' || fail "wrong password: $out"
out=$(PGPASSWORD=x PGCONNECT_TIMEOUT=10 timeout 20 psql -X -h "$HOST" -p "$PORT" -U uc10_nosuchrole -d "$PG_DB" -c 'SELECT 1' 2>&1) && fail "unknown role accepted"
echo "$out" | grep -q 'password authentication failed' || fail "unknown role: $out"
out=$(PG_DB=uc10_nosuchdb pgq -c 'SELECT 1' 2>&1) && fail "unknown database accepted"
echo "$out" | grep -q 'database "uc10_nosuchdb" does not exist' || fail "unknown database: $out"
[ "$(pgq -c 'SELECT current_user')" = bench ] || fail "the right password does not work"
