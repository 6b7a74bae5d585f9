#!/usr/bin/env bash
# Use case: transactions: ROLLBACK undoes inserts, ROLLBACK TO SAVEPOINT keeps earlier work, an error inside a transaction does not commit, autocommit off then ROLLBACK.
# Source: MariaDB docs: START TRANSACTION; SAVEPOINT; ROLLBACK
. "$(dirname "$0")/../lib.sh"
t=uc06_$$
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY) ENGINE=InnoDB" || fail "setup failed"
myq --force <<SQL >/dev/null 2>&1
START TRANSACTION; INSERT INTO $t VALUES (1), (2); ROLLBACK;
START TRANSACTION; INSERT INTO $t VALUES (10); SAVEPOINT s1; INSERT INTO $t VALUES (11); ROLLBACK TO SAVEPOINT s1; INSERT INTO $t VALUES (12); COMMIT;
START TRANSACTION; INSERT INTO $t VALUES (20); INSERT INTO $t VALUES (10); ROLLBACK;
SET autocommit = 0; INSERT INTO $t VALUES (30); ROLLBACK;
SQL
[ "$(myq -e "SELECT group_concat(id ORDER BY id) FROM $t")" = 10,12 ] || fail "rows after rollbacks: $(myq -e "SELECT group_concat(id ORDER BY id) FROM $t")"
myq -e "DROP TABLE $t"
