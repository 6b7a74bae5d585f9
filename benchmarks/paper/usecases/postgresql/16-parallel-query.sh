#!/usr/bin/env bash
# Use case: parallel query: with parallel costs set to 0, a count and an aggregate over a 500k-row table run under Gather with parallel workers launched.
# Source: PostgreSQL 15 docs: Parallel Query (Chapter 15) — How Parallel Query Works, max_parallel_workers_per_gather
. "$(dirname "$0")/../lib.sh"
t=uc16_$$
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t AS SELECT g AS id, g % 1000 AS k FROM generate_series(1, 500000) g; ANALYZE $t" || fail "setup failed"
out=$(pgq 2>&1 <<SQL
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM $t;
EXPLAIN (ANALYZE, COSTS OFF) SELECT k, sum(id) FROM $t GROUP BY k;
SELECT count(*) FROM $t;
SQL
) || fail "session failed: $(echo $out | tail -c 300)"
echo "$out" | grep -q 'Gather' || fail "no Gather node in the plan"
l=$(echo "$out" | sed -n 's/.*Workers Launched: \([0-9]*\).*/\1/p' | sort -n | tail -1)
[ -n "$l" ] && [ "$l" -ge 1 ] || fail "no parallel worker launched: $(echo "$out" | grep Workers | tr '\n' ' ')"
echo "$out" | grep -qx 500000 || fail "parallel count wrong"
pgq -c "DROP TABLE $t"
