#!/usr/bin/env bash
# Use case: docker restart: apache stops (SIGTERM) and starts again over its stale run files; content is served after the restart.
# Source: Apache httpd docs: Stopping and Restarting (TERM); Docker docs: docker restart
. "$(dirname "$0")/../lib.sh"
restart_container 40
for _ in $(seq 1 40); do [ "$(http_status "$BASE/")" = 200 ] && break; sleep 0.25; done
expect_status 200 "$BASE/"
[ "$(http_get "$BASE/10k.bin" | wc -c)" -eq 10240 ] || fail "10k.bin not served after restart"
