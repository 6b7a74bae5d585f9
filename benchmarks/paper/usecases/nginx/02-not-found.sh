#!/usr/bin/env bash
# Use case: a missing file gives nginx's 404 page (try_files ... =404), including a missing file under an existing directory and a long random name.
# Source: nginx docs: ngx_http_core_module — try_files, error_page
. "$(dirname "$0")/../lib.sh"
expect_status 404 "$BASE/no-such-page.html"
expect_status 404 "$BASE/deep/er/no/such/file.css"
expect_status 404 "$BASE/$(head -c 200 /dev/zero | tr '\0' q)"
http_get "$BASE/no-such-page.html" | grep -q "404 Not Found" || fail "404 body lacks '404 Not Found'"
