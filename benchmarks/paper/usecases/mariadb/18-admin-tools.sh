#!/usr/bin/env bash
# Use case: command-line administration inside the container: mariadb-admin ping/status/variables/extended-status/processlist, mariadb-show of the databases, SHOW ENGINE INNODB STATUS, SHOW GLOBAL STATUS.
# Source: MariaDB docs: mariadb-admin; mariadb-show; SHOW ENGINE INNODB STATUS
. "$(dirname "$0")/../lib.sh"
dexec mariadb-admin ping | grep -q 'is alive' || fail "mariadb-admin ping failed"
dexec mariadb-admin status | grep -q 'Uptime' || fail "mariadb-admin status failed"
dexec mariadb-admin variables | grep -q 'innodb_buffer_pool_size' || fail "mariadb-admin variables failed"
dexec mariadb-admin extended-status | grep -q 'Questions' || fail "mariadb-admin extended-status failed"
dexec mariadb-admin processlist >/dev/null || fail "mariadb-admin processlist failed"
dexec mariadb-show | grep -q bench || fail "mariadb-show does not list bench"
mysu -e "SHOW ENGINE INNODB STATUS" | grep -q 'BUFFER POOL AND MEMORY' || fail "SHOW ENGINE INNODB STATUS failed"
myq -e "SHOW GLOBAL STATUS LIKE 'Uptime'" | awk '{print $2}' | grep -Eq '^[0-9]+$' || fail "SHOW GLOBAL STATUS failed"
