#!/usr/bin/env bash
# Use case: logical backup and restore inside the container: mariadb-dump --single-transaction of a table, DROP it, restore by piping the dump into the mariadb client, checksum equal; --no-data schema dump.
# Source: MariaDB docs: mariadb-dump; Backup and Restore Overview — Logical backups
. "$(dirname "$0")/../lib.sh"
t=uc11_$$
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY, h CHAR(32)); INSERT INTO $t SELECT seq, md5(seq) FROM seq_1_to_5000" || fail "setup failed"
sum=$(myq -e "SELECT md5(group_concat(h ORDER BY id)) FROM $t")
dexec sh -c "mariadb-dump --single-transaction bench $t > /tmp/$t.sql" || fail "mariadb-dump failed"
dexec grep -q "CREATE TABLE \`$t\`" /tmp/$t.sql || fail "dump lacks CREATE TABLE"
myq -e "DROP TABLE $t" || fail "drop failed"
dexec sh -c "mariadb bench < /tmp/$t.sql" || fail "restore failed"
[ "$(myq -e "SELECT md5(group_concat(h ORDER BY id)) FROM $t")" = "$sum" ] || fail "restored data differs"
dexec mariadb-dump --no-data bench "$t" | grep -q 'INSERT INTO' && fail "--no-data dump has rows"
dexec rm -f /tmp/$t.sql
myq -e "DROP TABLE $t"
