#!/usr/bin/env bash
# Use case: a large 8 MB value: SET from stdin (redis-cli -x), STRLEN, GETRANGE, APPEND, then UNLINK (lazy free).
# Source: Redis docs: Strings (512 MB limit), redis-cli -x, UNLINK command
. "$(dirname "$0")/../lib.sh"
k=uc:27:$(uniq_tag)
head -c 8388608 /dev/zero | tr '\0' a | rcli -x SET "$k" >/dev/null || fail "SET of 8 MB failed"
expect_redis 8388608 STRLEN "$k"
expect_redis aaaa GETRANGE "$k" 100 103
expect_redis 8388611 APPEND "$k" xyz
expect_redis 1 UNLINK "$k"
