#!/usr/bin/env bash
# Use case: user administration inside the container: createsuperuser --noinput (password from DJANGO_SUPERUSER_PASSWORD), log in with it over HTTP, changepassword-like reset via the shell, then remove the user.
# Source: Django docs: django-admin and manage.py — createsuperuser; Using the Django authentication system
. "$(dirname "$0")/../lib.sh"
u=uc19_$(date +%s%N | tail -c 7)
out=$(timeout 50 docker exec -e DJANGO_SUPERUSER_PASSWORD=pw-$u "$CONTAINER" python3 manage.py createsuperuser --noinput --username "$u" --email "$u@example.invalid" 2>&1) || fail "createsuperuser failed: $out"
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
r=$(django_login "$jar" "$u" "pw-$u"); case $r in "302 "*/admin/) ;; *) fail "login as the new user gave '$r'";; esac
manage shell -c "from django.contrib.auth.models import User; u = User.objects.get(username='$u'); u.set_password('new-$u'); u.save()" >/dev/null 2>&1 || fail "password reset failed"
rm -f "$jar"
r=$(django_login "$jar" "$u" "pw-$u"); case $r in "200 "*) ;; *) fail "old password still works ('$r')";; esac
r=$(django_login "$jar" "$u" "new-$u"); case $r in "302 "*/admin/) ;; *) fail "new password does not work ('$r')";; esac
manage shell -c "from django.contrib.auth.models import User; User.objects.filter(username='$u').delete()" >/dev/null 2>&1 || fail "user removal failed"
