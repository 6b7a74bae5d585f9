#!/usr/bin/env bash
# The main job, end to end, on a fresh Debian 12 host (as root):
#
#   1. install what sandmine needs (apt), build it (cargo, release);
#   2. mine a real program: `python3 -c 'import socket; print(1)'`, then run
#      it under its profile, and show that socket() is denied;
#   3. mine a real container: the busybox httpd test image, under a wget
#      workload, through the Docker Engine; then serve a page from it
#      started with `docker run --security-opt seccomp=<mined profile>`.
#
# Profiles land in ./profiles/. Rerunning is quick: packages, the build,
# the image and the runtime base are all cached.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

if [[ $(id -u) -ne 0 ]]; then
    echo "quickstart: run as root (eBPF, cgroups and dockerd need it)" >&2
    exit 1
fi
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "quickstart: cargo not found; install Rust 1.85 or newer with rustup (https://rustup.rs)" >&2
    exit 1
fi

step() { printf '\n== %s\n' "$*"; }

step "installing packages"
SANDMINE_SINGLE_HOST=1 scripts/install-deps.sh
step "building sandmine (release)"
cargo build --release --locked
sm=$root/target/release/sandmine
mkdir -p profiles

step "mining a program: python3 -c 'import socket; print(1)'"
"$sm" mine -o profiles/python-socket.json -- /usr/bin/python3 -c 'import socket; print(1)'
echo "allowed: $(jq -r '.syscalls[0].names | length' profiles/python-socket.json) syscalls, socket allowed: $(jq -r '.syscalls[0].names | index("socket") != null' profiles/python-socket.json)"
step "running it under the profile"
"$sm" run --profile profiles/python-socket.json -- /usr/bin/python3 -c 'import socket; print(1)'
if "$sm" run --profile profiles/python-socket.json -- /usr/bin/python3 -c 'import socket; socket.socket()' 2>/tmp/quickstart.err; then
    echo "quickstart: socket() was not denied" >&2
    exit 1
fi
echo "denied as expected: $(tail -n1 /tmp/quickstart.err)"

step "mining a container image: busybox httpd under wget"
scripts/start-dockerd.sh
tests/images/build.sh
port=${SANDMINE_QUICKSTART_PORT:-18090}
httpd=(/bin/busybox httpd -f -v -p "127.0.0.1:$port" -h /www)
"$sm" mine-image -o profiles/busybox-httpd.json --network host --workload-delay 1s \
    --workload "for i in \$(seq 20); do wget -qO- http://127.0.0.1:$port/ >/dev/null; done" \
    sandmine-test/busybox:1 -- "${httpd[@]}"
echo "allowed: $(jq -r '.syscalls[0].names | length' profiles/busybox-httpd.json) syscalls (Docker's default allows about 300)"
echo "left out as runc's privileged set-up: $(jq -r '.sandmine.setup_excluded | join(" ")' profiles/busybox-httpd.json)"

step "serving under the mined profile"
name=sandmine-quickstart-$$
docker run -d --rm --name "$name" --network host \
    --security-opt seccomp=profiles/busybox-httpd.json sandmine-test/busybox:1 "${httpd[@]}" >/dev/null
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 50); do
    if page=$(curl -fsS "http://127.0.0.1:$port/" 2>/dev/null); then
        echo "served: $page"
        exit 0
    fi
    sleep 0.1
done
echo "quickstart: the container did not serve under its profile" >&2
docker logs "$name" >&2 || true
exit 1
