#!/usr/bin/env bash
# Use case: memory introspection: MEMORY USAGE of a key, MEMORY STATS, MEMORY DOCTOR, MEMORY MALLOC-STATS.
# Source: Redis docs: MEMORY USAGE / MEMORY STATS / MEMORY DOCTOR commands
. "$(dirname "$0")/../lib.sh"
k=uc:20:$(uniq_tag)
rcli SET "$k" "$(head -c 5000 /dev/zero | tr '\0' x)" >/dev/null
u=$(rcli MEMORY USAGE "$k"); [ "$u" -ge 5000 ] || fail "MEMORY USAGE too small: $u"
rcli MEMORY STATS | grep -q peak.allocated || fail "MEMORY STATS lacks peak.allocated"
rcli MEMORY DOCTOR >/dev/null || fail "MEMORY DOCTOR failed"
rcli MEMORY MALLOC-STATS >/dev/null || fail "MEMORY MALLOC-STATS failed"
rcli DEL "$k" >/dev/null
