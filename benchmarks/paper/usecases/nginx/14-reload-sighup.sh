#!/usr/bin/env bash
# Use case: configuration reload by sending SIGHUP to the master process (docker kill -s HUP); workers are replaced and the server keeps answering.
# Source: nginx docs: Controlling nginx — Changing Configuration (HUP signal)
. "$(dirname "$0")/../lib.sh"
workers() { dexec sh -c 'for p in /proc/[0-9]*; do grep -qs "nginx: worker" $p/cmdline && echo ${p#/proc/}; done' | sort | tr '\n' ' '; }
before=$(workers); [ -n "$before" ] || fail "no worker processes found"
main_pid_signal HUP
after=$before
for _ in $(seq 1 40); do after=$(workers); [ -n "$after" ] && [ "$after" != "$before" ] && break; sleep 0.25; done
[ "$after" != "$before" ] || fail "workers were not replaced after SIGHUP"
expect_status 200 "$BASE/"
