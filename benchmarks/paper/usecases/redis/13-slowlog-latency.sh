#!/usr/bin/env bash
# Use case: performance diagnostics: SLOWLOG with a 0 us threshold (restored after), DEBUG SLEEP 0 where the debug command is enabled, LATENCY DOCTOR/LATEST.
# Source: Redis docs: SLOWLOG / LATENCY DOCTOR / DEBUG commands (Latency monitoring)
. "$(dirname "$0")/../lib.sh"
old=$(rcli CONFIG GET slowlog-log-slower-than | sed -n 2p)
expect_redis OK CONFIG SET slowlog-log-slower-than 0
expect_redis OK SLOWLOG RESET
rcli SET uc:13:x y >/dev/null
rcli SLOWLOG GET 10 | grep -q uc:13:x || { rcli CONFIG SET slowlog-log-slower-than "$old" >/dev/null; fail "SLOWLOG did not record the command"; }
expect_redis OK CONFIG SET slowlog-log-slower-than "$old"
rcli SLOWLOG LEN | grep -Eq '^[0-9]+$' || fail "SLOWLOG LEN not a number"
# DEBUG SLEEP 0: allowed unless enable-debug-command forbids it (Redis >= 7 default 'no')
dbg=$(rcli CONFIG GET enable-debug-command 2>/dev/null | sed -n 2p)
if [ -z "$dbg" ] || [ "$dbg" = yes ] || [ "$dbg" = local ]; then
    expect_redis OK DEBUG SLEEP 0
else
    out=$(rcli DEBUG SLEEP 0 2>&1); echo "$out" | grep -qi "not allowed\|ERR" || fail "DEBUG not refused: $out"
fi
rcli LATENCY DOCTOR >/dev/null || fail "LATENCY DOCTOR failed"
rcli LATENCY LATEST >/dev/null || fail "LATENCY LATEST failed"
rcli DEL uc:13:x >/dev/null
