#!/usr/bin/env bash
# Use case: authentication failures: wrong password and unknown user on the admin login form give the error message, no session cookie.
# Source: Django docs: The Django admin site — AdminSite.login; User authentication in Django
. "$(dirname "$0")/../lib.sh"
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
for cred in "admin wrong-password" "nosuchuser admin"; do
    set -- $cred
    tok=$(csrf_from "$jar" "$BASE/admin/login/")
    out=$(curl -sS --max-time 20 -c "$jar" -b "$jar" --data-urlencode "csrfmiddlewaretoken=$tok" \
        --data-urlencode "username=$1" --data-urlencode "password=$2" -w '\n%{http_code}' "$BASE/admin/login/")
    [ "$(echo "$out" | tail -1)" = 200 ] || fail "failed login for $1 gave $(echo "$out" | tail -1)"
    echo "$out" | grep -q 'Please enter the correct username and password' || fail "no error message for $1"
done
grep -q sessionid "$jar" && fail "session cookie set after failed logins"
exit 0
