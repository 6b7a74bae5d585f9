#!/usr/bin/env bash
# Use case: request body limit: an admin sets LimitRequestBody 1024 on a Location, graceful restart, a 4 KB POST gets 413 while small requests pass; then the setting is removed.
# Source: Apache httpd docs: core — LimitRequestBody
. "$(dirname "$0")/../lib.sh"
cleanup() { dexec rm -f /etc/apache2/conf-enabled/uc22.conf; dexec apache2ctl graceful >/dev/null 2>&1; }
printf '<Location "/uc22">\n    LimitRequestBody 1024\n</Location>\n' | dexec_i sh -c 'cat > /etc/apache2/conf-enabled/uc22.conf' || fail "cannot write conf"
dexec apache2ctl graceful || { cleanup; fail "graceful failed"; }
s=""
for _ in $(seq 1 40); do s=$(http_status -H 'Expect:' --data-binary "$(head -c 4096 /dev/zero | tr '\0' b)" "$BASE/uc22/x"); [ "$s" = 413 ] && break; sleep 0.25; done
small=$(http_status "$BASE/uc22/x")
cleanup
[ "$s" = 413 ] || fail "4 KB body gave $s, expected 413"
[ "$small" = 404 ] || fail "small GET gave $small, expected 404"
