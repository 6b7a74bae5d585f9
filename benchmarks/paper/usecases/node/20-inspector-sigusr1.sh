#!/usr/bin/env bash
# Use case: debugging a running server: SIGUSR1 (docker kill -s USR1) makes node open its inspector on 127.0.0.1:9229; /json/list describes the process; the app keeps serving.
# Source: Node.js docs: Debugging guide — Enable Inspector (SIGUSR1)
. "$(dirname "$0")/../lib.sh"
main_pid_signal USR1
ok=""
for _ in $(seq 1 40); do curl -s --max-time 2 http://127.0.0.1:9229/json/list | grep -q webSocketDebuggerUrl && ok=1 && break; sleep 0.25; done
[ -n "$ok" ] || fail "inspector did not open on 127.0.0.1:9229"
curl -s --max-time 2 http://127.0.0.1:9229/json/version | grep -qi 'node' || fail "inspector /json/version did not answer"
[ "$(http_get "$BASE/healthz")" = ok ] || fail "app not serving with the inspector open"
