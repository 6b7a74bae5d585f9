#!/usr/bin/env bash
# Use case: cluster administration inside the container: createdb/createuser command-line tools, a connection to the new database, pg_dumpall --globals-only shows the roles, dropdb/dropuser.
# Source: PostgreSQL 15 docs: createdb; createuser; dropdb; pg_dumpall (--globals-only)
. "$(dirname "$0")/../lib.sh"
db=uc12db_$$; role=uc12role_$$
dexec createuser -p "$PORT" --no-superuser --no-createdb "$role" || fail "createuser failed"
dexec createdb -p "$PORT" -O "$role" "$db" || fail "createdb failed"
[ "$(PGSU_DB=$db pgsu -c "SELECT current_database() || ' ' || pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()")" = "$db $role" ] || fail "new database not usable"
dexec pg_dumpall -p "$PORT" --globals-only | grep -q "CREATE ROLE $role" || fail "pg_dumpall --globals-only lacks the role"
dexec dropdb -p "$PORT" "$db" || fail "dropdb failed"
dexec dropuser -p "$PORT" "$role" || fail "dropuser failed"
[ "$(pgsu -c "SELECT count(*) FROM pg_database WHERE datname = '$db'")" = 0 ] || fail "database still there"
