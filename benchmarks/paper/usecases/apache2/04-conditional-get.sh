#!/usr/bin/env bash
# Use case: conditional requests: If-None-Match with the ETag and If-Modified-Since with Last-Modified give 304; a stale ETag gives 200.
# Source: Apache httpd docs: core — FileETag; Caching Guide (conditional requests)
. "$(dirname "$0")/../lib.sh"
h=$(http_headers "$BASE/10k.bin")
etag=$(echo "$h" | grep -i '^etag:' | sed 's/^[^:]*: *//; s/\r$//')
lm=$(echo "$h" | grep -i '^last-modified:' | sed 's/^[^:]*: *//; s/\r$//')
[ -n "$etag" ] && [ -n "$lm" ] || fail "no ETag/Last-Modified"
expect_status 304 -H "If-None-Match: $etag" "$BASE/10k.bin"
expect_status 304 -H "If-Modified-Since: $lm" "$BASE/10k.bin"
expect_status 200 -H 'If-None-Match: "stale-etag"' "$BASE/10k.bin"
expect_status 412 -H 'If-Match: "stale-etag"' "$BASE/10k.bin"
