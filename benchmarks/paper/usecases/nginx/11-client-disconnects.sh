#!/usr/bin/env bash
# Use case: clients that disconnect mid-request (half-sent headers, a body shorter than Content-Length) and mid-response (a 4 MB download aborted after 64 KB); nginx keeps serving.
# Source: nginx docs: ngx_http_core_module — client_header_timeout, send_timeout, reset_timedout_connection
. "$(dirname "$0")/../lib.sh"
dexec sh -c 'head -c 4194304 /dev/urandom > /var/www/html/uc11-big.bin' || fail "cannot create the big file"
python3 - "$HOST" "$PORT" <<'PY' || fail "disconnect script failed"
import socket, sys
h, p = sys.argv[1], int(sys.argv[2])
for payload in (b"GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Ag",
                b"POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\nshort"):
    s = socket.create_connection((h, p), timeout=5); s.sendall(payload); s.close()
s = socket.create_connection((h, p), timeout=5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"GET /uc11-big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
got = 0
while got < 65536:
    d = s.recv(8192)
    if not d: break
    got += len(d)
s.close()
assert got >= 65536, got
PY
expect_status 200 "$BASE/"
[ "$(http_get "$BASE/uc11-big.bin" | wc -c)" -eq 4194304 ] || fail "full download after aborts is not 4 MB"
dexec rm -f /var/www/html/uc11-big.bin
