#!/usr/bin/env bash
# Use case: the project's own management command seed_items tops the table up to N items, and is idempotent when run again.
# Source: Django docs: How to create custom django-admin commands
. "$(dirname "$0")/../lib.sh"
n=$(http_get "$BASE/api/items" | jq .count)
out=$(manage seed_items $((n + 2)) 2>&1) || fail "seed_items failed: $out"
[ "$out" = "$((n + 2)) items" ] || fail "seed_items output: $out"
out=$(manage seed_items $((n + 2)) 2>&1)
[ "$out" = "$((n + 2)) items" ] || fail "second seed_items not idempotent: $out"
[ "$(http_get "$BASE/api/items" | jq .count)" = $((n + 2)) ] || fail "count not $((n + 2))"
