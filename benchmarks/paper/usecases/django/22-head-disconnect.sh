#!/usr/bin/env bash
# Use case: HEAD requests (the GET headers; the development server of Django 3.2 in this image still sends the body; only Django 5.0 strips it) and clients that disconnect mid-request (half headers, short POST body); the development server keeps serving.
# Source: Django docs: django-admin runserver; Request and response objects (HEAD handled like GET)
. "$(dirname "$0")/../lib.sh"
r=$(raw_http "HEAD /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
echo "$r" | head -1 | grep -q ' 200' || fail "HEAD status: $(echo "$r" | head -1)"
echo "$r" | grep -qi '^content-type: text/plain' || fail "HEAD lacks the GET headers"
python3 - "$HOST" "$PORT" <<'PY' || fail "disconnect script failed"
import socket, sys, time
h, p = sys.argv[1], int(sys.argv[2])
for payload in (b"GET /api/items HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Ag",
                b"POST /api/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n{\"name\": \"uc22-half"):
    s = socket.create_connection((h, p), timeout=5); s.sendall(payload); time.sleep(0.2); s.close()
PY
for _ in $(seq 1 20); do [ "$(http_status "$BASE/healthz")" = 200 ] && break; sleep 0.25; done
expect_status 200 "$BASE/healthz"
