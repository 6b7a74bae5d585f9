#!/usr/bin/env bash
# Use case: incremental iteration: a SCAN cursor loop with MATCH/COUNT over 200 keys, redis-cli --scan, plus HSCAN, SSCAN, ZSCAN.
# Source: Redis docs: SCAN command
. "$(dirname "$0")/../lib.sh"
p=uc:07:$(uniq_tag)
for i in $(seq 1 200); do echo "SET $p:$i $i"; done | rcli >/dev/null || fail "bulk SET failed"
cur=0; tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT; iters=0
while :; do
    out=$(rcli SCAN "$cur" MATCH "$p:*" COUNT 20) || fail "SCAN failed"
    cur=$(echo "$out" | head -1); echo "$out" | sed 1d >>"$tmp"; iters=$((iters + 1))
    [ "$cur" = 0 ] && break
    [ $iters -lt 10000 ] || fail "SCAN did not terminate"
done
[ "$iters" -gt 1 ] || fail "SCAN COUNT 20 finished in one call"
n=$(sort -u "$tmp" | grep -c .)
[ "$n" -eq 200 ] || fail "SCAN found $n of 200 keys"
rcli HSET "$p:h" a 1 b 2 c 3 >/dev/null; rcli SADD "$p:s" x y z >/dev/null; rcli ZADD "$p:z" 1 m 2 n >/dev/null
[ "$(rcli HSCAN "$p:h" 0 | sed 1d | wc -l)" -eq 6 ] || fail "HSCAN wrong"
[ "$(rcli SSCAN "$p:s" 0 | sed 1d | wc -l)" -eq 3 ] || fail "SSCAN wrong"
[ "$(rcli ZSCAN "$p:z" 0 | sed 1d | wc -l)" -eq 4 ] || fail "ZSCAN wrong"
[ "$(rcli --scan --pattern "$p:*" | wc -l)" -ge 200 ] || fail "redis-cli --scan found too few keys"
rcli --scan --pattern "$p:*" | while read -r key; do echo "DEL $key"; done | rcli >/dev/null
expect_redis 0 EXISTS "$p:1"
