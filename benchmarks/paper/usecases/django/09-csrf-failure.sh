#!/usr/bin/env bash
# Use case: CSRF protection: a POST to the admin login without a token gets 403, and with a wrong token 403.
# Source: Django docs: Cross Site Request Forgery protection (CsrfViewMiddleware)
. "$(dirname "$0")/../lib.sh"
expect_status 403 -d 'username=admin&password=admin' "$BASE/admin/login/"
s=$(http_status -H 'Cookie: csrftoken=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' -d 'csrfmiddlewaretoken=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb&username=admin&password=admin' "$BASE/admin/login/")
[ "$s" = 403 ] || fail "wrong CSRF token gave $s"
http_get -d 'x=1' "$BASE/admin/login/" | grep -q 'CSRF' || fail "403 page does not mention CSRF"
