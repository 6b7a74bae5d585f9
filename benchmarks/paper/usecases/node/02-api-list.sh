#!/usr/bin/env bash
# Use case: GET /api/items returns a JSON array of items with id and name (the seeded alpha, beta, gamma), valid JSON with Content-Type application/json.
# Source: Node.js docs: HTTP — response.writeHead; JSON.stringify (app API)
. "$(dirname "$0")/../lib.sh"
out=$(http_get "$BASE/api/items")
echo "$out" | jq -e 'type == "array" and length >= 3 and (map(.name) | index("alpha") != null)' >/dev/null || fail "item list not as expected: $(echo "$out" | head -c 200)"
http_headers "$BASE/api/items" | grep -qi '^content-type: application/json' || fail "not application/json"
