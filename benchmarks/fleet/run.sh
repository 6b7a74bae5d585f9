#!/usr/bin/env bash
# Fleet benchmarks: aggregator throughput vs a bulk insert, fleet scale,
# bytes on the wire, and the collector's own footprint.
#
#   benchmarks/fleet/run.sh [throughput|scale|wire|footprint|all]...
#
# Knobs (environment):
#   SANDMINE   the sandmine binary (default: $CARGO_TARGET_DIR/release/sandmine,
#              then target/release/sandmine)
#   BUILD=1    cargo build --release the binary and the generator first
#   N          throughput: envelopes (= hosts, one interval)     [2000]
#   REPS       throughput: repetitions, interleaved              [3]
#   BATCH      aggregator batch_max_messages                     [1000]
#   HOSTS      scale: host counts to try                         ["1000 2500 5000 10000"]
#   INTERVALS  scale: intervals per host count                   [6]
#   CROSS_HOUR scale: also run one host count with an interval that ends in
#              a new hour (hourly incidence refresh); "" to skip  [""]
#   CONTAINERS footprint: containers                             [100]
#   DURATION   footprint: measured seconds                       [150]
#
# Results: one JSON per benchmark under benchmarks/fleet/results/<UTC>/,
# and a summary on stdout. Everything started here is stopped on exit.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N=${N:-2000}
REPS=${REPS:-3}
BATCH=${BATCH:-1000}
HOSTS=${HOSTS:-"1000 2500 5000 10000"}
INTERVALS=${INTERVALS:-6}
CROSS_HOUR=${CROSS_HOUR:-}
CONTAINERS=${CONTAINERS:-100}
DURATION=${DURATION:-150}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$HERE/results/$STAMP}
WORK=$(mktemp -d /tmp/sandmine-fleetbench.XXXXXX)
TAG=fleetbench-$$
PIDS=()
PIN_DIR=""

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.5
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    if command -v docker >/dev/null; then
        ids=$(docker ps -aq --filter "label=$TAG" 2>/dev/null)
        [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    fi
    [ -n "$PIN_DIR" ] && rm -rf "$PIN_DIR"
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

die() { echo "fleet bench: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

for t in curl jq python3 nats-server clickhouse-server clickhouse-client; do
    command -v "$t" >/dev/null || die "$t is missing (scripts/install-deps.sh)"
done

if [ "${BUILD:-0}" = 1 ]; then
    (cd "$ROOT" && cargo build --release --bin sandmine)
fi
if [ -z "${SANDMINE:-}" ]; then
    for c in "${CARGO_TARGET_DIR:-/nonexistent}/release/sandmine" "$ROOT/target/release/sandmine"; do
        [ -x "$c" ] && SANDMINE=$c && break
    done
fi
[ -x "${SANDMINE:-}" ] || die "no sandmine binary: build it (cargo build --release --bin sandmine) or set SANDMINE"
GEN_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/fleetgen
if [ -z "${FLEETGEN:-}" ] && { [ "${BUILD:-0}" = 1 ] || [ ! -x "$GEN_TARGET/release/fleetgen" ]; }; then
    CARGO_TARGET_DIR=$GEN_TARGET cargo build --release -q --manifest-path "$HERE/gen/Cargo.toml"
fi
FLEETGEN=${FLEETGEN:-$GEN_TARGET/release/fleetgen}
mkdir -p "$OUT"
log "sandmine: $SANDMINE ($(stat -c %y "$SANDMINE")); results: $OUT"

# --- services --------------------------------------------------------------

start_nats() {
    NATS_PORT=$(free_port); NATS_MON=$(free_port)
    local d=$WORK/nats-$NATS_PORT
    mkdir -p "$d"
    printf 'listen: 127.0.0.1:%s\nhttp: 127.0.0.1:%s\njetstream { store_dir: "%s" }\n' \
        "$NATS_PORT" "$NATS_MON" "$d/js" >"$d/nats.conf"
    nats-server -c "$d/nats.conf" >"$d/log" 2>&1 &
    NATS_PID=$!; PIDS+=("$NATS_PID")
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$NATS_MON/healthz?js-enabled-only=true" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$NATS_MON/healthz?js-enabled-only=true" >/dev/null || die "nats-server did not start"
    NATS_URL=nats://127.0.0.1:$NATS_PORT
}

start_clickhouse() {
    CH_HTTP=$(free_port); CH_TCP=$(free_port)
    local d=$WORK/ch-$CH_HTTP
    mkdir -p "$d"/{data,tmp,logs,user_files,format_schemas}
    cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$d/logs/server.log</log><errorlog>$d/logs/error.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$CH_HTTP</http_port>
  <tcp_port>$CH_TCP</tcp_port>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <format_schema_path>$d/format_schemas/</format_schema_path>
  <mark_cache_size>536870912</mark_cache_size>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
</yandex>
EOF
    cat >"$d/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
EOF
    (cd "$d" && exec clickhouse-server --config-file="$d/config.xml" >/dev/null 2>&1) &
    CH_PID=$!; PIDS+=("$CH_PID")
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$CH_HTTP/ping" >/dev/null && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$CH_HTTP/ping" >/dev/null || die "clickhouse-server did not start"
}

ch() { curl -sS --fail-with-body "http://127.0.0.1:$CH_HTTP/" --data-binary "$1"; }

# utime+stime of a process in clock ticks.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
TICK=$(getconf CLK_TCK)
now() { date +%s.%N; }

# The config every sandmine process here uses; per-run keys go in --set.
write_config() {
    cat >"$WORK/sandmine.toml" <<EOF
[collector]
interval = "10s"

[broker]
kind = "nats"
url = "$NATS_URL"
timeout = "30s"

[store.clickhouse]
url = "http://127.0.0.1:${CH_HTTP:-8123}"
database = "sandmine"
timeout_secs = 60

[aggregator]
batch_max_messages = $BATCH
EOF
}

# sandmine aggregate with database $1, durable $2, stream suffix $3, extra args.
agg_args() {
    echo --config "$WORK/sandmine.toml" \
        --set "store.clickhouse.database=\"$1\"" \
        --set "broker.durable=\"$2\"" \
        --set "broker.stream=\"S$3\"" --set "broker.subject=\"sm.d$3\"" \
        --set "broker.dead_letter_stream=\"S$3_DL\"" --set "broker.dead_letter_subject=\"sm.d$3-dl\""
}

total_rows() {
    ch "SELECT (SELECT count() FROM $1.calls) + (SELECT count() FROM $1.incidence) + (SELECT count() FROM $1.containers)"
}

# --- 1. throughput ----------------------------------------------------------

bench_throughput() {
    log "throughput: N=$N envelopes, REPS=$REPS, batch_max_messages=$BATCH"
    start_nats; start_clickhouse; write_config
    local rows=$WORK/rows
    "$FLEETGEN" prepare --nats "$NATS_URL" --hosts "$N" --out "$rows" \
        --stream ST --subject sm.dT >"$WORK/prepare.json"
    local expected; expected=$(jq .expected.rows "$WORK/prepare.json")
    log "published $N envelopes; expected rows: $(jq -c .expected "$WORK/prepare.json")"
    local res=$OUT/throughput.jsonl; : >"$res"
    for r in $(seq "$REPS"); do
        local order="agg bulk"; [ $((r % 2)) = 0 ] && order="bulk agg"
        for kind in $order; do
            local db=${kind}_r$r
            # Same DDL for both, created outside the timed part.
            "$SANDMINE" aggregate $(agg_args "$db" "m$r" T) --migrate-only >/dev/null 2>&1
            local ch0; ch0=$(cpu_ticks "$CH_PID")
            local t0 t1 cpu=0
            if [ "$kind" = agg ]; then
                t0=$(now)
                SANDMINE_LOG=warn "$SANDMINE" aggregate $(agg_args "$db" "agg-r$r" T) >"$WORK/agg-$r.log" 2>&1 &
                local ap=$!; PIDS+=("$ap")
                while :; do
                    local got; got=$(total_rows "$db")
                    [ "$got" -ge "$expected" ] && break
                    kill -0 "$ap" 2>/dev/null || die "aggregator exited: $(tail -5 "$WORK/agg-$r.log")"
                    sleep 0.02
                done
                t1=$(now)
                cpu=$(cpu_ticks "$ap")
                kill "$ap"; wait "$ap" 2>/dev/null || true
            else
                t0=$(now)
                for t in containers incidence calls; do
                    clickhouse-client --port "$CH_TCP" --query "INSERT INTO $db.$t FORMAT TabSeparated" <"$rows/$t.tsv"
                done
                t1=$(now)
            fi
            local chcpu=$(( $(cpu_ticks "$CH_PID") - ch0 ))
            local got; got=$(total_rows "$db")
            [ "$got" = "$expected" ] || die "$db holds $got rows, expected $expected"
            local secs; secs=$(python3 -c "print(round($t1-$t0,4))")
            jq -cn --arg kind "$kind" --argjson rep "$r" --argjson secs "$secs" --argjson rows "$expected" \
                --argjson cpu "$(python3 -c "print($cpu/$TICK)")" --argjson chcpu "$(python3 -c "print($chcpu/$TICK)")" \
                '{kind:$kind, rep:$rep, secs:$secs, rows:$rows, rows_per_s:($rows/$secs), aggregator_cpu_s:$cpu, clickhouse_cpu_s:$chcpu}' | tee -a "$res" >&2
        done
    done
    # Same rows in both: per table, count and an order-free checksum.
    local sum='SELECT count(), sum(cityHash64(*)) FROM'
    for t in calls incidence containers; do
        [ "$(ch "$sum agg_r1.$t")" = "$(ch "$sum bulk_r1.$t")" ] || die "agg_r1.$t and bulk_r1.$t differ"
    done
    log "agg_r1 and bulk_r1 hold identical rows"
    jq -s --slurpfile p "$WORK/prepare.json" '
        def med: sort | .[length/2|floor];
        { prepare: $p[0], batch_max_messages: '"$BATCH"',
          aggregator_rows_per_s: (map(select(.kind=="agg").rows_per_s) | med),
          bulk_rows_per_s: (map(select(.kind=="bulk").rows_per_s) | med),
          aggregator_cpu_s: (map(select(.kind=="agg").aggregator_cpu_s) | med),
          clickhouse_cpu_s_agg: (map(select(.kind=="agg").clickhouse_cpu_s) | med),
          clickhouse_cpu_s_bulk: (map(select(.kind=="bulk").clickhouse_cpu_s) | med),
          runs: . }
        | .ratio = (.aggregator_rows_per_s / .bulk_rows_per_s)' "$res" >"$OUT/throughput.json"
    jq '{batch_max_messages, aggregator_rows_per_s, bulk_rows_per_s, ratio, aggregator_cpu_s, clickhouse_cpu_s_agg, clickhouse_cpu_s_bulk, decode_s: .prepare.decode_s, explode_s: .prepare.explode_s, expected: .prepare.expected}' "$OUT/throughput.json"
    kill "$NATS_PID" "$CH_PID"; wait "$NATS_PID" "$CH_PID" 2>/dev/null || true
}

# --- 2. scale ---------------------------------------------------------------

scale_one() { # hosts, label, extra fleetgen args
    local h=$1 label=$2; shift 2
    local mport; mport=$(free_port)
    "$SANDMINE" aggregate $(agg_args "scale_$label" "agg-$label" "$label") --migrate-only >/dev/null 2>&1
    SANDMINE_LOG=warn "$SANDMINE" aggregate $(agg_args "scale_$label" "agg-$label" "$label") \
        --set "metrics.listen=\"127.0.0.1:$mport\"" >"$WORK/agg-$label.log" 2>&1 &
    local ap=$!; PIDS+=("$ap")
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$mport/metrics" >/dev/null && break; sleep 0.1; done
    local a0 c0 n0 t0; a0=$(cpu_ticks "$ap"); c0=$(cpu_ticks "$CH_PID"); n0=$(cpu_ticks "$NATS_PID")
    t0=$(now)
    "$FLEETGEN" scale --nats "$NATS_URL" --stream "S$label" --subject "sm.d$label" --hosts "$h" \
        --intervals "$INTERVALS" --metrics "127.0.0.1:$mport" "$@" >"$WORK/scale-$label.json"
    local t1; t1=$(now)
    local a1 c1 n1; a1=$(cpu_ticks "$ap"); c1=$(cpu_ticks "$CH_PID"); n1=$(cpu_ticks "$NATS_PID")
    kill "$ap"; wait "$ap" 2>/dev/null || true
    # CPU over the publishing window (generation time excluded: it is
    # before the first publish and the services are idle then).
    local gen; gen=$(jq .generate_s "$WORK/scale-$label.json")
    local win; win=$(python3 -c "print($t1-$t0-$gen)")
    jq --argjson a "$(python3 -c "print(($a1-$a0)/$TICK)")" --argjson c "$(python3 -c "print(($c1-$c0)/$TICK)")" \
        --argjson n "$(python3 -c "print(($n1-$n0)/$TICK)")" --argjson w "$win" \
        '. + {window_s:$w, cpu_s:{aggregator:$a, clickhouse:$c, nats:$n}}' "$WORK/scale-$label.json" >"$OUT/scale-$label.json"
    jq -c '{hosts, sustained, drained_after_s:[.intervals[].drained_after_s], backlog:[.intervals[].backlog_at_next_interval], publish_s:[.intervals[].publish_s], rows_per_interval:.intervals[0].rows, cpu_s, window_s}' "$OUT/scale-$label.json"
}

bench_scale() {
    log "scale: HOSTS=$HOSTS x 50 containers, $INTERVALS intervals of 10 s, batch_max_messages=$BATCH"
    start_nats; start_clickhouse; write_config
    for h in $HOSTS; do
        log "scale: $h hosts"
        scale_one "$h" "h$h"
    done
    if [ -n "$CROSS_HOUR" ]; then
        log "scale: $CROSS_HOUR hosts, interval 2 ends in a new hour"
        scale_one "$CROSS_HOUR" "x$CROSS_HOUR" --cross-hour-at 2
    fi
    kill "$NATS_PID" "$CH_PID"; wait "$NATS_PID" "$CH_PID" 2>/dev/null || true
}

# --- 3. wire ----------------------------------------------------------------

bench_wire() {
    log "wire: encoded sizes and NATS bytes per message"
    start_nats
    "$FLEETGEN" wire --nats "$NATS_URL" --stream SW --subject sm.dW >"$OUT/wire.json"
    jq . "$OUT/wire.json"
    kill "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true
}

# --- 4. footprint -----------------------------------------------------------

bench_footprint() {
    command -v docker >/dev/null || die "docker is missing"
    docker image inspect sandmine-test/busybox:1 >/dev/null || die "image sandmine-test/busybox:1 missing (tests/images/build.sh)"
    log "footprint: $CONTAINERS containers, sandmine collect at 10 s for ${DURATION}s"
    start_nats; write_config
    for i in $(seq "$CONTAINERS"); do
        docker run -d --label "$TAG" --network none sandmine-test/busybox:1 \
            sh -c 'while true; do cat /etc/passwd >/dev/null; sleep 1; done' >/dev/null
    done
    PIN_DIR=/sys/fs/bpf/sandmine-bench-$TAG
    SANDMINE_LOG=info "$SANDMINE" collect --config "$WORK/sandmine.toml" \
        --set 'collector.host_id="fleetbench-footprint"' \
        --set "collector.state_dir=\"$WORK/collector-state\"" \
        --set "collector.pin_dir=\"$PIN_DIR\"" \
        --set 'broker.stream="SF"' --set 'broker.subject="sm.dF"' \
        --set 'broker.dead_letter_stream="SF_DL"' --set 'broker.dead_letter_subject="sm.dF-dl"' \
        >"$WORK/collect.log" 2>&1 &
    local cp=$!; PIDS+=("$cp")
    for _ in $(seq 300); do grep -q "collecting as host" "$WORK/collect.log" && break; sleep 0.1; done
    grep -q "collecting as host" "$WORK/collect.log" || die "collector did not start: $(tail -5 "$WORK/collect.log")"
    # Warm-up: the first interval sees every container and syscall as new.
    sleep 25
    local c0 t0; c0=$(cpu_ticks "$cp"); t0=$(now)
    local rss=()
    local end=$(( $(date +%s) + DURATION ))
    while [ "$(date +%s)" -lt "$end" ]; do
        rss+=("$(awk '/VmRSS/{print $2}' /proc/$cp/status)")
        sleep 5
    done
    local c1 t1; c1=$(cpu_ticks "$cp"); t1=$(now)
    local hwm; hwm=$(awk '/VmHWM/{print $2}' /proc/$cp/status)
    local running; running=$(docker ps -q --filter "label=$TAG" | wc -l)
    local js; js=$(curl -s "http://127.0.0.1:$NATS_MON/jsz?streams=true")
    local msgs bytes
    msgs=$(echo "$js" | jq '[.account_details[]?.stream_detail[]? | select(.name=="SF") | .state.messages] | add // 0')
    bytes=$(echo "$js" | jq '[.account_details[]?.stream_detail[]? | select(.name=="SF") | .state.bytes] | add // 0')
    kill "$cp"; wait "$cp" 2>/dev/null || true
    printf '%s\n' "${rss[@]}" | jq -s --argjson hwm "$hwm" --argjson cpu "$((c1-c0))" --argjson tick "$TICK" \
        --argjson secs "$(python3 -c "print($t1-$t0)")" --argjson n "$running" --argjson msgs "$msgs" --argjson bytes "$bytes" '
        { containers_running: $n, window_s: $secs,
          rss_kib_median: (sort | .[length/2|floor]), rss_kib_max: max, vmhwm_kib: $hwm,
          cpu_s: ($cpu/$tick), cpu_pct_of_one_core: (100 * $cpu / $tick / $secs),
          stream_messages: $msgs, stream_bytes: $bytes,
          stored_bytes_per_message: (if $msgs > 0 then $bytes / $msgs else null end),
          rss_samples_kib: . }' >"$OUT/footprint.json"
    jq 'del(.rss_samples_kib)' "$OUT/footprint.json"
    kill "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true
}

[ $# = 0 ] && set -- all
for b in "$@"; do
    case $b in
        throughput) bench_throughput ;;
        scale) bench_scale ;;
        wire) bench_wire ;;
        footprint) bench_footprint ;;
        all) bench_wire; bench_throughput; bench_scale; bench_footprint ;;
        *) die "unknown benchmark $b (throughput|scale|wire|footprint|all)" ;;
    esac
done
log "results in $OUT"
