#!/usr/bin/env bash
# Use case: HyperLogLog (PFADD/PFCOUNT/PFMERGE) and bitmaps (SETBIT/BITCOUNT/BITOP/BITPOS/BITFIELD).
# Source: Redis docs: HyperLogLog and Bitmaps data types
. "$(dirname "$0")/../lib.sh"
k=uc:25:$(uniq_tag)
rcli PFADD "$k:a" $(seq 1 100) >/dev/null; rcli PFADD "$k:b" $(seq 51 150) >/dev/null
expect_redis OK PFMERGE "$k:u" "$k:a" "$k:b"
c=$(rcli PFCOUNT "$k:u"); [ "$c" -ge 145 ] && [ "$c" -le 155 ] || fail "PFCOUNT of the union off: $c"
for b in 1 3 5 7 100; do rcli SETBIT "$k:bm" $b 1 >/dev/null; done
expect_redis 5 BITCOUNT "$k:bm"
expect_redis 1 BITPOS "$k:bm" 1
rcli SETBIT "$k:bm2" 3 1 >/dev/null
rcli BITOP AND "$k:and" "$k:bm" "$k:bm2" >/dev/null
expect_redis 1 BITCOUNT "$k:and"
expect_redis 0 BITFIELD "$k:bf" INCRBY u8 0 256
rcli DEL "$k:a" "$k:b" "$k:u" "$k:bm" "$k:bm2" "$k:and" "$k:bf" >/dev/null
