#!/usr/bin/env bash
# Use case: physical reordering: CLUSTER a table on an index, the index is marked clustered, CLUSTER again without naming it; correlation becomes 1 after ANALYZE.
# Source: PostgreSQL 15 docs: CLUSTER
. "$(dirname "$0")/../lib.sh"
t=uc03_$$
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t AS SELECT (random() * 1000000)::int AS v, g AS id FROM generate_series(1, 50000) g; CREATE INDEX ${t}_v ON $t (v)" || fail "setup failed"
pgq -c "CLUSTER $t USING ${t}_v" || fail "CLUSTER failed"
[ "$(pgq -c "SELECT indisclustered FROM pg_index WHERE indexrelid = '${t}_v'::regclass")" = t ] || fail "index not marked clustered"
pgq -c "CLUSTER $t" || fail "second CLUSTER failed"
pgq -c "ANALYZE $t"
c=$(pgq -c "SELECT round(correlation::numeric, 2) FROM pg_stats WHERE tablename = '$t' AND attname = 'v'")
[ "$c" = 1.00 ] || fail "correlation after CLUSTER is $c"
pgq -c "DROP TABLE $t"
