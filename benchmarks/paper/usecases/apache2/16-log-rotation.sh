#!/usr/bin/env bash
# Use case: log rotation as logrotate does it: move access.log away, graceful restart, new requests go to a fresh access.log.
# Source: Apache httpd docs: Log Files — Log Rotation; Debian /etc/logrotate.d/apache2
. "$(dirname "$0")/../lib.sh"
log=/var/log/apache2/access.log
curl -s -o /dev/null "$BASE/uc16-before" || true
dexec test -e "$log" || fail "$log does not exist"
dexec mv "$log" "$log.uc16" || fail "cannot move the log"
dexec apache2ctl graceful || fail "graceful failed"
for _ in $(seq 1 40); do curl -s -o /dev/null "$BASE/uc16-after-rotate"; dexec grep -qs uc16-after-rotate "$log" && break; sleep 0.25; done
dexec grep -qs uc16-after-rotate "$log" || fail "request not logged to the fresh access.log"
dexec rm -f "$log.uc16"
