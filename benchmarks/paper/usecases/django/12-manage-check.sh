#!/usr/bin/env bash
# Use case: system checks inside the container: manage.py check, check --deploy (warnings only), check --database default.
# Source: Django docs: django-admin and manage.py — check (--deploy, --database)
. "$(dirname "$0")/../lib.sh"
out=$(manage check 2>&1) || fail "manage.py check failed: $(echo $out | tail -c 200)"
echo "$out" | grep -q 'no issues' || fail "check: $out"
manage check --deploy --fail-level ERROR >/dev/null 2>&1 || fail "check --deploy reported errors"
manage check --database default >/dev/null 2>&1 || fail "check --database default failed"
