#!/usr/bin/env bash
# Use case: HEAD requests: node's http module sends the headers the handler wrote but never a body (the app routes only GET, so HEAD / gets its 404 headers).
# Source: Node.js docs: HTTP — response.end() (HEAD responses have no body)
. "$(dirname "$0")/../lib.sh"
r=$(raw_http "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
echo "$r" | head -1 | grep -q '^HTTP/1.1 [0-9]' || fail "no status line: $(echo "$r" | head -1)"
body=$(echo "$r" | sed '1,/^\r$/d')
[ -z "$body" ] || fail "HEAD response carried a body"
echo "$r" | grep -qi '^content-length:' || fail "HEAD response without Content-Length"
