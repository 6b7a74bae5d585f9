#!/usr/bin/env bash
# Offline checks of deploy/ (a step of scripts/test.sh). Needs no cluster,
# no running systemd and no network: systemd-analyze, promtool and yamllint
# from Debian, and the Kubernetes validators cached under
# /var/cache/sandmine/deploy by scripts/install-deps.sh.
#
# systemd (deploy/systemd/):
#   1. `systemd-analyze verify` on every unit in deploy/systemd/. Verify
#      insists that ExecStart='s binary exists, so the units are checked
#      from a copy whose /usr/local/bin/sandmine points at a stub; and it
#      exits 0 on unknown keys, so any output at all is a failure.
#   2. `systemd-analyze security --offline=yes` per service, failing when a
#      unit's exposure rises above the score recorded in THRESHOLDS below
#      (and in deploy/README.md).
#   3. deploy/systemd/security.txt (the raw output of 2, committed) is
#      current: a change to a unit that changes its review must update it
#      (`scripts/check-deploy.sh --update` rewrites it).
# Kubernetes (deploy/kubernetes/):
#   4. `kubectl kustomize` of each overlay renders, with the expected number
#      of objects (kubernetes-validate passes empty input, so emptiness is
#      checked here);
#   5. `kubernetes-validate --strict` of each rendered overlay against
#      Kubernetes $K8S_VERSION (unknown fields are errors);
#   6. scripts/check-k8s-manifests.py: sandmine's own invariants (the
#      collector's exact capabilities, volumes and proc_root, restricted pods
#      in `sandmine`, requests and limits, replicas, PDB, no RBAC, ...).
#      The ConfigMaps' TOML is checked by the real binary in
#      tests/deploy_config_cli.rs.
# Alerts (deploy/prometheus/):
#   7. `promtool check rules`, and `promtool test rules` (one unit test per
#      alert, firing and not firing).
# Everything:
#   8. `yamllint` with deploy/.yamllint.yml on deploy/'s own YAML.
#   9. `check-jsonschema` of the SeccompProfile CRs sandmine emits (the
#      policy compiler's golden outputs, kept byte-equal to its renderer by
#      policy-compiler/tests/golden.rs) and of SPO's own examples
#      (deploy/schemas/spo-examples/) against
#      deploy/schemas/spo-seccompprofile.schema.json, derived from the
#      pinned SPO release's CRD (scripts/spo-schema.py).
# Compose (deploy/compose/):
#  10. `docker-compose config -q` of docker-compose.yml (the schema of file
#      format 2.4, variable interpolation, the collector's capabilities file
#      it extends), with each capabilities file (caps/) and with the
#      docker-socket.yml override. Its YAML is in 8.
#  11. Each check is known to check: a deliberately broken sample must make
#      each of 1-2, 4-9 and 10 fail. If one passes, this script fails.
#
# Usage: scripts/check-deploy.sh [--update]
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
units=$root/deploy/systemd
report=$units/security.txt

# Exposure x 10 (systemd-analyze's --threshold scale): the recorded scores.
declare -A THRESHOLDS=(
    [sandmine-collect.service]=22
    [sandmine-aggregate.service]=14
    [sandmine-publish.service]=15
)

update=0
case ${1:-} in
--update) update=1 ;;
"") ;;
*)
    echo "check-deploy: unknown argument $1 (see the header)" >&2
    exit 2
    ;;
esac

# The Kubernetes validators, cached outside the checkout by install-deps.sh.
deploy_cache=/var/cache/sandmine/deploy
KUBECTL=$deploy_cache/bin/kubectl
KVALIDATE=$deploy_cache/py/bin/kubernetes-validate
CHECK_JSONSCHEMA=$deploy_cache/py/bin/check-jsonschema
DEPLOY_PY=$deploy_cache/py/bin/python
K8S_VERSION=1.33.0 # kubectl's own minor (the npm package's kubectl v1.33)
K8S_OBJECTS=17     # objects the base renders (deploy/README.md lists them)
# What an overlay adds to the base: nfs-profiles' PersistentVolume, the sync
# DaemonSet, its ServiceAccount and the public key's ConfigMap.
declare -A K8S_EXTRA=([nfs-profiles]=4)
for tool in systemd-analyze promtool yamllint docker-compose "$KUBECTL" "$KVALIDATE" "$CHECK_JSONSCHEMA" "$DEPLOY_PY"; do
    command -v "$tool" >/dev/null || {
        echo "check-deploy: $tool missing; run scripts/install-deps.sh" >&2
        exit 1
    }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '#!/bin/sh\nexit 0\n' >"$work/sandmine"
