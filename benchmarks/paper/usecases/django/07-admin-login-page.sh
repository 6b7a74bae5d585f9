#!/usr/bin/env bash
# Use case: the admin site requires login: /admin/ redirects to /admin/login/?next=/admin/, the login form carries a CSRF token and sets the csrftoken cookie.
# Source: Django docs: The Django admin site; Cross Site Request Forgery protection
. "$(dirname "$0")/../lib.sh"
h=$(http_headers "$BASE/admin/")
echo "$h" | head -1 | grep -q ' 302' || fail "/admin/ not 302 for anonymous"
echo "$h" | grep -qi '^location: /admin/login/?next=/admin/' || fail "not redirected to the login page"
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
tok=$(csrf_from "$jar" "$BASE/admin/login/?next=/admin/")
[ ${#tok} -ge 32 ] || fail "no CSRF token in the form"
grep -q csrftoken "$jar" || fail "csrftoken cookie not set"
