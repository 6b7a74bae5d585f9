#!/usr/bin/env bash
# Use case: host header validation: a Host outside ALLOWED_HOSTS gets 400 (DisallowedHost), 'localhost' is accepted.
# Source: Django docs: Settings — ALLOWED_HOSTS; Security in Django — Host header validation
. "$(dirname "$0")/../lib.sh"
expect_status 400 -H 'Host: evil.example.com' "$BASE/healthz"
expect_status 200 -H "Host: localhost:$PORT" "$BASE/healthz"
expect_status 200 "$BASE/healthz"
