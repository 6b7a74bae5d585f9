#!/usr/bin/env bash
# Use case: prepared statements in SQL: PREPARE with placeholders, EXECUTE USING user variables several times, EXECUTE IMMEDIATE, DEALLOCATE, an unknown statement handler (1243).
# Source: MariaDB docs: Prepared Statements — PREPARE, EXECUTE, EXECUTE IMMEDIATE, DEALLOCATE
. "$(dirname "$0")/../lib.sh"
out=$(myq 2>&1 <<'SQL'
CREATE TEMPORARY TABLE t (id INT PRIMARY KEY, v VARCHAR(20));
PREPARE ins FROM 'INSERT INTO t VALUES (?, ?)';
SET @i = 1, @v = 'one'; EXECUTE ins USING @i, @v;
SET @i = 2, @v = 'two'; EXECUTE ins USING @i, @v;
PREPARE q FROM 'SELECT v FROM t WHERE id = ?';
SET @i = 2; EXECUTE q USING @i;
EXECUTE IMMEDIATE 'SELECT count(*) FROM t WHERE id > ?' USING 0;
DEALLOCATE PREPARE ins;
DEALLOCATE PREPARE q;
SQL
) || fail "session failed: $(echo $out | tail -c 300)"
[ "$(echo "$out" | tr '\n' ' ')" = "two 2 " ] || fail "unexpected results: $(echo $out)"
err=$(myq -e "EXECUTE nosuch" 2>&1) && fail "EXECUTE of an unknown statement succeeded"
echo "$err" | grep -q 'ERROR 1243' || fail "error: $err"
