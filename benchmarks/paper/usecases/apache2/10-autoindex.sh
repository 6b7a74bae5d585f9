#!/usr/bin/env bash
# Use case: directory listing by mod_autoindex (Options Indexes in Debian's <Directory /var/www/>): a directory without index.html lists its files, with column sorting (?C=S;O=D).
# Source: Apache httpd docs: mod_autoindex
. "$(dirname "$0")/../lib.sh"
dexec sh -c 'mkdir -p /var/www/html/uc10 && echo one > /var/www/html/uc10/alpha.txt && head -c 5000 /dev/zero > /var/www/html/uc10/beta.bin' || fail "cannot create the directory"
out=$(http_get "$BASE/uc10/")
echo "$out" | grep -q 'Index of /uc10' || { dexec rm -rf /var/www/html/uc10; fail "no directory listing"; }
echo "$out" | grep -q 'alpha.txt' && echo "$out" | grep -q 'beta.bin' || { dexec rm -rf /var/www/html/uc10; fail "listing lacks the files"; }
first=$(http_get "$BASE/uc10/?C=S;O=D" | grep -o 'href="[ab][a-z]*\.[a-z]*"' | head -1)
expect_status 301 "$BASE/uc10"
dexec rm -rf /var/www/html/uc10
[ "$first" = 'href="beta.bin"' ] || fail "sort by size descending did not put beta.bin first ($first)"
expect_status 404 "$BASE/uc10/"
