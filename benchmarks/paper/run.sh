#!/usr/bin/env bash
# Reproduce "Mining Sandboxes for Linux Containers" (Wan et al., ICST 2017)
# on real servers. As root, unattended:
#
#   benchmarks/paper/run.sh [--apps a,b] [--reps N] [--quick] [--no-build] [--mine-only]
#                           [--no-overhead] [--declared-tools none|generic] [--args-compare]
#
# Per app (nginx apache2 node django redis postgresql mariadb, one at a time):
#   1. mine the image under the paper's workload (sandmine mine-image); the
#      observation the profile is compiled from is kept beside it
#      (observation.json), so the profile can be recompiled and audited
#   2. count what the profile allows, per ABI, runtime vs image, and as set
#      differences against Docker's default profile (measured, lib/docker-default.sh)
#   3. run the app's use cases in a fresh container under the mined profile;
#      for a failing case, find the syscalls it needed (lib/diagnose.sh)
#   4. throughput with no filter, Docker's default and the mined profile,
#      interleaved, N repetitions, fresh container each
# then plots (results/*/curve.png, results/convergence.png) and RESULTS.md.
#
# --apps LIST  comma-separated subset (also: busybox, the CI smoke subject)
# --reps N     overhead repetitions per config (default 5; the paper did 10)
# --quick      short workloads and benchmarks (CI smoke; not for figures)
# --no-build   do not run images/build.sh first
# --mine-only  step 1 only (profile, observation, curve per app): no Docker
#              default, counts, use cases, overhead, plots or report; needs
#              RESULTS_DIR
# --no-overhead  skip step 4 (and the plots and RESULTS.md, which need it);
#              needs RESULTS_DIR
# --declared-tools generic  declare the admin tools of every image the same
#              way, fixed before any run (lib/generic-tools.sh): the shell
#              and every program of the image's coreutils package, passed
#              to mine-image with --tools-file (declared-tools.txt)
# --args-compare  also run the use cases under the same profile without its
#              argument rules (lib/name_only.py: each narrowed name back in
#              the name-only allow list), in APP/name-only/, so that the
#              rules' effect on the pass rate is measured in the same run
#              (lib/args_report.py writes the comparison)
# Environment: SANDMINE (binary; default: build with cargo into
# CARGO_TARGET_DIR, default /work/target-paper), RESULTS_DIR (default
# benchmarks/paper/results), PG_MINE_T / SB_MINE_T (mining run lengths),
# MINE_ARGS (more mine-image arguments, e.g. "--reachable off").
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

apps_arg="" reps=5 quick=0 build=1 mine_only=0 overhead=1 declared=none args_compare=0
while (($#)); do
    case $1 in
    --apps) apps_arg=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --no-build) build=0; shift ;;
    --mine-only) mine_only=1; shift ;;
    --no-overhead) overhead=0; shift ;;
    --declared-tools) declared=$2; shift 2 ;;
    --args-compare) args_compare=1; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1" ;;
    esac
done
[[ $(id -u) -eq 0 ]] || die "run as root"
if [[ -n $apps_arg ]]; then IFS=, read -ra apps <<<"$apps_arg"; else apps=("${ALL_APPS[@]}"); fi
for a in "${apps[@]}"; do [[ -n ${PORT[$a]:-} ]] || die "unknown app $a"; done
export QUICK=$quick
((quick)) && export BENCH_T=${BENCH_T:-3}
# a partial run must not replace the full run's results/<app>
((mine_only)) && [[ -z ${RESULTS_DIR:-} ]] && die "--mine-only needs RESULTS_DIR (it would replace results/<app> of the full run)"
((overhead)) || [[ -n ${RESULTS_DIR:-} ]] || die "--no-overhead needs RESULTS_DIR (it would replace results/<app> of the full run)"
[[ $declared == none || $declared == generic ]] || die "--declared-tools: none or generic, not $declared"
RESULTS=${RESULTS_DIR:-$PAPER_DIR/results}
mkdir -p "$RESULTS"
t_start=$SECONDS

# restore the printk rate limit (lib/diagnose.sh lifts it) and remove containers
old_rl=$(sysctl -n kernel.printk_ratelimit)
cleanup() {
    cleanup_all_eval
    sysctl -qw kernel.printk_ratelimit="$old_rl" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------- prerequisites
if [[ -z ${SANDMINE:-} ]]; then
    export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-paper}
    log "building sandmine (cargo build --release, $CARGO_TARGET_DIR)"
    (cd "$REPO" && cargo build --release -q)
    SANDMINE=$CARGO_TARGET_DIR/release/sandmine
fi
export SANDMINE
((mine_only)) || python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib
need_build=()
for a in "${apps[@]}"; do [[ $a == busybox ]] || need_build+=("$a"); done
if ((build)) && ((${#need_build[@]})); then
    log "images: $PAPER_DIR/images/build.sh ${need_build[*]}"
    "$PAPER_DIR/images/build.sh" "${need_build[@]}"
fi
for a in "${apps[@]}"; do docker image inspect "${IMAGE[$a]}" >/dev/null || die "image ${IMAGE[$a]} missing"; done
tools=(httperf wrk gcc jq curl)
for a in "${apps[@]}"; do
    case $a in redis) tools+=(redis-benchmark) ;; postgresql) tools+=(pgbench) ;; mariadb) tools+=(sysbench) ;; esac
