#!/usr/bin/env bash
# Use case: persistent connections: several requests reuse one connection; three pipelined requests on one socket get three responses in order.
# Source: Node.js docs: HTTP — server.keepAliveTimeout; RFC 9112 §9.3.2 pipelining
. "$(dirname "$0")/../lib.sh"
out=$(curl -sS -v --max-time 15 "$BASE/" "$BASE/healthz" "$BASE/api/items" -o /dev/null -o /dev/null -o /dev/null 2>&1) || fail "curl failed"
echo "$out" | grep -qi 're-using existing connection\|reusing existing connection' || fail "connection was not reused"
r=$(RAW_TIMEOUT=2 raw_http "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /api/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
[ "$(echo "$r" | grep -o 'HTTP/1.1 [0-9]*' | wc -l)" -eq 3 ] || fail "pipelined requests did not get three responses"
[ "$(echo "$r" | grep -o 'HTTP/1.1 [0-9]*' | awk '{print $2}' | tr '\n' ' ')" = "200 404 200 " ] || fail "pipelined responses out of order"
