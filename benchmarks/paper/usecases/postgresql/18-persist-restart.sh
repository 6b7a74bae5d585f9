#!/usr/bin/env bash
# Use case: durability across a restart: commit rows, docker restart (fast shutdown by SIGINT), crash-free startup, the rows are read back.
# Source: PostgreSQL 15 docs: Shutting Down the Server (SIGINT fast shutdown); Reliability and the Write-Ahead Log
. "$(dirname "$0")/../lib.sh"
t=uc18_persist
pgq -c "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id int, v text); INSERT INTO $t SELECT g, 'row ' || g FROM generate_series(1, 1000) g" || fail "setup failed"
restart_container 50
ok=""
for _ in $(seq 1 80); do pgq -c "SELECT 1" >/dev/null 2>&1 && ok=1 && break; sleep 0.25; done
[ -n "$ok" ] || fail "server not accepting queries after restart"
[ "$(pgq -c "SELECT count(*) FROM $t")" = 1000 ] || fail "rows lost across restart"
pgq -c "DROP TABLE $t"
