#!/usr/bin/env bash
# Use case: backup and restore inside the container (docker exec as postgres): pg_dump -Fc of a table, DROP it, pg_restore it back; a plain-SQL schema dump; pg_restore --list of the archive.
# Source: PostgreSQL 15 docs: Backup and Restore — SQL Dump (26.1); pg_dump; pg_restore
. "$(dirname "$0")/../lib.sh"
t=uc11_$$
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id int PRIMARY KEY, v text); INSERT INTO $t SELECT g, md5(g::text) FROM generate_series(1, 5000) g" || fail "setup failed"
sum=$(pgq -c "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM $t")
dexec pg_dump -p "$PORT" -d bench -Fc -t "$t" -f /tmp/$t.dump || fail "pg_dump failed"
dexec pg_restore --list /tmp/$t.dump | grep -q "TABLE DATA public $t" || fail "pg_restore --list lacks the table data"
pgq -c "DROP TABLE $t" || fail "drop failed"
dexec pg_restore -p "$PORT" -d bench /tmp/$t.dump || fail "pg_restore failed"
[ "$(pgq -c "SELECT md5(string_agg(v, ',' ORDER BY id)) FROM $t")" = "$sum" ] || fail "restored data differs"
[ "$(pgq -c "SELECT tableowner FROM pg_tables WHERE tablename = '$t'")" = bench ] || fail "restored owner is not bench"
dexec pg_dump -p "$PORT" -d bench -s -t "$t" | grep -q "CREATE TABLE public.$t" || fail "schema-only dump lacks CREATE TABLE"
dexec rm -f /tmp/$t.dump
pgq -c "DROP TABLE $t"
