#!/usr/bin/env bash
# Use case: temp tables and work_mem spill: a 300k-row temporary table sorted with work_mem 64kB uses an external merge on disk (temp files), a hash aggregate spills too; temp_files grow in pg_stat_database.
# Source: PostgreSQL 15 docs: Resource Consumption — work_mem, temp_file_limit; Using EXPLAIN (14.1); CREATE TABLE TEMPORARY
. "$(dirname "$0")/../lib.sh"
out=$(pgq 2>&1 <<'SQL'
SET work_mem = '64kB';
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 300000) g;
ANALYZE big;
SELECT temp_files FROM pg_stat_database WHERE datname = current_database();
EXPLAIN (ANALYZE, COSTS OFF) SELECT * FROM big ORDER BY h;
EXPLAIN (ANALYZE, COSTS OFF) SELECT h, count(*) FROM big GROUP BY h;
SELECT pg_sleep(0.6);
SELECT temp_files FROM pg_stat_database WHERE datname = current_database();
SQL
) || fail "session failed: $(echo $out | tail -c 300)"
echo "$out" | grep -q 'Sort Method: external merge  Disk' || fail "sort did not spill to disk: $(echo "$out" | grep 'Sort Method')"
t0=$(echo "$out" | grep -E '^[0-9]+$' | head -1); t1=$(echo "$out" | grep -E '^[0-9]+$' | tail -1)
[ "$t1" -gt "$t0" ] || fail "temp_files did not grow ($t0 -> $t1)"
