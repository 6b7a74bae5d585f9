#!/usr/bin/env bash
# Use case: table maintenance: OPTIMIZE TABLE after deletes (InnoDB recreate + analyze), ANALYZE TABLE PERSISTENT FOR ALL (engine-independent statistics), CHECK TABLE, CHECKSUM TABLE, and mariadb-check inside the container.
# Source: MariaDB docs: OPTIMIZE TABLE; ANALYZE TABLE; CHECK TABLE; CHECKSUM TABLE; mariadb-check
. "$(dirname "$0")/../lib.sh"
t=uc03_$$
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY, pad CHAR(200)) ENGINE=InnoDB; INSERT INTO $t SELECT seq, repeat('p', 200) FROM seq_1_to_50000; DELETE FROM $t WHERE id % 2 = 0" || fail "setup failed"
myq -e "OPTIMIZE TABLE $t" | grep -q 'status.*OK' || fail "OPTIMIZE TABLE not OK"
myq -e "ANALYZE TABLE $t PERSISTENT FOR ALL" | grep -q 'status.*OK' || fail "ANALYZE TABLE not OK"
[ "$(mysu -e "SELECT count(*) FROM mysql.column_stats WHERE db_name = 'bench' AND table_name = '$t'")" -ge 1 ] || fail "no engine-independent statistics"
myq -e "CHECK TABLE $t EXTENDED" | grep -q 'status.*OK' || fail "CHECK TABLE not OK"
myq -e "CHECKSUM TABLE $t" | awk '{print $2}' | grep -Eq '^[0-9]+$' || fail "CHECKSUM TABLE failed"
dexec mariadb-check --check bench "$t" | grep -q 'OK' || fail "mariadb-check failed"
myq -e "DROP TABLE $t"
