#!/usr/bin/env bash
# Use case: graceful restart with apache2ctl graceful: the parent re-reads its configuration, child processes are replaced, the server keeps answering.
# Source: Apache httpd docs: Stopping and Restarting Apache HTTP Server — Graceful Restart
. "$(dirname "$0")/../lib.sh"
children() { dexec sh -c 'for p in /proc/[0-9]*; do [ "${p#/proc/}" != 1 ] && grep -qs apache2 $p/cmdline && echo ${p#/proc/}; done' | sort | tr '\n' ' '; }
gen() { http_get "$BASE/server-status?auto" | sed -n 's/^ParentServerConfigGeneration: //p'; }
g0=$(gen); before=$(children)
[ -n "$before" ] || fail "no child processes"
dexec apache2ctl graceful || fail "apache2ctl graceful failed"
g1=$g0
for _ in $(seq 1 40); do g1=$(gen); [ -n "$g1" ] && [ "$g1" != "$g0" ] && break; sleep 0.25; done
[ "$g1" != "$g0" ] || fail "configuration generation did not advance ($g0)"
expect_status 200 "$BASE/"
