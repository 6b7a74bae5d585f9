#!/usr/bin/env bash
# Build the local container images of the paper's subjects (ICST 2017,
# "Mining Sandboxes for Linux Containers"), and install the workload tools on
# the host. Run as root. Idempotent: a rerun with nothing changed only checks.
#
#   build.sh [APP...]        APP in: nginx apache2 node django redis postgresql mariadb
#                            (default: all of them, one after the other)
#
# Steps:
#   1. dockerd is started (scripts/start-dockerd.sh) and the host tools are
#      installed with apt when missing: debootstrap httperf redis-tools
#      (redis-benchmark, redis-cli) postgresql-client + postgresql-15 (pgbench
#      ships in postgresql-15 on Debian 12) sysbench mariadb-client curl wrk.
#   2. A Debian 12 minbase rootfs is made with debootstrap, cached as
#      $CACHE/base-bookworm.tar, and imported as sandmine-paper/base:bookworm.
#   3. Each APP is built from APP/Dockerfile (legacy builder, --network host)
#      as sandmine-paper/APP:latest. Its cache key is a hash of its directory
#      and of the base tarball, stored in the label io.sandmine.paper.hash.
#   4. A built image is saved as $CACHE/APP.tar (+ APP.tar.hash). On a rerun:
#      image present with the same hash -> skip; else tarball with the same
#      hash -> docker load; else build.
#
# Environment:
#   SANDMINE_PAPER_CACHE   cache directory (default /var/cache/sandmine/paper-images)
#   SANDMINE_PAPER_FORCE=1 ignore the image and tarball caches of the APPs (rebuild)
#   SANDMINE_PAPER_NO_SAVE=1  do not write docker-save tarballs
#   SANDMINE_PAPER_SKIP_HOST_TOOLS=1  do not check/install the host tools
#   SANDMINE_DEBIAN_MIRROR mirror for debootstrap and the images' apt
#                          (default: the host's own Debian mirror, read from
#                          its apt sources)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${SANDMINE_PAPER_CACHE:-/var/cache/sandmine/paper-images}
# host_mirror: the first Debian archive URI of the host's apt sources
# (deb822 `URIs:` lines, then one-line `deb URI suite` entries) that is not
# the security archive. The project names no mirror of its own.
host_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r $f ]] || continue
        uri=$(awk '
            /^[[:space:]]*#/ { next }
            tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i; next }
            $1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; break } }
        ' "$f" | grep -v -- '-security' | grep -m1 '/debian/\{0,1\}$' || true)
        if [[ -n $uri ]]; then
            echo "${uri%/}"
            return 0
        fi
    done
    return 1
}
mirror=${SANDMINE_DEBIAN_MIRROR:-$(host_mirror || true)}
[[ -n $mirror ]] || {
    echo "build.sh: no Debian mirror in the host's apt sources; set SANDMINE_DEBIAN_MIRROR" >&2
    exit 1
}
base_image=sandmine-paper/base:bookworm
base_tar=$cache/base-bookworm.tar
all_apps=(nginx apache2 node django redis postgresql mariadb)
export DOCKER_BUILDKIT=0 # the legacy builder of dockerd 20.10 (no buildx here)

