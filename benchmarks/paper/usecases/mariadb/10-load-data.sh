#!/usr/bin/env bash
# Use case: bulk import/export: LOAD DATA INFILE of a CSV file created inside the container (docker exec, server-side read), LOAD DATA LOCAL INFILE from the client, SELECT ... INTO OUTFILE inside the container.
# Source: MariaDB docs: LOAD DATA INFILE; SELECT INTO OUTFILE
. "$(dirname "$0")/../lib.sh"
t=uc10_$$
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
myq -e "DROP TABLE IF EXISTS $t; CREATE TABLE $t (id INT PRIMARY KEY, name VARCHAR(50))" || fail "setup failed"
dexec sh -c "seq 1 5000 | sed 's/.*/&,name &/' > /tmp/$t.csv" || fail "cannot write the CSV in the container"
mysu -e "LOAD DATA INFILE '/tmp/$t.csv' INTO TABLE bench.$t FIELDS TERMINATED BY ','" || fail "LOAD DATA INFILE failed"
[ "$(myq -e "SELECT count(*) FROM $t")" = 5000 ] || fail "LOAD DATA INFILE loaded a wrong count"
seq 5001 6000 | sed 's/.*/&,local &/' >"$tmp"
myq --local-infile=1 -e "LOAD DATA LOCAL INFILE '$tmp' INTO TABLE $t FIELDS TERMINATED BY ','" || fail "LOAD DATA LOCAL INFILE failed"
[ "$(myq -e "SELECT count(*) FROM $t")" = 6000 ] || fail "LOAD DATA LOCAL loaded a wrong count"
dexec rm -f /tmp/$t.out
mysu -e "SELECT * FROM bench.$t WHERE id > 5990 INTO OUTFILE '/tmp/$t.out' FIELDS TERMINATED BY ','" || fail "SELECT INTO OUTFILE failed"
[ "$(dexec sh -c "wc -l < /tmp/$t.out")" = 10 ] || fail "OUTFILE does not have 10 lines"
dexec rm -f /tmp/$t.csv /tmp/$t.out
myq -e "DROP TABLE $t"
