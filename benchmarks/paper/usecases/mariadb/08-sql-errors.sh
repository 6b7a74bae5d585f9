#!/usr/bin/env bash
# Use case: error paths: syntax error (1064), unknown table (1146), unknown column (1054), duplicate key (1062), data too long in strict mode (1406), max_statement_time exceeded (1969); the server stays usable.
# Source: MariaDB docs: MariaDB Error Codes; SQL_MODE (STRICT_TRANS_TABLES); max_statement_time
. "$(dirname "$0")/../lib.sh"
chk() { local want=$1 sql=$2 out; out=$(myq -e "$sql" 2>&1) && fail "'$sql' succeeded"; echo "$out" | grep -q "$want" || fail "'$sql': expected $want, got: $out"; }
chk 'ERROR 1064' "SELEC 1"
chk 'ERROR 1146' "SELECT * FROM uc08_no_such_table"
chk 'ERROR 1054' "SELECT nope FROM information_schema.tables"
chk 'ERROR 1062' "CREATE TEMPORARY TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1), (1)"
chk 'ERROR 1406' "CREATE TEMPORARY TABLE t2 (s VARCHAR(3)); INSERT INTO t2 VALUES ('toolong')"
chk 'ERROR 1969' "SET STATEMENT max_statement_time = 0.2 FOR SELECT sum(a.seq % 7) FROM seq_1_to_100000 a, seq_1_to_100000 b"
[ "$(myq -e 'SELECT 42')" = 42 ] || fail "server not usable after errors"
