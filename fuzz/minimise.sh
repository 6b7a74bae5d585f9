#!/usr/bin/env bash
# Minimise a target's working corpus into the committed one (fuzz/README.md).
#
# Usage: fuzz/minimise.sh TARGET [MAX_LEN]
#
# A set cover of the working corpus ($FUZZ_WORK/corpus/TARGET) by coverage
# edges (hit counts and comparison operands left out, which keeps it to a
# few hundred small files) replaces fuzz/corpus/TARGET, which CI replays.
set -euo pipefail

target=${1:?usage: minimise.sh TARGET [MAX_LEN]}
max_len=${2:-4096}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${FUZZ_WORK:-/var/tmp/sandmine-fuzz}
bin=$work/target/x86_64-unknown-linux-gnu/release/$target
min=$work/min/$target
rm -rf "$min" && mkdir -p "$min"
nice -n 10 "$bin" -set_cover_merge=1 -use_counters=0 -use_cmp=0 "-max_len=$max_len" \
    "$min" "$work/corpus/$target" > "$work/$target.merge.log" 2>&1
rm -rf "$root/fuzz/corpus/$target"
cp -r "$min" "$root/fuzz/corpus/$target"
echo "$target: $(ls "$min" | wc -l) files, $(cat "$min"/* | wc -c) bytes in fuzz/corpus/$target"
