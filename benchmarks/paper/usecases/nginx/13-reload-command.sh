#!/usr/bin/env bash
# Use case: configuration reload with nginx -s reload: new worker processes replace the old ones, the server answers throughout.
# Source: nginx docs: Beginner's Guide — Starting, Stopping, and Reloading Configuration (nginx -s reload)
. "$(dirname "$0")/../lib.sh"
workers() { dexec sh -c 'for p in /proc/[0-9]*; do grep -qs "nginx: worker" $p/cmdline && echo ${p#/proc/}; done' | sort | tr '\n' ' '; }
before=$(workers); [ -n "$before" ] || fail "no worker processes found"
dexec nginx -s reload || fail "nginx -s reload failed"
after=$before
for _ in $(seq 1 40); do expect_status 200 "$BASE/"; after=$(workers); [ -n "$after" ] && [ "$after" != "$before" ] && break; sleep 0.25; done
[ "$after" != "$before" ] || fail "workers were not replaced by the reload"
expect_status 200 "$BASE/"
