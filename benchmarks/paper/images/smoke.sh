#!/usr/bin/env bash
# Smoke-test the paper images built by build.sh: for each APP, start a fresh
# container (`docker run -d --rm --network host`, Docker's default seccomp
# profile), wait up to 60 s for its port, make real requests with the right
# client, print ok/FAIL, and stop it.
#
#   smoke.sh [APP...]    APP in: nginx apache2 node django redis postgresql mariadb
#
# Needs the host tools that build.sh installs (curl, redis-cli, psql, mariadb).
# Exit status: 0 when every APP passed.
#
# Environment:
#   SANDMINE_SMOKE_WAIT     seconds to wait for the port (default 60)
#   SANDMINE_SMOKE_SECCOMP  a seccomp profile for the containers (default:
#                           Docker's default profile)
set -uo pipefail

all_apps=(nginx apache2 node django redis postgresql mariadb)
declare -A port=([nginx]=18101 [apache2]=18102 [node]=18103 [django]=18104 [redis]=18105 [postgresql]=18106 [mariadb]=18107)
wait_s=${SANDMINE_SMOKE_WAIT:-60}

apps=("$@")
((${#apps[@]})) || apps=("${all_apps[@]}")

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# Does a process of container CID listen on PORT? (Another server on the same
# fixed port, say another session's container, must not pass for ours.)
port_owned_by() { # CID PORT
    local pid
    for pid in $(ss -Hltnp "sport = :$2" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
        grep -q "$1" "/proc/$pid/cgroup" 2>/dev/null && return 0
    done
    return 1
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# The real requests, one function per app. Each prints what it checked and
# returns non-zero on any failure.
http_static() { # PORT
    local p=$1 body size
    body=$(curl -fsS --max-time 5 "http://127.0.0.1:$p/") || return 1
    grep -q 'It works' <<<"$body" || { echo "unexpected / body"; return 1; }
    size=$(curl -fsS --max-time 5 -o /dev/null -w '%{size_download}' "http://127.0.0.1:$p/10k.bin") || return 1
    [[ $size == 10240 ]] || { echo "/10k.bin is $size bytes"; return 1; }
    curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/missing" | grep -qx 404 ||
        { echo "no 404 for /missing"; return 1; }
    echo "GET / 200, GET /10k.bin 10240 B, GET /missing 404"
}
check_nginx() { http_static 18101; }
check_apache2() { http_static 18102; }
check_node() {
    local b=http://127.0.0.1:18103
    curl -fsS --max-time 5 "$b/healthz" | grep -qx ok || return 1
    curl -fsS --max-time 5 "$b/" | grep -q '<h1>Items</h1>' || return 1
    curl -fsS --max-time 5 -X POST -H 'Content-Type: application/json' -d '{"name":"smoke"}' "$b/api/items" |
        grep -q '"name":"smoke"' || return 1
    curl -fsS --max-time 5 "$b/api/items" | grep -q '"smoke"' || return 1
    echo "GET /healthz, GET /, POST+GET /api/items"
}
check_django() {
    local b=http://127.0.0.1:18104
    curl -fsS --max-time 10 "$b/healthz" | grep -qx ok || return 1
    curl -fsS --max-time 10 "$b/" | grep -q 'item 20' || return 1
    curl -fsS --max-time 10 -X POST -H 'Content-Type: application/json' -d '{"name":"smoke"}' "$b/api/items" |
        grep -q '"name": "smoke"' || return 1
    curl -fsS --max-time 10 "$b/api/items" | grep -q '"count": 21' || return 1
    curl -fsS --max-time 10 "$b/admin/login/" | grep -q 'csrfmiddlewaretoken' || return 1
    curl -fsS --max-time 10 -o /dev/null "$b/static/admin/css/base.css" || return 1
    echo "GET /healthz, GET / (20 items), POST+GET /api/items, GET /admin/login/, admin static"
}
check_redis() {
    local r=(redis-cli -h 127.0.0.1 -p 18105)
    [[ $("${r[@]}" PING) == PONG ]] || return 1
    [[ $("${r[@]}" SET smoke ok) == OK && $("${r[@]}" GET smoke) == ok ]] || return 1
    local before
    before=$("${r[@]}" LASTSAVE)
    "${r[@]}" BGSAVE | grep -q 'Background saving started' || return 1
    for _ in $(seq 1 50); do
        [[ $("${r[@]}" LASTSAVE) != "$before" ]] && break
        sleep 0.1
    done
    "${r[@]}" INFO persistence | grep -q 'rdb_last_bgsave_status:ok' || { echo "BGSAVE failed"; return 1; }
    echo "PING, SET/GET, BGSAVE ok"
}
check_postgresql() {
    local out
    out=$(PGPASSWORD=bench PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p 18106 -U bench -d bench -XtAc 'SELECT 1') || return 1
    [[ $out == 1 ]] || return 1
    echo "psql -U bench -d bench: SELECT 1 -> $out"
}
check_mariadb() {
    local out
    out=$(mariadb -h 127.0.0.1 -P 18107 -ubench -pbench --connect-timeout=5 -N -B bench -e 'SELECT 1') || return 1
    [[ $out == 1 ]] || return 1
    echo "mariadb -ubench bench: SELECT 1 -> $out"
}

seccomp_args=()
[[ -n ${SANDMINE_SMOKE_SECCOMP:-} ]] && seccomp_args=(--security-opt "seccomp=$SANDMINE_SMOKE_SECCOMP")

passed=0 failed=0
for app in "${apps[@]}"; do
    p=${port[$app]:-}
    if [[ -z $p ]]; then
        echo "smoke: $app: unknown app (known: ${all_apps[*]})"
        failed=$((failed + 1))
        continue
    fi
    image=sandmine-paper/$app:latest
    name=sandmine-paper-smoke-$app
    t0=$(date +%s.%N)
    if port_open "$p"; then
        printf 'smoke: %-11s FAIL  port %s is already in use on the host\n' "$app" "$p"
        failed=$((failed + 1))
        continue
    fi
    docker rm -f "$name" >/dev/null 2>&1 || true
    if ! cid=$(docker run -d --rm --network host --name "$name" "${seccomp_args[@]}" "$image" 2>&1); then
        printf 'smoke: %-11s FAIL  docker run: %s\n' "$app" "$cid"
        failed=$((failed + 1))
        continue
    fi
    ready=""
    for _ in $(seq 1 $((wait_s * 5))); do
        if port_open "$p"; then
            ready=yes
            break
        fi
        [[ $(docker inspect -f '{{.State.Running}}' "$cid" 2>/dev/null) == true ]] || break
        sleep 0.2
    done
    t_ready=$(date +%s.%N)
    msg=""
    if [[ -z $ready ]]; then
        ok=no
        msg="port $p did not answer within ${wait_s}s"
    elif ! port_owned_by "$cid" "$p"; then
        ok=no
        msg="port $p answers, but not from this container (taken by another server?)"
    elif msg=$("check_$app" 2>&1); then
        ok=yes
    else
        ok=no
    fi
    if [[ $ok == yes && $(docker inspect -f '{{.State.Running}}' "$cid" 2>/dev/null) != true ]]; then
        ok=no
        msg="the container exited during the checks"
    fi
    version=$(docker exec "$cid" cat /etc/sandmine-paper-version 2>/dev/null || echo '?')
    # Who runs what: comm and uid of every process in the container (read by
    # one sh with builtins only, so the probe shows no processes of its own),
    # uids named from the container's /etc/passwd.
    procs=$(docker exec "$cid" sh -c '
        for d in /proc/[0-9]*; do
            [ "${d#/proc/}" = "$$" ] && continue
            read -r c <"$d/comm" 2>/dev/null || continue
            while read -r k u _; do [ "$k" = "Uid:" ] && break; done <"$d/status"
            echo "P $c $u"
        done
        getent passwd' 2>/dev/null |
        awk -F'[: ]' '$1 == "P" { n[$2 ":" $3]++; next } { name[$3] = $1 }
            END { for (k in n) { split(k, a, ":"); s = s sep a[1] ":" (a[2] in name ? name[a[2]] : a[2]) (n[k] > 1 ? "x" n[k] : ""); sep = "," } print s }')
    if [[ $ok == yes ]]; then
        printf 'smoke: %-11s ok    %s %s [%s], ready in %ss: %s\n' "$app" "$app" "$version" "$procs" \
            "$(elapsed "$t0" "$t_ready")" "$msg"
        passed=$((passed + 1))
    else
        printf 'smoke: %-11s FAIL  %s\n' "$app" "${msg//$'\n'/ | }"
        echo "---- docker logs $name (last 20 lines)"
        docker logs --tail 20 "$cid" 2>&1 | sed 's/^/    /'
        failed=$((failed + 1))
    fi
    t_stop=$(date +%s.%N)
    docker stop -t 15 "$cid" >/dev/null 2>&1 || true
    # --rm removes it once stopped; wait for that so the port is free again.
    for _ in $(seq 1 50); do
        docker inspect "$cid" >/dev/null 2>&1 || break
        sleep 0.1
    done
    printf 'smoke: %-11s       stopped in %ss\n' "$app" "$(elapsed "$t_stop" "$(date +%s.%N)")"
done
echo "smoke: $passed passed, $failed failed"
((failed == 0))
