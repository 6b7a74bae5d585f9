#!/usr/bin/env bash
# Fleet benchmarks: aggregator throughput vs a bulk insert, fleet scale,
# bytes on the wire, and the collector's own footprint.
#
#   benchmarks/fleet/run.sh [throughput|scale|scaleout|abagg|wire|footprint|all]...
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
#   STREAM_MAX_BYTES  the NATS delta stream's max_bytes, for the aggregator
#              and the generator alike. On nats-server < 2.11 sandmine also
#              bounds the stream to max_bytes / 64 KiB messages (docs/CONFIG.md):
#              the default 1 GiB holds 16,384, less than two intervals of
#              10,000 hosts, so a backlog refuses publishes. JetStream
#              reserves it per stream, and every run has a stream of its
#              own: 4 GiB for scale, 1 GiB for the others   [by benchmark]
#   MODEL      scale: the generator's model, uniform or realistic (heavy-tailed
#              image and syscall popularity, per-host churn; fleetgen's doc) [uniform]
#   PERF_CALLERS=1  with PERF=1: DWARF call graphs (199 Hz) and the callers
#              of every symbol over 2 % (perf-LABEL-callers.txt)
#   PERF=1     scale: sample the aggregator with `perf record` (499 Hz, user and
#              kernel) while it drains; its flat profile (self time by symbol,
#              and grouped by crate) goes beside the JSON
#   SO_N       scaleout: envelopes (= hosts, one interval) per run [2000]
#   SO_REPS    scaleout: repetitions of the pair (1 and 2 aggregators,
#              in a random order each time)                   [5]
#   SO_SEED    scaleout: seed of that order                   [$$]
#   SO_BROKER  scaleout: nats (one durable consumer) or kafka (one consumer
#              group on a topic of SO_PARTITIONS partitions, tansu)  [nats]
#   SO_PARTITIONS scaleout with kafka: the topic's partitions      [2]
#   AB_A, AB_B abagg: two sandmine binaries, one aggregator each, draining the
#              same AB_N envelopes (NATS) in AB_REPS pairs of random order
#              (AB_SEED); ratios B over A of rows/s and CPU-s  [2000, 6]
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
MODEL=${MODEL:-uniform}
STREAM_MAX_BYTES=${STREAM_MAX_BYTES:-}
PERF=${PERF:-0}
SO_N=${SO_N:-2000}
SO_REPS=${SO_REPS:-5}
SO_SEED=${SO_SEED:-$$}
SO_BROKER=${SO_BROKER:-nats}
AB_N=${AB_N:-2000}
AB_REPS=${AB_REPS:-6}
AB_SEED=${AB_SEED:-$$}
SO_PARTITIONS=${SO_PARTITIONS:-2}
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

