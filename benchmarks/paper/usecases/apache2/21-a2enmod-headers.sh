#!/usr/bin/env bash
# Use case: enable a module and a config snippet the Debian way (a2enmod headers, a conf-enabled file with Header set), graceful restart, the header appears; then a2dismod and graceful again.
# Source: Debian apache2 README.Debian (a2enmod/a2dismod, a2enconf); Apache httpd docs: mod_headers
. "$(dirname "$0")/../lib.sh"
cleanup() { dexec rm -f /etc/apache2/conf-enabled/uc21.conf; dexec a2dismod -q -f headers >/dev/null 2>&1; dexec apache2ctl graceful >/dev/null 2>&1; }
dexec a2enmod -q headers >/dev/null || fail "a2enmod headers failed"
echo 'Header set X-UC21 "enabled-by-a2enmod"' | dexec_i sh -c 'cat > /etc/apache2/conf-enabled/uc21.conf' || { cleanup; fail "cannot write conf"; }
dexec apache2ctl configtest >/dev/null 2>&1 || { cleanup; fail "configtest failed"; }
dexec apache2ctl graceful || { cleanup; fail "graceful failed"; }
ok=""
for _ in $(seq 1 40); do http_headers "$BASE/" | grep -qi '^x-uc21: enabled-by-a2enmod' && ok=1 && break; sleep 0.25; done
cleanup
[ -n "$ok" ] || fail "header from the new module not sent"
for _ in $(seq 1 40); do http_headers "$BASE/" | grep -qi '^x-uc21' || break; sleep 0.25; done
http_headers "$BASE/" | grep -qi '^x-uc21' && fail "header still sent after a2dismod"
expect_status 200 "$BASE/"
