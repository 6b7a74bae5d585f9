#!/usr/bin/env bash
# Use case: debugging with MONITOR: a monitoring client sees the commands other clients run.
# Source: Redis docs: MONITOR command
. "$(dirname "$0")/../lib.sh"
k=uc:24:$(uniq_tag)
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
timeout 3 redis-cli -h "$HOST" -p "$PORT" MONITOR >"$tmp" 2>&1 &
sleep 0.7
rcli SET "$k" seen-by-monitor >/dev/null
sleep 0.5
wait
grep -q seen-by-monitor "$tmp" || fail "MONITOR did not show the SET: $(head -c 200 "$tmp")"
rcli DEL "$k" >/dev/null
