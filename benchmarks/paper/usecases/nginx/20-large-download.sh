#!/usr/bin/env bash
# Use case: a 32 MB static file (sendfile path) downloads completely and intact; several parallel downloads.
# Source: nginx docs: ngx_http_core_module — sendfile, sendfile_max_chunk, output_buffers
. "$(dirname "$0")/../lib.sh"
dexec sh -c 'head -c 33554432 /dev/urandom > /var/www/html/uc20.bin && sha256sum /var/www/html/uc20.bin' >/tmp/uc20.$$ || fail "cannot create the file"
want=$(cut -d' ' -f1 /tmp/uc20.$$); rm -f /tmp/uc20.$$
got=$(curl -sS --max-time 30 "$BASE/uc20.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { dexec rm -f /var/www/html/uc20.bin; fail "download checksum mismatch"; }
for i in 1 2 3 4; do curl -s -o /dev/null --max-time 30 -w '%{size_download}\n' "$BASE/uc20.bin" & done > /tmp/uc20s.$$
wait
n=$(grep -c '^33554432$' /tmp/uc20s.$$); rm -f /tmp/uc20s.$$
dexec rm -f /var/www/html/uc20.bin
[ "$n" -eq 4 ] || fail "only $n of 4 parallel downloads were complete"
