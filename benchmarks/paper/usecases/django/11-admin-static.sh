#!/usr/bin/env bash
# Use case: static files of the admin served by runserver --insecure: base.css (text/css) and a JavaScript file; a missing static file gives 404.
# Source: Django docs: Managing static files — runserver --insecure; django.contrib.staticfiles
. "$(dirname "$0")/../lib.sh"
h=$(http_headers "$BASE/static/admin/css/base.css")
echo "$h" | head -1 | grep -q ' 200' || fail "base.css: $(echo "$h" | head -1)"
echo "$h" | grep -qi '^content-type: text/css' || fail "base.css not text/css"
[ "$(http_get "$BASE/static/admin/css/base.css" | wc -c)" -gt 1000 ] || fail "base.css too small"
expect_status 200 "$BASE/static/admin/js/core.js"
expect_status 404 "$BASE/static/admin/css/no-such.css"
