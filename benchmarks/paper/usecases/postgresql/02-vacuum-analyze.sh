#!/usr/bin/env bash
# Use case: maintenance: delete half a table, VACUUM (VERBOSE, ANALYZE), VACUUM FULL shrinks it, statistics appear in pg_stat_user_tables and pg_stats.
# Source: PostgreSQL 15 docs: VACUUM; ANALYZE; Routine Vacuuming (25.1)
. "$(dirname "$0")/../lib.sh"
t=uc02_$$
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 50000) g" || fail "create failed"
pgq -c "DELETE FROM $t WHERE id % 2 = 0" || fail "delete failed"
pgq -c "VACUUM (VERBOSE, ANALYZE) $t" 2>/dev/null || fail "VACUUM ANALYZE failed"
before=$(pgq -c "SELECT pg_relation_size('$t')")
pgq -c "VACUUM FULL $t" || fail "VACUUM FULL failed"
after=$(pgq -c "SELECT pg_relation_size('$t')")
[ "$after" -lt "$before" ] || fail "VACUUM FULL did not shrink the table ($before -> $after)"
for _ in $(seq 1 20); do
    v=$(pgq -c "SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = '$t'")
    [ "$v" = t ] && break; sleep 0.25
done
[ "$v" = t ] || fail "pg_stat_user_tables does not record the vacuum/analyze"
[ "$(pgq -c "SELECT count(*) FROM pg_stats WHERE tablename = '$t'")" -ge 2 ] || fail "no column statistics"
pgq -c "DROP TABLE $t"
