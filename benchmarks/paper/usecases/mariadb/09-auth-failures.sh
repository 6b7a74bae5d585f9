#!/usr/bin/env bash
# Use case: authentication and authorisation failures: a wrong password and an unknown user get 1045, a database without grants gets 1044, a privileged table gets 1142; the right password works.
# Source: MariaDB docs: Authentication from MariaDB 10.4; GRANT; Error 1045/1044/1142
. "$(dirname "$0")/../lib.sh"
out=$(MY_PASSWORD=wrong myq -e 'SELECT 1' 2>&1) && fail "wrong password accepted"
echo "$out" | grep -q 'ERROR 1045' || fail "wrong password: $out"
out=$(MY_USER=uc09_nosuchuser myq -e 'SELECT 1' 2>&1) && fail "unknown user accepted"
echo "$out" | grep -q 'ERROR 1045' || fail "unknown user: $out"
out=$(MY_DB=mysql myq -e 'SELECT 1' 2>&1) && fail "access to database mysql granted"
echo "$out" | grep -q 'ERROR 1044' || fail "database without grants: $out"
out=$(myq -e 'SELECT * FROM mysql.user' 2>&1) && fail "mysql.user readable"
echo "$out" | grep -q 'ERROR 1142' || fail "privileged table: $out"
[ "$(myq -e 'SELECT current_user()')" = 'bench@127.0.0.1' ] || fail "the right password does not work"
