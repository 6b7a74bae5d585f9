#!/usr/bin/env bash
# Use case: physical backup inside the container: pg_basebackup over a replication connection (plain format, WAL fetched), then pg_verifybackup checks it against its manifest.
# Source: PostgreSQL 15 docs: pg_basebackup; pg_verifybackup; Continuous Archiving — Making a Base Backup (26.3.2)
. "$(dirname "$0")/../lib.sh"
d=/tmp/uc21_base
dexec rm -rf "$d"
out=$(dexec pg_basebackup -p "$PORT" -D "$d" -Fp -X fetch --checkpoint=fast 2>&1) || { dexec rm -rf "$d"; fail "pg_basebackup failed: $(echo $out | tail -c 300)"; }
out=$(dexec /usr/lib/postgresql/15/bin/pg_verifybackup "$d" 2>&1) || { dexec rm -rf "$d"; fail "pg_verifybackup failed: $(echo $out | tail -c 300)"; }
echo "$out" | grep -q 'successfully verified' || { dexec rm -rf "$d"; fail "pg_verifybackup: $out"; }
dexec test -f "$d/PG_VERSION" || fail "backup lacks PG_VERSION"
dexec rm -rf "$d"
