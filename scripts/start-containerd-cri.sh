#!/usr/bin/env bash
# Start a containerd of sandmine's own with its CRI plugin, if it is not
# answering yet, and give its `k8s.io` namespace the images the CRI tests
# run (tests/cri_cli.rs).
#
# dockerd's managed containerd (and Debian's /etc/containerd/config.toml)
# disable the CRI plugin, so this is a separate containerd (Debian's 1.6,
# the one docker.io depends on) with its own everything:
#   config  /run/sandmine-cri/config.toml (written by this script)
#   socket  /run/sandmine-cri/containerd.sock (CRI v1 and containerd's API)
#   root    /var/lib/sandmine-cri        state  /run/sandmine-cri/state
#   runc    runtime io.containerd.runc.v2, runc's root /run/sandmine-cri/runc,
#           SystemdCgroup = false (no systemd here: the cgroupfs driver)
#   restrict_oom_score_adj = true: root may lack CAP_SYS_RESOURCE (it does
#           on this VM), and runc then cannot give the sandbox its -998
#   log     /var/log/sandmine-containerd-cri.log
# No CNI: only host-network pod sandboxes run (the CRI plugin sets up no
# network for them; it logs that CNI is not initialised, and that is all).
#
# Images (imported with `ctr -n k8s.io images import`, idempotent):
#   localhost/sandmine-test/pause:1    the sandbox image (`sandbox_image`): a
#       static C program that pauses until SIGINT/SIGTERM, built here with
#       gcc -static, as a `docker save` tarball cached under
#       /var/cache/sandmine/cri (keyed by this script), via dockerd.
#   localhost/sandmine-test/busybox:1  the test image, from dockerd
#       (tests/images/build.sh builds it; `docker save`, renamed in the
#       archive's manifest: a name without a host would be read as Docker
#       Hub's).
#
# Idempotent: when the socket answers with this script's configuration, only
# the images are (re)imported; a containerd of ours with another
# configuration is restarted.
# Concurrent callers are serialised by a lock. Needs root and dockerd
# (scripts/start-dockerd.sh) for the image tarballs.
#
# Environment:
#   SANDMINE_CRI_SOCKET   the socket (default /run/sandmine-cri/containerd.sock)
#   SANDMINE_CRI_TIMEOUT  seconds to wait for it (default 30)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=/run/sandmine-cri
sock=${SANDMINE_CRI_SOCKET:-$run/containerd.sock}
timeout=${SANDMINE_CRI_TIMEOUT:-30}
root_dir=/var/lib/sandmine-cri
log=/var/log/sandmine-containerd-cri.log
cache=/var/cache/sandmine/cri
pause_image=localhost/sandmine-test/pause:1
test_image=sandmine-test/busybox:1
test_image_cri=localhost/$test_image

for tool in containerd ctr runc containerd-shim-runc-v2 gcc docker jq; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "start-containerd-cri: $tool is not installed (run scripts/install-deps.sh)" >&2
        exit 1
    fi
done
if [[ $(id -u) -ne 0 ]]; then
    echo "start-containerd-cri: needs root" >&2
    exit 1
fi

mkdir -p "$run" "$cache"
exec 9>"$run.lock"
flock 9

ctr_() { ctr -a "$sock" "$@"; }
answers() { ctr_ version >/dev/null 2>&1; }

cat >"$run/config.toml.new" <<EOF
version = 2
root = "$root_dir"
state = "$run/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # The sandbox's oom_score_adj (-998) would need CAP_SYS_RESOURCE, which
  # root lacks on some machines (this VM): clamp to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$run/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$run/cni/bin"
    conf_dir = "$run/cni/net.d"
EOF

# Our containerd's pid, when it runs (its pid file, checked against its
# command line).
our_pid() {
    local old
    [[ -f $run/containerd.pid ]] || return 0
    old=$(tr -dc '0-9' <"$run/containerd.pid" || true)
    if [[ -n $old && -r /proc/$old/cmdline ]] && tr '\0' ' ' <"/proc/$old/cmdline" | grep -q -- "--config $run/config.toml"; then
        echo "$old"
    fi
}

