#!/usr/bin/env bash
# Use case: configuration checks inside the container: apache2ctl configtest, apache2ctl -S (virtual hosts), apache2ctl -M (loaded modules), apache2 -V.
# Source: Apache httpd docs: apachectl; Debian apache2 README (apache2ctl)
. "$(dirname "$0")/../lib.sh"
out=$(dexec apache2ctl configtest 2>&1) || fail "configtest failed: $(echo $out | tail -c 200)"
echo "$out" | grep -q 'Syntax OK' || fail "configtest: $out"
dexec apache2ctl -S 2>&1 | grep -q 18102 || fail "apache2ctl -S does not show the vhost"
dexec apache2ctl -M 2>&1 | grep -q 'status_module' || fail "apache2ctl -M lacks status_module"
dexec apache2 -V 2>&1 | grep -q 'Server MPM' || fail "apache2 -V lacks Server MPM"
