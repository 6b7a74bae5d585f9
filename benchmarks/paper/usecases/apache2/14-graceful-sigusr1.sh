#!/usr/bin/env bash
# Use case: graceful restart by signal: SIGUSR1 to the parent (docker kill -s USR1) re-reads the configuration; the server keeps answering.
# Source: Apache httpd docs: Stopping and Restarting Apache HTTP Server — Graceful Restart (USR1)
. "$(dirname "$0")/../lib.sh"
gen() { http_get "$BASE/server-status?auto" | sed -n 's/^ParentServerConfigGeneration: //p'; }
g0=$(gen)
main_pid_signal USR1
g1=$g0
for _ in $(seq 1 40); do g1=$(gen); [ -n "$g1" ] && [ "$g1" != "$g0" ] && break; sleep 0.25; done
[ "$g1" != "$g0" ] || fail "configuration generation did not advance after USR1 ($g0)"
expect_status 200 "$BASE/"
