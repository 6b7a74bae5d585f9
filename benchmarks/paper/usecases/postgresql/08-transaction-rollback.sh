#!/usr/bin/env bash
# Use case: failing transactions: an error aborts the transaction (later statements refused until ROLLBACK), ROLLBACK undoes the inserts, ROLLBACK TO SAVEPOINT keeps earlier work, a deferred constraint fails at COMMIT.
# Source: PostgreSQL 15 docs: Tutorial — Transactions (3.4); SAVEPOINT; SET CONSTRAINTS
. "$(dirname "$0")/../lib.sh"
t=uc08_$$
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id int PRIMARY KEY, v int CHECK (v >= 0))" || fail "setup failed"
out=$(pgq -v ON_ERROR_STOP=0 2>&1 <<SQL
BEGIN;
INSERT INTO $t VALUES (1, 1);
SELECT 1 / 0;
INSERT INTO $t VALUES (2, 2);
ROLLBACK;
BEGIN;
INSERT INTO $t VALUES (10, 10);
SAVEPOINT s1;
INSERT INTO $t VALUES (11, -5);
ROLLBACK TO SAVEPOINT s1;
INSERT INTO $t VALUES (12, 12);
COMMIT;
SQL
)
echo "$out" | grep -q 'division by zero' || fail "no division by zero error"
echo "$out" | grep -q 'current transaction is aborted' || fail "aborted transaction accepted a statement"
[ "$(pgq -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM $t")" = 10,12 ] || fail "rows after rollback: $(pgq -c "SELECT string_agg(id::text, ',') FROM $t")"
pgq -c "CREATE TABLE ${t}_c (id int, CONSTRAINT u UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)" || fail "setup 2 failed"
out=$(pgq -c "BEGIN; INSERT INTO ${t}_c VALUES (1), (1); COMMIT;" 2>&1) && fail "deferred unique violation committed"
echo "$out" | grep -q 'duplicate key value violates unique constraint' || fail "deferred error: $out"
[ "$(pgq -c "SELECT count(*) FROM ${t}_c")" = 0 ] || fail "failed COMMIT left rows"
pgq -c "DROP TABLE $t, ${t}_c"
