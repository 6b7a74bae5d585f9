#!/usr/bin/env bash
# Use case: serialise a key with DUMP and recreate it with RESTORE (with TTL, REPLACE), binary-safe over RESP.
# Source: Redis docs: DUMP / RESTORE commands
. "$(dirname "$0")/../lib.sh"
k=uc:12:$(uniq_tag)
rcli RPUSH "$k" a b c >/dev/null || fail "RPUSH failed"
python3 - "$HOST" "$PORT" "$k" <<'PY' || fail "DUMP/RESTORE round trip failed"
import socket, sys
host, port, k = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10); f = s.makefile("rb")
def cmd(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    s.sendall(out); return read()
def read():
    line = f.readline(); t, rest = line[:1], line[1:-2]
    if t == b"+": return rest.decode()
    if t == b"-": raise SystemExit("error: " + rest.decode())
    if t == b":": return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0: return None
        d = f.read(n + 2); return d[:-2]
    if t == b"*": return [read() for _ in range(int(rest))]
    raise SystemExit("bad reply %r" % line)
blob = cmd("DUMP", k)
assert blob and len(blob) > 10, blob
assert cmd("RESTORE", k + ":copy", 60000, blob) == "OK"
assert cmd("LRANGE", k + ":copy", 0, -1) == [b"a", b"b", b"c"]
assert 0 < cmd("PTTL", k + ":copy") <= 60000
try:
    cmd("RESTORE", k + ":copy", 0, blob); raise SystemExit("RESTORE over existing key did not fail")
except SystemExit as e:
    if "BUSYKEY" not in str(e): raise
assert cmd("RESTORE", k + ":copy", 0, blob, "REPLACE") == "OK"
try:
    cmd("RESTORE", k + ":bad", 0, b"garbage-payload"); raise SystemExit("bad payload accepted")
except SystemExit as e:
    if "error" not in str(e): raise
cmd("DEL", k, k + ":copy")
PY
