#!/usr/bin/env bash
# Use case: introspection: INFO all sections, COMMAND COUNT/INFO, DBSIZE, TIME, ROLE, LOLWUT.
# Source: Redis docs: INFO / COMMAND / ROLE commands
. "$(dirname "$0")/../lib.sh"
info=$(rcli INFO everything) || fail "INFO failed"
for s in Server Clients Memory Persistence Stats Replication CPU Keyspace Commandstats; do
    echo "$info" | grep -q "^# $s" || fail "INFO lacks section $s"
done
[ "$(rcli COMMAND COUNT)" -gt 150 ] || fail "COMMAND COUNT too small"
rcli COMMAND INFO get | grep -q readonly || fail "COMMAND INFO get lacks flags"
rcli DBSIZE | grep -Eq '^[0-9]+$' || fail "DBSIZE not a number"
[ "$(rcli TIME | wc -l)" -eq 2 ] || fail "TIME wrong"
[ "$(rcli ROLE | head -1)" = master ] || fail "ROLE is not master"
rcli LOLWUT >/dev/null || fail "LOLWUT failed"
