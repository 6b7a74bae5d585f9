#!/usr/bin/env bash
# Use case: persistence across a restart: create an item, docker restart (SIGINT stop), the item is still served from the SQLite database.
# Source: Django docs: django-admin runserver; Docker docs: docker restart
. "$(dirname "$0")/../lib.sh"
name=uc17-$(date +%s%N)
id=$(http_get -X POST -d "{\"name\":\"$name\"}" "$BASE/api/items" | jq -r .id)
[ -n "$id" ] && [ "$id" != null ] || fail "cannot create an item"
restart_container 40
for _ in $(seq 1 60); do [ "$(http_status "$BASE/healthz")" = 200 ] && break; sleep 0.25; done
expect_status 200 "$BASE/healthz"
[ "$(http_get "$BASE/api/items/$id" | jq -r .name)" = "$name" ] || fail "item lost across the restart"
