#!/usr/bin/env bash
# Use case: conditional requests: If-None-Match with the ETag and If-Modified-Since with Last-Modified both give 304; a stale ETag gives 200.
# Source: nginx docs: ngx_http_core_module — etag, if_modified_since
. "$(dirname "$0")/../lib.sh"
h=$(http_headers "$BASE/index.html")
etag=$(echo "$h" | grep -i '^etag:' | sed 's/^[^:]*: *//; s/\r$//')
lm=$(echo "$h" | grep -i '^last-modified:' | sed 's/^[^:]*: *//; s/\r$//')
[ -n "$etag" ] && [ -n "$lm" ] || fail "no ETag/Last-Modified"
expect_status 304 -H "If-None-Match: $etag" "$BASE/index.html"
expect_status 304 -H "If-Modified-Since: $lm" "$BASE/index.html"
expect_status 200 -H 'If-None-Match: "stale-etag"' "$BASE/index.html"
expect_status 200 -H 'If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT' "$BASE/index.html"
