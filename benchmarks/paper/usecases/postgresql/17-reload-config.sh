#!/usr/bin/env bash
# Use case: configuration reload: ALTER SYSTEM SET then pg_reload_conf(), a new session sees the value; SIGHUP to the postmaster (docker kill -s HUP) also reloads; pg_file_settings shows the change; ALTER SYSTEM RESET.
# Source: PostgreSQL 15 docs: Setting Parameters — ALTER SYSTEM, pg_reload_conf(); Server Signals (SIGHUP)
. "$(dirname "$0")/../lib.sh"
cleanup() { pgsu -c "ALTER SYSTEM RESET log_min_duration_statement" -c "SELECT pg_reload_conf()" >/dev/null 2>&1; }
pgsu -c "ALTER SYSTEM SET log_min_duration_statement = '1234ms'" || fail "ALTER SYSTEM failed"
pgsu -c "SELECT pg_reload_conf()" | grep -qx t || { cleanup; fail "pg_reload_conf failed"; }
v=""
for _ in $(seq 1 20); do v=$(pgq -c "SHOW log_min_duration_statement"); [ "$v" = 1234ms ] && break; sleep 0.25; done
[ "$v" = 1234ms ] || { cleanup; fail "reloaded value not seen: $v"; }
pgsu -c "SELECT count(*) FROM pg_file_settings WHERE name = 'log_min_duration_statement' AND applied" | grep -qx 1 || { cleanup; fail "pg_file_settings does not show the applied setting"; }
pgsu -c "ALTER SYSTEM SET log_min_duration_statement = '4321ms'"
main_pid_signal HUP
for _ in $(seq 1 20); do v=$(pgq -c "SHOW log_min_duration_statement"); [ "$v" = 4321ms ] && break; sleep 0.25; done
cleanup
[ "$v" = 4321ms ] || fail "SIGHUP did not reload: $v"
for _ in $(seq 1 20); do v=$(pgq -c "SHOW log_min_duration_statement"); [ "$v" = -1 ] && break; sleep 0.25; done
[ "$v" = -1 ] || fail "reset not applied: $v"
