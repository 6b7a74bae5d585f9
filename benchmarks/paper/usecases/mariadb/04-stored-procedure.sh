#!/usr/bin/env bash
# Use case: stored routines: a procedure with a loop, an OUT parameter and a handler for a duplicate-key error, a stored function, SHOW PROCEDURE STATUS, DROP.
# Source: MariaDB docs: Stored Procedures — CREATE PROCEDURE, DECLARE HANDLER; CREATE FUNCTION
. "$(dirname "$0")/../lib.sh"
t=uc04_$$
out=$(myq 2>&1 <<SQL
DROP TABLE IF EXISTS $t;
CREATE TABLE $t (id INT PRIMARY KEY);
DELIMITER //
CREATE PROCEDURE ${t}_fill(IN n INT, OUT dup INT)
BEGIN
  DECLARE i INT DEFAULT 1;
  DECLARE CONTINUE HANDLER FOR 1062 SET dup = dup + 1;
  SET dup = 0;
  WHILE i <= n DO
    INSERT INTO $t VALUES (i % 50);
    SET i = i + 1;
  END WHILE;
END//
CREATE FUNCTION ${t}_sq(x INT) RETURNS INT DETERMINISTIC RETURN x * x//
DELIMITER ;
CALL ${t}_fill(100, @d);
SELECT @d, (SELECT count(*) FROM $t), ${t}_sq(12);
SHOW PROCEDURE STATUS WHERE Name = '${t}_fill';
DROP PROCEDURE ${t}_fill;
DROP FUNCTION ${t}_sq;
DROP TABLE $t;
SQL
) || fail "routine session failed: $(echo $out | tail -c 300)"
echo "$out" | head -1 | grep -q $'^50\t50\t144$' || fail "unexpected routine results: $(echo "$out" | head -1)"
echo "$out" | grep -q "${t}_fill" || fail "SHOW PROCEDURE STATUS lacks the procedure"
