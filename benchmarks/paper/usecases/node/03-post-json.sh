#!/usr/bin/env bash
# Use case: POST /api/items with a JSON body creates an item (201, new id), which then appears in GET /api/items and on the HTML page.
# Source: Node.js docs: Anatomy of an HTTP Transaction — request body (data/end events)
. "$(dirname "$0")/../lib.sh"
name=uc03-$(date +%s%N)
out=$(http_get -X POST -H 'Content-Type: application/json' -d "{\"name\":\"$name\"}" -w '\n%{http_code}' "$BASE/api/items")
[ "$(echo "$out" | tail -1)" = 201 ] || fail "POST gave $(echo "$out" | tail -1)"
id=$(echo "$out" | head -1 | jq -r .id)
[ "$id" -gt 3 ] 2>/dev/null || fail "no new id: $out"
http_get "$BASE/api/items" | jq -e --arg n "$name" --argjson id "$id" 'map(select(.id == $id and .name == $n)) | length == 1' >/dev/null || fail "created item not listed"
http_get "$BASE/" | grep -q "$name" || fail "created item not on the page"
