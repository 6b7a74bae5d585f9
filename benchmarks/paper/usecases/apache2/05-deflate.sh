#!/usr/bin/env bash
# Use case: mod_deflate compresses text/html (Debian enables deflate) when the client sends Accept-Encoding: gzip; the body decompresses to the plain page.
# Source: Apache httpd docs: mod_deflate
. "$(dirname "$0")/../lib.sh"
h=$(http_headers -H 'Accept-Encoding: gzip' "$BASE/index.html")
echo "$h" | grep -qi '^content-encoding: gzip' || fail "no Content-Encoding: gzip"
plain=$(http_get "$BASE/index.html" | sha1sum)
unz=$(http_get -H 'Accept-Encoding: gzip' "$BASE/index.html" | gunzip -c | sha1sum) || fail "body is not gzip"
[ "$plain" = "$unz" ] || fail "decompressed body differs from the plain one"
http_headers -H 'Accept-Encoding: gzip' "$BASE/index.html" | grep -qi '^vary: accept-encoding' || fail "no Vary: Accept-Encoding"
