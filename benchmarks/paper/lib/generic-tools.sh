#!/usr/bin/env bash
# The declared admin tools of an image, chosen the same way for every image
# and fixed before any run judged by the use cases (issue 10: "a fixed
# generic set, the shell and coreutils"): /bin/sh, then every program that
# the image's coreutils package installs in a bin directory, read from the
# image's own dpkg file list. Nothing here depends on an app or on which
# use cases fail.
#   generic-tools.sh IMAGE > declared-tools.txt
set -euo pipefail
image=$1
echo "# the shell and coreutils of $image (lib/generic-tools.sh)"
echo /bin/sh
docker run --rm --network none --entrypoint /bin/cat "$image" /var/lib/dpkg/info/coreutils.list |
    grep -E '^/(usr/)?s?bin/[^/]+$' | sort -u
