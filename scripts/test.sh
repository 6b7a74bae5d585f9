#!/usr/bin/env bash
# Everything CI checks, runnable by a developer as is (as root, on Debian 12):
#
#   (CI builds in /var/cache/sandmine/target, kept between runs; see below)
#   0. free disk space             at least SANDMINE_MIN_FREE_GIB (default 16) on the
#                                  target directory's file system; a clean checkout's
#                                  debug and release builds take about 12 GiB, and a
#                                  linker that runs out of space dies with SIGBUS
#   1. scripts/install-deps.sh     apt packages (skipped when all present)
#   2. scripts/start-dockerd.sh    the Docker Engine, if not running
#   3. tests/images/build.sh       local test images (cached tarballs)
#   3b. scripts/start-containerd-cri.sh  a containerd of sandmine's own with
#                                  its CRI plugin (own socket
#                                  /run/sandmine-cri/containerd.sock, cgroupfs,
#                                  runc, no CNI: host-network pods only), a
#                                  locally built pause image as sandbox_image
#                                  and the test image in its k8s.io namespace
#                                  (tests/cri_cli.rs)
#   4. cargo fmt --all -- --check
#   5. cargo clippy --workspace --all-targets -- -D warnings
#   6. bash schemas/gen/check.sh   the generated syscall tables are current
#   6b. scripts/check-sql-chdb.py  every store statement on a current ClickHouse (chdb),
#       and (scripts/check-grafana.py) the Grafana dashboard's queries
#   6c. scripts/check-deploy.sh    deploy/, offline: systemd-analyze verify and
#                                  security (scores recorded); kustomize,
#                                  kubernetes-validate --strict and sandmine's
#                                  invariants per overlay; promtool check/test
#                                  rules; yamllint; check-jsonschema of the SPO
#                                  CRs; and that each check fails on a broken sample
#   7. cargo build --release       (only when CI is set, or SANDMINE_RELEASE_BUILD=1;
#                                   SANDMINE_RELEASE_BUILD=0 skips it in CI too)
#   8. cargo test --workspace -- --test-threads=2 [ARGS...]
#      (tests/report_cli.rs renders the fleet report in headless Chromium
#      with scripts/check-report.py: chromium and selenium come from step 1)
#   9. benchmarks/paper/smoke.sh   the paper evaluation, every step once, on
#                                  the tiny test image
#   and, on exit, scripts/reap-orphan-tasks.sh (containerd tasks of failed
#   container starts that dockerd 20.10 leaves behind).
#
# Usage: scripts/test.sh [-k|--keep-going] [-- ARGS for the test binaries]
#   -k  run every step even after a failure, then report all failures
#       (also SANDMINE_KEEP_GOING=1). The default stops at the first failure.
#
# Tests that need dockerd, the test images or the CRI containerd fail (they
# never skip) when one is missing; steps 2, 3 and 3b provide them.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

keep_going=${SANDMINE_KEEP_GOING:-0}
test_args=()
while (($#)); do
    case $1 in
    -k | --keep-going) keep_going=1 ;;
    --)
        shift
        test_args=("$@")
        break
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument $1 (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done

# rustup's cargo, when the shell that runs us has no profile (CI, sudo).
if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
    PATH=$HOME/.cargo/bin:$PATH
fi
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

ci=0
if [[ -n ${CI:-} && ${CI} != false ]]; then ci=1; fi
release=${SANDMINE_RELEASE_BUILD:-$ci}
# A clean checkout is built once: incremental state would only take space.
if ((ci)); then export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}; fi
# CI builds in a target directory that outlives the checkout, beside the
# other caches: a clean checkout then compiles sandmine's own crates, not
# every dependency again (a cold build takes most of an hour on 2 vCPUs).
# It starts afresh once it holds more than SANDMINE_TARGET_CACHE_GIB
# (default 40), since old builds' artifacts are never removed by cargo.
if ((ci)) && [[ -z ${CARGO_TARGET_DIR:-} ]]; then
    export CARGO_TARGET_DIR=/var/cache/sandmine/target
    cache_gib=${SANDMINE_TARGET_CACHE_GIB:-40}
    if [[ -d $CARGO_TARGET_DIR ]] &&
        (($(du -s -BG "$CARGO_TARGET_DIR" | cut -f1 | tr -d G) > cache_gib)); then
        echo "test.sh: $CARGO_TARGET_DIR holds more than $cache_gib GiB: starting it afresh"
        rm -rf "$CARGO_TARGET_DIR"
    fi
