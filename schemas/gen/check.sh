#!/usr/bin/env bash
# Fails (exit 1) when schemas/src/syscalls/syscall_table.rs is not exactly what
# schemas/gen/gen_syscalls.py makes from the pinned tables in
# schemas/gen/linux-v6.18/ (the generator also refuses source tables whose git
# blob ids differ from the pinned upstream ones). CI runs this.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
committed="$here/../src/syscalls/syscall_table.rs"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

python3 "$here/gen_syscalls.py" --output "$tmp"

if ! diff -u "$committed" "$tmp"; then
    echo "schemas/gen/check.sh: syscall_table.rs is stale or hand-edited;" \
         "run: python3 schemas/gen/gen_syscalls.py" >&2
    exit 1
fi
echo "schemas/gen/check.sh: syscall_table.rs matches the generator"
