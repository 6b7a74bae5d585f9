#!/usr/bin/env bash
# Use case: error paths: WRONGTYPE, unknown command, wrong arity, INCR of a non-integer, bad SET option, out-of-range index; the server keeps serving.
# Source: Redis docs: Redis serialization protocol — Simple errors; command reference error replies
. "$(dirname "$0")/../lib.sh"
k=uc:18:$(uniq_tag)
rcli RPUSH "$k" a >/dev/null
chk() { local want=$1; shift; local out; out=$(rcli "$@" 2>&1); echo "$out" | grep -q "$want" || fail "redis $*: expected $want, got $out"; }
chk WRONGTYPE GET "$k"
chk "unknown command" NOSUCHCOMMAND a b
chk "wrong number of arguments" GET
rcli SET "$k:s" abc >/dev/null
chk "not an integer" INCR "$k:s"
chk "syntax error" SET "$k:s" v BADOPTION
chk "out of range" LSET "$k" 99 x
chk "not a valid float" INCRBYFLOAT "$k:s" 1
expect_redis PONG PING
rcli DEL "$k" "$k:s" >/dev/null
