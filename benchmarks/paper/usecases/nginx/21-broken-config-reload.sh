#!/usr/bin/env bash
# Use case: an admin error: a reload with a broken configuration (nginx -t fails, SIGHUP) is rejected by the master, which keeps serving with the old configuration; the file is then removed and a clean reload works.
# Source: nginx docs: Controlling nginx — Changing Configuration (master checks syntax, keeps old workers on error)
. "$(dirname "$0")/../lib.sh"
dexec sh -c 'echo "this is not { valid nginx" > /etc/nginx/conf.d/uc21-broken.conf' || fail "cannot write the broken file"
if dexec nginx -t >/dev/null 2>&1; then dexec rm -f /etc/nginx/conf.d/uc21-broken.conf; fail "nginx -t accepted a broken config"; fi
main_pid_signal HUP
sleep 1
s=$(http_status "$BASE/")
dexec rm -f /etc/nginx/conf.d/uc21-broken.conf
[ "$s" = 200 ] || fail "nginx stopped serving after a broken reload (HTTP $s)"
container_running || fail "nginx exited on a broken reload"
dexec nginx -t >/dev/null 2>&1 || fail "config still broken after removing the file"
dexec nginx -s reload || fail "clean reload failed"
sleep 0.5
expect_status 200 "$BASE/"
