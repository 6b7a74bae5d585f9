#!/usr/bin/env bash
# Use case: gzip compression of text/html (Debian's nginx.conf: gzip on) when the client sends Accept-Encoding: gzip; the body decompresses to the plain page.
# Source: nginx docs: ngx_http_gzip_module
. "$(dirname "$0")/../lib.sh"
h=$(http_headers -H 'Accept-Encoding: gzip' "$BASE/")
echo "$h" | grep -qi '^content-encoding: gzip' || fail "no Content-Encoding: gzip"
plain=$(http_get "$BASE/" | sha1sum)
unz=$(http_get -H 'Accept-Encoding: gzip' "$BASE/" | gunzip -c | sha1sum) || fail "body is not gzip"
[ "$plain" = "$unz" ] || fail "decompressed body differs from the plain one"
http_headers "$BASE/" | grep -qi '^content-encoding: gzip' && fail "gzip sent without Accept-Encoding"
exit 0