done
for t in "${tools[@]}"; do command -v "$t" >/dev/null || die "$t missing (images/build.sh installs the workload tools)"; done

# ------------------------------------------------- Docker's default, measured
dd=$RESULTS/docker-default-x86_64.txt
if ((!mine_only)); then
    log "measuring Docker's default profile (lib/docker-default.sh)"
    "$LIB/docker-default.sh" "$dd" "$RESULTS/.docker-default-work"
fi

# ------------------------------------------------------------------- per app
meta=$RESULTS/run.json
jq -n --arg engine "$(docker version --format '{{.Server.Version}}')" --arg kernel "$(uname -r)" \
    --arg sandmine "$($SANDMINE --version 2>/dev/null || echo '?')" --argjson reps "$reps" --argjson quick "$quick" \
    --arg date "$(date -u +%FT%TZ)" --arg cpus "$(nproc)" --arg commit "$(git -C "$REPO" rev-parse --short HEAD)" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    '{engine:$engine,kernel:$kernel,sandmine:$sandmine,reps:$reps,quick:($quick==1),date:$date,cpus:$cpus,commit:$commit,loadavg_start:$load}' >"$meta"

for app in "${apps[@]}"; do
    r=$RESULTS/$app
    rm -rf "$r"
    mkdir -p "$r"
    t_app=$SECONDS
    # 1. mine
    log "$app: mining ${IMAGE[$app]}"
    t0=$(date +%s.%N)
    rc=0
    extra=()
    if [[ $declared == generic ]]; then
        "$LIB/generic-tools.sh" "${IMAGE[$app]}" >"$r/declared-tools.txt"
        extra+=(--tools-file "$r/declared-tools.txt")
    fi
    # shellcheck disable=SC2206
    extra+=(${MINE_ARGS:-})
    "$SANDMINE" mine-image -q --network host -o "$r/profile.json" --curve "$r/curve.csv" \
        --observation "$r/observation.json" --report "$r/report.txt" "${extra[@]}" \
        --workload "$LIB/workload.sh mine $app" --workload-delay 0s --duration 20m \
        "${IMAGE[$app]}" 2>"$r/mine.stderr" || rc=$?
    t1=$(date +%s.%N)
    cat "$r/mine.stderr" >&2
    [[ $rc -eq 0 && -s $r/profile.json && -s $r/observation.json ]] || die "$app: mine-image failed (exit $rc), see $r/mine.stderr"
    grep -q 'the workload finished (exit status: 0)' "$r/mine.stderr" || die "$app: the mining workload failed, see $r/mine.stderr"
    converge=$(tail -n 1 "$r/curve.csv" | cut -d, -f1)
    jq -n --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')" \
        --argjson converge "${converge:-0}" --arg workload "$("$LIB/describe.sh" "$app")" \
        '{wall_s:$wall, converge_s:$converge, workload:$workload}' >"$r/mining.json"

    if ((mine_only)); then
        log "$app: mined in $((SECONDS - t_app)) s (--mine-only)"
        continue
    fi

    # 2. count
    python3 "$LIB/count.py" "$r/profile.json" "$dd" "$LIB/dangerous.txt" >"$r/counts.json"
    log "$app: $(jq -r '"\(.allowed) allowed, Docker default \(.docker_default), mined-default \(.mined_minus_default|length), default-mined \(.default_minus_mined_count)"' "$r/counts.json")"

    # 3. use cases under the mined profile
    "$LIB/usecases.sh" "$app" "$r"
    if ((args_compare)); then
        mkdir -p "$r/name-only"
        python3 "$LIB/name_only.py" "$r/profile.json" >"$r/name-only/profile.json"
        log "$app: use cases again without the argument rules"
        "$LIB/usecases.sh" "$app" "$r/name-only"
    fi

    # 4. overhead
    ((overhead)) && "$LIB/overhead.sh" "$app" "$r" "$reps"
    log "$app: done in $((SECONDS - t_app)) s"
done

# ---------------------------------------------------------- plots and report
if ((mine_only || !overhead)); then
    jq --argjson s "$((SECONDS - t_start))" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '.total_s = $s | .loadavg_end = $load | .mine_only = true' "$meta" >"$meta.tmp" && mv "$meta.tmp" "$meta"
    log "done in $((SECONDS - t_start)) s (--mine-only); results: $RESULTS"
    exit 0
fi
python3 "$LIB/plot.py" "$RESULTS"
python3 "$LIB/report.py" "$RESULTS" >"$RESULTS/RESULTS.md.tmp"
mv "$RESULTS/RESULTS.md.tmp" "$RESULTS/RESULTS.md"
jq --argjson s "$((SECONDS - t_start))" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" '.total_s = $s | .loadavg_end = $load' "$meta" >"$meta.tmp" && mv "$meta.tmp" "$meta"
if [[ -z ${RESULTS_DIR:-} ]]; then cp "$RESULTS/RESULTS.md" "$PAPER_DIR/RESULTS.md"; fi
log "done in $((SECONDS - t_start)) s; report: $RESULTS/RESULTS.md"