# tansu (the Kafka-protocol broker the tests use), SQLite storage in $WORK.
start_tansu() {
    KAFKA_PORT=$(free_port)
    local d=$WORK/tansu-$KAFKA_PORT bin=${SANDMINE_TANSU:-/var/cache/sandmine/tansu/bin/tansu}
    [ -x "$bin" ] || die "no tansu at $bin (scripts/install-deps.sh builds it)"
    mkdir -p "$d"
    # tansu resolves a sqlite:// path relative to its working directory.
    (cd "$d" && exec "$bin" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine sqlite://tansu.db) >"$d/log" 2>&1 &
    KAFKA_PID=$!; PIDS+=("$KAFKA_PID")
    for _ in $(seq 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && break
        sleep 0.1
    done
    (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null || die "tansu did not start: $(tail -5 "$d/log")"
    KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
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
    local broker
    if [ "${BROKER_KIND:-nats}" = kafka ]; then
        broker=$(printf 'kind = "kafka"\nbrokers = "%s"\npartitions = %s\ntimeout = "30s"' "$KAFKA_BROKERS" "$SO_PARTITIONS")
    else
        broker=$(printf 'kind = "nats"\nurl = "%s"\ntimeout = "30s"\nstream_max_bytes = %s' "$NATS_URL" "${STREAM_MAX_BYTES:-1073741824}")
    fi
    cat >"$WORK/sandmine.toml" <<EOF
[collector]
interval = "10s"

[broker]
$broker

[store.clickhouse]
url = "http://127.0.0.1:${CH_HTTP:-8123}"
database = "sandmine"
timeout_secs = 60

[aggregator]
batch_max_messages = $BATCH
EOF
}

# sandmine aggregate with database $1, durable (NATS) or group (Kafka) $2,
# stream/topic suffix $3.
agg_args() {
    echo --config "$WORK/sandmine.toml" --set "store.clickhouse.database=\"$1\""
    if [ "${BROKER_KIND:-nats}" = kafka ]; then
        echo --set "broker.group_id=\"$2\"" \
            --set "broker.topic=\"t$3\"" --set "broker.dead_letter_topic=\"t$3.dl\""
    else
        echo --set "broker.durable=\"$2\"" \
            --set "broker.stream=\"S$3\"" --set "broker.subject=\"sm.d$3\"" \
            --set "broker.dead_letter_stream=\"S$3_DL\"" --set "broker.dead_letter_subject=\"sm.d$3-dl\""
    fi
}

# fleetgen's broker arguments for stream/topic suffix $1.
gen_broker_args() {
    if [ "${BROKER_KIND:-nats}" = kafka ]; then
        echo --kafka "$KAFKA_BROKERS" --topic "t$1" --partitions "$SO_PARTITIONS"
    else
        echo --nats "$NATS_URL" --stream "S$1" --subject "sm.d$1" --stream-max-bytes "${STREAM_MAX_BYTES:-1073741824}"
    fi
}

total_rows() {
    ch "SELECT (SELECT count() FROM $1.calls) + (SELECT count() FROM $1.incidence) + (SELECT count() FROM $1.containers)"
}

# --- 1. throughput ----------------------------------------------------------

bench_throughput() {
    log "throughput: N=$N envelopes, REPS=$REPS, batch_max_messages=$BATCH"
    start_nats; start_clickhouse; write_config
    local rows=$WORK/rows
    "$FLEETGEN" prepare --nats "$NATS_URL" --stream-max-bytes "${STREAM_MAX_BYTES:-1073741824}" --hosts "$N" --out "$rows" \
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
    local perf_pid=""
    if [ "$PERF" = 1 ]; then
        # Started now, it also samples the generator's pre-encoding (the
        # aggregator is idle then: nothing to sample).
        local cg=(); [ "${PERF_CALLERS:-0}" = 1 ] && cg=(--call-graph dwarf,16384 -F 199)
        perf record -F 499 "${cg[@]}" -p "$ap" -o "$WORK/perf-$label.data" 2>"$WORK/perf-$label.log" &
        perf_pid=$!
    fi
    "$FLEETGEN" scale --nats "$NATS_URL" --stream-max-bytes "${STREAM_MAX_BYTES:-1073741824}" --stream "S$label" --subject "sm.d$label" --hosts "$h" \
        --intervals "$INTERVALS" --metrics "127.0.0.1:$mport" --model "$MODEL" "$@" >"$WORK/scale-$label.json"
    local t1; t1=$(now)
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
        perf report -i "$WORK/perf-$label.data" --no-children --sort dso,symbol --stdio \
            --percent-limit 0.2 2>/dev/null >"$OUT/perf-$label.txt"
        perf report -i "$WORK/perf-$label.data" --no-children --sort symbol --stdio -F overhead,sym \
            --percent-limit 0 2>/dev/null | python3 "$HERE/perf_by_crate.py" >"$OUT/perf-$label-by-crate.txt"
        if [ "${PERF_CALLERS:-0}" = 1 ]; then
            # Who calls the hottest symbols (inverted call graph, callers
            # of each symbol over 2 %).
            perf report -i "$WORK/perf-$label.data" --no-children --sort symbol --stdio -G \
                --percent-limit 2 2>/dev/null | grep -v '^$' | cut -c1-220 >"$OUT/perf-$label-callers.txt"
        fi
    fi
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
    : "${STREAM_MAX_BYTES:=4294967296}"
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

# --- A/B: two aggregator builds side by side ---------------------------------

# One run: AB_N envelopes published to a fresh stream, then one aggregator
# of build $1 (A or B) drains it into a fresh database.
abagg_one() { # build, rep
    local which=$1 r=$2 label=ab$2$1 bin=$AB_A
    [ "$which" = B ] && bin=$AB_B
    local db=db_$label
    "$FLEETGEN" prepare $(gen_broker_args "$label") --hosts "$AB_N" --timing 0 >"$WORK/prepare-$label.json"
    local expected; expected=$(jq .expected.rows "$WORK/prepare-$label.json")
    "$bin" aggregate $(agg_args "$db" "agg$label" "$label") --migrate-only >/dev/null 2>&1
    local ch0; ch0=$(cpu_ticks "$CH_PID")
    local t0; t0=$(now)
    SANDMINE_LOG=warn "$bin" aggregate $(agg_args "$db" "agg$label" "$label") >"$WORK/agg-$label.log" 2>&1 &
    local ap=$!; PIDS+=("$ap")
    while [ "$(total_rows "$db")" -lt "$expected" ]; do
        kill -0 "$ap" 2>/dev/null || die "aggregator exited: $(tail -5 "$WORK/agg-$label.log")"
        sleep 0.02
    done
    local t1; t1=$(now)
    local cpu; cpu=$(python3 -c "print($(cpu_ticks "$ap")/$TICK)")
    local chcpu; chcpu=$(python3 -c "print(($(cpu_ticks "$CH_PID") - $ch0)/$TICK)")
    kill "$ap"; wait "$ap" 2>/dev/null || true
    local got; got=$(total_rows "$db")
    [ "$got" = "$expected" ] || die "$db holds $got rows, expected $expected"
    jq -cn --arg build "$which" --arg bin "$bin" --argjson rep "$r" --argjson secs "$(python3 -c "print(round($t1-$t0,4))")" \
        --argjson rows "$expected" --argjson cpu "$cpu" --argjson chcpu "$chcpu" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
        '{build:$build, binary:$bin, rep:$rep, secs:$secs, rows:$rows, rows_per_s:($rows/$secs), aggregator_cpu_s:$cpu,
          clickhouse_cpu_s:$chcpu, loadavg_after:$load}' | tee -a "$OUT/abagg.jsonl" >&2
    ch "DROP DATABASE $db"
}

bench_abagg() {
    [ -x "${AB_A:-}" ] && [ -x "${AB_B:-}" ] || die "abagg needs AB_A and AB_B (two sandmine binaries)"
    log "abagg: A=$AB_A B=$AB_B, AB_N=$AB_N envelopes, AB_REPS=$AB_REPS pairs, seed $AB_SEED"
    BROKER_KIND=nats
    start_nats; start_clickhouse; write_config
    : >"$OUT/abagg.jsonl"
    RANDOM=$AB_SEED
    for r in $(seq "$AB_REPS"); do
        local order="A B"; [ $((RANDOM % 2)) = 1 ] && order="B A"
        log "abagg: pair $r, order $order"
        for w in $order; do abagg_one "$w" "$r"; done
    done
    python3 - "$OUT/abagg.jsonl" "$AB_SEED" >"$OUT/abagg.json" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
t95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201}
by = {}
for r in runs:
    by.setdefault(r["rep"], {})[r["build"]] = r
def ratio(k):
    v = [p["B"][k] / p["A"][k] for p in by.values() if "A" in p and "B" in p]
    n = len(v); m = statistics.mean(v)
    h = t95.get(n - 1, 2.0) * statistics.stdev(v) / n ** 0.5 if n > 1 else None
    return {"per_pair": v, "mean": m, "ci95": None if h is None else [m - h, m + h]}
print(json.dumps({"seed": int(sys.argv[2]), "pairs": len(by),
                  "B_over_A_rows_per_s": ratio("rows_per_s"), "B_over_A_aggregator_cpu_s": ratio("aggregator_cpu_s"),
                  "runs": runs}, indent=1))
PY
    jq '{pairs, B_over_A_rows_per_s: (.B_over_A_rows_per_s | {mean, ci95}), B_over_A_aggregator_cpu_s: (.B_over_A_aggregator_cpu_s | {mean, ci95})}' "$OUT/abagg.json"
    kill "$NATS_PID" "$CH_PID"; wait "$NATS_PID" "$CH_PID" 2>/dev/null || true
}

# --- 3. scale-out: 1 aggregator vs 2 on one durable consumer ---------------

# One run: SO_N envelopes published to a fresh stream first, then $1
# aggregators on one durable consumer drain it into a fresh database.
scaleout_one() { # aggregators, rep
    local k=$1 r=$2 label=o$2k$1
    local db=so_$label
    "$FLEETGEN" prepare $(gen_broker_args "$label") --hosts "$SO_N" --timing 0 \
        >"$WORK/prepare-$label.json"
    local expected; expected=$(jq .expected.rows "$WORK/prepare-$label.json")
    # Same DDL for every run, created outside the timed part. A consumer
    # group (durable) of its own per run: tansu keeps a killed run's
    # members in a group, and a later run joining that group waited
    # minutes for the rebalance (results/sok0-stall).
    "$SANDMINE" aggregate $(agg_args "$db" "agg$label" "$label") --migrate-only >/dev/null 2>&1
    local ch0; ch0=$(cpu_ticks "$CH_PID")
    local n0; n0=$(cpu_ticks "$BROKER_PID")
    local aps=() ports=()
    local t0; t0=$(now)
    for i in $(seq "$k"); do
        local mport; mport=$(free_port)
        SANDMINE_LOG=warn "$SANDMINE" aggregate $(agg_args "$db" "agg$label" "$label") \
            --set "metrics.listen=\"127.0.0.1:$mport\"" >"$WORK/agg-$label-$i.log" 2>&1 &
        aps+=($!); ports+=("$mport"); PIDS+=($!)
    done
    # Done when every envelope's rows are in. A redelivered envelope
    # (Kafka moves a partition whose batch was fetched but not committed
    # when the second aggregator joins) is inserted twice, identically:
    # merges collapse the copies and queries never count them (docs/STORE.md,
    # "Why it is idempotent"), but count() does. So count() reaching the
    # expected rows is only the first sign; then every envelope must have
    # its calls rows (written last of an envelope's tables).
    while :; do
        local got; got=$(total_rows "$db")
        [ "$got" -ge "$expected" ] && break
        for p in "${aps[@]}"; do
            kill -0 "$p" 2>/dev/null || die "aggregator exited: $(tail -5 "$WORK"/agg-$label-*.log)"
        done
        sleep 0.02
    done
    while [ "$(ch "SELECT uniqExact(host_id, boot_id, seq) FROM $db.calls")" -lt "$SO_N" ]; do
        for p in "${aps[@]}"; do
            kill -0 "$p" 2>/dev/null || die "aggregator exited: $(tail -5 "$WORK"/agg-$label-*.log)"
        done
        sleep 0.02
    done
    local t1; t1=$(now)
    local chcpu=$(( $(cpu_ticks "$CH_PID") - ch0 )) natscpu=$(( $(cpu_ticks "$BROKER_PID") - n0 ))
    # Per aggregator: messages it stored (its own metrics; the counter
    # moves right after the insert, the ack comes after the next fetch) and
    # its CPU. Read once their sum covers every envelope.
    local stored=() sum=0
    for _ in $(seq 200); do
        stored=(); sum=0
        for i in $(seq 0 $((k - 1))); do
            local v; v=$(curl -sf "http://127.0.0.1:${ports[$i]}/metrics" | awk '/^sandmine_messages_stored_total /{print $2}')
            stored+=("${v:-0}"); sum=$((sum + ${v:-0}))
        done
        [ "$sum" -ge "$SO_N" ] && break
        sleep 0.05
    done
    local per="[]"
    for i in $(seq 0 $((k - 1))); do
        per=$(jq -c --argjson s "${stored[$i]}" --argjson c "$(python3 -c "print($(cpu_ticks "${aps[$i]}")/$TICK)")" \
            '. + [{stored:$s, cpu_s:$c}]' <<<"$per")
    done
    for p in "${aps[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
    # Copies of a redelivered envelope counted, then collapsed: exact after.
    local copies; copies=$(( $(total_rows "$db") - expected ))
    for t in calls incidence containers; do ch "OPTIMIZE TABLE $db.$t FINAL"; done
    local got; got=$(total_rows "$db")
    [ "$got" = "$expected" ] || die "$db holds $got rows after OPTIMIZE FINAL, expected $expected"
    local secs; secs=$(python3 -c "print(round($t1-$t0,4))")
    jq -cn --argjson k "$k" --argjson rep "$r" --argjson secs "$secs" --argjson rows "$expected" \
        --argjson envelopes "$SO_N" --argjson per "$per" \
        --argjson chcpu "$(python3 -c "print($chcpu/$TICK)")" --argjson natscpu "$(python3 -c "print($natscpu/$TICK)")" \
        --arg broker "$SO_BROKER" --argjson copies "$copies" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
        '{aggregators:$k, rep:$rep, secs:$secs, rows:$rows, envelopes:$envelopes, rows_per_s:($rows/$secs),
          per_aggregator:$per, clickhouse_cpu_s:$chcpu, broker:$broker, broker_cpu_s:$natscpu,
          duplicate_rows_before_merge:$copies, loadavg_after:$load}' | tee -a "$OUT/scaleout.jsonl" >&2
    ch "DROP DATABASE $db"
}

bench_scaleout() {
    log "scaleout: SO_N=$SO_N envelopes per run, SO_REPS=$SO_REPS pairs, seed $SO_SEED, broker $SO_BROKER, batch_max_messages=$BATCH, $(nproc) CPUs"
    BROKER_KIND=$SO_BROKER
    if [ "$SO_BROKER" = kafka ]; then
        start_tansu; BROKER_PID=$KAFKA_PID
    else
        start_nats; BROKER_PID=$NATS_PID
    fi
    start_clickhouse; write_config
    : >"$OUT/scaleout.jsonl"
    RANDOM=$SO_SEED
    for r in $(seq "$SO_REPS"); do
        local order="1 2"; [ $((RANDOM % 2)) = 1 ] && order="2 1"
        log "scaleout: pair $r, order $order"
        for k in $order; do scaleout_one "$k" "$r"; done
    done
    # Per pair, the ratio of rows/s (2 over 1); mean and a 95 % t interval.
    python3 - "$OUT/scaleout.jsonl" "$SO_SEED" >"$OUT/scaleout.json" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
t95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
       10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 19: 2.093, 29: 2.045}
by = {}
for r in runs:
    by.setdefault(r["rep"], {})[r["aggregators"]] = r
ratios = [p[2]["rows_per_s"] / p[1]["rows_per_s"] for _, p in sorted(by.items()) if 1 in p and 2 in p]
n = len(ratios)
mean = statistics.mean(ratios)
half = None
if n > 1:
    t = t95.get(n - 1) or min((v for d, v in t95.items() if d <= n - 1), default=2.0)
    half = t * statistics.stdev(ratios) / n ** 0.5
def med(k, f):
    v = sorted(f(r) for r in runs if r["aggregators"] == k)
    return v[len(v) // 2]
print(json.dumps({
    "seed": int(sys.argv[2]),
    "pairs": n,
    "ratios_2_over_1": ratios,
    "ratio_mean": mean,
    "ratio_ci95": None if half is None else [mean - half, mean + half],
    "median_rows_per_s": {str(k): med(k, lambda r: r["rows_per_s"]) for k in (1, 2)},
    "median_secs": {str(k): med(k, lambda r: r["secs"]) for k in (1, 2)},
    "smaller_share_with_2": [min(a["stored"] for a in r["per_aggregator"]) / max(1, sum(a["stored"] for a in r["per_aggregator"]))
                                   for r in runs if r["aggregators"] == 2],
    "runs": runs,
}, indent=1))
PY
    jq '{pairs, ratios_2_over_1, ratio_mean, ratio_ci95, median_rows_per_s, median_secs, smaller_share_with_2}' "$OUT/scaleout.json"
    kill "$BROKER_PID" "$CH_PID"; wait "$BROKER_PID" "$CH_PID" 2>/dev/null || true
}

# --- 3. wire ----------------------------------------------------------------

bench_wire() {
    log "wire: encoded sizes and NATS bytes per message"
    start_nats
    "$FLEETGEN" wire --nats "$NATS_URL" --stream-max-bytes "${STREAM_MAX_BYTES:-1073741824}" --stream SW --subject sm.dW >"$OUT/wire.json"
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
        scaleout) bench_scaleout ;;
        abagg) bench_abagg ;;
        wire) bench_wire ;;
        footprint) bench_footprint ;;
        all) bench_wire; bench_throughput; bench_scale; bench_footprint ;;
        *) die "unknown benchmark $b (throughput|scale|scaleout|abagg|wire|footprint|all)" ;;
    esac
done
log "results in $OUT"
