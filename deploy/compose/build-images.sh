#!/usr/bin/env bash
# Build the images of the local compose fleet (deploy/compose/docker-compose.yml).
# No registry is reachable, so every image is made here from what is
# installed on this host and imported with `docker import`, like the test
# images (tests/images/build.sh): each binary plus exactly the libraries
# `ldd` names for it.
#
# Images:
#   sandmine-compose/nats:1        Debian's nats-server (2.9), run as uid 65534,
#                                  JetStream under /data.
#   sandmine-compose/clickhouse:1  Debian's clickhouse-server (18.16) and its
#                                  libraries, run as uid 65534, data under
#                                  /var/lib/clickhouse; its config is mounted
#                                  from deploy/compose/clickhouse/.
#   sandmine-compose/sandmine:KEY  the given sandmine binary at
#                                  /usr/local/bin/sandmine (the entrypoint),
#                                  its libraries, an empty state directory.
#                                  KEY is the recipe key (the binary's hash),
#                                  so fleets built from different binaries never
#                                  share a tag; :latest names the newest build.
# nats and clickhouse also hold a static busybox (/bin/busybox, Debian's
# busybox-static) for their healthchecks (`busybox wget`); the sandmine image
# holds no shell.
#
# Caching, as in tests/images/build.sh: nats and clickhouse are saved as
# `docker save` tarballs under the cache directory (default
# /var/cache/sandmine/images), named after a recipe key over this script and
# every file that goes in (binaries, libraries). Later runs reuse, in order,
# the engine's image if its org.sandmine.recipe label matches, then the
# tarball, then build afresh. The sandmine image is keyed the same way but is
# not saved as a tarball: its input is a build product, and importing it again
# takes seconds.
#
# Usage: deploy/compose/build-images.sh [SANDMINE_BINARY]
#   SANDMINE_BINARY  default: $SANDMINE_BINARY, else target/release/sandmine
# The last line of stdout is `SANDMINE_IMAGE=sandmine-compose/sandmine:KEY`,
# the variable docker-compose.yml reads (docker-compose.yml defaults to
# sandmine-compose/sandmine:latest).
#
# Environment:
#   SANDMINE_IMAGE_CACHE       cache directory (default /var/cache/sandmine/images)
#   SANDMINE_IMAGES_REBUILD=1  ignore the engine's images and the cache
set -euo pipefail
# ldd follows LD_LIBRARY_PATH, which `cargo test` sets to its own build
# directories: the images hold the system's libraries, at their own paths.
unset LD_LIBRARY_PATH LD_PRELOAD

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${SANDMINE_IMAGE_CACHE:-/var/cache/sandmine/images}
rebuild=${SANDMINE_IMAGES_REBUILD:-0}
binary=${1:-${SANDMINE_BINARY:-$root/target/release/sandmine}}

if [[ ! -x $binary ]]; then
    echo "compose images: no sandmine binary at $binary (cargo build --release, or pass its path)" >&2
    exit 1
fi
binary=$(readlink -f "$binary")

"$root/scripts/start-dockerd.sh" >/dev/null

mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/sandmine-compose-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# libs FILE...: the libraries ldd names for the files (and the dynamic
# loader), one path a line, resolved; nothing for a static file.
libs() {
    local f
    for f in "$@"; do
        ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' || true
    done | sort -u
}

# recipe_key FILE...: a short hash of this script and the files' contents.
recipe_key() {
    {
        sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
        local f
        for f in "$@"; do sha256sum "$(readlink -f "$f")" | cut -d' ' -f1; done
    } | sha256sum | cut -c1-16
}

busybox_bin() {
    local b
    for b in /bin/busybox /usr/bin/busybox; do
        if [[ -x $b ]] && ! ldd "$b" >/dev/null 2>&1; then
            echo "$b"
            return 0
        fi
    done
    echo "compose images: no static busybox found; install busybox-static (scripts/install-deps.sh)" >&2
    return 1
}