pid=$(our_pid)
if answers && cmp -s "$run/config.toml" "$run/config.toml.new"; then
    rm -f "$run/config.toml.new"
    echo "start-containerd-cri: containerd is already answering on $sock"
else
    if [[ -n $pid ]] && ! cmp -s "$run/config.toml" "$run/config.toml.new"; then
        # Ours, with another configuration (this script changed): restart.
        echo "start-containerd-cri: restarting containerd (pid $pid) with the new configuration"
        kill "$pid"
        deadline=$((SECONDS + timeout))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                echo "start-containerd-cri: containerd (pid $pid) did not stop within ${timeout}s" >&2
                exit 1
            fi
            sleep 0.2
        done
        pid=""
    fi
    mv -f "$run/config.toml.new" "$run/config.toml"
    # Without a pid of ours, a containerd of ours is not running (one that
    # runs but does not answer yet is waited for).
    if [[ -z $pid ]]; then
        rm -f "$sock" "$sock.ttrpc"
        echo "==== $(date -u +%FT%TZ) sandmine start-containerd-cri" >>"$log"
        echo "start-containerd-cri: starting containerd --config $run/config.toml (log: $log)"
        # setsid: the daemon outlives this script and its process group.
        setsid containerd --config "$run/config.toml" </dev/null >>"$log" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$run/containerd.pid"
    fi
    deadline=$((SECONDS + timeout))
    until answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "start-containerd-cri: containerd exited during start-up; last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "start-containerd-cri: containerd did not answer within ${timeout}s; last lines of $log:" >&2
            tail -n 30 "$log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done
    echo "start-containerd-cri: containerd $(ctr_ version 2>/dev/null | awk '/Server:/{s=1} s&&/Version:/{print $2; exit}') is up on $sock"
fi

# ---- the images ------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/sandmine-cri.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$here/start-dockerd.sh" >/dev/null
key=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
pause_tar=$cache/pause-$key.tar
if [[ ! -f $pause_tar ]]; then
    mkdir -p "$work/rootfs"
    cat >"$work/pause.c" <<'EOF'
/* The pod sandbox's process: holds the pod's namespaces until told to stop. */
#include <signal.h>
#include <unistd.h>
static void stop(int sig) { (void)sig; _exit(0); }
int main(void) {
    signal(SIGINT, stop);
    signal(SIGTERM, stop);
    for (;;) pause();
}
EOF
    gcc -static -Os -o "$work/rootfs/pause" "$work/pause.c"
    tar -C "$work/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - . |
        docker import --change 'ENTRYPOINT ["/pause"]' - "$pause_image" >/dev/null
    docker save -o "$pause_tar.tmp.$$" "$pause_image"
    mv -f "$pause_tar.tmp.$$" "$pause_tar"
    for old in "$cache"/pause-*.tar; do
        [[ $old == "$pause_tar" ]] || rm -f "$old"
    done
    echo "start-containerd-cri: built the pause image ($pause_tar)"
fi
ctr_ -n k8s.io images import "$pause_tar" >/dev/null
if ! docker image inspect "$test_image" >/dev/null 2>&1; then
    echo "start-containerd-cri: dockerd has no $test_image (run tests/images/build.sh)" >&2
    exit 1
fi
mkdir "$work/test-image"
docker save "$test_image" | tar -C "$work/test-image" -xf -
jq --arg name "$test_image_cri" '[.[] | .RepoTags = [$name]]' "$work/test-image/manifest.json" >"$work/manifest.json"
mv "$work/manifest.json" "$work/test-image/manifest.json"
rm -f "$work/test-image/repositories"
tar -C "$work/test-image" -cf - . | ctr_ -n k8s.io images import - >/dev/null
echo "start-containerd-cri: images in k8s.io: $(ctr_ -n k8s.io images ls -q | grep sandmine-test | tr '\n' ' ')"
