#!/usr/bin/env bash
# Use case: malformed protocol and abrupt disconnects: bad multibulk length gets a Protocol error, a half-sent command is dropped on close, the server keeps serving.
# Source: Redis docs: Redis serialization protocol specification (RESP) — errors
. "$(dirname "$0")/../lib.sh"
out=$(raw_http '*1\r\n$abc\r\n')
echo "$out" | grep -q "Protocol error" || fail "bad bulk length not reported: $out"
out=$(raw_http '*-5x\r\n')
echo "$out" | grep -q "Protocol error" || fail "bad multibulk length not reported: $out"
python3 - "$HOST" "$PORT" <<'PY' || fail "half-sent command test failed"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
s.sendall(b"*3\r\n$3\r\nSET\r\n$8\r\nuc:28:hx\r\n$1000\r\nonly-part")
s.close()
PY
sleep 0.2
expect_redis 0 EXISTS uc:28:hx
out=$(RAW_TIMEOUT=1 raw_http 'PING\r\n'); echo "$out" | grep -q PONG || fail "inline PING failed: $out"
expect_redis PONG PING
