#!/usr/bin/env bash
# Use case: byte-range requests on /10k.bin: single range (206 + Content-Range), suffix range, multipart ranges, unsatisfiable range (416).
# Source: nginx docs: ngx_http_core_module — max_ranges; RFC 9110 §14 Range requests
. "$(dirname "$0")/../lib.sh"
h=$(http_headers -H 'Range: bytes=0-99' "$BASE/10k.bin")
echo "$h" | head -1 | grep -q ' 206' || fail "single range status: $(echo "$h" | head -1)"
echo "$h" | grep -qi '^content-range: bytes 0-99/10240' || fail "Content-Range missing or wrong"
[ "$(http_get -H 'Range: bytes=0-99' "$BASE/10k.bin" | wc -c)" -eq 100 ] || fail "single range body is not 100 bytes"
[ "$(http_get -H 'Range: bytes=-240' "$BASE/10k.bin" | wc -c)" -eq 240 ] || fail "suffix range body is not 240 bytes"
[ "$(http_get "$BASE/10k.bin" | tail -c 240 | sha1sum)" = "$(http_get -H 'Range: bytes=10000-' "$BASE/10k.bin" | sha1sum)" ] || fail "open range content differs"
h=$(http_headers -H 'Range: bytes=0-9,100-109' "$BASE/10k.bin")
echo "$h" | grep -qi '^content-type: multipart/byteranges' || fail "multi-range not multipart/byteranges"
expect_status 416 -H 'Range: bytes=20000-30000' "$BASE/10k.bin"
