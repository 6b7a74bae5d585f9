#!/usr/bin/env bash
# Use case: too-large request parts: a header over LimitRequestFieldSize gives 400, a request line over LimitRequestLine gives 414.
# Source: Apache httpd docs: core — LimitRequestFieldSize, LimitRequestLine
. "$(dirname "$0")/../lib.sh"
big=$(head -c 16000 /dev/zero | tr '\0' c)
expect_status 400 -H "Cookie: a=$big" "$BASE/"
expect_status 414 "$BASE/$(head -c 16384 /dev/zero | tr '\0' u)"
expect_status 200 "$BASE/"
