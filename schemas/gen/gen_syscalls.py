#!/usr/bin/env python3
"""Generate schemas/src/syscalls/syscall_table.rs from the pinned Linux tables.

Inputs (committed verbatim under schemas/gen/linux-v6.18/, see README.md there
for where each file came from):

  arch/x86/entry/syscalls/syscall_64.tbl   -> X86_64 (abi common|64)
                                              X32    (abi common|x32)
  arch/x86/entry/syscalls/syscall_32.tbl   -> I386   (every entry)
  scripts/syscall.tbl                      -> AARCH64 (abi in arm64's list)
  arch/arm64/kernel/Makefile.syscalls      -> the arm64 list's extra ABIs

The arm64 list is "common,64" (the default that scripts/Makefile.asm-headers
gives every 64-bit architecture: `syscall_abis_64 += common,64`) plus the words
that arch/arm64/kernel/Makefile.syscalls appends with `syscall_abis_64 += ...`.

x32 numbers are the table numbers, i.e. WITHOUT __X32_SYSCALL_BIT
(0x40000000); the kernel ORs that bit in at the ABI boundary.

Every named entry is kept, including ones with no entry point (afs_syscall,
tuxcall, uselib on x86_64, ...): the kernel reserves those numbers.

Before generating, every input's git blob id is checked against the id pinned
below, so the output can only come from the cited upstream files.

Usage:
  gen_syscalls.py            write schemas/src/syscalls/syscall_table.rs
  gen_syscalls.py -o PATH    write PATH instead ("-" for stdout)

Python 3 standard library only.
"""

import argparse
import hashlib
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.join(HERE, "linux-v6.18")
DEFAULT_OUT = os.path.join(HERE, "..", "src", "syscalls", "syscall_table.rs")

KERNEL = "Linux v6.18 (torvalds/linux)"

# path under SRC_DIR -> upstream git blob id of that file in Linux v6.18.
PINNED_BLOBS = {
    "arch/x86/entry/syscalls/syscall_64.tbl": "ced2a1deecd7ce082b786a8e7a7b094f6b74904c",
    "arch/x86/entry/syscalls/syscall_32.tbl": "4877e16da69a50f2225088e556661051dbe3c7a3",
    "scripts/syscall.tbl": "d1ae5e92c615b58ea64eb793e3b615127c2769ce",
    "arch/arm64/kernel/Makefile.syscalls": "0542a718871afa712446f8c674e680e9d187bb09",
}

# scripts/Makefile.asm-headers: `syscall_abis_64 += common,64`.
GENERIC_ABIS_64 = ["common", "64"]

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")


class GenError(Exception):
    pass


def git_blob_id(data):
    """The id `git hash-object` gives `data`."""
    h = hashlib.sha1()
    h.update(b"blob %d\0" % len(data))
    h.update(data)
    return h.hexdigest()


def read_pinned(rel):
    path = os.path.join(SRC_DIR, rel)
    with open(path, "rb") as f:
        data = f.read()
    got = git_blob_id(data)
    want = PINNED_BLOBS[rel]
    if got != want:
        raise GenError(
            "%s: git blob id %s, expected the pinned %s; the committed source "
            "table was changed" % (path, got, want)
        )
    return data.decode("utf-8")


def parse_tbl(text, where):
    """[(number, abi, name)] for every entry line of a .tbl file.

    Format (kernel scripts/syscalltbl.sh, syscallhdr.sh): whitespace-separated
    `<number> <abi> <name> [<entry point> [<compat entry point> [noreturn]]]`;
    '#' starts a comment line; blank lines are ignored.
    """
    entries = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 3:
            raise GenError("%s:%d: fewer than 3 fields: %r" % (where, lineno, raw))
        nr_s, abi, name = fields[0], fields[1], fields[2]
        if not nr_s.isdigit():
            raise GenError("%s:%d: bad number %r" % (where, lineno, nr_s))
        if not NAME_RE.match(name):
            raise GenError("%s:%d: unexpected name %r" % (where, lineno, name))
        entries.append((int(nr_s), abi, name))
    return entries


