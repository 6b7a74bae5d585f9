#!/usr/bin/env python3
"""Group a flat `perf report --sort symbol --stdio -F overhead,sym` (on
stdin) by where the time goes: the Rust crate that owns each symbol, the
kernel, or libc and the allocator. Prints `share%  group  top symbols`,
largest first. Used by run.sh (PERF=1)."""
import re
import sys
from collections import defaultdict

# "12.3%  [.] sym", or with a DSO column: "12.3%  libc.so.6  [.] sym".
LINE = re.compile(r"^\s*([0-9.]+)%\s+(?:\S+\s+)?\[(.)\]\s+(.*?)\s*(?:-\s+-\s*)?$")


def group(kind: str, sym: str) -> str:
    if kind == "k":
        return "kernel"
    s = sym
    # <T as Trait>::f -> T ; <impl Trait for T>::f stays T's crate
    while s.startswith("<"):
        s = s[1:]
        if s.startswith("impl "):
            s = s.split(" for ", 1)[-1]
        if s.startswith("&"):
            s = s.lstrip("&").removeprefix("mut ")
    if " as " in s.split("::", 1)[0]:
        # <usize as core::fmt::Display>::fmt: a primitive's std impl.
        return "std/core/alloc"
    if "::" in s:
        crate = s.split("::", 1)[0]
        return {"std": "std/core/alloc", "core": "std/core/alloc", "alloc": "std/core/alloc"}.get(crate, crate)
    if s.startswith("0x"):
        return "unresolved"
    # C symbols: libc string/memory, malloc, and the rest by name
    if re.match(
        r"^(__)?(mem|str|malloc|free|realloc|calloc|_int_|cfree|tcache|__libc_(malloc|calloc|free|realloc)|unlink_chunk|alloc_perturb|sysmalloc)",
        s,
    ):
        return "libc (mem*, malloc)"
    return "other C: " + s.split("@")[0]


def main() -> None:
    totals: dict[str, float] = defaultdict(float)
    tops: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        pct, kind, sym = float(m.group(1)), m.group(2), m.group(3)
        g = group(kind, sym)
        totals[g] += pct
        tops[g].append((pct, sym))
    for g, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
        best = sorted(tops[g], key=lambda t: -t[0])[:3]
        names = "; ".join(f"{s[:80]} {p:.1f}%" for p, s in best)
        print(f"{pct:6.2f}%  {g:28}  {names}")


if __name__ == "__main__":
    main()
