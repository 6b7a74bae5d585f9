#!/usr/bin/env bash
# Use case: malformed requests: garbage request line (400), HTTP/1.1 without Host (400), unsupported HTTP major version (505), bad header line (400); nginx keeps serving.
# Source: nginx docs: ngx_http_core_module (request parsing, 400/505 responses); RFC 9112
. "$(dirname "$0")/../lib.sh"
raw_http "GARBAGE\r\n\r\n" | head -1 | grep -q ' 400' || fail "garbage request line not 400"
raw_http "GET / HTTP/1.1\r\n\r\n" | head -1 | grep -q ' 400' || fail "HTTP/1.1 without Host not 400"
raw_http "GET / HTTP/9.1\r\nHost: x\r\n\r\n" | head -1 | grep -q ' 505' || fail "HTTP/9.1 not 505"
raw_http "GET / HTTP/1.1\r\nHost: x\r\nBad Header\x01: y\r\n\r\n" | head -1 | grep -q ' 400' || fail "bad header not 400"
raw_http "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n" | head -1 | grep -q ' 400' || fail "bad Content-Length not 400"
expect_status 200 "$BASE/"
