#!/usr/bin/env bash
# Regenerates sandmine's own seccomp profiles, one per long-running role
# (collect, aggregate, publish, sync-profiles), and the SystemCallFilter=
# block of each systemd unit in deploy/systemd/. deploy/README.md,
# "sandmine's own profile", says what comes out and why.
#
#   1. builds the release binary (the one deployed) and the test binaries;
#   2. runs the integration tests that start the roles with
#      SANDMINE_TEST_MINE_ROLES set: tests/common wraps every
#      `sandmine ROLE ...` a test starts in `sandmine mine --backend ebpf
#      --observation mined/ROLE-PID-N.obs.json -- sandmine ROLE ...`
#      (the raw data, committed; the tests' output goes to mined/tests-*.log);
#   3. measures runc's post-filter calls (the runtime base: `sandmine
#      mine-image` starts its probe container 50 times under the mining
#      filter; mined/runtime-base.json), which the container profiles need
#      to start at all;
#   4. joins the observations of each role with the static reach of the
#      release binary and compiles them (examples/own_profile.rs): writes
#      sandmine-ROLE.json (Docker/OCI, for `sandmine run` and the kubelet),
#      sandmine-ROLE.systemd.conf, sandmine-ROLE.report.txt, counts.tsv, and
#      rewrites the units' own-profile block.
#
# Needs root (eBPF mining), dockerd, nats-server, clickhouse-server and
# tansu, as the tests do. Not run in CI (it takes minutes); the profiles it
# writes are tested by tests/own_profile_cli.rs, which is.
#
# Usage: deploy/own-profile/build.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=$root/deploy/own-profile
mined=$out/mined
target=${CARGO_TARGET_DIR:-$root/target}

# The tests that start the roles: the NATS fault matrix, the full
# stream, Kafka, JetStream replays, the aggregator's own publishing rounds
# (fleet_cli), and publish/sync-profiles/levers (sync_cli, lever_cli).
fleet_tests=(fleet_totals_stay_exact_through_faults a_full_stream_makes_the_collector_spool
    kafka_pipeline_is_exact the_aggregator_publishes_on_its_schedule a_replay_after)

cd "$root"
cargo build --release --bin sandmine
cargo test --no-run --test fleet_cli --test sync_cli --test lever_cli

rm -rf "$mined"
mkdir -p "$mined"
status=0
SANDMINE_TEST_MINE_ROLES=$mined cargo test --test fleet_cli -- --test-threads=3 "${fleet_tests[@]}" \
    >"$mined/tests-fleet_cli.log" 2>&1 || status=$?
SANDMINE_TEST_MINE_ROLES=$mined cargo test --test sync_cli --test lever_cli -- --test-threads=2 \
    >"$mined/tests-sync_lever.log" 2>&1 || status=$?
# The profiles each run wrote: only the observations are kept (the join
# compiles them again, all runs of a role together).
find "$mined" -name '*.json' ! -name '*.obs.json' -delete
grep -hE '^test |^test result' "$mined"/tests-*.log || true
if [ "$status" -ne 0 ]; then
    echo "build.sh: some tests failed while mined (status $status, $mined/tests-*.log);" \
        "the observations of every run are used anyway" >&2
fi

# The static reach, as `sandmine analyze` prints it (the join below runs
# the same analysis).
"$target/release/sandmine" analyze "$target/release/sandmine" >"$mined/analyze.txt"

# The runtime base, measured on this engine (a cache directory of its own,
# so a base cached earlier is not reused).
base_cache=$(mktemp -d)
"$target/release/sandmine" mine-image --runtime-starts 50 --runtime-base-cache "$base_cache" \
    --reachable off --output /dev/null --workload true sandmine-test/busybox:1 >/dev/null
mv "$base_cache"/*.json "$mined/runtime-base.json"
rmdir "$base_cache"

cargo run --release --example own_profile -- \
    --mined "$mined" --binary "$target/release/sandmine" \
    --out "$out" --units "$root/deploy/systemd" \
    --runtime-base "$mined/runtime-base.json"
