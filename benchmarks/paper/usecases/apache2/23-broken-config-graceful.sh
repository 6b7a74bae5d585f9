#!/usr/bin/env bash
# Use case: an admin error: apache2ctl graceful with a broken configuration is refused after its config test, the running server keeps serving; the file is removed and a clean graceful works.
# Source: Apache httpd docs: Stopping and Restarting — 'apachectl graceful' tests the configuration first
. "$(dirname "$0")/../lib.sh"
echo 'ThisIsNotADirective on' | dexec_i sh -c 'cat > /etc/apache2/conf-enabled/uc23-broken.conf' || fail "cannot write the broken file"
if dexec apache2ctl graceful >/dev/null 2>&1; then dexec rm -f /etc/apache2/conf-enabled/uc23-broken.conf; fail "graceful accepted a broken config"; fi
s=$(http_status "$BASE/")
dexec rm -f /etc/apache2/conf-enabled/uc23-broken.conf
[ "$s" = 200 ] || fail "apache stopped serving after a refused graceful (HTTP $s)"
container_running || fail "apache exited"
dexec apache2ctl graceful || fail "clean graceful failed"
sleep 0.5
expect_status 200 "$BASE/"
