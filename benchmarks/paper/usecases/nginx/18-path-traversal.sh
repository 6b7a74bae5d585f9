#!/usr/bin/env bash
# Use case: path traversal attempts (/../, encoded %2e%2e, encoded slashes) are refused or stay inside the root; /etc/passwd is never served.
# Source: nginx docs: ngx_http_core_module — merge_slashes and URI normalisation; OWASP path traversal
. "$(dirname "$0")/../lib.sh"
for p in '/../../etc/passwd' '/%2e%2e/%2e%2e/etc/passwd' '/..%2f..%2fetc%2fpasswd' '//etc/passwd' '/./index.html/../../../etc/passwd'; do
    body=$(curl -s --path-as-is --max-time 10 "$BASE$p")
    echo "$body" | grep -q 'root:' && fail "$p served /etc/passwd"
    s=$(http_status --path-as-is "$BASE$p"); case $s in 400|403|404) ;; *) fail "$p gave $s";; esac
done
expect_status 200 --path-as-is "$BASE/./index.html"
