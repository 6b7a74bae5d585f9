#!/usr/bin/env bash
# Use case: a health-check script inside the container: docker exec node -e fetches /healthz and /api/items over the loopback with the http module, as a HEALTHCHECK CMD would.
# Source: Docker docs: Dockerfile reference — HEALTHCHECK; Node.js docs: http.get
. "$(dirname "$0")/../lib.sh"
out=$(dexec node -e '
const http = require("http");
const get = (p) => new Promise((ok, ko) => http.get({host: "127.0.0.1", port: process.argv[1], path: p}, (r) => {
  let b = ""; r.on("data", (c) => b += c); r.on("end", () => ok([r.statusCode, b]));
}).on("error", ko));
(async () => {
  const [s1, b1] = await get("/healthz");
  const [s2, b2] = await get("/api/items");
  if (s1 !== 200 || b1 !== "ok\n" || s2 !== 200 || !Array.isArray(JSON.parse(b2))) process.exit(1);
  console.log("healthy");
})().catch((e) => { console.error(e.message); process.exit(2); });
' "$PORT" 2>&1) || fail "in-container health check failed: $out"
[ "$out" = healthy ] || fail "unexpected output: $out"
