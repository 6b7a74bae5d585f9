# Shared helpers for the sandmine paper use cases. Source it from a case:
#   . "$(dirname "$0")/../lib.sh"
# Every case gets CONTAINER (running container name) and PORT in its
# environment. Everything talks to 127.0.0.1 (containers run --network host).
set -u
# no pipefail: `cmd | grep -q` would fail at random when grep exits early (SIGPIPE)

: "${CONTAINER:?CONTAINER must be set}"
: "${PORT:?PORT must be set}"
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
UC_TIMEOUT=${UC_TIMEOUT:-20}

# fail MSG: print a one-line reason and exit non-zero.
fail() { echo "$*"; exit 1; }

# note MSG: informational line (not the reason line).
note() { echo "# $*" >&2; }

# port_open: true when something accepts TCP on $PORT.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null; }

# wait_port [SECONDS]: retry until the port accepts connections.
wait_port() {
    local deadline=$(( SECONDS + ${1:-40} ))
    while (( SECONDS < deadline )); do
        port_open && return 0
        sleep 0.5
    done
    fail "port $PORT did not answer within ${1:-40}s"
}

# retry SECONDS CMD...: rerun CMD until it succeeds or SECONDS pass.
retry() {
    local deadline=$(( SECONDS + $1 )); shift
    while (( SECONDS < deadline )); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    "$@"
}

# http_status [curl args...] URL: print the HTTP status code (000 on error).
http_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time "$UC_TIMEOUT" "$@" || true
}

# expect_status CODE [curl args...] URL: fail unless the status is CODE.
expect_status() {
    local want=$1; shift
    local got; got=$(http_status "$@")
    [ "$got" = "$want" ] || fail "expected HTTP $want, got $got for: $*"
}

# http_get [curl args...] URL: body to stdout, fail on transport errors.
http_get() { curl -sS --max-time "$UC_TIMEOUT" "$@" || fail "curl failed: $*"; }

# http_headers [curl args...] URL: response headers only (GET, body dropped).
http_headers() { curl -sS -D - -o /dev/null --max-time "$UC_TIMEOUT" "$@" || fail "curl failed: $*"; }

# raw_http PAYLOAD: send raw bytes (printf-escaped) to the port, print reply.
raw_http() {
    python3 - "$HOST" "$PORT" "$1" <<'PY'
import socket, sys
host, port, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = payload.encode().decode("unicode_escape").encode("latin-1")
s = socket.create_connection((host, port), timeout=float(__import__("os").environ.get("RAW_TIMEOUT", "5")))
s.sendall(data)
out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
except socket.timeout:
    pass
s.close()
sys.stdout.write(out.decode("latin-1"))
PY
}

# dexec CMD...: run CMD inside the container (under its seccomp profile).
dexec() { timeout 50 docker exec "$CONTAINER" "$@"; }
# dexec_i CMD...: same, with stdin attached.
dexec_i() { timeout 50 docker exec -i "$CONTAINER" "$@"; }
# dexec_u USER CMD...: run as USER inside the container.
dexec_u() { local u=$1; shift; timeout 50 docker exec -u "$u" "$CONTAINER" "$@"; }

# container_running: true while the container exists and runs.
container_running() {
    [ "$(docker inspect -f '{{.State.Running}}' "$CONTAINER" 2>/dev/null)" = true ]
}

# restart_container [SECONDS]: docker restart, then wait for the port.
restart_container() {
    timeout 40 docker restart -t 10 "$CONTAINER" >/dev/null || fail "docker restart failed"
    wait_port "${1:-40}"
}

# main_pid_signal SIG: send SIG to the container's PID 1 (docker kill -s).
main_pid_signal() { timeout 10 docker kill -s "$1" "$CONTAINER" >/dev/null || fail "docker kill -s $1 failed"; }

# uniq_tag: a short unique token for names that must not collide.
uniq_tag() { echo "uc$$_$(date +%s%N | tail -c 7)"; }

