#!/usr/bin/env bash
# Use case: index builds: CREATE INDEX on a 200k-row InnoDB table (rows from the Sequence engine), EXPLAIN uses it, online ALTER TABLE ADD INDEX (ALGORITHM=INPLACE, LOCK=NONE), SHOW INDEX, DROP INDEX.
# Source: MariaDB docs: CREATE INDEX; ALTER TABLE — ALGORITHM and LOCK; Sequence Storage Engine
. "$(dirname "$0")/../lib.sh"
t=uc01_$$
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY, h CHAR(32), k INT) ENGINE=InnoDB; INSERT INTO $t SELECT seq, md5(seq), seq % 100 FROM seq_1_to_200000" || fail "setup failed"
myq -e "CREATE INDEX ${t}_h ON $t (h)" || fail "CREATE INDEX failed"
myq -e "EXPLAIN SELECT * FROM $t WHERE h = md5(4242)" | grep -q "${t}_h" || fail "EXPLAIN does not use the index"
myq -e "ALTER TABLE $t ADD INDEX ${t}_k (k), ALGORITHM=INPLACE, LOCK=NONE" || fail "online ADD INDEX failed"
[ "$(myq -e "SHOW INDEX FROM $t" | awk '{print $3}' | sort -u | wc -l)" -eq 3 ] || fail "SHOW INDEX does not list 3 indexes"
myq -e "DROP INDEX ${t}_h ON $t" || fail "DROP INDEX failed"
myq -e "DROP TABLE $t"
