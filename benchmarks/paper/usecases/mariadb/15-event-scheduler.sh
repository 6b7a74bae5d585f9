#!/usr/bin/env bash
# Use case: scheduled work: turn the event scheduler on (SET GLOBAL), a one-shot CREATE EVENT inserts a row a second later, a recurring event is created and dropped, SLEEP(); the scheduler is turned off again.
# Source: MariaDB docs: Events — CREATE EVENT, Event Scheduler (event_scheduler); SLEEP()
. "$(dirname "$0")/../lib.sh"
t=uc15_$$
cleanup() { mysu -e "DROP EVENT IF EXISTS bench.${t}_once; DROP EVENT IF EXISTS bench.${t}_rec; SET GLOBAL event_scheduler = OFF; DROP TABLE IF EXISTS bench.$t" >/dev/null 2>&1; }
mysu -e "SET GLOBAL event_scheduler = ON" || fail "cannot start the event scheduler"
myq -e "CREATE TABLE $t (at DATETIME(3))" || { cleanup; fail "setup failed"; }
myq -e "CREATE EVENT ${t}_once ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL 1 SECOND DO INSERT INTO $t VALUES (NOW(3))" || { cleanup; fail "CREATE EVENT failed"; }
myq -e "CREATE EVENT ${t}_rec ON SCHEDULE EVERY 1 HOUR DO DELETE FROM $t WHERE at < NOW() - INTERVAL 1 DAY" || { cleanup; fail "recurring CREATE EVENT failed"; }
myq -e "SHOW EVENTS" | grep -q "${t}_rec" || { cleanup; fail "SHOW EVENTS lacks the event"; }
[ "$(myq -e "SELECT SLEEP(0.5)")" = 0 ] || { cleanup; fail "SLEEP failed"; }
n=0
for _ in $(seq 1 40); do n=$(myq -e "SELECT count(*) FROM $t"); [ "$n" -ge 1 ] && break; sleep 0.25; done
cleanup
[ "$n" -ge 1 ] || fail "one-shot event did not run"
