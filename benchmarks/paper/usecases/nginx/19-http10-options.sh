#!/usr/bin/env bash
# Use case: protocol variants: HTTP/1.0 request without Host (200), absolute-URI request line, OPTIONS (405), request pipelining of three requests.
# Source: nginx docs: ngx_http_core_module; RFC 9112 (request line, pipelining)
. "$(dirname "$0")/../lib.sh"
raw_http "GET / HTTP/1.0\r\n\r\n" | head -1 | grep -q ' 200' || fail "HTTP/1.0 without Host not 200"
raw_http "GET http://localhost/index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" | head -1 | grep -q ' 200' || fail "absolute URI not 200"
expect_status 405 -X OPTIONS "$BASE/index.html"
r=$(RAW_TIMEOUT=2 raw_http "GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD /10k.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
[ "$(echo "$r" | grep -o 'HTTP/1.1 [0-9]*' | wc -l)" -eq 3 ] || fail "pipelined requests did not get three responses"
echo "$r" | grep -q '^HTTP/1.1 404' || fail "pipelined 404 missing"
