#!/usr/bin/env bash
# Use case: full-text search: a FULLTEXT index on InnoDB, MATCH ... AGAINST in natural language mode with relevance and in boolean mode with + and - operators.
# Source: MariaDB docs: Full-Text Index Overview; MATCH AGAINST
. "$(dirname "$0")/../lib.sh"
t=uc16_$$
out=$(myq 2>&1 <<SQL
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY, body TEXT, FULLTEXT KEY ft (body)) ENGINE=InnoDB;
INSERT INTO $t SELECT seq, IF(seq % 100 = 0, 'seccomp sandbox mined from container syscalls', 'lorem ipsum dolor sit amet') FROM seq_1_to_3000;
INSERT INTO $t VALUES (5000, 'seccomp profile without sandbox');
SELECT count(*) FROM $t WHERE MATCH (body) AGAINST ('sandbox syscalls');
SELECT count(*) FROM $t WHERE MATCH (body) AGAINST ('+seccomp -container' IN BOOLEAN MODE);
SELECT id FROM $t WHERE MATCH (body) AGAINST ('sandbox syscalls') ORDER BY MATCH (body) AGAINST ('sandbox syscalls') DESC, id LIMIT 1;
DROP TABLE $t;
SQL
) || fail "session failed: $(echo $out | tail -c 300)"
[ "$(echo "$out" | tr '\n' ' ')" = "31 1 100 " ] || fail "unexpected full-text results: $(echo $out)"
