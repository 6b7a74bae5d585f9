#!/usr/bin/env bash
# Use case: runtime configuration: CONFIG GET, CONFIG SET a parameter and set it back, CONFIG RESETSTAT, bad parameter error.
# Source: Redis docs: CONFIG SET / CONFIG GET commands
. "$(dirname "$0")/../lib.sh"
old=$(rcli CONFIG GET maxmemory-policy | sed -n 2p)
[ -n "$old" ] || fail "CONFIG GET maxmemory-policy empty"
expect_redis OK CONFIG SET maxmemory-policy allkeys-lru
[ "$(rcli CONFIG GET maxmemory-policy | sed -n 2p)" = allkeys-lru ] || fail "CONFIG SET did not take effect"
expect_redis OK CONFIG SET maxmemory-policy "$old"
[ "$(rcli CONFIG GET '*' | wc -l)" -gt 100 ] || fail "CONFIG GET * returned too little"
expect_redis OK CONFIG RESETSTAT
out=$(rcli CONFIG SET no-such-parameter 1 2>&1)
echo "$out" | grep -qi err || fail "bad parameter accepted: $out"
