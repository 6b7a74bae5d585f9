#!/usr/bin/env bash
# Use case: persistent connections: several requests on one HTTP/1.1 connection, and HTTP/1.0 with Connection: keep-alive.
# Source: nginx docs: ngx_http_core_module — keepalive_timeout, keepalive_requests
. "$(dirname "$0")/../lib.sh"
out=$(curl -sS -v --max-time 15 "$BASE/" "$BASE/10k.bin" "$BASE/index.html" -o /dev/null -o /dev/null -o /dev/null 2>&1) || fail "curl failed"
echo "$out" | grep -qi 're-using existing connection\|reusing existing connection' || fail "connection was not reused"
[ "$(echo "$out" | grep -c '^< HTTP/1.1 200')" -eq 3 ] || fail "not three 200 responses"
r=$(RAW_TIMEOUT=2 raw_http "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /10k.bin HTTP/1.0\r\n\r\n")
[ "$(echo "$r" | grep -c '^HTTP/1.1 200')" -eq 2 ] || fail "HTTP/1.0 keep-alive did not serve two requests"
