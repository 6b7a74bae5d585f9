#!/usr/bin/env bash
# Use case: too-large request: a 64 KB header gives 400 (Request Header Or Cookie Too Large), a 16 KB URI gives 414.
# Source: nginx docs: ngx_http_core_module — large_client_header_buffers
. "$(dirname "$0")/../lib.sh"
big=$(head -c 65536 /dev/zero | tr '\0' c)
expect_status 400 -H "Cookie: a=$big" "$BASE/"
expect_status 414 "$BASE/$(head -c 16384 /dev/zero | tr '\0' u)"
expect_status 200 "$BASE/"
