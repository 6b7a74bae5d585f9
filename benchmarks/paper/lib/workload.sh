#!/usr/bin/env bash
# The workloads of the paper, run on the host against 127.0.0.1.
#   workload.sh mine APP     the mining workload (waits for the server first)
#   workload.sh bench APP    one throughput measurement; prints
#                            "throughput=<ops/s> unit=<unit> detail=<...>"
# QUICK=1 shortens everything (CI smoke).
set -uo pipefail
. "$(dirname "$0")/common.sh"
mode=$1 app=$2 p=${PORT[$2]}
quick=${QUICK:-0}

# mining: record when the workload was invoked, found the server ready, and
# ended (epoch seconds), so that the report can tell the syscalls first seen
# during the workload from those first seen when the container is stopped
times=""
if [[ $mode == mine && -d ${RESULTS_DIR:-$PAPER_DIR/results}/$app ]]; then
    times=${RESULTS_DIR:-$PAPER_DIR/results}/$app/workload-times.txt
    echo "invoked $(date +%s.%N)" >"$times"
    trap 'echo "end $(date +%s.%N)" >>"$times"' EXIT
fi
# the mining workload starts with the container: wait until it answers
wait_ready "$app" 180 || { echo "workload.sh: $app did not answer on $p" >&2; exit 1; }
[[ -n $times ]] && echo "ready $(date +%s.%N)" >>"$times"

httperf_ramp() { # 5 to 50 req/s, 10 s per step (the paper's httperf range)
    local uri=${1:-/} rates="5 10 20 30 40 50" r
    ((quick)) && rates="5 20"
    for r in $rates; do
        httperf --hog --server 127.0.0.1 --port "$p" --uri "$uri" --rate "$r" \
            --num-conns $((10 * r)) --num-calls 1 --timeout 5 2>&1 |
            grep -E '^(Request rate|Reply status)' | sed "s/^/httperf rate $r: /" >&2
    done
}
pg() { PGPASSWORD=bench "$@" -h 127.0.0.1 -p "$p" -U bench; }
sb() {
    sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$p" \
        --mysql-user=bench --mysql-password=bench --mysql-db=bench --tables=4 --table-size=10000 "$@"
}

case $mode:$app in
mine:nginx | mine:apache2 | mine:busybox) httperf_ramp / ;;
mine:node | mine:django) httperf_ramp / ;;
mine:redis)
    if ((quick)); then redis-benchmark -p "$p" -q -n 2000; else redis-benchmark -p "$p" -q; fi ;;
mine:postgresql)
    t=${PG_MINE_T:-20}
    ((quick)) && t=3
    pg pgbench -i -q -s 10 bench 2>&1 | tail -1 >&2
    for run in 1 2; do pg pgbench -T "$t" -c 4 -j 2 bench 2>&1 | grep -E '^tps' >&2; done ;;
mine:mariadb)
    t=${SB_MINE_T:-40}
    ((quick)) && t=3
    sb cleanup >/dev/null 2>&1
    sb --threads=8 prepare >/dev/null
    sb --threads=8 --time="$t" --report-interval=0 run | grep -E 'transactions:' >&2 ;;

bench:nginx | bench:apache2 | bench:node | bench:django | bench:busybox)
    d=${BENCH_T:-10}
    # wrk at its maximum rate (2 threads, 32 connections), GET /
    out=$(wrk -t2 -c32 -d"${d}s" "http://127.0.0.1:$p/" 2>&1)
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "throughput=$rps unit=req/s detail=wrk_t2_c32_${d}s_non2xx=${non2xx:-0}" ;;
bench:redis)
    n=100000
    ((quick)) && n=5000
    out=$(redis-benchmark -p "$p" -q -t set,get -n "$n" 2>&1 | tr '\r' '\n')
    set_r=$(awk -F'[: ]+' '/^SET:/ {print $2}' <<<"$out" | tail -1)
    get_r=$(awk -F'[: ]+' '/^GET:/ {print $2}' <<<"$out" | tail -1)
    mean=$(awk -v a="$set_r" -v b="$get_r" 'BEGIN {printf "%.1f", (a + b) / 2}')
    echo "throughput=$mean unit=req/s detail=SET=${set_r}_GET=${get_r}" ;;
bench:postgresql)
    d=${BENCH_T:-20}
    pg pgbench -i -q -s 10 bench >/dev/null 2>&1
    tps=$(pg pgbench -T "$d" -c 4 -j 2 bench 2>/dev/null | awk '/^tps/ {print $3; exit}')
    echo "throughput=$tps unit=tps detail=pgbench_s10_c4_${d}s" ;;
bench:mariadb)
    d=${BENCH_T:-20}
    sb cleanup >/dev/null 2>&1
    sb --threads=8 prepare >/dev/null 2>&1
    tps=$(sb --threads=8 --time="$d" run 2>/dev/null | awk '/transactions:/ {gsub(/\(/, "", $3); print $3}')
    echo "throughput=$tps unit=tps detail=sysbench_oltp_rw_t8_${d}s" ;;
*) echo "workload.sh: unknown $mode:$app" >&2; exit 2 ;;
esac
