#!/usr/bin/env bash
# One line describing the mining workload of APP (for the report).
. "$(dirname "$0")/common.sh"
q=${QUICK:-0}
case $1 in
nginx | apache2 | node | django | busybox)
    ((q)) && echo "httperf GET / at 5, 20 req/s (10 s each, quick)" ||
        echo "httperf GET / at 5, 10, 20, 30, 40, 50 req/s, 10 s each (60 s)" ;;
redis) ((q)) && echo "redis-benchmark -q -n 2000 (quick)" || echo "redis-benchmark -q (defaults: all tests, 100000 requests, 50 clients)" ;;
postgresql) echo "pgbench -i -s 10, then 2 x pgbench -T ${PG_MINE_T:-20} -c 4 -j 2 (TPC-B-like)$( ((q)) && echo ' (quick: 3 s)')" ;;
mariadb) echo "sysbench oltp_read_write, 4 tables x 10000 rows, 8 threads, prepare + ${SB_MINE_T:-40} s run$( ((q)) && echo ' (quick: 3 s)')" ;;
esac
