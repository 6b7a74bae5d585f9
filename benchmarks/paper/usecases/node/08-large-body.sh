#!/usr/bin/env bash
# Use case: request bodies: a 60 KB body is accepted (201); a 1 MB body goes over the 64 KB limit and gets 413 or a closed connection; the server keeps serving.
# Source: Node.js docs: HTTP — request.destroy(); (app limit maxBody 64 KB)
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
head -c 61440 /dev/zero | tr '\0' m >"$tmp"
expect_status 201 -H 'Expect:' --data-binary @"$tmp" "$BASE/api/items"
head -c 1048576 /dev/zero | tr '\0' m >"$tmp"
s=$(http_status -H 'Expect:' --data-binary @"$tmp" "$BASE/api/items")
case $s in 413|000) ;; *) fail "1 MB body gave $s, expected 413 or a reset";; esac
[ "$(http_get "$BASE/healthz")" = ok ] || fail "server not healthy after a large body"
