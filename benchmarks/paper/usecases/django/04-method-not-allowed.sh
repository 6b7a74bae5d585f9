#!/usr/bin/env bash
# Use case: unsupported methods on the JSON endpoint (PUT, DELETE, PATCH) give 405 with an Allow header (HttpResponseNotAllowed).
# Source: Django docs: Request and response objects — HttpResponseNotAllowed
. "$(dirname "$0")/../lib.sh"
for m in PUT DELETE PATCH; do expect_status 405 -X $m -d '{}' "$BASE/api/items"; done
http_headers -X PUT -d '{}' "$BASE/api/items" | grep -qi '^allow: GET, POST' || fail "405 lacks Allow: GET, POST"
