#!/usr/bin/env bash
# Use case: geospatial indexes (GEOADD/GEODIST/GEOSEARCH) and SORT with BY/GET patterns and STORE.
# Source: Redis docs: Geospatial data type; SORT command
. "$(dirname "$0")/../lib.sh"
k=uc:26:$(uniq_tag)
rcli GEOADD "$k:g" 13.361389 38.115556 Palermo 15.087269 37.502669 Catania >/dev/null
d=$(rcli GEODIST "$k:g" Palermo Catania km); case $d in 166.27*) ;; *) fail "GEODIST wrong: $d";; esac
rcli GEOSEARCH "$k:g" FROMLONLAT 15 37 BYRADIUS 200 km ASC | head -1 | grep -qx Catania || fail "GEOSEARCH wrong"
rcli RPUSH "$k:l" 3 1 2 >/dev/null
for i in 1 2 3; do rcli SET "$k:w_$i" $((10 - i)) >/dev/null; rcli SET "$k:o_$i" "obj$i" >/dev/null; done
out=$(rcli SORT "$k:l" BY "$k:w_*" GET "$k:o_*" | tr '\n' ' ')
[ "$out" = "obj3 obj2 obj1 " ] || fail "SORT BY/GET wrong: $out"
expect_redis 3 SORT "$k:l" STORE "$k:sorted"
rcli DEL "$k:g" "$k:l" "$k:sorted" "$k:w_1" "$k:w_2" "$k:w_3" "$k:o_1" "$k:o_2" "$k:o_3" >/dev/null
