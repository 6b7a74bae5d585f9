#!/usr/bin/env bash
# Use case: POST /api/items with a plain-text body stores the text as the name; a name over 200 characters is truncated.
# Source: Node.js docs: Anatomy of an HTTP Transaction — request body; (app API: text bodies)
. "$(dirname "$0")/../lib.sh"
out=$(http_get -X POST -H 'Content-Type: text/plain' --data-binary 'plain text item' "$BASE/api/items")
[ "$(echo "$out" | jq -r .name)" = 'plain text item' ] || fail "plain text not stored: $out"
long=$(head -c 1000 /dev/zero | tr '\0' L)
out=$(http_get -X POST --data-binary "$long" "$BASE/api/items")
[ "$(echo "$out" | jq -r '.name | length')" = 200 ] || fail "long name not truncated to 200: $(echo "$out" | head -c 100)"
