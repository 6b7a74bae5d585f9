#!/usr/bin/env bash
# Build sandmine's local test images. No registry is reachable, so every image
# is made here from packages installed on the host and imported with
# `docker import`.
#
# Images:
#   sandmine-test/busybox:1   static busybox (Debian's busybox-static) with its
#                             applet links, /www/index.html ("sandmine-ok"),
#                             minimal /etc/passwd and /etc/group.
#                             CMD: busybox httpd on 127.0.0.1:18080 serving /www
#                             (meant for --network host; override the port via
#                             the command).
#
# Each image is saved as a `docker save` tarball under the cache directory
# (default /var/cache/sandmine/images, outside the checkout), named after a key
# that covers this script and its inputs. Later runs reuse, in order:
#   1. the image already in the engine, if its org.sandmine.recipe label matches;
#   2. the cached tarball (`docker load`);
#   3. a fresh build (which then fills the cache).
# Tarballs of an older recipe are deleted.
#
# Environment:
#   SANDMINE_IMAGE_CACHE   cache directory (default /var/cache/sandmine/images)
#   SANDMINE_IMAGES_REBUILD=1  ignore the engine's image and the cache
#
# Starts dockerd first if it is not answering (scripts/start-dockerd.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${SANDMINE_IMAGE_CACHE:-/var/cache/sandmine/images}
rebuild=${SANDMINE_IMAGES_REBUILD:-0}

"$root/scripts/start-dockerd.sh" >/dev/null

mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/sandmine-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

# A short hash of the given files and strings: the recipe key.
recipe_key() {
    {
        sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
        for f in "$@"; do
            if [[ -f $f ]]; then sha256sum "$f" | cut -d' ' -f1; else printf '%s\n' "$f"; fi
        done
    } | sha256sum | cut -c1-16
}

# Deterministic-ish tar of a directory onto stdout.
tar_rootfs() {
    tar -C "$1" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
        --format=gnu -cf - .
}

# save_cache NAME FILE: `docker save` NAME to FILE atomically, and delete the
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

# drop_replaced NAME OLD_ID: the image NAME used to name is now untagged;
# delete it, unless a container still uses it.
drop_replaced() {
    local name=$1 old_id=$2
    if [[ -n $old_id && $old_id != "$(docker image inspect -f '{{.Id}}' "$name")" ]]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
}

# ensure_image NAME KEY BUILD_FUNCTION [IMPORT --change ARGS...]
# Makes sure the engine holds NAME built from recipe KEY.
ensure_image() {
    local name=$1 key=$2 build=$3
    shift 3
    local file="$cache/${name//[\/:]/_}-$key.tar"
    local t0=$SECONDS old_id
    old_id=$(docker image inspect -f '{{.Id}}' "$name" 2>/dev/null || true)

    if [[ $rebuild != 1 ]]; then
        local have
        have=$(docker image inspect -f '{{index .Config.Labels "org.sandmine.recipe"}}' "$name" 2>/dev/null || true)
        if [[ $have == "$key" ]]; then
            echo "images: $name is up to date (recipe $key)"
            [[ -f $file ]] || save_cache "$name" "$file"
            return 0
        fi
        if [[ -f $file ]]; then
            if docker load -q -i "$file" >/dev/null; then
                drop_replaced "$name" "$old_id"
                echo "images: $name loaded from $file ($((SECONDS - t0))s)"
                return 0
            fi
            echo "images: $file is unreadable; rebuilding" >&2
            rm -f "$file"
        fi
    fi

    echo "images: building $name (recipe $key)"
    local rootfs="$work/${name//[\/:]/_}"
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    "$build" "$rootfs"
    tar_rootfs "$rootfs" |
        docker import --change "LABEL org.sandmine.recipe=$key" "$@" - "$name" >/dev/null
    save_cache "$name" "$file"
    drop_replaced "$name" "$old_id"
    echo "images: built $name -> $file ($((SECONDS - t0))s)"
}

# ---- sandmine-test/busybox:1 ----------------------------------------------

busybox_bin() {
    local b
    for b in /bin/busybox /usr/bin/busybox; do
        # Only a static busybox runs in an empty rootfs.
        if [[ -x $b ]] && ! ldd "$b" >/dev/null 2>&1; then
            echo "$b"
            return 0
        fi
    done
    echo "images: no static busybox found; install busybox-static (scripts/install-deps.sh)" >&2
    return 1
}

build_busybox() {
    local r=$1 bb applet
    bb=$(busybox_bin)
    mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,www,proc,sys,dev,var/tmp,run}
    chmod 1777 "$r/tmp" "$r/var/tmp"
    chmod 0700 "$r/root"
    install -m 0755 "$bb" "$r/bin/busybox"
    # Applet links, as `busybox --install -s` would make them.
    while read -r applet; do
        case $applet in
        bin/busybox | linuxrc | "") continue ;;
        esac
        mkdir -p "$r/$(dirname "$applet")"
        ln -sf /bin/busybox "$r/$applet"
    done < <("$r/bin/busybox" --list-full)
    printf 'sandmine-ok\n' >"$r/www/index.html"
    cat >"$r/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
    cat >"$r/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
    printf 'hosts: files dns\n' >"$r/etc/nsswitch.conf"
}

bb=$(busybox_bin)
ensure_image sandmine-test/busybox:1 "$(recipe_key "$bb")" build_busybox \
    --change 'CMD ["/bin/busybox","httpd","-f","-v","-p","127.0.0.1:18080","-h","/www"]'
