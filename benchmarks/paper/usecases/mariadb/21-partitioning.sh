#!/usr/bin/env bash
# Use case: partitioned tables: PARTITION BY RANGE, partition pruning in EXPLAIN PARTITIONS, ALTER TABLE ADD PARTITION / DROP PARTITION / TRUNCATE PARTITION / REORGANIZE PARTITION.
# Source: MariaDB docs: Partitioning Overview; RANGE Partitioning Type; ALTER TABLE — partitions
. "$(dirname "$0")/../lib.sh"
t=uc21_$$
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT, y INT, PRIMARY KEY (id, y)) PARTITION BY RANGE (y) (PARTITION p2020 VALUES LESS THAN (2021), PARTITION p2021 VALUES LESS THAN (2022), PARTITION p2022 VALUES LESS THAN (2023));
INSERT INTO $t SELECT seq, 2020 + seq % 3 FROM seq_1_to_3000" || fail "setup failed"
myq -e "EXPLAIN PARTITIONS SELECT * FROM $t WHERE y = 2021" | awk '{print $4}' | grep -qx p2021 || fail "no partition pruning"
myq -e "ALTER TABLE $t ADD PARTITION (PARTITION p2023 VALUES LESS THAN (2024))" || fail "ADD PARTITION failed"
myq -e "INSERT INTO $t VALUES (1, 2023)" || fail "insert into the new partition failed"
myq -e "ALTER TABLE $t TRUNCATE PARTITION p2022" || fail "TRUNCATE PARTITION failed"
myq -e "ALTER TABLE $t DROP PARTITION p2020" || fail "DROP PARTITION failed"
myq -e "ALTER TABLE $t REORGANIZE PARTITION p2023 INTO (PARTITION p2023a VALUES LESS THAN (2023), PARTITION p2023b VALUES LESS THAN (2024))" 2>/dev/null && fail "REORGANIZE accepted overlapping ranges"
[ "$(myq -e "SELECT count(*) FROM $t")" = 1001 ] || fail "row count after partition operations: $(myq -e "SELECT count(*) FROM $t")"
[ "$(myq -e "SELECT count(*) FROM information_schema.PARTITIONS WHERE table_schema = 'bench' AND table_name = '$t'")" = 3 ] || fail "not 3 partitions"
myq -e "DROP TABLE $t"
