#!/usr/bin/env bash
# Use case: a slow client that sends its request headers in pieces over 2 seconds is still served (below headersTimeout); other clients are served meanwhile.
# Source: Node.js docs: HTTP — server.headersTimeout, server.requestTimeout
. "$(dirname "$0")/../lib.sh"
python3 - "$HOST" "$PORT" <<'PY' &
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
for part in (b"GET /hea", b"lthz HTTP/1.1\r\n", b"Host: x\r\n", b"Connection: close\r\n", b"\r\n"):
    s.sendall(part); time.sleep(0.5)
data = s.recv(4096)
assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok\n"), data
PY
pid=$!
sleep 0.5
[ "$(http_get "$BASE/healthz")" = ok ] || fail "server blocked by a slow client"
wait $pid || fail "slow client was not served"
