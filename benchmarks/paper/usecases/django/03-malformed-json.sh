#!/usr/bin/env bash
# Use case: error paths of the JSON endpoint: malformed JSON, a JSON object without name, a JSON array, an invalid UTF-8 body all give 400 with a JSON error.
# Source: Django docs: Request and response objects — JsonResponse(status=400); Python json docs (JSONDecodeError)
. "$(dirname "$0")/../lib.sh"
for body in '{"name": "unterminated' '{"other": 1}' '[1, 2]' 'null' "$(printf '\xff\xfe')"; do
    s=$(http_status -X POST -H 'Content-Type: application/json' --data-binary "$body" "$BASE/api/items")
    [ "$s" = 400 ] || fail "body '$body' gave $s, expected 400"
done
http_get -X POST --data-binary '{bad' "$BASE/api/items" | jq -e '.error' >/dev/null || fail "400 body is not a JSON error"
