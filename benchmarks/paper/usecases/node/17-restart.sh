#!/usr/bin/env bash
# Use case: docker restart: node stops on SIGTERM (server.close) and starts again; the in-memory item store starts fresh with the 3 seeded items.
# Source: Node.js docs: Process — Signal events (SIGTERM); Docker docs: docker restart
. "$(dirname "$0")/../lib.sh"
http_get -X POST -d '{"name":"uc17-before-restart"}' "$BASE/api/items" >/dev/null
restart_container 40
for _ in $(seq 1 40); do [ "$(http_status "$BASE/healthz")" = 200 ] && break; sleep 0.25; done
[ "$(http_get "$BASE/healthz")" = ok ] || fail "not healthy after restart"
out=$(http_get "$BASE/api/items")
[ "$(echo "$out" | jq length)" = 3 ] || fail "store not fresh after restart: $(echo "$out" | jq length) items"
