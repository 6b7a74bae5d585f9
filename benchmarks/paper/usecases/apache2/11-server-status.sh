#!/usr/bin/env bash
# Use case: server monitoring with mod_status: /server-status?auto (machine-readable) and the HTML page, allowed from localhost.
# Source: Apache httpd docs: mod_status
. "$(dirname "$0")/../lib.sh"
out=$(http_get "$BASE/server-status?auto")
echo "$out" | grep -q '^ServerUptime' || fail "server-status?auto lacks ServerUptime"
echo "$out" | grep -q '^Scoreboard:' || fail "server-status?auto lacks Scoreboard"
http_get "$BASE/server-status" | grep -q 'Apache Server Status' || fail "HTML server-status missing"