def arm64_abis(makefile_text):
    """arm64's 64-bit ABI list: the generic default plus Makefile.syscalls."""
    abis = list(GENERIC_ABIS_64)
    found = False
    for raw in makefile_text.splitlines():
        m = re.match(r"^\s*syscall_abis_64\s*\+=(.*)$", raw)
        if m:
            found = True
            abis.extend(m.group(1).replace(",", " ").split())
    if not found:
        raise GenError("arch/arm64/kernel/Makefile.syscalls: no syscall_abis_64 line")
    return abis


def select(entries, abis, what):
    """Entries whose abi is in `abis` (None: all), as a sorted [(nr, name)].

    Fails on a number given twice, and on a name given twice: either would
    make name <-> number lookups ambiguous.
    """
    table = {}
    names = {}
    for nr, abi, name in entries:
        if abis is not None and abi not in abis:
            continue
        if nr in table:
            raise GenError("%s: number %d is both %r and %r" % (what, nr, table[nr], name))
        if name in names:
            raise GenError("%s: name %r is both %d and %d" % (what, name, names[name], nr))
        table[nr] = name
        names[name] = nr
    if not table:
        raise GenError("%s: empty table" % what)
    return sorted(table.items())


def build_tables():
    t64 = parse_tbl(read_pinned("arch/x86/entry/syscalls/syscall_64.tbl"), "syscall_64.tbl")
    t32 = parse_tbl(read_pinned("arch/x86/entry/syscalls/syscall_32.tbl"), "syscall_32.tbl")
    tgen = parse_tbl(read_pinned("scripts/syscall.tbl"), "scripts/syscall.tbl")
    a64 = arm64_abis(read_pinned("arch/arm64/kernel/Makefile.syscalls"))

    for nr, abi, _ in t64:
        if abi not in ("common", "64", "x32"):
            raise GenError("syscall_64.tbl: unknown abi %r at %d" % (abi, nr))
        if nr & 0x40000000:
            raise GenError("syscall_64.tbl: %d already carries the x32 bit" % nr)

    return [
        ("X86_64", "arch/x86/entry/syscalls/syscall_64.tbl, abi common|64",
         select(t64, {"common", "64"}, "X86_64")),
        ("I386", "arch/x86/entry/syscalls/syscall_32.tbl, every entry",
         select(t32, None, "I386")),
        ("X32", "arch/x86/entry/syscalls/syscall_64.tbl, abi common|x32, no x32 bit",
         select(t64, {"common", "x32"}, "X32")),
        ("AARCH64", "scripts/syscall.tbl, abi %s" % "|".join(a64),
         select(tgen, set(a64), "AARCH64")),
    ]


def render(tables):
    out = []
    w = out.append
    w("// @generated by schemas/gen/gen_syscalls.py; do not edit.")
    w("//")
    w("// Source: %s syscall tables, committed verbatim under" % KERNEL)
    w("// schemas/gen/linux-v6.18/ (provenance: schemas/gen/README.md). Upstream git blob")
    w("// ids, checked by the generator:")
    for rel in sorted(PINNED_BLOBS):
        w("//   %s %s" % (PINNED_BLOBS[rel], rel))
    w("//")
    w("// Each table is sorted by number, with no number and no name given twice.")
    for const, desc, rows in tables:
        w("")
        w("/// %s: %s." % (const, desc))
        w("/// %d entries, numbers %d..=%d." % (len(rows), rows[0][0], rows[-1][0]))
        w("pub(super) const %s: &[(u32, &str)] = &[" % const)
        for nr, name in rows:
            w('    (%d, "%s"),' % (nr, name))
        w("];")
    return "\n".join(out) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default=DEFAULT_OUT,
                    help="output path, '-' for stdout (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        text = render(build_tables())
    except GenError as e:
        print("gen_syscalls.py: error: %s" % e, file=sys.stderr)
        return 1
    if args.output == "-":
        sys.stdout.write(text)
    else:
        with open(args.output, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
