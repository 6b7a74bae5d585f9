#!/usr/bin/env bash
# Use case: request body framing: a POST with Transfer-Encoding: chunked, and a POST with Expect: 100-continue (node answers 100 Continue itself) both create items.
# Source: Node.js docs: HTTP — Event 'checkContinue', chunked transfer encoding
. "$(dirname "$0")/../lib.sh"
r=$(raw_http "POST /api/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n9\r\n{\"name\":\"\r\nb\r\nuc14chunk\"}\r\n0\r\n\r\n")
echo "$r" | head -1 | grep -q ' 201' || fail "chunked POST: $(echo "$r" | head -1)"
echo "$r" | grep -q '"name":"uc14chunk"' || fail "chunked body not reassembled"
out=$(curl -sS -v --max-time 10 -H 'Expect: 100-continue' --data-binary "{\"name\":\"uc14-$(head -c 2000 /dev/zero | tr '\0' e)\"}" "$BASE/api/items" 2>&1)
echo "$out" | grep -q '< HTTP/1.1 100 Continue' || fail "no 100 Continue"
echo "$out" | grep -q '< HTTP/1.1 201' || fail "Expect: 100-continue POST not created"
