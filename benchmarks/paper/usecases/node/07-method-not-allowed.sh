#!/usr/bin/env bash
# Use case: wrong methods: PUT, DELETE and PATCH on /api/items get 405 with a JSON error; POST / gets 404.
# Source: Node.js docs: HTTP — message.method; RFC 9110 §15.5.6 (405)
. "$(dirname "$0")/../lib.sh"
for m in PUT DELETE PATCH; do expect_status 405 -X $m -d '{}' "$BASE/api/items"; done
[ "$(http_get -X DELETE "$BASE/api/items" | jq -r .error)" = 'method not allowed' ] || fail "405 body not the JSON error"
expect_status 404 -X POST -d 'x' "$BASE/"
