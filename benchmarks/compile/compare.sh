#!/usr/bin/env bash
# compare.sh - the fleet compiler before and after, side by side in one run.
#
# Builds the bench_compile example twice: from the working tree ("new"), and
# from the schemas + policy-compiler sources of BASE_REV ("base", extracted
# with `git archive` into a temporary workspace, with the working tree's
# bench_compile.rs copied in so that both use the same harness and input).
# Then:
#   1. byte identity: `bench_compile 200 1 digest` (every output of the 200
#      pool images and of a shuffled variant with unnamed and x32 calls,
#      under 4 policies, hashed) must print the same lines for both;
#   2. ROUNDS rounds, alternating base and new (order swapped every round),
#      of `bench_compile IMAGES THREADS`: wall and CPU time per image.
#
# Usage: benchmarks/compile/compare.sh
# Environment: BASE_REV=c22274f  IMAGES=10000  THREADS=2  ROUNDS=3
#   CARGO_TARGET_DIR (new build; the base build goes to "$CARGO_TARGET_DIR-base")
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BASE_REV=${BASE_REV:-c22274f}
IMAGES=${IMAGES:-10000}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
TARGET=${CARGO_TARGET_DIR:-/work/target-bench}
TMP=$(mktemp -d /tmp/compile-compare.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

(cd "$REPO" && git archive "$BASE_REV" Cargo.lock schemas policy-compiler) | tar -x -C "$TMP"
# A workspace of the two crates, with the dependency table of BASE_REV.
(cd "$REPO" && git show "$BASE_REV:Cargo.toml") | python3 -c '
import re, sys
t = sys.stdin.read().split("[package]")[0]
t = re.sub(r"members = \[.*?\]", "members = [\"schemas\", \"policy-compiler\"]", t)
t = re.sub(r"\n(collector|aggregator|transport|testsvc|aya) = .*", "", t)
print(t + "\n[profile.release]\ndebug = 1\n")' >"$TMP/Cargo.toml"
cp "$REPO/policy-compiler/examples/bench_compile.rs" "$TMP/policy-compiler/examples/"
(cd "$TMP" && CARGO_TARGET_DIR=$TARGET-base cargo build -q --release -p policy-compiler --example bench_compile)
(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build -q --release -p policy-compiler --example bench_compile)
cp "$TARGET-base/release/examples/bench_compile" "$TMP/base"
cp "$TARGET/release/examples/bench_compile" "$TMP/new"

echo "== byte identity (200 images x 2 variants x 4 policies, every output)"
"$TMP/base" 200 1 digest | grep -v '^generated' >"$TMP/base.digest"
"$TMP/new" 200 1 digest | grep -v '^generated' >"$TMP/new.digest"
if cmp -s "$TMP/base.digest" "$TMP/new.digest"; then
    echo "identical: $(tail -n 1 "$TMP/new.digest")"
else
    diff "$TMP/base.digest" "$TMP/new.digest" | head -n 20
    echo "compare.sh: outputs differ" >&2
    exit 1
fi

echo "== $IMAGES images, base ($BASE_REV) and new, $ROUNDS round(s), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order="base new"; else order="new base"; fi
    for which in $order; do
        "$TMP/$which" "$IMAGES" "$THREADS" | sed -n "s/^compiled/round $r $which: compiled/p"
    done
done
echo "== loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
