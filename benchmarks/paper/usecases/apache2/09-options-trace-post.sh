#!/usr/bin/env bash
# Use case: methods beyond GET: OPTIONS lists the allowed methods, TRACE is refused (Debian security.conf: TraceEnable Off), POST to a static file is served like GET by the default handler, PUT/DELETE give 405.
# Source: Apache httpd docs: core — TraceEnable; Debian apache2 security.conf
. "$(dirname "$0")/../lib.sh"
h=$(http_headers -X OPTIONS "$BASE/index.html")
echo "$h" | head -1 | grep -q ' 200' || fail "OPTIONS status: $(echo "$h" | head -1)"
echo "$h" | grep -qi '^allow:.*GET' || fail "OPTIONS lacks Allow header"
expect_status 405 -X TRACE "$BASE/index.html"
expect_status 200 -X POST -d 'a=1' "$BASE/index.html"
expect_status 405 -X PUT -d 'x' "$BASE/index.html"
expect_status 405 -X DELETE "$BASE/index.html"
