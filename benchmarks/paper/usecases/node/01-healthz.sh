#!/usr/bin/env bash
# Use case: health endpoint GET /healthz returns 200 text/plain 'ok' (what a Docker HEALTHCHECK or a load balancer probes).
# Source: Docker docs: Dockerfile reference — HEALTHCHECK; Node.js docs: http.createServer
. "$(dirname "$0")/../lib.sh"
[ "$(http_get "$BASE/healthz")" = ok ] || fail "/healthz body is not ok"
http_headers "$BASE/healthz" | grep -qi '^content-type: text/plain' || fail "/healthz not text/plain"
