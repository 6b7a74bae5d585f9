#!/usr/bin/env bash
# Use case: WAL administration as superuser: CHECKPOINT, pg_switch_wal() moves to a new segment, pg_walfile_name, checkpoint stats in pg_stat_bgwriter, pg_control_checkpoint().
# Source: PostgreSQL 15 docs: CHECKPOINT; System Administration Functions — Backup Control (pg_switch_wal)
. "$(dirname "$0")/../lib.sh"
c0=$(pgsu -c "SELECT checkpoints_req FROM pg_stat_bgwriter")
w0=$(pgsu -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
pgsu -c "CREATE TABLE IF NOT EXISTS uc13_wal (x int); INSERT INTO uc13_wal VALUES (1); CHECKPOINT" || fail "CHECKPOINT failed"
pgsu -c "SELECT pg_switch_wal()" >/dev/null || fail "pg_switch_wal failed"
pgsu -c "INSERT INTO uc13_wal VALUES (2)"
w1=$(pgsu -c "SELECT pg_walfile_name(pg_current_wal_lsn())")
[ "$w1" != "$w0" ] || fail "WAL segment did not change ($w0)"
c1=$(pgsu -c "SELECT checkpoints_req FROM pg_stat_bgwriter")
[ "$c1" -gt "$c0" ] || fail "checkpoints_req did not grow ($c0 -> $c1)"
pgsu -c "SELECT checkpoint_lsn IS NOT NULL FROM pg_control_checkpoint()" | grep -qx t || fail "pg_control_checkpoint failed"
out=$(pgq -c "CHECKPOINT" 2>&1) && fail "CHECKPOINT allowed for a non-superuser"
pgsu -c "DROP TABLE uc13_wal"
