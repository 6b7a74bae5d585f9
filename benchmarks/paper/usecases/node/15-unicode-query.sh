#!/usr/bin/env bash
# Use case: UTF-8 bodies and query strings: a name with non-ASCII characters round-trips exactly; query strings and percent-encoding on routes are tolerated.
# Source: Node.js docs: Buffer — buf.toString('utf8'); HTTP — message.url
. "$(dirname "$0")/../lib.sh"
name='żółw ✓ 日本語 🐢'
out=$(http_get -X POST -H 'Content-Type: application/json; charset=utf-8' --data-binary "$(jq -cn --arg n "$name" '{name:$n}')" "$BASE/api/items")
[ "$(echo "$out" | jq -r .name)" = "$name" ] || fail "unicode name changed: $out"
expect_status 200 "$BASE/api/items?page=2&sort=name"
expect_status 200 "$BASE/healthz?probe=%20x%2F"
expect_status 404 "$BASE/%68ealthz"
