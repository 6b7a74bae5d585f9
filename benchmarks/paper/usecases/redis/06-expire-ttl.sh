#!/usr/bin/env bash
# Use case: key expiry: SET EX, TTL/PTTL, PEXPIRE, PERSIST and a key that really expires.
# Source: Redis docs: EXPIRE command / Key expiration
. "$(dirname "$0")/../lib.sh"
k=uc:06:$(uniq_tag)
expect_redis OK SET "$k" v EX 100
t=$(rcli TTL "$k"); [ "$t" -gt 90 ] && [ "$t" -le 100 ] || fail "TTL out of range: $t"
expect_redis 1 PEXPIRE "$k" 300
t=$(rcli PTTL "$k"); [ "$t" -gt 0 ] && [ "$t" -le 300 ] || fail "PTTL out of range: $t"
expect_redis 1 PERSIST "$k"
expect_redis -1 TTL "$k"
expect_redis 1 PEXPIRE "$k" 200
sleep 0.6
expect_redis 0 EXISTS "$k"
expect_redis -2 TTL "$k"
