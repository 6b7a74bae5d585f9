#!/usr/bin/env bash
# Use case: log rotation: move access.log away, nginx -s reopen (and SIGUSR1 via docker kill), new requests go to a fresh access.log.
# Source: nginx docs: Controlling nginx — Rotating Log-files (USR1 / nginx -s reopen)
. "$(dirname "$0")/../lib.sh"
log=/var/log/nginx/access.log
dexec test -e "$log" || fail "$log does not exist"
dexec mv "$log" "$log.uc15" || fail "cannot move the log"
dexec nginx -s reopen || fail "nginx -s reopen failed"
sleep 0.5
curl -s -o /dev/null "$BASE/uc15-after-reopen" || true
for _ in $(seq 1 20); do dexec grep -qs uc15-after-reopen "$log" && break; sleep 0.25; done
dexec grep -qs uc15-after-reopen "$log" || fail "request not logged to the reopened access.log"
dexec mv "$log" "$log.uc15b"
main_pid_signal USR1
sleep 0.5
curl -s -o /dev/null "$BASE/uc15-after-usr1" || true
for _ in $(seq 1 20); do dexec grep -qs uc15-after-usr1 "$log" && break; sleep 0.25; done
dexec grep -qs uc15-after-usr1 "$log" || fail "request not logged after SIGUSR1"
dexec rm -f "$log.uc15" "$log.uc15b"
expect_status 200 "$BASE/"
