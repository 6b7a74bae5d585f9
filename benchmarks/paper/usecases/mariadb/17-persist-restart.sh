#!/usr/bin/env bash
# Use case: durability across a restart: commit rows, docker restart (SIGTERM shutdown), InnoDB starts again, the rows are read back.
# Source: MariaDB docs: Shutdown (SIGTERM); InnoDB — crash-safe durability; Docker docs: docker restart
. "$(dirname "$0")/../lib.sh"
t=uc17_persist
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO $t SELECT seq FROM seq_1_to_1000" || fail "setup failed"
restart_container 50
ok=""
for _ in $(seq 1 120); do myq -e "SELECT 1" >/dev/null 2>&1 && ok=1 && break; sleep 0.25; done
[ -n "$ok" ] || fail "server not accepting queries after restart"
[ "$(myq -e "SELECT count(*) FROM $t")" = 1000 ] || fail "rows lost across restart"
myq -e "DROP TABLE $t"
