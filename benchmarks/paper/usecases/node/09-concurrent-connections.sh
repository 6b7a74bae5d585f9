#!/usr/bin/env bash
# Use case: many concurrent connections: 300 requests from 60 parallel clients (GET and POST mixed) all succeed.
# Source: Node.js docs: HTTP — server.maxConnections, event loop (Don't Block the Event Loop guide)
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
seq 1 300 | xargs -P 60 -I{} sh -c '
  if [ $(({} % 3)) -eq 0 ]; then
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 20 -X POST -d "{\"name\":\"c{}\"}" '"$BASE"'/api/items
  else
    curl -s -o /dev/null -w "%{http_code}\n" --max-time 20 '"$BASE"'/api/items
  fi' >"$tmp"
ok=$(grep -cE '^(200|201)$' "$tmp")
[ "$ok" -eq 300 ] || fail "only $ok of 300 concurrent requests succeeded ($(sort "$tmp" | uniq -c | tr '\n' ' '))"
