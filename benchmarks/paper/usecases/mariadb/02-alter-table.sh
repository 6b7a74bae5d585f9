#!/usr/bin/env bash
# Use case: schema changes: ALTER TABLE ADD/MODIFY/RENAME COLUMN, a table-copying ALTER (ALGORITHM=COPY), ADD FOREIGN KEY with a violation refused, RENAME TABLE.
# Source: MariaDB docs: ALTER TABLE; RENAME TABLE; Foreign Keys
. "$(dirname "$0")/../lib.sh"
t=uc02_$$
myq -e "DROP TABLE IF EXISTS $t, ${t}_p, ${t}_r; CREATE TABLE ${t}_p (id INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO ${t}_p VALUES (1), (2);
CREATE TABLE $t (id INT PRIMARY KEY, pid INT, v VARCHAR(10)) ENGINE=InnoDB; INSERT INTO $t SELECT seq, 1 + seq % 2, 'x' FROM seq_1_to_1000" || fail "setup failed"
myq -e "ALTER TABLE $t ADD COLUMN extra TEXT, MODIFY COLUMN v VARCHAR(100) NOT NULL DEFAULT 'd'" || fail "ALTER ADD/MODIFY COLUMN failed"
myq -e "ALTER TABLE $t RENAME COLUMN extra TO notes" || fail "ALTER RENAME COLUMN failed"
myq -e "ALTER TABLE $t ENGINE=InnoDB, ALGORITHM=COPY" || fail "ALGORITHM=COPY rebuild failed"
myq -e "ALTER TABLE $t ADD CONSTRAINT ${t}_fk FOREIGN KEY (pid) REFERENCES ${t}_p (id)" || fail "ADD FOREIGN KEY failed"
out=$(myq -e "INSERT INTO $t (id, pid) VALUES (5000, 99)" 2>&1) && fail "FK violation accepted"
echo "$out" | grep -q 'foreign key constraint fails' || fail "FK error: $out"
myq -e "RENAME TABLE $t TO ${t}_r" || fail "RENAME TABLE failed"
myq -e "SHOW CREATE TABLE ${t}_r" | grep -q '`notes` text' || fail "renamed table lacks the new column"
myq -e "DROP TABLE ${t}_r, ${t}_p"
