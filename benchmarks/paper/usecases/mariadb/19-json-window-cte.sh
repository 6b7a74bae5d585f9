#!/usr/bin/env bash
# Use case: feature paths beyond OLTP: JSON functions (JSON_OBJECT, JSON_EXTRACT, JSON_TABLE), window functions, a recursive CTE.
# Source: MariaDB docs: JSON Functions; JSON_TABLE; Window Functions; Recursive Common Table Expressions
. "$(dirname "$0")/../lib.sh"
out=$(myq 2>&1 <<'SQL'
SELECT JSON_EXTRACT(JSON_OBJECT('a', 1, 'b', JSON_ARRAY(2, 3)), '$.b[1]');
SELECT sum(x) FROM JSON_TABLE('[{"x": 1}, {"x": 2}, {"x": 39}]', '$[*]' COLUMNS (x INT PATH '$.x')) AS jt;
SELECT group_concat(r ORDER BY seq) FROM (SELECT seq, rank() OVER (PARTITION BY seq % 2 ORDER BY seq) AS r FROM seq_1_to_4) w;
WITH RECURSIVE f (n, a, b) AS (SELECT 1, CAST(0 AS DECIMAL(30)), CAST(1 AS DECIMAL(30)) UNION ALL SELECT n + 1, b, a + b FROM f WHERE n < 50) SELECT a FROM f WHERE n = 50;
SQL
) || fail "session failed: $(echo $out | tail -c 300)"
[ "$(echo "$out" | tr '\n' ' ')" = "3 42 1,1,2,2 7778742049 " ] || fail "unexpected results: $(echo $out)"
