#!/usr/bin/env bash
# Use case: malformed clients: garbage bytes instead of a handshake response, a client that disconnects right after the greeting, and one that stops mid-handshake; Aborted_connects grows and the server keeps serving.
# Source: MariaDB docs: Server Status Variables — Aborted_connects; Client/Server Protocol — Connection (handshake)
. "$(dirname "$0")/../lib.sh"
a0=$(myq -e "SHOW GLOBAL STATUS LIKE 'Aborted_connects'" | awk '{print $2}')
python3 - "$HOST" "$PORT" <<'PY' || fail "raw client script failed"
import socket, sys, time
h, p = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((h, p), timeout=5)
greet = s.recv(4096)
assert len(greet) > 10 and b"MariaDB" in greet, greet
s.sendall(b"\x05\x00\x00\x01GARBAGE-NOT-A-HANDSHAKE")
try:
    s.recv(4096)
except Exception:
    pass
s.close()
s = socket.create_connection((h, p), timeout=5); s.recv(4096); s.close()
s = socket.create_connection((h, p), timeout=5); s.recv(4096); s.sendall(b"\x40\x00\x00\x01\x85"); time.sleep(0.2); s.close()
PY
a1=$a0
for _ in $(seq 1 20); do a1=$(myq -e "SHOW GLOBAL STATUS LIKE 'Aborted_connects'" | awk '{print $2}'); [ "$a1" -gt "$a0" ] && break; sleep 0.25; done
[ "$a1" -gt "$a0" ] || fail "Aborted_connects did not grow ($a0 -> $a1)"
[ "$(myq -e 'SELECT 1')" = 1 ] || fail "server not serving after malformed clients"
