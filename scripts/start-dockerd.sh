#!/usr/bin/env bash
# Start the Docker Engine (dockerd) if it is not answering yet.
#
# Idempotent: does nothing when `docker info` already works. Otherwise starts
#   dockerd --iptables=false --bridge=none
# in the background (this host has no bridge networking; containers use
# --network none or host), logging to /var/log/sandmine-dockerd.log, and waits
# up to 30 s for it to answer. A stale /var/run/docker.pid (left by a dockerd
# that is gone) is removed first. Concurrent callers are serialised by a lock.
#
# Environment:
#   SANDMINE_DOCKERD_LOG      log file (default /var/log/sandmine-dockerd.log)
#   SANDMINE_DOCKERD_TIMEOUT  seconds to wait (default 30)
#   SANDMINE_DOCKERD_PIDFILE  dockerd's pid file (default /var/run/docker.pid)
set -euo pipefail

log=${SANDMINE_DOCKERD_LOG:-/var/log/sandmine-dockerd.log}
timeout=${SANDMINE_DOCKERD_TIMEOUT:-30}
pidfile=${SANDMINE_DOCKERD_PIDFILE:-/var/run/docker.pid}
containerd_pidfile=/var/run/docker/containerd/containerd.pid

docker_ok() { docker info >/dev/null 2>&1; }

if ! command -v docker >/dev/null 2>&1; then
    echo "start-dockerd: the docker client is not installed (run scripts/install-deps.sh)" >&2
    exit 1
fi

if docker_ok; then
    echo "start-dockerd: dockerd is already answering"
    exit 0
fi

if [[ -n ${DOCKER_HOST:-} && ${DOCKER_HOST} != unix:///var/run/docker.sock && ${DOCKER_HOST} != unix:///run/docker.sock ]]; then
    echo "start-dockerd: DOCKER_HOST=${DOCKER_HOST} does not answer; not starting a local dockerd for it" >&2
    exit 1
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "start-dockerd: dockerd is not running and starting it needs root" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "start-dockerd: dockerd is not installed (run scripts/install-deps.sh)" >&2
    exit 1
fi

# Serialise concurrent callers: only one of them may start dockerd.
exec 9>/var/run/sandmine-start-dockerd.lock
flock 9

dockerd_pid=""
if ! docker_ok; then
    if [[ -f $pidfile ]]; then
        old=$(tr -dc '0-9' <"$pidfile" || true)
        if [[ -n $old ]] && [[ -r /proc/$old/comm ]] && [[ $(cat "/proc/$old/comm") == dockerd ]]; then
            echo "start-dockerd: dockerd (pid $old) is running but not answering yet; waiting for it"
            dockerd_pid=$old
        else
            echo "start-dockerd: removing stale $pidfile (pid '${old}' is not a running dockerd)"
            rm -f "$pidfile"
        fi
    fi
    # A stale pid file of the containerd that dockerd supervises would make
    # dockerd wait on a process that is not containerd.
    if [[ -z $dockerd_pid && -f $containerd_pidfile ]]; then
        old=$(tr -dc '0-9' <"$containerd_pidfile" || true)
        if [[ -z $old ]] || [[ ! -r /proc/$old/comm ]] || [[ $(cat "/proc/$old/comm") != containerd ]]; then
            echo "start-dockerd: removing stale $containerd_pidfile"
            rm -f "$containerd_pidfile"
        fi
    fi
    if [[ -z $dockerd_pid ]]; then
        pidargs=()
        [[ $pidfile == /var/run/docker.pid ]] || pidargs=(--pidfile "$pidfile")
        mkdir -p "$(dirname "$log")"
        echo "start-dockerd: starting dockerd --iptables=false --bridge=none (log: $log)"
        {
            echo "==== $(date -u +%FT%TZ) sandmine start-dockerd"
        } >>"$log"
        # setsid: the daemon outlives this script and its process group; its
        # output goes to the log only, so CI does not wait on our stdout.
        setsid dockerd --iptables=false --bridge=none "${pidargs[@]}" </dev/null >>"$log" 2>&1 9>&- &
        dockerd_pid=$!
    fi
fi

deadline=$((SECONDS + timeout))
until docker_ok; do
    if [[ -n $dockerd_pid ]] && ! kill -0 "$dockerd_pid" 2>/dev/null; then
        echo "start-dockerd: dockerd exited during start-up; last lines of $log:" >&2
        tail -n 30 "$log" >&2 || true
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "start-dockerd: dockerd did not answer within ${timeout}s; last lines of $log:" >&2
        tail -n 30 "$log" >&2 || true
        exit 1
    fi
    sleep 0.3
done
echo "start-dockerd: dockerd is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
