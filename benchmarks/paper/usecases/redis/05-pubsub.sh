#!/usr/bin/env bash
# Use case: publish/subscribe: SUBSCRIBE and PSUBSCRIBE clients receive a PUBLISHed message; PUBSUB CHANNELS/NUMSUB.
# Source: Redis docs: Redis Pub/Sub
. "$(dirname "$0")/../lib.sh"
ch=uc05.$(uniq_tag)
tmp=$(mktemp); tmp2=$(mktemp); trap 'rm -f "$tmp" "$tmp2"' EXIT
timeout 5 redis-cli -h "$HOST" -p "$PORT" SUBSCRIBE "$ch" >"$tmp" 2>&1 &
timeout 5 redis-cli -h "$HOST" -p "$PORT" PSUBSCRIBE "uc05.*" >"$tmp2" 2>&1 &
n=0
for _ in $(seq 1 40); do
    n=$(rcli PUBSUB NUMSUB "$ch" | sed -n 2p)
    [ "$n" = 1 ] && break; sleep 0.1
done
[ "$n" = 1 ] || fail "subscriber did not register (NUMSUB=$n)"
rcli PUBSUB CHANNELS 'uc05.*' | grep -qx "$ch" || fail "PUBSUB CHANNELS does not list $ch"
got=$(rcli PUBLISH "$ch" "hello-subscribers")
[ "$got" -ge 2 ] || fail "PUBLISH reached $got receivers, expected 2"
sleep 0.5
grep -q hello-subscribers "$tmp" || fail "SUBSCRIBE client did not receive the message"
grep -q hello-subscribers "$tmp2" || fail "PSUBSCRIBE client did not receive the message"
wait
exit 0
