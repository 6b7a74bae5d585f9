#!/usr/bin/env bash
# Use case: malformed HTTP: a garbage request line, a control character in a header name, a header line without a colon, a bad Content-Length and both Content-Length and Transfer-Encoding get 400 Bad Request from node's parser; the server keeps serving.
# Source: Node.js docs: HTTP — Event 'clientError' (default 400 Bad Request reply)
. "$(dirname "$0")/../lib.sh"
for r in "GARBAGE\r\n\r\n" "GET / HTTP/1.1\r\nHost: x\r\nBad\x01Header: y\r\n\r\n" "GET / HTTP/1.1\r\nHost: x\r\nNoColonHeader\r\n\r\n" "POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n" "POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"; do
    s=$(raw_http "$r" | head -1 | awk '{print $2}')
    [ "$s" = 400 ] || fail "request '$(echo "$r" | head -c 40)' gave '$s', expected 400"
done
[ "$(http_get "$BASE/healthz")" = ok ] || fail "server not healthy"
