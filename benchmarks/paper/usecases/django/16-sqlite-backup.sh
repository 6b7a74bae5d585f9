#!/usr/bin/env bash
# Use case: database backup inside the container: copy the live SQLite database with the sqlite3 online backup API, check the copy with PRAGMA integrity_check and count its items.
# Source: Django docs: Databases — SQLite notes; Python docs: sqlite3 — Connection.backup
. "$(dirname "$0")/../lib.sh"
out=$(dexec python3 -c '
import os, sqlite3
src = sqlite3.connect(os.environ["BENCHSITE_DB"])
dst = sqlite3.connect("/tmp/uc16-backup.sqlite3")
src.backup(dst)
print(dst.execute("PRAGMA integrity_check").fetchone()[0], dst.execute("SELECT count(*) FROM items_item").fetchone()[0])
dst.close(); src.close()
os.remove("/tmp/uc16-backup.sqlite3")
' 2>&1) || fail "backup failed: $out"
set -- $out
[ "$1" = ok ] || fail "integrity_check: $out"
want=$(http_get "$BASE/api/items" | jq .count)
[ "$2" = "$want" ] || fail "backup has $2 items, the site $want"
