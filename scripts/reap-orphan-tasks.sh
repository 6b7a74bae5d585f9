#!/usr/bin/env bash
# Delete containerd tasks that dockerd has forgotten.
#
# dockerd 20.10 with runc 1.1 cannot delete the containerd task of a container
# whose start failed because its seccomp profile stopped runc itself (for
# example a profile that denies `write`): "failed to delete task after fail
# start ... task must be stopped before deletion". The container is removed,
# but its task and containerd-shim stay behind. The docker.rs tests provoke
# exactly that, so scripts/test.sh runs this afterwards.
#
# Only touches containers in containerd's "moby" namespace that dockerd does
# not know (`docker ps -a`) and whose task is STOPPED. Never fails.
set -uo pipefail

sock=/var/run/docker/containerd/containerd.sock
command -v ctr >/dev/null 2>&1 || exit 0
[[ -S $sock ]] || exit 0
ctr_() { ctr --address "$sock" -n moby "$@"; }

known=$(docker ps -aq --no-trunc 2>/dev/null) || exit 0
reaped=0
while read -r id _pid status; do
    [[ -n $id && $status == STOPPED ]] || continue
    grep -qxF "$id" <<<"$known" && continue
    ctr_ tasks delete "$id" >/dev/null 2>&1 || continue
    ctr_ containers delete "$id" >/dev/null 2>&1 || true
    reaped=$((reaped + 1))
done < <(ctr_ tasks ls 2>/dev/null | tail -n +2)
((reaped == 0)) || echo "reap-orphan-tasks: deleted $reaped stopped task(s) that dockerd had forgotten"
exit 0
