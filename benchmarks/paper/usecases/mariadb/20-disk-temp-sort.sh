#!/usr/bin/env bash
# Use case: sorts and temporary tables that spill to disk: a 200k-row ORDER BY with a tiny sort_buffer_size raises Sort_merge_passes, a GROUP BY with tiny tmp tables raises Created_tmp_disk_tables.
# Source: MariaDB docs: sort_buffer_size; Server Status Variables (Sort_merge_passes, Created_tmp_disk_tables); tmp_table_size
. "$(dirname "$0")/../lib.sh"
t=uc20_$$
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY, h CHAR(32), k INT) ENGINE=InnoDB; INSERT INTO $t SELECT seq, md5(seq), seq % 50000 FROM seq_1_to_200000" || fail "setup failed"
out=$(myq 2>&1 <<SQL
SET SESSION sort_buffer_size = 32768;
SET SESSION tmp_table_size = 16384, max_heap_table_size = 16384;
SHOW SESSION STATUS LIKE 'Sort_merge_passes';
SHOW SESSION STATUS LIKE 'Created_tmp_disk_tables';
SELECT count(*) FROM (SELECT h FROM $t ORDER BY h LIMIT 150000) s;
SELECT count(*) FROM (SELECT k, group_concat(h) AS g FROM $t GROUP BY k) s;
SHOW SESSION STATUS LIKE 'Sort_merge_passes';
SHOW SESSION STATUS LIKE 'Created_tmp_disk_tables';
SQL
) || fail "session failed: $(echo $out | tail -c 300)"
smp=$(echo "$out" | awk '$1 == "Sort_merge_passes" {if (n++) print $2 - v; else v = $2}')
tdt=$(echo "$out" | awk '$1 == "Created_tmp_disk_tables" {if (n++) print $2 - v; else v = $2}')
[ "${smp:-0}" -gt 0 ] || fail "no sort merge passes: $(echo $out)"
[ "${tdt:-0}" -gt 0 ] || fail "no on-disk temporary table: $(echo $out)"
myq -e "DROP TABLE $t"
