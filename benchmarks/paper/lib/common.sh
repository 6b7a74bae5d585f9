# Shared configuration and helpers of benchmarks/paper/run.sh. Sourced.
# Per app: image, port, the mining workload and the throughput benchmark.

PAPER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB=$PAPER_DIR/lib
REPO=$(cd "$PAPER_DIR/../.." && pwd)
ALL_APPS=(nginx apache2 node django redis postgresql mariadb)

declare -A PORT=([nginx]=18101 [apache2]=18102 [node]=18103 [django]=18104
    [redis]=18105 [postgresql]=18106 [mariadb]=18107 [busybox]=18080)
declare -A IMAGE=([busybox]=sandmine-test/busybox:1)
for a in "${ALL_APPS[@]}"; do IMAGE[$a]=sandmine-paper/$a:latest; done
# the use-case runner and its case directory
declare -A UC_RUNNER=([busybox]="$LIB/run-cases.sh $LIB/smoke-usecases")
for a in "${ALL_APPS[@]}"; do UC_RUNNER[$a]="$PAPER_DIR/usecases/run-usecases.sh $a"; done

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() {
    echo "run.sh: error: $*" >&2
    exit 1
}

# port_open PORT
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# app_ready APP: the server answers a real request (not only the TCP port).
app_ready() {
    local app=$1 p=${PORT[$1]}
    port_open "$p" || return 1
    case $app in
    postgresql) PGPASSWORD=bench PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -p "$p" -U bench -d bench -XtAc 'SELECT 1' >/dev/null 2>&1 ;;
    mariadb) mariadb --protocol=TCP -h 127.0.0.1 -P "$p" -ubench -pbench --connect-timeout=3 -N -B bench -e 'SELECT 1' >/dev/null 2>&1 ;;
    redis) [[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$p" PING 2>/dev/null) == PONG ]] ;;
    *) curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$p/" ;;
    esac
}

# wait_ready APP SECONDS [CONTAINER]: until the app answers; fails early if
# CONTAINER stopped.
wait_ready() {
    local app=$1 deadline=$((SECONDS + $2)) c=${3:-}
    while ((SECONDS < deadline)); do
        app_ready "$app" && return 0
        if [[ -n $c ]] && [[ $(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null) != true ]]; then
            return 1
        fi
        sleep 0.3
    done
    return 1
}

# Containers this run started, removed on exit.
STARTED=()
start_container() { # NAME APP SECCOMP(none|default|FILE)
    local name=$1 app=$2 sc=$3 opt=()
    case $sc in
    none) opt=(--security-opt seccomp=unconfined) ;;
    default) opt=() ;;
    *) opt=(--security-opt "seccomp=$sc") ;;
    esac
    docker rm -f "$name" >/dev/null 2>&1 || true
    # --network host: the port must be free (another container may hold it)
    local i
    for i in $(seq 1 600); do
        port_open "${PORT[$app]}" || break
        ((i == 1)) && log "$app: port ${PORT[$app]} is busy (another container?), waiting up to 120 s"
        sleep 0.2
    done
    STARTED+=("$name")
    docker run -d --network host --name "$name" "${opt[@]}" "${IMAGE[$app]}" >/dev/null
}
stop_container() {
    docker rm -f "$1" >/dev/null 2>&1 || true
    # the port must be free before the next container
    local p=${PORT[$2]:-} i
    [[ -n $p ]] || return 0
    for i in $(seq 1 50); do port_open "$p" || return 0; sleep 0.2; done
}
cleanup_containers() {
    local c
    for c in "${STARTED[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
}
# every container of this evaluation (all are named sandmine-eval-*)
cleanup_all_eval() {
    local ids
    ids=$(docker ps -aq --filter name='^sandmine-eval-' 2>/dev/null) || return 0
    [[ -z $ids ]] || docker rm -f $ids >/dev/null 2>&1 || true
}
