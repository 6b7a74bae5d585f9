#!/usr/bin/env bash
# Use case: session administration: a long SLEEP() shows in SHOW PROCESSLIST and information_schema.PROCESSLIST, KILL QUERY interrupts it, KILL ends an idle connection.
# Source: MariaDB docs: SHOW PROCESSLIST; KILL [CONNECTION | QUERY]
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
myq -e "SELECT SLEEP(25) AS uc13" >"$tmp" 2>&1 &
pid=$!
id=""
for _ in $(seq 1 40); do id=$(myq -e "SELECT id FROM information_schema.PROCESSLIST WHERE info LIKE 'SELECT SLEEP(25)%'"); [ -n "$id" ] && break; sleep 0.1; done
[ -n "$id" ] || fail "sleeping query not in information_schema.PROCESSLIST"
myq -e "SHOW FULL PROCESSLIST" | grep -q 'SLEEP(25)' || fail "not in SHOW PROCESSLIST"
myq -e "KILL QUERY $id" || fail "KILL QUERY failed"
wait $pid
[ "$(tail -1 "$tmp")" = 1 ] || grep -q 'interrupted' "$tmp" || fail "query not interrupted: $(cat "$tmp")"
myq -e "SELECT 'idle'; DO SLEEP(20)" >"$tmp" 2>&1 &
pid=$!
id=""
for _ in $(seq 1 40); do id=$(myq -e "SELECT id FROM information_schema.PROCESSLIST WHERE info LIKE 'DO SLEEP(20)%'"); [ -n "$id" ] && break; sleep 0.1; done
[ -n "$id" ] || fail "second session not found"
myq -e "KILL $id" || fail "KILL failed"
wait $pid
grep -qi 'lost connection\|server has gone away\|killed\|interrupted' "$tmp" || fail "connection not killed: $(cat "$tmp")"
