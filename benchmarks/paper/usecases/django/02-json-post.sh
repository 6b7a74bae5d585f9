#!/usr/bin/env bash
# Use case: create an item through the JSON endpoint (POST, 201), then read it back from the list and detail endpoints.
# Source: Django docs: Request and response objects — HttpRequest.body, JsonResponse; Making queries — create()
. "$(dirname "$0")/../lib.sh"
name=uc02-$(date +%s%N)
out=$(http_get -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$name\",\"description\":\"from uc02\"}" -w '\n%{http_code}' "$BASE/api/items")
[ "$(echo "$out" | tail -1)" = 201 ] || fail "POST gave $(echo "$out" | tail -1)"
id=$(echo "$out" | head -1 | jq -r .id)
http_get "$BASE/api/items" | jq -e --arg n "$name" '.items | map(.name) | index($n) != null' >/dev/null || fail "new item not in the list"
[ "$(http_get "$BASE/api/items/$id" | jq -r .description)" = 'from uc02' ] || fail "detail of the new item wrong"
