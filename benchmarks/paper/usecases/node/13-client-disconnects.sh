#!/usr/bin/env bash
# Use case: clients that disconnect mid-request (half-sent headers; a POST body shorter than its Content-Length, then close) and mid-response; the server survives and does not create the half-sent item.
# Source: Node.js docs: HTTP — Event 'aborted' / 'close' on IncomingMessage
. "$(dirname "$0")/../lib.sh"
n0=$(http_get "$BASE/api/items" | jq length)
python3 - "$HOST" "$PORT" <<'PY' || fail "disconnect script failed"
import socket, sys, time
h, p = sys.argv[1], int(sys.argv[2])
for payload in (b"GET /api/items HTTP/1.1\r\nHost: x\r\nUser-Ag",
                b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"name\": \"uc13-half"):
    s = socket.create_connection((h, p), timeout=5); s.sendall(payload); time.sleep(0.2); s.close()
s = socket.create_connection((h, p), timeout=5)
s.sendall(b"GET /api/items HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(10); s.close()
PY
sleep 0.3
[ "$(http_get "$BASE/healthz")" = ok ] || fail "server not healthy after disconnects"
http_get "$BASE/api/items" | grep -q uc13-half && fail "half-sent POST created an item"
exit 0