chmod 755 "$work/sandmine"
mkdir "$work/units" "$work/broken"

# stage DIR FILE...: copies of the units, the binary path on the stub.
stage() {
    local dir=$1 f
    shift
    for f in "$@"; do
        sed "s|/usr/local/bin/sandmine|$work/sandmine|g" "$f" >"$dir/$(basename "$f")"
    done
}

# verify FILE...: rc 0 and no output, or fail with the output.
verify() {
    local out rc=0
    out=$(systemd-analyze verify --man=no "$@" 2>&1) || rc=$?
    if ((rc != 0)) || [[ -n $out ]]; then
        printf '%s\n' "$out"
        return 1
    fi
}

# security UNIT-FILE: the offline review; fails above the unit's threshold.
security() {
    local name
    name=$(basename "$1")
    systemd-analyze security --offline=yes --no-pager \
        --threshold="${THRESHOLDS[$name]}" "$1" 2>&1
}

fail=0
shopt -s nullglob
all=("$units"/*.service "$units"/*.timer)
services=("$units"/*.service)
if ((${#services[@]} == 0)); then
    echo "check-deploy: no units in $units" >&2
    exit 1
fi
stage "$work/units" "${all[@]}"

echo "== systemd-analyze verify (${#all[@]} units)"
if verify "$work"/units/*; then
    echo "ok"
else
    echo "check-deploy: systemd-analyze verify failed" >&2
    fail=1
fi

echo "== systemd-analyze security --offline=yes"
fresh=$work/security.txt
{
    echo "# systemd-analyze security --offline=yes UNIT (systemd $(systemd-analyze --version | sed -n '1s/^systemd //p'))"
    echo "# written by scripts/check-deploy.sh --update; checked by scripts/check-deploy.sh"
} >"$fresh"
for f in "${services[@]}"; do
    name=$(basename "$f")
    [[ -n ${THRESHOLDS[$name]:-} ]] || {
        echo "check-deploy: no threshold for $name" >&2
        fail=1
        continue
    }
    rc=0
    out=$(security "$work/units/$name") || rc=$?
    {
        echo
        echo "\$ systemd-analyze security --offline=yes $name"
        printf '%s\n' "$out"
    } >>"$fresh"
    printf '%s\n' "$out" | tail -n 1
    if ((rc != 0)); then
        echo "check-deploy: $name is above its recorded exposure ${THRESHOLDS[$name]}/10" >&2
        fail=1
    fi
done

if ((update)); then
    cp "$fresh" "$report"
    echo "check-deploy: wrote $report"
elif ! diff -u "$report" "$fresh"; then
    echo "check-deploy: $report is stale (scripts/check-deploy.sh --update)" >&2
    fail=1
fi

echo "== systemd: the checks check (deliberately broken samples)"
collect=$work/units/sandmine-collect.service
# A typo'd directive: verify must complain.
sed 's/^NoNewPrivileges=/NoNewPrivilege=/' "$collect" >"$work/broken/sandmine-collect.service"
if verify "$work/broken/sandmine-collect.service" >/dev/null; then
    echo "check-deploy: verify accepted a unit with a typo'd directive (NoNewPrivilege=)" >&2
    fail=1
else
    echo "ok: verify rejects a typo'd directive"
fi
# Hardening stripped: the security review must exceed the threshold.
grep -vE '^(Protect|Private|Restrict|CapabilityBoundingSet|NoNewPrivileges|MemoryDeny|LockPersonality|SystemCallArchitectures)' \
    "$collect" >"$work/broken/sandmine-collect.service"
if security "$work/broken/sandmine-collect.service" >/dev/null; then
    echo "check-deploy: the security review accepted a unit with its hardening stripped" >&2
    fail=1
else
    echo "ok: the security review rejects a unit with its hardening stripped"
fi

# ------------------------------------------------------------- Kubernetes
k8s=$root/deploy/kubernetes
prom=$root/deploy/prometheus
schema=$root/deploy/schemas/spo-seccompprofile.schema.json
mkdir "$work/k8s"

# expect_fail WHAT PATTERN CMD...: CMD must fail on a broken sample, saying
# PATTERN (an extended regex), so that it failed for the reason meant.
expect_fail() {
    local what=$1 pattern=$2
    shift 2
    if "$@" >"$work/expect_fail.out" 2>&1; then
        echo "check-deploy: $what: the check passed a deliberately broken sample" >&2
        fail=1
    elif ! grep -qE -- "$pattern" "$work/expect_fail.out"; then
        echo "check-deploy: $what: it failed, but without saying /$pattern/:" >&2
        head -n 20 "$work/expect_fail.out" >&2
        fail=1
    else
        echo "ok: $what"
    fi
}

# render DIR OUT [N]: kustomize DIR into OUT, which must hold N objects
# ($K8S_OBJECTS by default).
render() {
    "$KUBECTL" kustomize "$1" >"$2" || return 1
    local n want=${3:-$K8S_OBJECTS}
    n=$(grep -c '^kind: ' "$2" || true)
    if ((n != want)); then
        echo "check-deploy: $1 rendered $n objects, not $want" >&2
        return 1
    fi
}

# k8s_validate FILE: strict schema validation; empty input is a failure
# (kubernetes-validate passes it).
k8s_validate() {
    [[ -s $1 ]] && grep -q '^kind: ' "$1" || {
        echo "check-deploy: $1 is empty" >&2
        return 1
    }
    "$KVALIDATE" --strict --quiet -k "$K8S_VERSION" "$1"
}

invariants() { "$DEPLOY_PY" "$root/scripts/check-k8s-manifests.py" <"$1"; }

lint() { yamllint -c "$root/deploy/.yamllint.yml" -s "$@"; }

# spo_check FILE...: every YAML document of the files, split into one JSON
# file each, against the schema; fails on a file without a document.
spo_check() {
    local dir n
    dir=$(mktemp -d -p "$work")
    n=$("$DEPLOY_PY" - "$dir" "$@" <<'PY'
import json, os, sys, yaml
out = sys.argv[1]
n = 0
for path in sys.argv[2:]:
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d is not None]
    if not docs:
        sys.exit(f"{path}: no YAML document")
    for i, d in enumerate(docs):
        with open(os.path.join(out, f"{n:05d}.json"), "w") as g:
            json.dump(d, g)
        n += 1
print(n)
PY
    ) || return 1
    "$CHECK_JSONSCHEMA" --schemafile "$schema" "$dir"/*.json >/dev/null || {
        "$CHECK_JSONSCHEMA" --schemafile "$schema" "$dir"/*.json | head -n 20 >&2
        return 1
    }
    echo "$n"
}

overlays=("$k8s"/overlays/*/)
echo "== kubectl kustomize (${#overlays[@]} overlays), kubernetes-validate --strict, invariants"
for o in "${overlays[@]}"; do
    o=${o%/}
    name=$(basename "$o")
    out=$work/k8s/$name.yaml
    want=$((K8S_OBJECTS + ${K8S_EXTRA[$name]:-0}))
    if ! render "$o" "$out" "$want"; then
        echo "check-deploy: kubectl kustomize $o failed" >&2
        fail=1
        continue
    fi
    if ! k8s_validate "$out"; then
        echo "check-deploy: kubernetes-validate --strict rejected overlay $name" >&2
        fail=1
    fi
    if ! invariants "$out"; then
        echo "check-deploy: overlay $name breaks sandmine's invariants" >&2
        fail=1
    fi
    echo "ok: $name ($want objects)"
