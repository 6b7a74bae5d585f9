#!/usr/bin/env bash
# Use case: HEAD / returns 200 with the headers of GET (Content-Length, Content-Type) and no body.
# Source: nginx docs: ngx_http_core_module (HEAD handled like GET without body); RFC 9110 §9.3.2
. "$(dirname "$0")/../lib.sh"
len=$(http_get "$BASE/" | wc -c)
h=$(curl -sS -I --max-time 10 "$BASE/") || fail "HEAD failed"
echo "$h" | head -1 | grep -q ' 200' || fail "HEAD status: $(echo "$h" | head -1)"
echo "$h" | grep -qi "^content-length: $len" || fail "HEAD Content-Length differs from GET body size $len"
echo "$h" | grep -qi '^content-type: text/html' || fail "HEAD lacks Content-Type text/html"
body=$(raw_http "HEAD / HTTP/1.0\r\nHost: x\r\n\r\n" | sed '1,/^\r$/d')
[ -z "$body" ] || fail "HEAD response carried a body"
