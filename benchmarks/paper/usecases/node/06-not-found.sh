#!/usr/bin/env bash
# Use case: unknown paths get the app's JSON 404 handler ({"error":"not found"}), including a path below /api/items and a long path.
# Source: Node.js docs: HTTP — response.statusCode (app 404 handler)
. "$(dirname "$0")/../lib.sh"
for p in /nope /api/items/1 /api /static/app.js "/$(head -c 3000 /dev/zero | tr '\0' x)"; do
    expect_status 404 "$BASE$p"
done
[ "$(http_get "$BASE/nope" | jq -r .error)" = 'not found' ] || fail "404 body not the JSON error"
