#!/usr/bin/env bash
# Use case: sessions: log in, the session works on an admin page, log out with POST /admin/logout/ (token from the password change form: POST is the form Django 4.1+ requires, and the 3.2 LogoutView of this image accepts it too), the old session no longer opens the admin; manage.py clearsessions purges expired sessions.
# Source: Django docs: How to use sessions — clearing the session store (clearsessions); The Django admin site — logout
. "$(dirname "$0")/../lib.sh"
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
r=$(django_login "$jar" admin admin); case $r in "302 "*) ;; *) fail "login gave '$r'";; esac
expect_status 200 -b "$jar" "$BASE/admin/items/item/"
tok=$(csrf_from "$jar" "$BASE/admin/password_change/")
[ -n "$tok" ] || fail "no CSRF token on the password change form"
sid=$(awk '$6 == "sessionid" {print $7}' "$jar")
s=$(http_status -b "$jar" -c "$jar" --data-urlencode "csrfmiddlewaretoken=$tok" "$BASE/admin/logout/")
[ "$s" = 200 ] || fail "logout POST gave $s"
expect_status 302 -H "Cookie: sessionid=$sid" "$BASE/admin/items/item/"
manage clearsessions >/dev/null 2>&1 || fail "clearsessions failed"
