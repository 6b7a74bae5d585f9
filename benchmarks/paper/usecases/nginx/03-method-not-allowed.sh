#!/usr/bin/env bash
# Use case: POST, PUT and DELETE on a static file are refused with 405 Not Allowed; an unknown method gets 405 or 400.
# Source: nginx docs: ngx_http_static_module (only GET/HEAD); ngx_http_core_module
. "$(dirname "$0")/../lib.sh"
expect_status 405 -X POST -d 'a=1' "$BASE/index.html"
expect_status 405 -X PUT -d 'x' "$BASE/index.html"
expect_status 405 -X DELETE "$BASE/index.html"
s=$(http_status -X BREW "$BASE/index.html"); case $s in 405|400|501) ;; *) fail "unknown method got $s";; esac
expect_status 200 "$BASE/"
