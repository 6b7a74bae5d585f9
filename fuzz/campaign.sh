#!/usr/bin/env bash
# One fuzzing campaign of one target, outside CI (fuzz/README.md).
#
# Usage: fuzz/campaign.sh TARGET RUNS [MAX_LEN [MAX_SECONDS]]
#   e.g. fuzz/campaign.sh wire 10000000
# MAX_SECONDS caps the wall time (0, the default: none): the campaign then
# ends at RUNS executions or MAX_SECONDS, whichever comes first, and the
# log's final stats say how many executions it reached.
#
# Needs the targets built first (cargo-fuzz, stable Rust):
#   cd fuzz && cargo fuzz build --sanitizer none --codegen-units 16 \
#       --target-dir "$FUZZ_WORK/target" [--features config]
#
# Runs libFuzzer (one process, under nice) for RUNS executions on a working
# corpus in $FUZZ_WORK/corpus/TARGET (seeded from fuzz/seeds/TARGET and
# fuzz/corpus/TARGET),
# writes the command and its raw output to benchmarks/fuzz/TARGET.log.xz,
# then minimises the working corpus into fuzz/corpus/TARGET (minimise.sh),
# which CI replays. Crashing inputs land in
# $FUZZ_WORK/artifacts/TARGET/; the script exits non-zero on one.
set -euo pipefail

usage="usage: campaign.sh TARGET RUNS [MAX_LEN [MAX_SECONDS]]"
target=${1:?$usage}
runs=${2:?$usage}
max_len=${3:-4096}
max_time=${4:-0}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${FUZZ_WORK:-/var/tmp/sandmine-fuzz}
bin=$work/target/x86_64-unknown-linux-gnu/release/$target
[ -x "$bin" ] || { echo "no $bin: build the targets first (see the header)" >&2; exit 2; }

corpus=$work/corpus/$target
artifacts=$work/artifacts/$target/
mkdir -p "$corpus" "$artifacts" "$root/benchmarks/fuzz"
for seeds in "$root/fuzz/seeds/$target" "$root/fuzz/corpus/$target"; do
    if [ -d "$seeds" ]; then
        cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
    fi
done

log=$root/benchmarks/fuzz/$target.log
cmd=(nice -n 10 "$bin" "-runs=$runs" "-max_len=$max_len" "-max_total_time=$max_time"
     -print_final_stats=1
     "-artifact_prefix=$artifacts" "$corpus")
{
    echo "# $(date -u +%FT%TZ) on $(uname -r), $(nproc) cores shared, $(rustc --version)"
    echo "# built: cargo fuzz build --sanitizer none --codegen-units 16 ($(cargo fuzz --version))"
    echo "# command: fuzz/campaign.sh $*"
    echo "# runs: ${cmd[*]}"
} > "$log"
rc=0
"${cmd[@]}" >> "$log" 2>&1 || rc=$?
echo "# exit status: $rc" >> "$log"
# libFuzzer prints a line per new input: megabytes of text, kept compressed.
xz -9 -f "$log"

# Minimise into the committed corpus.
FUZZ_WORK=$work "$root/fuzz/minimise.sh" "$target" "$max_len"
exit "$rc"
