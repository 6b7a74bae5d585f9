#!/usr/bin/env bash
# Time and peak memory of `sandmine analyze` on this host's binaries:
# 3 runs each under /usr/bin/time -v, cold cache (every run is a fresh
# process: the per-run sha256 cache starts empty; the page cache is warm
# after the first run unless DROP_CACHES=1). Raw output in results/
# (or $OUT).
#
#   benchmarks/reach/run.sh [SANDMINE] [BINARY...]
#
# SANDMINE defaults to the release build (target/release/sandmine). With
# no BINARY, also postgres's executed binaries in one run (postgres-image).
# ROOT=DIR analyses the BINARYs inside an image's exported root file system
# (`docker export $(docker create IMAGE) | tar -x -C DIR`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-${CARGO_TARGET_DIR:-target}/release/sandmine}
shift || true
targets=("$@")
defaults=$((${#targets[@]} == 0))
if ((defaults)); then
    targets=(/usr/bin/python3 /usr/bin/bash /usr/bin/ls)
    for p in /usr/lib/postgresql/*/bin/postgres /usr/sbin/nginx; do
        [[ -x $p ]] && targets+=("$p")
    done
fi
out=${OUT:-$here/results}
mkdir -p "$out"
{
    echo "# $(date -u +%FT%TZ) $(uname -r) $(nproc) CPUs; $("$bin" --version)"
    echo "# command: $bin analyze --root ${ROOT:-/} FILE... --format json --reach-cache off (3 runs each); load: $(cut -d" " -f1-3 /proc/loadavg)"
} > "$out/summary.txt"
# An image's executed binaries in one run (one analysis per library):
# postgres's, as its Debian image's entrypoint runs them.
groups=()
pg=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1 || true)
if ((defaults)) && [[ -n $pg ]]; then
    groups+=("postgres-image:$pg/postgres $pg/pg_ctl $pg/initdb /usr/bin/bash /usr/bin/sh")
fi
for t in "${targets[@]}" "${groups[@]}"; do
    if [[ $t == *:* ]]; then
        name=${t%%:*}
        read -r -a files <<< "${t#*:}"
    else
        name=$(basename "$t")
        files=("$t")
    fi
    secs=() kbs=()
    for i in 1 2 3; do
        if [[ ${DROP_CACHES:-0} == 1 ]]; then
            sync
            echo 3 > /proc/sys/vm/drop_caches
        fi
        # --reach-cache off: every library analysed (cache.sh measures
        # the host cache).
        /usr/bin/time -v -o "$out/$name.time.$i" "$bin" analyze --root "${ROOT:-/}" "${files[@]}" \
            --format json --reach-cache off > "$out/$name.json"
        secs+=("$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, a, ":"); s = 0; for (k = 1; k <= n; k++) s = s * 60 + a[k]; print s}' "$out/$name.time.$i")")
        kbs+=("$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/$name.time.$i")")
    done
    med_s=$(printf '%s\n' "${secs[@]}" | sort -n | sed -n 2p)
    med_kb=$(printf '%s\n' "${kbs[@]}" | sort -n | sed -n 2p)
    summary=$(python3 - "$out/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ds = d if isinstance(d, list) else [d]
sys_ = {(s["abi"], s["nr"]) for x in ds for s in x["syscalls"]}
objs = {o["sha256"] for x in ds for o in x["objects"]}
lim = lambda k: sum(x["limits"][k] for x in ds)
print("%d files, %d syscalls (union), %d distinct objects, reach_known=%s, nonconst=%d "
      "indirect_calls=%d unresolved_imports=%d missing_libraries=%d"
      % (len(ds), len(sys_), len(objs), all(x["reach_known"] for x in ds),
         lim("nonconst_syscall_sites"), lim("indirect_calls"), lim("unresolved_imports"),
         lim("missing_libraries")))
PY
)
    printf '%-10s median %6.2f s  %7.1f MiB peak  (runs: %s s; %s KB)  %s\n' \
        "$name" "$med_s" "$(echo "$med_kb / 1024" | bc -l)" "${secs[*]}" "${kbs[*]}" "$summary" |
        tee -a "$out/summary.txt"
done