log() { echo "build.sh: $*"; }
die() {
    echo "build.sh: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root"

apps=("$@")
((${#apps[@]})) || apps=("${all_apps[@]}")
for a in "${apps[@]}"; do
    [[ -f $here/$a/Dockerfile ]] || die "unknown app '$a' (known: ${all_apps[*]})"
done

mkdir -p "$cache"
# One build.sh at a time: they share the cache and the image names.
exec 8>"$cache/.lock"
flock 8

# ---------------------------------------------------------------- 1. host --
"$repo/scripts/start-dockerd.sh" >/dev/null

ensure_host_tools() {
    # command -> Debian package that provides it
    local -A need=(
        [debootstrap]=debootstrap
        [httperf]=httperf
        [redis-benchmark]=redis-tools
        [redis-cli]=redis-tools
        [psql]=postgresql-client
        [pgbench]=postgresql-15
        [sysbench]=sysbench
        [mariadb]=mariadb-client
        [curl]=curl
        [wrk]=wrk
    )
    local missing=() cmd pkg
    for cmd in "${!need[@]}"; do
        pkg=${need[$cmd]}
        # pgbench is a pg_wrapper symlink from postgresql-client-common: it is
        # on PATH even when the real binary (postgresql-15) is not installed.
        if [[ $cmd == pgbench ]]; then
            compgen -G '/usr/lib/postgresql/*/bin/pgbench' >/dev/null && continue
        elif command -v "$cmd" >/dev/null 2>&1; then
            continue
        fi
        [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    log "installing host tools: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && ! dpkg-query -W -f='${Status}' postgresql-15 2>/dev/null | grep -q 'install ok installed'; then
        # pgbench is all we want from the server package: do not let its
        # postinst create (and try to start) a host cluster.
        apt-get install -y -q --no-install-recommends postgresql-common >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql-common >/dev/null; }
        sed -i 's/^#\?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
    fi
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}
[[ ${SANDMINE_PAPER_SKIP_HOST_TOOLS:-0} == 1 ]] || ensure_host_tools

# ------------------------------------------------------------- 2. base -----
image_label() { # IMAGE LABEL -> value, or empty
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null | sed 's/^<no value>$//' || true
}

make_base_tar() {
    local root
    root=$(mktemp -d /var/tmp/sandmine-bookworm.XXXXXX)
    # shellcheck disable=SC2064
    trap "rm -rf '$root'" RETURN
    log "debootstrap --variant=minbase bookworm from $mirror (a few minutes)"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed (log: $cache/debootstrap.log)"; }
    # The same tweaks as Debian's official images (debuerreotype): no service
    # starts during package installs, no recommends, no kept .debs, and apt
    # sees updates and security fixes.
    cat >"$root/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
# Containers built from this image start their server as CMD; no package
# postinst may start a service at build time.
exit 101
EOF
    chmod 755 "$root/usr/sbin/policy-rc.d"
    cat >"$root/etc/apt/apt.conf.d/90sandmine" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
    local sec=${mirror%/debian}/debian-security
    cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $sec bookworm-security main
EOF
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
        "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.bash_history
    : >"$root/etc/machine-id"
    # Docker provides these at run time.
    rm -f "$root/etc/hostname" "$root/etc/resolv.conf"
    tar --numeric-owner --xattrs -C "$root" -cf "$base_tar.tmp" .
    sha256sum "$base_tar.tmp" | cut -c1-64 >"$base_tar.sha256.tmp"
    mv "$base_tar.tmp" "$base_tar"
    mv "$base_tar.sha256.tmp" "$base_tar.sha256"
}

ensure_base() {
    local t0=$SECONDS how
    if [[ ! -f $base_tar || ! -s $base_tar.sha256 ]]; then
        make_base_tar
        how=debootstrapped
    fi
    base_hash=$(cat "$base_tar.sha256")
    if [[ $(image_label "$base_image" io.sandmine.paper.base-hash) == "$base_hash" ]]; then
        log "base        present   $base_image (${base_hash:0:12})"
        return
    fi
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        --change "LABEL io.sandmine.paper.base-hash=$base_hash" \
        --change 'LABEL io.sandmine.paper.app=base' \
        "$base_tar" "$base_image" >/dev/null
    log "base        ${how:-imported}  $base_image (${base_hash:0:12}) in $((SECONDS - t0))s"
}
ensure_base

# ------------------------------------------------------------- 3. apps -----
app_hash() { # APP -> key of its directory and of the base
    (
        cd "$here/$1"
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        echo "base $base_hash"
    ) | sha256sum | cut -c1-16
}

human_size() { numfmt --to=si --suffix=B "$1"; }

status=0
for app in "${apps[@]}"; do
    t0=$SECONDS
    image=sandmine-paper/$app:latest
    hash=$(app_hash "$app")
    tar=$cache/$app.tar
    force=${SANDMINE_PAPER_FORCE:-0}
    how=""
    if [[ $force != 1 && $(image_label "$image" io.sandmine.paper.hash) == "$hash" ]]; then
        how=present
    elif [[ $force != 1 && -f $tar && $(cat "$tar.hash" 2>/dev/null) == "$hash" ]] &&
        docker load -q -i "$tar" >/dev/null && [[ $(image_label "$image" io.sandmine.paper.hash) == "$hash" ]]; then
        how=loaded
    else
        old_id=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
        blog=$cache/$app.build.log
        nocache=()
        [[ $force == 1 ]] && nocache=(--no-cache)
        if ! docker build --network host --pull=false "${nocache[@]}" \
            --label "io.sandmine.paper.app=$app" \
            --label "io.sandmine.paper.hash=$hash" \
            -t "$image" "$here/$app" >"$blog" 2>&1; then
            tail -n 30 "$blog" >&2
            printf 'build.sh: %-11s FAILED    after %ss (log: %s)\n' "$app" "$((SECONDS - t0))" "$blog"
            status=1
            continue
        fi
        how=built
        new_id=$(docker image inspect --format '{{.Id}}' "$image")
        # Drop the image this one replaces, if nothing else names it.
        if [[ -n $old_id && $old_id != "$new_id" ]]; then
            docker rmi "$old_id" >/dev/null 2>&1 || true
        fi
        if [[ ${SANDMINE_PAPER_NO_SAVE:-0} != 1 ]]; then
            docker save -o "$tar.tmp" "$image"
            mv "$tar.tmp" "$tar"
            echo "$hash" >"$tar.hash"
        fi
    fi
    size=$(docker image inspect --format '{{.Size}}' "$image")
    printf 'build.sh: %-11s %-9s %s (%s, hash %s) in %ss\n' "$app" "$how" "$image" "$(human_size "$size")" "$hash" "$((SECONDS - t0))"
done
exit $status
