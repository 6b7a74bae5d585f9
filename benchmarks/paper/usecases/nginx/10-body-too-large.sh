#!/usr/bin/env bash
# Use case: a request body over client_max_body_size (1 MB by default) is refused with 413 Request Entity Too Large.
# Source: nginx docs: ngx_http_core_module — client_max_body_size
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
head -c 2097152 /dev/zero >"$tmp"
expect_status 413 -H 'Expect:' --data-binary @"$tmp" "$BASE/index.html"
expect_status 200 "$BASE/"
