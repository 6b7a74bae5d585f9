#!/usr/bin/env bash
# Use case: check the configuration: nginx -t (syntax test) and nginx -T (dump of the full configuration) inside the container; nginx -V build info.
# Source: nginx docs: Command-line parameters (-t, -T, -V)
. "$(dirname "$0")/../lib.sh"
out=$(dexec nginx -t 2>&1) || fail "nginx -t failed: $(echo $out | tail -c 200)"
echo "$out" | grep -q "test is successful" || fail "nginx -t: $out"
dexec nginx -T 2>/dev/null | grep -q 18101 || fail "nginx -T does not show the listen port"
dexec nginx -V 2>&1 | grep -q 'configure arguments' || fail "nginx -V lacks configure arguments"
