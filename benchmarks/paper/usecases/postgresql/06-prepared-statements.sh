#!/usr/bin/env bash
# Use case: prepared statements: PREPARE with parameters, EXECUTE several times, pg_prepared_statements lists it, generic plan forced with plan_cache_mode, DEALLOCATE; EXECUTE of an unknown name fails.
# Source: PostgreSQL 15 docs: PREPARE; EXECUTE; DEALLOCATE; plan_cache_mode
. "$(dirname "$0")/../lib.sh"
out=$(pgq 2>&1 <<'SQL'
CREATE TEMP TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 1000) g;
PREPARE q(int) AS SELECT v FROM t WHERE id = $1;
PREPARE ins(int, text) AS INSERT INTO t VALUES ($1, $2);
EXECUTE q(7);
EXECUTE ins(5000, 'inserted');
EXECUTE q(5000);
SET plan_cache_mode = force_generic_plan;
EXECUTE q(999);
SELECT count(*) FROM pg_prepared_statements;
DEALLOCATE q;
DEALLOCATE ALL;
SELECT count(*) FROM pg_prepared_statements;
SQL
) || fail "prepared statement session failed: $(echo $out | tail -c 300)"
[ "$(echo "$out" | tr '\n' ' ')" = "v7 inserted v999 2 0 " ] || fail "unexpected output: $(echo $out)"
err=$(pgq -c "EXECUTE nosuch(1)" 2>&1) && fail "EXECUTE of an unknown statement succeeded"
echo "$err" | grep -q 'prepared statement "nosuch" does not exist' || fail "error: $err"
