#!/usr/bin/env bash
# Use case: persistence across a restart: write keys, SAVE, docker restart, the keys are read back from the RDB file.
# Source: Redis docs: Redis persistence — RDB; Docker docs: docker restart
. "$(dirname "$0")/../lib.sh"
k=uc:17:persist
rcli SET "$k" survived >/dev/null || fail "SET failed"
rcli HSET "$k:h" a 1 b 2 >/dev/null
expect_redis OK SAVE
restart_container 40
retry 20 rcli PING >/dev/null || fail "redis not answering PING after restart"
for _ in $(seq 1 40); do rcli INFO persistence | grep -q 'loading:0' && break; sleep 0.25; done
expect_redis survived GET "$k"
expect_redis 2 HLEN "$k:h"
rcli DEL "$k" "$k:h" >/dev/null
