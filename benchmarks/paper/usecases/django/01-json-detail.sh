#!/usr/bin/env bash
# Use case: JSON detail endpoint /api/items/<pk>: an existing item as JSON, a missing pk gives 404 (get_object_or_404), a non-integer pk does not match the URL pattern (404).
# Source: Django docs: Writing your first Django app, part 3 — get_object_or_404; Request and response objects — JsonResponse
. "$(dirname "$0")/../lib.sh"
id=$(http_get "$BASE/api/items" | jq -r '.items[-1].id')
[ -n "$id" ] && [ "$id" != null ] || fail "no item in /api/items"
http_get "$BASE/api/items/$id" | jq -e --argjson id "$id" '.id == $id and (.name | length > 0) and (.created | length > 0)' >/dev/null || fail "detail JSON wrong"
expect_status 404 "$BASE/api/items/99999999"
expect_status 404 "$BASE/api/items/abc"
