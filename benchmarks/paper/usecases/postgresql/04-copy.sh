#!/usr/bin/env bash
# Use case: bulk data movement: COPY TO STDOUT in CSV with a header, COPY FROM STDIN back into a new table, binary COPY round trip, a malformed CSV line is rejected.
# Source: PostgreSQL 15 docs: COPY; psql — \copy
. "$(dirname "$0")/../lib.sh"
t=uc04_$$
tmp=$(mktemp); trap 'rm -f "$tmp" "$tmp.bin"' EXIT
pgq -c "DROP TABLE IF EXISTS $t, ${t}_b; CREATE TABLE $t AS SELECT g AS id, 'name ' || g AS name, now() AS ts FROM generate_series(1, 10000) g; CREATE TABLE ${t}_b (LIKE $t)" || fail "setup failed"
pgq -c "COPY $t TO STDOUT WITH (FORMAT csv, HEADER)" >"$tmp" || fail "COPY TO STDOUT failed"
[ "$(wc -l <"$tmp")" -eq 10001 ] || fail "CSV has $(wc -l <"$tmp") lines"
pgq -c "COPY ${t}_b FROM STDIN WITH (FORMAT csv, HEADER)" <"$tmp" || fail "COPY FROM STDIN failed"
[ "$(pgq -c "SELECT count(*) FROM ${t}_b")" = 10000 ] || fail "COPY FROM loaded a wrong count"
pgq -c "\\copy $t TO '$tmp.bin' WITH (FORMAT binary)" || fail "binary \\copy out failed"
pgq -c "TRUNCATE ${t}_b" -c "\\copy ${t}_b FROM '$tmp.bin' WITH (FORMAT binary)" || fail "binary \\copy in failed"
[ "$(pgq -c "SELECT count(*) FROM (SELECT * FROM $t EXCEPT SELECT * FROM ${t}_b) d")" = 0 ] || fail "binary round trip differs"
out=$(printf 'id,name,ts\nnot-a-number,x,2020-01-01\n' | pgq -c "COPY ${t}_b FROM STDIN WITH (FORMAT csv, HEADER)" 2>&1) && fail "malformed CSV accepted"
echo "$out" | grep -q 'invalid input syntax for type integer' || fail "malformed CSV error: $out"
pgq -c "DROP TABLE $t, ${t}_b"
