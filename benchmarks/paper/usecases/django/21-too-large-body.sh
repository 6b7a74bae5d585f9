#!/usr/bin/env bash
# Use case: a request body over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) is rejected with 400 (RequestDataTooBig); the server keeps serving.
# Source: Django docs: Settings — DATA_UPLOAD_MAX_MEMORY_SIZE
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
{ printf '{"name":"uc21","description":"'; head -c 3145728 /dev/zero | tr '\0' d; printf '"}'; } >"$tmp"
s=$(http_status -H 'Expect:' -H 'Content-Type: application/json' --data-binary @"$tmp" "$BASE/api/items")
[ "$s" = 400 ] || fail "3 MB body gave $s, expected 400"
expect_status 200 "$BASE/healthz"