# contains HAYSTACK NEEDLE MSG: fail with MSG unless NEEDLE is in HAYSTACK.
contains() { case "$1" in *"$2"*) return 0 ;; esac; fail "$3"; }

# ---- per-app clients (run on the host, over TCP) ----------------------------
# redis: rcli ARGS... (REDIS_PASSWORD optional)
rcli() {
    if [ -n "${REDIS_PASSWORD:-}" ]; then
        REDISCLI_AUTH="$REDIS_PASSWORD" timeout "$UC_TIMEOUT" redis-cli --no-auth-warning -h "$HOST" -p "$PORT" "$@"
    else
        timeout "$UC_TIMEOUT" redis-cli -h "$HOST" -p "$PORT" "$@"
    fi
}
# expect_redis WANT ARGS...: fail unless the reply (raw) equals WANT.
expect_redis() {
    local want=$1; shift
    local got; got=$(rcli "$@" 2>&1) || fail "redis-cli $* failed: $got"
    [ "$got" = "$want" ] || fail "redis $*: expected '$want', got '$(echo "$got" | head -c 200 | tr '\n' ' ')'"
}

# postgresql: pgq SQL... (psql, unaligned tuples only, stop on error)
PG_DB=${PG_DB:-bench} PG_USER=${PG_USER:-bench} PG_PASSWORD=${PG_PASSWORD:-bench}
pgq() {
    PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=10 timeout 50 psql -X -q -At -v ON_ERROR_STOP=1 \
        -h "$HOST" -p "$PORT" -U "$PG_USER" -d "$PG_DB" "$@"
}

# mariadb: myq SQL (batch mode, no column names)
MY_DB=${MY_DB:-bench} MY_USER=${MY_USER:-bench} MY_PASSWORD=${MY_PASSWORD:-bench}
myq() {
    timeout 50 mariadb --protocol=TCP -h "$HOST" -P "$PORT" -u "$MY_USER" -p"$MY_PASSWORD" \
        --connect-timeout=10 -N -B "$MY_DB" "$@"
}

# django admin: csrf_from JAR URL -> the form's csrfmiddlewaretoken (cookies kept in JAR)
csrf_from() {
    curl -sS --max-time "$UC_TIMEOUT" -c "$1" -b "$1" "$2" |
        grep -o 'name="csrfmiddlewaretoken" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//'
}
# django_login JAR USER PASSWORD -> prints "STATUS REDIRECT" of the login POST
django_login() {
    local jar=$1 user=$2 pass=$3 tok
    tok=$(csrf_from "$jar" "$BASE/admin/login/?next=/admin/")
    [ -n "$tok" ] || fail "no CSRF token on the admin login page"
    curl -sS --max-time "$UC_TIMEOUT" -c "$jar" -b "$jar" -o /dev/null -w '%{http_code} %{redirect_url}' \
        --data-urlencode "csrfmiddlewaretoken=$tok" --data-urlencode "username=$user" \
        --data-urlencode "password=$pass" --data-urlencode "next=/admin/" "$BASE/admin/login/?next=/admin/"
}
# manage ARGS...: python3 manage.py ARGS inside the django container
manage() { dexec python3 manage.py "$@"; }
# pgsu SQL...: psql inside the postgres container as the superuser postgres
# (Unix socket, peer authentication), database bench unless -d is given.
pgsu() { dexec psql -X -q -At -v ON_ERROR_STOP=1 -p "$PORT" -d "${PGSU_DB:-bench}" "$@"; }
pgsu_i() { dexec_i psql -X -q -At -v ON_ERROR_STOP=1 -p "$PORT" -d "${PGSU_DB:-bench}" "$@"; }
# mysu ARGS...: the mariadb client inside the container as OS user mysql
# (Unix socket, unix_socket authentication: a full-privilege account), stdin attached.
mysu() { dexec_i mariadb -N -B "$@"; }
