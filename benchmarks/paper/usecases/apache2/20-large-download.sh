#!/usr/bin/env bash
# Use case: a 32 MB static file (sendfile/mmap path) downloads completely and intact; four parallel downloads.
# Source: Apache httpd docs: core — EnableSendfile, EnableMMAP
. "$(dirname "$0")/../lib.sh"
want=$(dexec sh -c 'head -c 33554432 /dev/urandom > /var/www/html/uc20.bin && sha256sum /var/www/html/uc20.bin' | cut -d' ' -f1) || fail "cannot create the file"
got=$(curl -sS --max-time 30 "$BASE/uc20.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || { dexec rm -f /var/www/html/uc20.bin; fail "download checksum mismatch"; }
tmp=$(mktemp)
for i in 1 2 3 4; do curl -s -o /dev/null --max-time 30 -w '%{size_download}\n' "$BASE/uc20.bin" & done >"$tmp"
wait
n=$(grep -c '^33554432$' "$tmp"); rm -f "$tmp"
dexec rm -f /var/www/html/uc20.bin
[ "$n" -eq 4 ] || fail "only $n of 4 parallel downloads were complete"
