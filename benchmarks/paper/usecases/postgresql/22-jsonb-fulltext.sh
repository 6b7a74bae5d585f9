#!/usr/bin/env bash
# Use case: feature paths beyond TPC-B: a jsonb column with a GIN index and containment queries, full-text search with to_tsvector/to_tsquery and a GIN index, a window function and a recursive CTE.
# Source: PostgreSQL 15 docs: JSON Types (8.14) — jsonb indexing; Full Text Search (Chapter 12); Window Functions (3.5); WITH Queries (7.8)
. "$(dirname "$0")/../lib.sh"
t=uc22_$$
out=$(pgq 2>&1 <<SQL
CREATE TABLE $t (id serial PRIMARY KEY, doc jsonb, body text);
INSERT INTO $t (doc, body) SELECT jsonb_build_object('n', g, 'tags', CASE WHEN g % 10 = 0 THEN '["ten"]'::jsonb ELSE '["other"]'::jsonb END),
    CASE WHEN g % 100 = 0 THEN 'the quick brown fox jumps' ELSE 'lorem ipsum dolor sit amet' END FROM generate_series(1, 5000) g;
CREATE INDEX ${t}_doc ON $t USING gin (doc);
CREATE INDEX ${t}_fts ON $t USING gin (to_tsvector('english', body));
ANALYZE $t;
SELECT count(*) FROM $t WHERE doc @> '{"tags": ["ten"]}';
SELECT count(*) FROM $t WHERE to_tsvector('english', body) @@ to_tsquery('english', 'jumping & fox');
SELECT sum(r) FROM (SELECT rank() OVER (PARTITION BY id % 2 ORDER BY id) AS r FROM $t WHERE id <= 4) w;
WITH RECURSIVE f(n, a, b) AS (SELECT 1, 0::numeric, 1::numeric UNION ALL SELECT n + 1, b, a + b FROM f WHERE n < 50) SELECT a FROM f WHERE n = 50;
DROP TABLE $t;
SQL
) || fail "session failed: $(echo $out | tail -c 300)"
[ "$(echo "$out" | tr '\n' ' ')" = "500 50 6 7778742049 " ] || fail "unexpected results: $(echo $out)"
