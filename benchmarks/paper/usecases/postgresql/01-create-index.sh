#!/usr/bin/env bash
# Use case: index builds: CREATE INDEX on a 200k-row table, the planner uses it (Index Scan), CREATE INDEX CONCURRENTLY, a partial and an expression index, REINDEX, DROP INDEX CONCURRENTLY.
# Source: PostgreSQL 15 docs: CREATE INDEX (Building Indexes Concurrently); Chapter 11 Indexes
. "$(dirname "$0")/../lib.sh"
t=uc01_$$
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t AS SELECT g AS id, md5(g::text) AS h, g % 100 AS k FROM generate_series(1, 200000) g" || fail "create table failed"
pgq -c "CREATE INDEX ${t}_id ON $t (id); ANALYZE $t" || fail "CREATE INDEX failed"
pgq -c "EXPLAIN SELECT * FROM $t WHERE id = 4242" | grep -q "Index.*Scan.*${t}_id" || fail "planner does not use the index"
pgq -c "CREATE INDEX CONCURRENTLY ${t}_h ON $t (h)" || fail "CREATE INDEX CONCURRENTLY failed"
pgq -c "CREATE INDEX ${t}_part ON $t (id) WHERE k = 7" || fail "partial index failed"
pgq -c "CREATE INDEX ${t}_expr ON $t (lower(h))" || fail "expression index failed"
[ "$(pgq -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname = '$t' AND i.indisvalid")" = 4 ] || fail "not 4 valid indexes"
pgq -c "REINDEX TABLE $t" || fail "REINDEX failed"
pgq -c "DROP INDEX CONCURRENTLY ${t}_h" || fail "DROP INDEX CONCURRENTLY failed"
pgq -c "DROP TABLE $t"
