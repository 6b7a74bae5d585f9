#!/usr/bin/env bash
# Use case: missing files give the 404 error document; a missing file below a file gives 404 too (AcceptPathInfo off for static files).
# Source: Apache httpd docs: Custom Error Responses (ErrorDocument); core — AcceptPathInfo
. "$(dirname "$0")/../lib.sh"
expect_status 404 "$BASE/no-such-page.html"
expect_status 404 "$BASE/deep/er/no/such/file.css"
expect_status 404 "$BASE/index.html/extra/path"
http_get "$BASE/no-such-page.html" | grep -q "Not Found" || fail "404 body lacks 'Not Found'"
