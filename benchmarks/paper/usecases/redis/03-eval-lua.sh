#!/usr/bin/env bash
# Use case: server-side Lua scripting with EVAL: keys, arguments, table replies, redis.call errors.
# Source: Redis docs: Scripting with Lua (EVAL)
. "$(dirname "$0")/../lib.sh"
k=uc:03:$(uniq_tag)
expect_redis OK EVAL "return redis.call('SET', KEYS[1], ARGV[1])" 1 "$k" hello
expect_redis hello EVAL "return redis.call('GET', KEYS[1])" 1 "$k"
out=$(rcli EVAL "local t = {} for i=1,tonumber(ARGV[1]) do t[i]=i*i end return t" 0 5 | tr '\n' ' ')
[ "$out" = "1 4 9 16 25 " ] || fail "table reply wrong: $out"
out=$(rcli EVAL "return redis.call('INCR', KEYS[1])" 1 "$k" 2>&1)
echo "$out" | grep -qi "not an integer" || fail "error from redis.call not propagated: $out"
out=$(rcli EVAL "this is not lua" 0 2>&1)
echo "$out" | grep -qi "err" || fail "Lua syntax error not reported: $out"
rcli DEL "$k" >/dev/null
