#!/usr/bin/env bash
# Use case: restart now by signal: SIGHUP to the parent (docker kill -s HUP) kills the children and re-reads the configuration; the parent stays and serves again.
# Source: Apache httpd docs: Stopping and Restarting Apache HTTP Server — Restart Now (HUP)
. "$(dirname "$0")/../lib.sh"
gen() { http_get "$BASE/server-status?auto" 2>/dev/null | sed -n 's/^ParentServerConfigGeneration: //p'; }
g0=$(gen)
main_pid_signal HUP
g1=$g0
for _ in $(seq 1 60); do g1=$(gen); [ -n "$g1" ] && [ "$g1" != "$g0" ] && break; sleep 0.25; done
[ "$g1" != "$g0" ] || fail "configuration generation did not advance after HUP ($g0)"
container_running || fail "apache exited on SIGHUP"
expect_status 200 "$BASE/"
