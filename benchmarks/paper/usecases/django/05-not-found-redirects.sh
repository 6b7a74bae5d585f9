#!/usr/bin/env bash
# Use case: URL resolution errors: unknown paths give the 404 page (DEBUG off), APPEND_SLASH redirects /admin to /admin/ (301), a path with a trailing slash on a no-slash route gives 404.
# Source: Django docs: URL dispatcher; Middleware — CommonMiddleware (APPEND_SLASH)
. "$(dirname "$0")/../lib.sh"
expect_status 404 "$BASE/no-such-page"
expect_status 404 "$BASE/healthz/"
http_get "$BASE/no-such-page" | grep -q 'Not Found' || fail "404 page lacks 'Not Found'"
h=$(http_headers "$BASE/admin")
echo "$h" | head -1 | grep -q ' 301' || fail "/admin not 301: $(echo "$h" | head -1)"
echo "$h" | grep -qi '^location: /admin/' || fail "/admin not redirected to /admin/"
