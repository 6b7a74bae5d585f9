#!/usr/bin/env bash
# Use case: streams with consumer groups: XADD, XLEN, XRANGE, XGROUP CREATE, XREADGROUP, XPENDING, XACK, XTRIM.
# Source: Redis docs: Redis Streams tutorial (consumer groups)
. "$(dirname "$0")/../lib.sh"
k=uc:22:$(uniq_tag)
for i in 1 2 3; do rcli XADD "$k" '*' n "$i" >/dev/null || fail "XADD failed"; done
expect_redis 3 XLEN "$k"
[ "$(rcli XRANGE "$k" - + | grep -c '^n$')" -eq 3 ] || fail "XRANGE did not return 3 entries"
expect_redis OK XGROUP CREATE "$k" g 0
out=$(rcli XREADGROUP GROUP g c1 COUNT 2 STREAMS "$k" '>')
id=$(echo "$out" | grep -E '^[0-9]+-[0-9]+$' | head -1)
[ -n "$id" ] || fail "XREADGROUP returned nothing: $(echo $out)"
[ "$(rcli XPENDING "$k" g | head -1)" = 2 ] || fail "XPENDING is not 2"
expect_redis 1 XACK "$k" g "$id"
expect_redis 2 XTRIM "$k" MAXLEN 1
rcli DEL "$k" >/dev/null
