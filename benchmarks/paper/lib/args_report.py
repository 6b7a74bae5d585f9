#!/usr/bin/env python3
"""The argument rules of each mined profile, what they deny that the
name-only profile allowed, and the use cases under both (issue 11).

    args_report.py RESULTS_DIR > ARGS.md

Reads, per app: profile.json (the argument rules), report.txt (the
compiler's "argument rules" section: the values, the names kept name-only
and why, the values left out), usecases.json (under the profile) and
name-only/usecases.json (under lib/name_only.py's variant, same run:
run.sh --args-compare).
"""
import json
import os
import sys

AF = {1: "AF_UNIX", 2: "AF_INET", 10: "AF_INET6", 16: "AF_NETLINK", 17: "AF_PACKET", 38: "AF_ALG", 40: "AF_VSOCK", 44: "AF_XDP"}
TYPE = {1: "STREAM", 2: "DGRAM", 3: "RAW", 4: "RDM", 5: "SEQPACKET", 10: "PACKET"}
NS = {0x02000000: "CLONE_NEWCGROUP", 0x04000000: "CLONE_NEWUTS", 0x08000000: "CLONE_NEWIPC", 0x10000000: "CLONE_NEWUSER",
      0x20000000: "CLONE_NEWPID", 0x40000000: "CLONE_NEWNET", 0x00020000: "CLONE_NEWNS", 0x00000080: "CLONE_NEWTIME"}
PROT = {0: "neither", 2: "PROT_WRITE", 4: "PROT_EXEC", 6: "PROT_WRITE+PROT_EXEC"}
PERSONA = {0xFFFFFFFF: "query (0xffffffff)", 0: "PER_LINUX", 8: "PER_LINUX32"}


def ns_names(v):
    return "+".join(n for f, n in sorted(NS.items()) if v & f) or "no namespace flag"


def show(name, value):
    if name == "socket":
        fam, typ = value
        return f"{AF.get(fam, fam)}/{TYPE.get(typ, typ)}"
    if name in ("clone", "unshare"):
        return ns_names(value[0])
    if name == "setns":
        return "any type (0)" if value[0] == 0 else ns_names(value[0])
    if name == "personality":
        return PERSONA.get(value[0], hex(value[0]))
    if name in ("mmap", "mmap2", "mprotect", "pkey_mprotect"):
        return PROT.get(value[0], hex(value[0]))
    return ",".join(hex(x) for x in value)


def denies(name, values):
    """What the rule denies that the name alone allowed, in words."""
    vs = set(tuple(v) for v in values)
    if name == "socket":
        fams = {v[0] for v in vs}
        bad = [AF[f] for f in (16, 17, 40, 38, 44, 10) if f not in fams]
        return "every other family and type, e.g. " + ", ".join(bad) if bad else "every other type"
    if name in ("clone", "unshare"):
        allowed = 0
        for v in vs:
            allowed |= v[0]
        bad = [n for f, n in sorted(NS.items()) if not allowed & f and (name == "unshare" or f != 0x80)]
        return "namespace creation: " + ", ".join(bad) if bad else "-"
    if name == "personality":
        return "every other persona, e.g. READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE"
    if name in ("mmap", "mmap2"):
        return "PROT_WRITE+PROT_EXEC together" if (6,) not in vs else "-"
    if name in ("mprotect", "pkey_mprotect"):
        bad = [PROT[p] for p in (6, 4) if (p,) not in vs]
        return " and ".join(bad) if bad else "-"
    return "every other value"


def rules_of(profile):
    out = {}
    for r in profile["syscalls"]:
        if r["action"] != "SCMP_ACT_ALLOW" or not r.get("args"):
            continue
        value = [a.get("valueTwo", 0) for a in sorted(r["args"], key=lambda a: a["index"])]
        for n in r["names"]:
            out.setdefault(n, []).append(value)
    return out


