#!/usr/bin/env bash
# Use case: SCRIPT LOAD then EVALSHA from the script cache, SCRIPT EXISTS, NOSCRIPT error after SCRIPT FLUSH is not used (shared cache).
# Source: Redis docs: Scripting with Lua — Script cache (SCRIPT LOAD, EVALSHA)
. "$(dirname "$0")/../lib.sh"
k=uc:04:$(uniq_tag)
sha=$(rcli SCRIPT LOAD "return redis.call('INCRBY', KEYS[1], ARGV[1])") || fail "SCRIPT LOAD failed"
[ ${#sha} -eq 40 ] || fail "SCRIPT LOAD gave no sha1: $sha"
expect_redis 7 EVALSHA "$sha" 1 "$k" 7
expect_redis 10 EVALSHA "$sha" 1 "$k" 3
expect_redis 1 SCRIPT EXISTS "$sha"
out=$(rcli EVALSHA 0000000000000000000000000000000000000000 0 2>&1)
echo "$out" | grep -q NOSCRIPT || fail "unknown sha did not give NOSCRIPT: $out"
rcli DEL "$k" >/dev/null
