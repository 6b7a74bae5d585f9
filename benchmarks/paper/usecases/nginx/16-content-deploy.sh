#!/usr/bin/env bash
# Use case: deploy content into the document root with docker exec: a new page is served at once, a directory without index gives 403 (autoindex off), the page is removed and gives 404.
# Source: nginx docs: Beginner's Guide — Serving Static Content; ngx_http_index_module / ngx_http_autoindex_module
. "$(dirname "$0")/../lib.sh"
dexec sh -c 'mkdir -p /var/www/html/uc16dir && echo "<p>uc16 deployed</p>" > /var/www/html/uc16.html' || fail "deploy failed"
http_get "$BASE/uc16.html" | grep -q 'uc16 deployed' || fail "new page not served"
expect_status 301 "$BASE/uc16dir"
expect_status 403 "$BASE/uc16dir/"
dexec rm -rf /var/www/html/uc16.html /var/www/html/uc16dir
expect_status 404 "$BASE/uc16.html"
