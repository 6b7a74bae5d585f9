#!/usr/bin/env bash
# CI smoke of the paper evaluation: one tiny image (sandmine-test/busybox:1,
# httpd on 127.0.0.1:18080, from tests/images/build.sh), every step once with
# short workloads: mine, count, Docker-default difference, use cases (the
# 3 cases of lib/smoke-usecases/), overhead with 1 repetition, plots and the
# report. Results go to benchmarks/paper/results/smoke/. Exits non-zero if
# any step breaks (a failing use case is a finding, not a broken step).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=$here/results/smoke
docker image inspect sandmine-test/busybox:1 >/dev/null 2>&1 || "$repo/tests/images/build.sh"
t0=$SECONDS
RESULTS_DIR=$out "$here/run.sh" --apps busybox --reps 1 --quick --no-build
# every artefact of every step must be there
for f in docker-default-x86_64.txt run.json RESULTS.md convergence.png \
    busybox/profile.json busybox/observation.json busybox/curve.csv busybox/curve.png busybox/mining.json \
    busybox/counts.json busybox/usecases.json busybox/overhead.json; do
    [[ -s $out/$f ]] || { echo "smoke.sh: missing $out/$f" >&2; exit 1; }
done
jq -e '.allowed > 20 and .docker_default > 200 and (.mined_minus_default | length) < 5' "$out/busybox/counts.json" >/dev/null ||
    { echo "smoke.sh: implausible counts" >&2; exit 1; }
jq -e '.total == 3' "$out/busybox/usecases.json" >/dev/null || { echo "smoke.sh: use cases did not run" >&2; exit 1; }
jq -e '[.configs[].median] | all(. != null and . > 0)' "$out/busybox/overhead.json" >/dev/null ||
    { echo "smoke.sh: an overhead measurement failed" >&2; exit 1; }
echo "smoke.sh: ok in $((SECONDS - t0)) s ($out/RESULTS.md)"
