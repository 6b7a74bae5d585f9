#!/usr/bin/env bash
# Use case: value internals: OBJECT ENCODING for each type (int, embstr, listpack/ziplist, hashtable after growing past hash-max-listpack-entries), OBJECT IDLETIME, OBJECT REFCOUNT, TYPE.
# Source: Redis docs: OBJECT command
. "$(dirname "$0")/../lib.sh"
p=uc:11:$(uniq_tag)
rcli SET "$p:i" 12345 >/dev/null; rcli SET "$p:s" short >/dev/null
expect_redis int OBJECT ENCODING "$p:i"
expect_redis embstr OBJECT ENCODING "$p:s"
rcli HSET "$p:h" f v >/dev/null
e=$(rcli OBJECT ENCODING "$p:h"); case $e in listpack|ziplist) ;; *) fail "small hash encoding $e";; esac
max=$(rcli CONFIG GET hash-max-listpack-entries | sed -n 2p); [ -n "$max" ] || max=$(rcli CONFIG GET hash-max-ziplist-entries | sed -n 2p)
for i in $(seq 1 $((max + 10))); do echo "HSET $p:h f$i v$i"; done | rcli >/dev/null
expect_redis hashtable OBJECT ENCODING "$p:h"
rcli OBJECT IDLETIME "$p:s" | grep -Eq '^[0-9]+$' || fail "OBJECT IDLETIME not a number"
rcli OBJECT REFCOUNT "$p:s" | grep -Eq '^[0-9]+$' || fail "OBJECT REFCOUNT not a number"
expect_redis hash TYPE "$p:h"
rcli DEL "$p:i" "$p:s" "$p:h" >/dev/null
