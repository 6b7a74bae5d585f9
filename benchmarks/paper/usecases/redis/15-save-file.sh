#!/usr/bin/env bash
# Use case: foreground SAVE, then check the RDB file in the data directory from inside the container (CONFIG GET dir/dbfilename, ls).
# Source: Redis docs: Redis persistence — SAVE; Redis administration — backing up the RDB file
. "$(dirname "$0")/../lib.sh"
rcli SET uc:15:k v >/dev/null
expect_redis OK SAVE
dir=$(rcli CONFIG GET dir | sed -n 2p); file=$(rcli CONFIG GET dbfilename | sed -n 2p)
[ -n "$dir" ] && [ -n "$file" ] || fail "CONFIG GET dir/dbfilename empty"
sz=$(dexec stat -c %s "$dir/$file" 2>&1) || fail "RDB file $dir/$file not found in the container: $sz"
[ "$sz" -gt 0 ] || fail "RDB file is empty"
rcli DEL uc:15:k >/dev/null
