#!/usr/bin/env bash
# Use case: error paths: syntax error, undefined table and column, unique violation, invalid input type, numeric overflow, statement_timeout cancellation; the session and server stay usable.
# Source: PostgreSQL 15 docs: Appendix A. PostgreSQL Error Codes; statement_timeout
. "$(dirname "$0")/../lib.sh"
chk() { local want=$1 sql=$2 out; out=$(pgq -c "$sql" 2>&1) && fail "'$sql' succeeded"; echo "$out" | grep -q "$want" || fail "'$sql': expected '$want', got: $out"; }
chk 'syntax error' "SELEC 1"
chk 'does not exist' "SELECT * FROM uc09_no_such_table"
chk 'column "nope" does not exist' "SELECT nope FROM pg_class"
chk 'duplicate key' "CREATE TEMP TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (1)"
chk 'invalid input syntax' "SELECT 'abc'::int"
chk 'out of range' "SELECT 2147483647::int + 1"
chk 'canceling statement due to statement timeout' "SET statement_timeout = '200ms'; SELECT pg_sleep(5)"
[ "$(pgq -c 'SELECT 42')" = 42 ] || fail "server not usable after errors"
