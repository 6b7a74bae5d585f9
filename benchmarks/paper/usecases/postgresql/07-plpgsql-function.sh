#!/usr/bin/env bash
# Use case: server-side code: a PL/pgSQL function with a loop and an exception handler, a trigger function that fills a column, a DO block, RAISE NOTICE.
# Source: PostgreSQL 15 docs: PL/pgSQL — SQL Procedural Language (Chapter 43); CREATE TRIGGER
. "$(dirname "$0")/../lib.sh"
t=uc07_$$
out=$(pgq 2>&1 <<SQL
CREATE FUNCTION ${t}_fact(n int) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE r numeric := 1;
BEGIN
  FOR i IN 2..n LOOP r := r * i; END LOOP;
  RETURN r;
END \$\$;
CREATE FUNCTION ${t}_safe_div(a int, b int) RETURNS int LANGUAGE plpgsql AS \$\$
BEGIN
  RETURN a / b;
EXCEPTION WHEN division_by_zero THEN
  RETURN -1;
END \$\$;
CREATE TABLE $t (id serial, name text, upper_name text);
CREATE FUNCTION ${t}_trg() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN NEW.upper_name := upper(NEW.name); RETURN NEW; END \$\$;
CREATE TRIGGER ${t}_bi BEFORE INSERT ON $t FOR EACH ROW EXECUTE FUNCTION ${t}_trg();
INSERT INTO $t (name) VALUES ('sandmine');
DO \$\$ BEGIN RAISE NOTICE 'do block ran'; END \$\$;
SELECT ${t}_fact(20);
SELECT ${t}_safe_div(10, 0);
SELECT upper_name FROM $t;
DROP TABLE $t;
DROP FUNCTION ${t}_fact(int), ${t}_safe_div(int, int), ${t}_trg();
SQL
) || fail "PL/pgSQL failed: $(echo $out | tail -c 300)"
echo "$out" | grep -qx 2432902008176640000 || fail "factorial wrong: $(echo $out)"
echo "$out" | grep -qx -- -1 || fail "exception handler did not run"
echo "$out" | grep -qx SANDMINE || fail "trigger did not fill upper_name"
echo "$out" | grep -q 'do block ran' || fail "DO block notice missing"
