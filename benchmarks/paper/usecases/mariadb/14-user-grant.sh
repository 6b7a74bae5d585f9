#!/usr/bin/env bash
# Use case: account administration: CREATE USER, GRANT SELECT on one table, the new user can read but not write (1142), SHOW GRANTS, REVOKE, ALTER USER password change, DROP USER.
# Source: MariaDB docs: CREATE USER; GRANT; REVOKE; SHOW GRANTS; ALTER USER
. "$(dirname "$0")/../lib.sh"
u=uc14_$$; t=uc14_t_$$
cleanup() { mysu -e "DROP USER IF EXISTS '$u'@'127.0.0.1'; DROP TABLE IF EXISTS bench.$t" >/dev/null 2>&1; }
myq -e "CREATE TABLE $t (id INT); INSERT INTO $t VALUES (7)" || fail "setup failed"
mysu -e "CREATE USER '$u'@'127.0.0.1' IDENTIFIED BY 'pw1'; GRANT SELECT ON bench.$t TO '$u'@'127.0.0.1'" || { cleanup; fail "CREATE USER/GRANT failed"; }
[ "$(MY_USER=$u MY_PASSWORD=pw1 myq -e "SELECT id FROM $t")" = 7 ] || { cleanup; fail "granted SELECT does not work"; }
out=$(MY_USER=$u MY_PASSWORD=pw1 myq -e "INSERT INTO $t VALUES (8)" 2>&1) && { cleanup; fail "INSERT allowed without grant"; }
echo "$out" | grep -q 'ERROR 1142' || { cleanup; fail "INSERT error: $out"; }
MY_USER=$u MY_PASSWORD=pw1 myq -e "SHOW GRANTS" | grep -q "GRANT SELECT ON \`bench\`.\`$t\`" || { cleanup; fail "SHOW GRANTS lacks the grant"; }
mysu -e "ALTER USER '$u'@'127.0.0.1' IDENTIFIED BY 'pw2'; REVOKE SELECT ON bench.$t FROM '$u'@'127.0.0.1'" || { cleanup; fail "ALTER USER/REVOKE failed"; }
MY_USER=$u MY_PASSWORD=pw1 myq -e "SELECT 1" >/dev/null 2>&1 && { cleanup; fail "old password still works"; }
out=$(MY_USER=$u MY_PASSWORD=pw2 myq -e "SELECT id FROM $t" 2>&1) && { cleanup; fail "SELECT allowed after REVOKE"; }
cleanup
[ "$(mysu -e "SELECT count(*) FROM mysql.user WHERE user = '$u'")" = 0 ] || fail "user not dropped"
