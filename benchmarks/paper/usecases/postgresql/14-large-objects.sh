#!/usr/bin/env bash
# Use case: large objects: lo_from_bytea / lo_get / lo_put on the server, client-side \lo_import and \lo_export of a 2 MB file, server-side lo_export to a file as superuser, lo_unlink.
# Source: PostgreSQL 15 docs: Large Objects (Chapter 35) — server-side functions, psql \lo_import/\lo_export
. "$(dirname "$0")/../lib.sh"
tmp=$(mktemp); trap 'rm -f "$tmp" "$tmp.out"' EXIT
head -c 2097152 /dev/urandom >"$tmp"
out=$(printf "\\\\lo_import '%s'\\nSELECT :LASTOID;\\n" "$tmp" | pgq 2>&1) || fail "\\lo_import failed: $out"
oid=$(echo "$out" | grep -E '^[0-9]+$' | tail -1)
[ -n "$oid" ] || fail "no oid from \\lo_import: $out"
pgq -c "\\lo_export $oid '$tmp.out'" >/dev/null || fail "\\lo_export failed"
cmp -s "$tmp" "$tmp.out" || fail "exported large object differs"
oid2=$(pgq -c "SELECT lo_from_bytea(0, 'hello large object'::bytea)") || fail "lo_from_bytea failed"
pgq -c "SELECT lo_put($oid2, 6, 'LARGE'::bytea)" >/dev/null || fail "lo_put failed"
[ "$(pgq -c "SELECT convert_from(lo_get($oid2), 'UTF8')")" = 'hello LARGE object' ] || fail "lo_get wrong"
pgsu -c "SELECT lo_export($oid2, '/tmp/uc14.lo')" >/dev/null || fail "server-side lo_export failed"
[ "$(dexec cat /tmp/uc14.lo)" = 'hello LARGE object' ] || fail "server-side export content wrong"
dexec rm -f /tmp/uc14.lo
pgq -c "SELECT lo_unlink($oid), lo_unlink($oid2)" >/dev/null || fail "lo_unlink failed"
