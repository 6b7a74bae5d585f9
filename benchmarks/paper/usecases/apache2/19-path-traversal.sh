#!/usr/bin/env bash
# Use case: path traversal attempts (/../, encoded %2e%2e and %2f) are refused or stay inside DocumentRoot; /etc/passwd is never served.
# Source: Apache httpd docs: Security Tips — Protecting System Settings; core — AllowEncodedSlashes
. "$(dirname "$0")/../lib.sh"
for p in '/../../etc/passwd' '/%2e%2e/%2e%2e/etc/passwd' '/..%2f..%2fetc%2fpasswd' '//etc/passwd' '/icons/../../../etc/passwd'; do
    body=$(curl -s --path-as-is --max-time 10 "$BASE$p")
    echo "$body" | grep -q 'root:' && fail "$p served /etc/passwd"
    s=$(http_status --path-as-is "$BASE$p"); case $s in 400|403|404) ;; *) fail "$p gave $s";; esac
done
expect_status 200 --path-as-is "$BASE/./index.html"