# base_rootfs DIR: a merged-/usr skeleton (as Debian 12 has it, so the
# paths ldd prints resolve), /etc/passwd and /etc/group with root and
# nobody, a 1777 /tmp.
base_rootfs() {
    local r=$1
    mkdir -p "$r"/usr/{bin,sbin,lib/x86_64-linux-gnu,lib64,local/bin} "$r"/{etc,tmp,proc,sys,dev,run}
    ln -s usr/bin "$r/bin"
    ln -s usr/sbin "$r/sbin"
    ln -s usr/lib "$r/lib"
    ln -s usr/lib64 "$r/lib64"
    chmod 1777 "$r/tmp"
    cat >"$r/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/nonexistent
nobody:x:65534:65534:nobody:/nonexistent:/nonexistent
PASSWD
    cat >"$r/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
    printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
}

# install_with_libs ROOTFS FILE DEST: FILE at DEST in ROOTFS, and every
# library it loads at its own path; then the loader's cache.
install_with_libs() {
    local r=$1 f=$2 dest=$3 l
    install -D -m 0755 "$f" "$r$dest"
    while read -r l; do
        [[ -n $l ]] || continue
        mkdir -p "$r$(dirname "$l")"
        cp -L "$l" "$r$l"
    done < <(libs "$f")
    printf '/usr/lib/x86_64-linux-gnu\n' >"$r/etc/ld.so.conf"
    ldconfig -r "$r"
}

tar_rootfs() {
    # Owners are kept (numeric): the data directories belong to 65534.
    tar -C "$1" --sort=name --mtime=@0 --numeric-owner --format=gnu -cf - .
}

# ensure_image NAME KEY BUILD_FUNCTION CACHE(0|1) [IMPORT --change ARGS...]
ensure_image() {
    local name=$1 key=$2 build=$3 cached=$4
    shift 4
    local file="$cache/${name//[\/:]/_}-$key.tar"
    local t0=$SECONDS old_id have
    old_id=$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)
    if [[ $rebuild != 1 ]]; then
        have=$(docker image inspect -f '{{index .Config.Labels "org.sandmine.recipe"}}' "$name" 2>/dev/null || true)
        if [[ $have == "$key" ]]; then
            echo "compose images: $name is up to date (recipe $key)"
            if ((cached)) && [[ ! -f $file ]]; then save_cache "$name" "$file"; fi
            return 0
        fi
        if ((cached)) && [[ -f $file ]]; then
            if docker load -q -i "$file" >/dev/null; then
                drop_replaced "$name" "$old_id"
                echo "compose images: $name loaded from $file ($((SECONDS - t0))s)"
                return 0
            fi
            echo "compose images: $file is unreadable; rebuilding" >&2
            rm -f "$file"
        fi
    fi
    echo "compose images: building $name (recipe $key)"
    local rootfs="$work/${name//[\/:]/_}"
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    "$build" "$rootfs"
    tar_rootfs "$rootfs" |
        docker import --change "LABEL org.sandmine.recipe=$key" "$@" - "$name" >/dev/null
    if ((cached)); then save_cache "$name" "$file"; fi
    drop_replaced "$name" "$old_id"
    echo "compose images: built $name ($((SECONDS - t0))s)"
}

# save_cache NAME FILE: `docker save` NAME to FILE atomically; delete the
# tarballs of NAME's other recipes.
save_cache() {
    local name=$1 file=$2 old
    docker save -o "$file.tmp.$$" "$name"
    chmod 0644 "$file.tmp.$$"
    mv -f "$file.tmp.$$" "$file"
    for old in "$cache/${name//[\/:]/_}"-*.tar; do
        [[ $old == "$file" || ! -e $old ]] || rm -f "$old"
    done
}

# drop_replaced NAME OLD_ID: delete the image NAME named before, unless a
# container or another tag still uses it.
drop_replaced() {
    local name=$1 old_id=$2
    if [[ -n $old_id && $old_id != "$(docker image inspect -f '{{.Id}}' "$name")" ]]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
}

