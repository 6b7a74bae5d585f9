#!/usr/bin/env bash
# Use case: concurrency error path: two sessions lock rows in opposite order, InnoDB detects the deadlock and rolls one back (error 1213); a lock wait times out with innodb_lock_wait_timeout=1 (error 1205).
# Source: MariaDB docs: InnoDB Lock Modes — deadlocks; innodb_lock_wait_timeout
. "$(dirname "$0")/../lib.sh"
t=uc07_$$
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO $t VALUES (1, 0), (2, 0)" || fail "setup failed"
myq -e "START TRANSACTION; UPDATE $t SET v = 1 WHERE id = 1; DO SLEEP(1); UPDATE $t SET v = 1 WHERE id = 2; COMMIT" >"$tmp" 2>&1 &
p1=$!
myq -e "START TRANSACTION; UPDATE $t SET v = 2 WHERE id = 2; DO SLEEP(1); UPDATE $t SET v = 2 WHERE id = 1; COMMIT" >>"$tmp" 2>&1 &
p2=$!
wait $p1; wait $p2
grep -q 'Deadlock found' "$tmp" || fail "no deadlock detected: $(cat "$tmp")"
myq -e "START TRANSACTION; SELECT * FROM $t WHERE id = 1 FOR UPDATE; DO SLEEP(3); COMMIT" >/dev/null 2>&1 &
p3=$!
sleep 0.5
out=$(myq -e "SET innodb_lock_wait_timeout = 1; UPDATE $t SET v = 9 WHERE id = 1" 2>&1) && fail "update through a held lock succeeded"
echo "$out" | grep -q 'Lock wait timeout exceeded' || fail "lock wait error: $out"
wait $p3
myq -e "DROP TABLE $t"
