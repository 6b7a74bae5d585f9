#!/usr/bin/env bash
# Use case: log administration: enable the general query log to a file (SET GLOBAL), a query appears in it, FLUSH LOGS and mariadb-admin flush-logs reopen the logs, FLUSH TABLES / FLUSH STATUS, then the general log is disabled again.
# Source: MariaDB docs: General Query Log; FLUSH; mariadb-admin (flush-logs)
. "$(dirname "$0")/../lib.sh"
log=/tmp/uc12-general.log
cleanup() { mysu -e "SET GLOBAL general_log = OFF" >/dev/null 2>&1; dexec rm -f $log $log.1; }
mysu -e "SET GLOBAL general_log_file = '$log'; SET GLOBAL general_log = ON" || fail "cannot enable the general log"
myq -e "SELECT 'uc12-marker-one'" >/dev/null
dexec grep -q uc12-marker-one $log || { cleanup; fail "query not in the general log"; }
dexec mv $log $log.1
mysu -e "FLUSH LOGS" || { cleanup; fail "FLUSH LOGS failed"; }
myq -e "SELECT 'uc12-marker-two'" >/dev/null
dexec grep -q uc12-marker-two $log || { cleanup; fail "query not in the reopened general log"; }
dexec mariadb-admin flush-logs || { cleanup; fail "mariadb-admin flush-logs failed"; }
mysu -e "FLUSH TABLES; FLUSH STATUS; FLUSH PRIVILEGES" || { cleanup; fail "FLUSH TABLES/STATUS/PRIVILEGES failed"; }
cleanup
