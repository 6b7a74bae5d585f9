#!/usr/bin/env bash
# Use case: client administration: CLIENT SETNAME/GETNAME, CLIENT LIST, CLIENT ID, CLIENT KILL of another connection, CLIENT UNBLOCK.
# Source: Redis docs: CLIENT LIST / CLIENT KILL / CLIENT UNBLOCK commands
. "$(dirname "$0")/../lib.sh"
name=uc09$(date +%s%N | tail -c 6)
out=$(printf 'CLIENT SETNAME %s\nCLIENT GETNAME\nCLIENT ID\n' "$name" | rcli)
echo "$out" | grep -qx "$name" || fail "CLIENT GETNAME did not return the name: $(echo $out)"
# a blocked client, found by name in CLIENT LIST, unblocked, then a second one killed
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
{ printf 'CLIENT SETNAME %s\nBLPOP uc:09:never 20\n' "$name"; sleep 20; } | timeout 25 redis-cli -h "$HOST" -p "$PORT" >"$tmp" 2>&1 &
id=""
for _ in $(seq 1 50); do
    id=$(rcli CLIENT LIST | grep "name=$name " | grep 'cmd=blpop' | sed 's/^id=\([0-9]*\) .*/\1/')
    [ -n "$id" ] && break; sleep 0.1
done
[ -n "$id" ] || fail "blocked client not in CLIENT LIST"
expect_redis 1 CLIENT UNBLOCK "$id"
expect_redis 1 CLIENT KILL ID "$id"
sleep 0.3
rcli CLIENT LIST | grep -q "id=$id " && fail "client $id still listed after CLIENT KILL"
kill %1 2>/dev/null; wait 2>/dev/null
exit 0