def report_section(path):
    lines, on = [], False
    if not os.path.exists(path):
        return lines
    for l in open(path):
        if l.startswith("argument rules"):
            on = True
            continue
        if on:
            if not l.startswith("  "):
                break
            lines.append(l.strip())
    return lines


def uc(path):
    if not os.path.exists(path):
        return None
    j = json.load(open(path))
    return j["passed"], j["total"], [c["name"] for c in j["cases"] if c["status"] != "PASS"]


def main():
    res = sys.argv[1]
    run = json.load(open(os.path.join(res, "run.json")))
    apps = sorted(d for d in os.listdir(res) if os.path.exists(os.path.join(res, d, "profile.json")))
    print("# Argument rules on the paper's images (issue 11)\n")
    print(f"Run: {run.get('sandmine', '?')} (repository at {run.get('commit', '?')}, {run.get('date', '?')}, "
          f"kernel {run.get('kernel', '?')}, Docker {run.get('engine', '?')}; load {run.get('loadavg_start', '?')}). "
          "The binary is given by SANDMINE (see ARGS.md's command).\n")
    print("Made by (as root, the paper's images built, sandmine built at fb3da74 into /work/tgt/paper):\n")
    print("```sh\nSANDMINE=/work/tgt/paper/release/sandmine RESULTS_DIR=$PWD/benchmarks/paper/results-args \\\n"
          "    benchmarks/paper/run.sh --no-build --no-overhead --args-compare      # 779 s\n"
          "python3 benchmarks/paper/lib/args_report.py benchmarks/paper/results-args > benchmarks/paper/ARGS.md\n```\n")
    print("Each app was mined once; its use cases then ran under the mined profile (with its argument rules) "
          "and, in the same run, under the same profile with every argument rule turned back into a name-only "
          "allow (`lib/name_only.py`).\n")
    print("| app | argument rules (entries) | use cases, with argument rules | use cases, name-only | failing only with argument rules |")
    print("|---|---|---|---|---|")
    tot = [0, 0, 0, 0]
    details = []
    for app in apps:
        d = os.path.join(res, app)
        p = json.load(open(os.path.join(d, "profile.json")))
        rules = rules_of(p)
        entries = sum(1 for r in p["syscalls"] if r.get("args"))
        a, b = uc(os.path.join(d, "usecases.json")), uc(os.path.join(d, "name-only", "usecases.json"))
        fa = f"{a[0]}/{a[1]}" if a else "-"
        fb = f"{b[0]}/{b[1]}" if b else "-"
        only = sorted(set(a[2]) - set(b[2])) if a and b else []
        if a:
            tot[0] += a[0]; tot[1] += a[1]
        if b:
            tot[2] += b[0]; tot[3] += b[1]
        print(f"| {app} | {', '.join(sorted(rules)) or '-'} ({entries}) | {fa} | {fb} | {', '.join(only) or '-'} |")
        details.append((app, rules, report_section(os.path.join(d, "report.txt"))))
    print(f"| **all** | | **{tot[0]}/{tot[1]}** | **{tot[2]}/{tot[3]}** | |\n")
    for app, rules, section in details:
        print(f"## {app}\n")
        if rules:
            print("| syscall | allowed values (observed, or constants at reachable call sites) | denied that the name-only profile allowed |")
            print("|---|---|---|")
            for n in sorted(rules):
                vals = ", ".join(show(n, v) for v in sorted(rules[n]))
                print(f"| {n} | {vals} | {denies(n, rules[n])} |")
            print()
        else:
            print("No argument rule.\n")
        rest = [l for l in section if "name only:" in l or l.startswith("left out:") or "also allowed" in l]
        if rest:
            print("Values from static reachability, syscalls kept name-only and values left out, as the compiler's report says:\n")
            for l in rest:
                print(f"- {l}")
            print()
    print("i386: `socketcall` (102) and the old `mmap` (90) take a pointer to their arguments, which seccomp "
          "cannot read, so they are never narrowed; none of these images made an i386 call.\n")


main()
