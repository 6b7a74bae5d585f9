#!/usr/bin/env bash
# Use case: admin checks inside the container: node --version, node --check on the app (syntax check without running), node -p process.versions, and a script that reports memory usage and the process list from /proc.
# Source: Node.js docs: Command-line API (--check, -p/--print, --version)
. "$(dirname "$0")/../lib.sh"
dexec node --version | grep -q '^v[0-9]' || fail "node --version failed"
dexec node --check /srv/app/server.js || fail "node --check failed on the app"
dexec node -p 'process.versions.v8' | grep -q '^[0-9]' || fail "node -p failed"
out=$(dexec node -e '
const fs = require("fs");
const pids = fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d));
const cmd = pids.map((p) => { try { return fs.readFileSync(`/proc/${p}/cmdline`, "utf8"); } catch (_) { return ""; } });
if (!cmd.some((c) => c.includes("server.js"))) process.exit(3);
console.log(process.memoryUsage().rss > 0 ? "ok" : "bad");
') || fail "process inspection script failed"
[ "$out" = ok ] || fail "process inspection: $out"
