#!/usr/bin/env bash
# Use case: malformed JSON bodies (truncated object, wrong type, JSON null, empty body) do not crash the server: JSON.parse throws and the app falls back to the raw text.
# Source: Node.js docs: Errors — handling exceptions from JSON.parse; Anatomy of an HTTP Transaction
. "$(dirname "$0")/../lib.sh"
for body in '{"name": "unterminated' '[1,2,3' 'null' '{"other": 1}' '{{{{'; do
    s=$(http_status -X POST -H 'Content-Type: application/json' --data-binary "$body" "$BASE/api/items")
    [ "$s" = 201 ] || fail "body '$body' gave $s"
done
s=$(http_status -X POST -H 'Content-Type: application/json' -H 'Content-Length: 0' "$BASE/api/items")
[ "$s" = 201 ] || fail "empty body gave $s"
[ "$(http_get "$BASE/healthz")" = ok ] || fail "server not healthy after malformed JSON"