fi

# Failed container starts can leave containerd tasks behind (see the script).
trap '"$root/scripts/reap-orphan-tasks.sh" || true' EXIT

summary=()
failed=()
t_start=$SECONDS

print_summary() {
    echo
    echo "==================== summary ($((SECONDS - t_start))s) ===================="
    local line
    for line in "${summary[@]}"; do echo "  $line"; done
}

# step NAME COMMAND...: runs one section with a header and its duration.
step() {
    local name=$1
    shift
    echo
    echo "==================== $name ===================="
    echo "+ $*"
    local t0=$SECONDS rc=0
    "$@" || rc=$?
    local dt=$((SECONDS - t0))
    if ((rc == 0)); then
        summary+=("ok    ${dt}s  $name")
        echo "---- $name: ok (${dt}s)"
        return 0
    fi
    summary+=("FAIL  ${dt}s  $name (exit $rc)")
    failed+=("$name")
    echo "---- $name: FAILED (exit $rc, ${dt}s)" >&2
    if [[ $keep_going != 1 ]]; then
        print_summary
        echo "test.sh: FAILED at: $name" >&2
        exit "$rc"
    fi
}

skip() {
    summary+=("skip      $1")
}

# disk_space: fails, with what is free and what is needed, before a build
# that would run out of space halfway (the linker then dies with SIGBUS).
disk_space() {
    local dir=${CARGO_TARGET_DIR:-$root/target} need=${SANDMINE_MIN_FREE_GIB:-16} free
    mkdir -p "$dir"
    free=$(($(df --output=avail -k "$dir" | tail -n 1) / 1024 / 1024))
    echo "free on $(df --output=target "$dir" | tail -n 1) ($dir): ${free} GiB; needed: ${need} GiB"
    if ((free < need)); then
        echo "test.sh: not enough free disk space for the builds: ${free} GiB free, ${need} GiB needed (free some, or set SANDMINE_MIN_FREE_GIB)" >&2
        return 1
    fi
}

step "free disk space" disk_space
step "install dependencies" scripts/install-deps.sh
step "dockerd" scripts/start-dockerd.sh
step "test images" tests/images/build.sh
step "containerd with CRI" scripts/start-containerd-cri.sh
step "cargo fmt" cargo fmt --all -- --check --color=never
step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
step "syscall tables" bash schemas/gen/check.sh
step "store SQL on current ClickHouse (chdb)" /var/cache/sandmine/py/bin/python scripts/check-sql-chdb.py
step "deploy/ offline (systemd, kubernetes, alerts, SPO schema)" scripts/check-deploy.sh
if [[ $release == 1 ]]; then
    step "cargo build --release" cargo build --workspace --release
else
    skip "cargo build --release (set SANDMINE_RELEASE_BUILD=1, or CI)"
fi
step "cargo test" cargo test --workspace -- --test-threads=2 "${test_args[@]}"
# The paper evaluation's pipeline, every step once on the tiny test image
# (benchmarks/paper/smoke.sh), with the binary the tests just built.
step "paper evaluation smoke" env SANDMINE="${CARGO_TARGET_DIR:-$root/target}/debug/sandmine" benchmarks/paper/smoke.sh

print_summary
if ((${#failed[@]})); then
    echo "test.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "test.sh: all passed"
