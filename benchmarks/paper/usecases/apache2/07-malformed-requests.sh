#!/usr/bin/env bash
# Use case: malformed requests: garbage request line, HTTP/1.1 without Host, invalid protocol token, extra request-line token, bad header line, bad Content-Length all get 400/505; the server keeps serving.
# Source: Apache httpd docs: core — HttpProtocolOptions; RFC 9112
. "$(dirname "$0")/../lib.sh"
st() { raw_http "$1" | head -1 | awk '{print $2}'; }
s=$(st "GARBAGE\r\n\r\n"); [ "$s" = 400 ] || fail "garbage request line gave $s"
s=$(st "GET / HTTP/1.1\r\n\r\n"); [ "$s" = 400 ] || fail "HTTP/1.1 without Host gave $s"
s=$(st "GET / http/1.1\r\nHost: x\r\n\r\n"); [ "$s" = 400 ] || fail "lowercase protocol (HttpProtocolOptions Strict) gave $s"
s=$(st "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n"); [ "$s" = 400 ] || fail "extra token in request line gave $s"
s=$(st "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"); [ "$s" = 400 ] || fail "bad header gave $s"
s=$(st "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"); [ "$s" = 400 ] || fail "bad Content-Length gave $s"
expect_status 200 "$BASE/"
