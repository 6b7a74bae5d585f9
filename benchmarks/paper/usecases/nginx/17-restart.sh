#!/usr/bin/env bash
# Use case: docker restart: nginx stops gracefully (SIGQUIT) and starts again; content is served after the restart.
# Source: nginx docs: Controlling nginx (QUIT graceful shutdown); Docker docs: docker restart
. "$(dirname "$0")/../lib.sh"
restart_container 40
for _ in $(seq 1 40); do [ "$(http_status "$BASE/")" = 200 ] && break; sleep 0.25; done
expect_status 200 "$BASE/"
[ "$(http_get "$BASE/10k.bin" | wc -c)" -eq 10240 ] || fail "10k.bin not served after restart"