# ---- sandmine-compose/nats:1 ------------------------------------------------
nats_bin=/usr/sbin/nats-server
[[ -x $nats_bin ]] || {
    echo "compose images: $nats_bin missing; install nats-server (scripts/install-deps.sh)" >&2
    exit 1
}
build_nats() {
    local r=$1
    base_rootfs "$r"
    install_with_libs "$r" "$nats_bin" /usr/sbin/nats-server
    install -m 0755 "$(busybox_bin)" "$r/usr/bin/busybox"
    install -d -m 0700 -o 65534 -g 65534 "$r/data"
}
mapfile -t nats_inputs < <(printf '%s\n' "$nats_bin" "$(busybox_bin)"; libs "$nats_bin")
ensure_image sandmine-compose/nats:1 "$(recipe_key "${nats_inputs[@]}")" build_nats 1 \
    --change 'USER 65534:65534' \
    --change 'ENTRYPOINT ["/usr/sbin/nats-server"]'

# ---- sandmine-compose/clickhouse:1 ------------------------------------------
ch_bin=/usr/sbin/clickhouse-server
[[ -x $ch_bin ]] || {
    echo "compose images: $ch_bin missing; install clickhouse-server (scripts/install-deps.sh)" >&2
    exit 1
}
build_clickhouse() {
    local r=$1
    base_rootfs "$r"
    install_with_libs "$r" "$ch_bin" /usr/sbin/clickhouse-server
    install -m 0755 "$(busybox_bin)" "$r/usr/bin/busybox"
    # Its time zone: UTC, from the host's tzdata.
    install -D -m 0644 /usr/share/zoneinfo/Etc/UTC "$r/usr/share/zoneinfo/Etc/UTC"
    ln -s Etc/UTC "$r/usr/share/zoneinfo/UTC"
    ln -s /usr/share/zoneinfo/Etc/UTC "$r/etc/localtime"
    printf 'Etc/UTC\n' >"$r/etc/timezone"
    install -d -m 0755 "$r/etc/clickhouse-server"
    install -d -m 0700 -o 65534 -g 65534 "$r/var/lib/clickhouse"
}
mapfile -t ch_inputs < <(printf '%s\n' "$ch_bin" "$(busybox_bin)" /usr/share/zoneinfo/Etc/UTC; libs "$ch_bin")
ensure_image sandmine-compose/clickhouse:1 "$(recipe_key "${ch_inputs[@]}")" build_clickhouse 1 \
    --change 'USER 65534:65534' \
    --change 'ENV TZ=UTC' \
    --change 'ENTRYPOINT ["/usr/sbin/clickhouse-server", "--config-file=/etc/clickhouse-server/config.xml"]'

# ---- sandmine-compose/sandmine:KEY ------------------------------------------
build_sandmine() {
    local r=$1
    base_rootfs "$r"
    install_with_libs "$r" "$binary" /usr/local/bin/sandmine
    # The collector's state directory (a volume; root's, 0700).
    install -d -m 0700 "$r/var/lib/sandmine/collector"
}
mapfile -t sm_inputs < <(printf '%s\n' "$binary"; libs "$binary")
sm_key=$(recipe_key "${sm_inputs[@]}")
sm_image=sandmine-compose/sandmine:$sm_key
ensure_image "$sm_image" "$sm_key" build_sandmine 0 \
    --change 'ENTRYPOINT ["/usr/local/bin/sandmine"]'
old_latest=$(docker image inspect -f '{{.Id}}' sandmine-compose/sandmine:latest 2>/dev/null || true)
docker tag "$sm_image" sandmine-compose/sandmine:latest
# The image :latest named before, if nothing names it now.
if [[ -n $old_latest && $(docker image inspect -f '{{len .RepoTags}}' "$old_latest" 2>/dev/null) == 0 ]]; then
    docker rmi "$old_latest" >/dev/null 2>&1 || true
fi
# Earlier builds' tags, imported over an hour ago, go (an image a container
# still uses stays): a fleet being brought up from one of them right now is
# minutes old, so nothing in use is pulled from under it.
now=$(date +%s)
while read -r tag; do
    [[ $tag == "$sm_image" || $tag == sandmine-compose/sandmine:latest ]] && continue
    created=$(date -d "$(docker image inspect -f '{{.Created}}' "$tag")" +%s 2>/dev/null || echo "$now")
    if ((now - created > 3600)); then
        docker rmi "$tag" >/dev/null 2>&1 || true
    fi
done < <(docker images --format '{{.Repository}}:{{.Tag}}' sandmine-compose/sandmine)
echo "SANDMINE_IMAGE=$sm_image"