done

echo "== promtool check rules, promtool test rules"
if promtool check rules "$prom/sandmine.rules.yml" && (cd "$prom" && promtool test rules sandmine.rules.test.yml); then
    echo "ok"
else
    echo "check-deploy: promtool failed on deploy/prometheus" >&2
    fail=1
fi

echo "== yamllint"
own_yaml=("$root/deploy/.yamllint.yml" "$k8s" "$prom" "$root/deploy/compose")
if lint "${own_yaml[@]}"; then
    echo "ok"
else
    echo "check-deploy: yamllint failed" >&2
    fail=1
fi

echo "== check-jsonschema: SeccompProfile CRs against the pinned SPO CRD's schema"
mapfile -t emitted < <(find "$root/policy-compiler/tests/fixtures" -name seccompprofile.yaml | sort)
examples=("$root"/deploy/schemas/spo-examples/*.yaml)
if ((${#emitted[@]} == 0)); then
    echo "check-deploy: no SeccompProfile CRs of sandmine's found" >&2
    fail=1
elif n=$(spo_check "${emitted[@]}"); then
    echo "ok: $n CRs sandmine emits (${#emitted[@]} files)"
else
    echo "check-deploy: sandmine's SeccompProfile CRs do not match SPO's schema" >&2
    fail=1
fi
if n=$(spo_check "${examples[@]}"); then
    echo "ok: $n of SPO's example CRs (${#examples[@]} files)"
else
    echo "check-deploy: SPO's own examples do not match the schema derived from its CRD" >&2
    fail=1
fi

echo "== docker-compose config -q"
compose=$root/deploy/compose
# compose_check FILE...: the files as one project, as `docker-compose up`
# in deploy/compose would read them.
compose_check() {
    local args=() f
    for f in "$@"; do args+=(-f "$f"); done
    (cd "$compose" && docker-compose --project-directory "$compose" "${args[@]}" config -q)
}
for caps in "$compose"/caps/*.yml; do
    caps=$(basename "$caps" .yml)
    if SANDMINE_COLLECTOR_CAPS=$caps compose_check "$compose/docker-compose.yml" &&
        SANDMINE_COLLECTOR_CAPS=$caps compose_check "$compose/docker-compose.yml" "$compose/docker-socket.yml"; then
        echo "ok: docker-compose.yml, and with docker-socket.yml (SANDMINE_COLLECTOR_CAPS=$caps)"
    else
        echo "check-deploy: docker-compose config rejected deploy/compose (SANDMINE_COLLECTOR_CAPS=$caps)" >&2
        fail=1
    fi
done

echo "== Kubernetes, alerts, YAML, compose: the checks check (deliberately broken samples)"
nats=$work/k8s/nats.yaml
b=$work/broken
# kustomize: a kustomization naming a missing resource.
mkdir "$b/kustomize"
cp -r "$k8s/base" "$b/kustomize/base"
sed -i 's/^  - publish.yaml$/  - publsh.yaml/' "$b/kustomize/base/kustomization.yaml"
expect_fail "kustomize rejects a missing resource" "publsh.yaml" render "$b/kustomize/base" "$b/rendered.yaml"
# kustomize: the output with objects missing.
mkdir "$b/count"
cp -r "$k8s/base" "$b/count/base"
sed -i '/^  - publish.yaml$/d' "$b/count/base/kustomization.yaml"
expect_fail "the object count rejects a base without its CronJob and volume" \
    "rendered 15 objects, not $K8S_OBJECTS" render "$b/count/base" "$b/rendered.yaml"
# kubernetes-validate: empty input, a misspelt field, a wrong type.
: >"$b/empty.yaml"
expect_fail "kubernetes-validate (with the emptiness check) rejects empty input" "is empty" k8s_validate "$b/empty.yaml"
sed 's/^\( *\)readOnlyRootFilesystem: true$/\1readOnlyRootFilesystem: true\n\1readOnlyRootFilesytem: true/' "$nats" >"$b/typo.yaml"
expect_fail "kubernetes-validate --strict rejects a misspelt field" "readOnlyRootFilesytem" k8s_validate "$b/typo.yaml"
sed 's/^  replicas: 2$/  replicas: two/' "$nats" >"$b/type.yaml"
expect_fail "kubernetes-validate rejects a string for replicas" "'two' is not of type 'integer'" k8s_validate "$b/type.yaml"
# invariants: the sync DaemonSet installing unsigned profiles.
nfs=$work/k8s/nfs-profiles.yaml
sed '/^ *- --public-key-file$/{N;d}' "$nfs" >"$b/unsigned.yaml"
expect_fail "the invariants reject a sync DaemonSet that installs unsigned profiles" \
    "must run sync-profiles with --public-key-file" invariants "$b/unsigned.yaml"
# invariants: one more capability, one replica, a hostPID.
sed 's/^\( *\)- SYS_PTRACE$/&\n\1- SYS_ADMIN/' "$nats" >"$b/caps.yaml"
expect_fail "the invariants reject CAP_SYS_ADMIN on the collector" "adds capabilities .*SYS_ADMIN" invariants "$b/caps.yaml"
sed 's/^  replicas: 2$/  replicas: 1/' "$nats" >"$b/replicas.yaml"
expect_fail "the invariants reject one aggregator replica" "1 replica" invariants "$b/replicas.yaml"
sed 's|^\( *\)proc_root = "/host/proc"$|\1proc_root = "/proc"|' "$nats" >"$b/proc.yaml"
expect_fail "the invariants reject the container's own /proc as proc_root" "proc_root is /proc" invariants "$b/proc.yaml"
# invariants: a runtime socket. The cri-containerd overlay's CRI socket
# passes (above); Docker's socket in its place, or the CRI socket mounted
# where collector.cri_socket does not name it, does not.
cri=$work/k8s/cri-containerd.yaml
sed 's|^\( *\)path: /run/containerd/containerd.sock$|\1path: /var/run/docker.sock|' "$cri" >"$b/docker-sock.yaml"
expect_fail "the invariants reject Docker's socket on the collector" \
    "mounts the runtime socket /var/run/docker.sock" invariants "$b/docker-sock.yaml"
sed 's|mountPath: /run/cri/runtime.sock$|mountPath: /run/other.sock|' "$cri" >"$b/cri-path.yaml"
expect_fail "the invariants reject a CRI socket mounted where cri_socket does not name it" \
    "not exactly one CRI socket of type Socket at collector.cri_socket" invariants "$b/cri-path.yaml"
# promtool: a syntax error; a rule whose `for:` changed fails its unit test.
mkdir "$b/prom"
sed 's/expr: up{job="sandmine-collector"} == 0/expr: up{job="sandmine-collector" == 0/' \
    "$prom/sandmine.rules.yml" >"$b/prom/sandmine.rules.yml"
expect_fail "promtool check rules rejects a PromQL syntax error" "parse error" promtool check rules "$b/prom/sandmine.rules.yml"
sed '0,/for: 5m/s//for: 1m/' "$prom/sandmine.rules.yml" >"$b/prom/sandmine.rules.yml"
cp "$prom/sandmine.rules.test.yml" "$b/prom/"
expect_fail "promtool test rules rejects SandmineCollectorDown firing after 1m, not 5m" \
    "alertname: SandmineCollectorDown, time: 7m" bash -c "cd '$b/prom' && promtool test rules sandmine.rules.test.yml"
# yamllint: a duplicated key.
sed 's/^  replicas: 2$/  replicas: 2\n  replicas: 3/' "$k8s/base/aggregator.yaml" >"$b/dup.yaml"
expect_fail "yamllint rejects a duplicated key" "duplication of key" lint "$b/dup.yaml"
# check-jsonschema: a misspelt action, an unknown field, an upper-case name.
one=${emitted[0]}
sed '0,/SCMP_ACT_ALLOW/s//SCMP_ACT_ALOW/' "$one" >"$b/action.yaml"
expect_fail "check-jsonschema rejects an unknown seccomp action" "SCMP_ACT_ALOW" spo_check "$b/action.yaml"
sed '0,/^  syscalls:$/s//  syscall:/' "$one" >"$b/field.yaml"
expect_fail "check-jsonschema rejects an unknown spec field" "'syscall' was unexpected" spo_check "$b/field.yaml"
sed '0,/^  name: \(.*\)$/s//  name: UPPER-\1/' "$one" >"$b/name.yaml"
expect_fail "check-jsonschema rejects a name that is no DNS subdomain" "UPPER-.* does not match" spo_check "$b/name.yaml"
# docker-compose: a misspelt service key; capabilities from no file.
sed 's/^    read_only: true$/    read_onyl: true/' "$compose/docker-compose.yml" >"$b/compose-key.yml"
expect_fail "docker-compose config rejects a misspelt service key" "read_onyl" compose_check "$b/compose-key.yml"
expect_fail "docker-compose config rejects an unknown SANDMINE_COLLECTOR_CAPS" "caps/sys-admn.yml" \
    env SANDMINE_COLLECTOR_CAPS=sys-admn bash -c "cd '$compose' && docker-compose config -q"

if ((fail)); then
    echo "check-deploy: FAILED" >&2
    exit 1
fi
echo "check-deploy: all passed"
