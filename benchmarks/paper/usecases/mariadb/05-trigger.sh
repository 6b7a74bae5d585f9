#!/usr/bin/env bash
# Use case: triggers: a BEFORE INSERT trigger normalises a column, an AFTER UPDATE trigger writes an audit row, a trigger SIGNAL rejects a bad row.
# Source: MariaDB docs: CREATE TRIGGER; Trigger Overview; SIGNAL
. "$(dirname "$0")/../lib.sh"
t=uc05_$$
out=$(myq 2>&1 <<SQL
DROP TABLE IF EXISTS $t, ${t}_audit;
CREATE TABLE $t (id INT PRIMARY KEY, email VARCHAR(100), qty INT);
CREATE TABLE ${t}_audit (id INT, old_qty INT, new_qty INT);
DELIMITER //
CREATE TRIGGER ${t}_bi BEFORE INSERT ON $t FOR EACH ROW
BEGIN
  IF NEW.qty < 0 THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'negative qty'; END IF;
  SET NEW.email = lower(NEW.email);
END//
CREATE TRIGGER ${t}_au AFTER UPDATE ON $t FOR EACH ROW INSERT INTO ${t}_audit VALUES (OLD.id, OLD.qty, NEW.qty)//
DELIMITER ;
INSERT INTO $t VALUES (1, 'Admin@Example.COM', 5);
UPDATE $t SET qty = 7 WHERE id = 1;
SELECT email FROM $t;
SELECT concat(old_qty, '->', new_qty) FROM ${t}_audit;
SQL
) || fail "trigger session failed: $(echo $out | tail -c 300)"
echo "$out" | grep -qx 'admin@example.com' || fail "BEFORE INSERT trigger did not run: $(echo $out)"
echo "$out" | grep -qx '5->7' || fail "AFTER UPDATE audit row missing"
err=$(myq -e "INSERT INTO $t VALUES (2, 'x', -1)" 2>&1) && fail "SIGNAL did not reject the row"
echo "$err" | grep -q 'negative qty' || fail "SIGNAL error: $err"
myq -e "DROP TABLE $t, ${t}_audit"
