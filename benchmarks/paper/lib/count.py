#!/usr/bin/env python3
"""Count what a mined profile allows, against Docker's default (a set).
count.py PROFILE DOCKER_DEFAULT_TXT DANGEROUS_TXT > counts.json"""
import json
import sys

prof = json.load(open(sys.argv[1]))
default = {l.strip() for l in open(sys.argv[2]) if l.strip() and not l.startswith("#")}
not_probed = sorted(l.split()[3].strip() for l in open(sys.argv[2]) if l.startswith("# not probed:"))
dangerous = {}
for l in open(sys.argv[3]):
    if l.strip() and not l.startswith("#"):
        n, why = l.rstrip("\n").split("\t", 1)
        dangerous[n] = why

sm = prof.get("sandmine", {})
allowed = set()
for rule in prof["syscalls"]:
    if rule["action"] == "SCMP_ACT_ALLOW":
        allowed |= set(rule["names"])
enosys = sorted({n for r in prof["syscalls"] if r["action"] == "SCMP_ACT_ERRNO" for n in r["names"]})
# The log tier (reachable, never observed): these calls run too.
logged = {n for r in prof["syscalls"] if r["action"] == "SCMP_ACT_LOG" for n in r["names"]}
x86_logged = set(sm.get("logged", {}).get("x86_64", logged))
per_abi = {abi: len(v) for abi, v in sm.get("per_abi", {}).items()}
x86 = set(sm.get("per_abi", {}).get("x86_64", allowed))
runtime, image = set(sm.get("runtime", [])), set(sm.get("image", []))
baseline = set(sm.get("baseline", []))
out = {
    "allowed": len(allowed),
    "allowed_names": sorted(allowed),
    "logged": len(logged),
    "logged_names": sorted(logged),
    "running": len(allowed | logged),
    "architectures": prof.get("architectures", []),
    "per_abi": per_abi,
    "runtime": len(runtime),
    "image": len(image),
    "runtime_only": sorted(runtime - image),
    "image_only": len(image - runtime),
    "both": len(runtime & image),
    "baseline": sorted(baseline),
    "enosys_rule": enosys,
    "setup_excluded": sm.get("setup_excluded", []),
    "docker_default": len(default),
    "docker_default_not_probed": not_probed,
    "x86_64_allowed": len(x86),
    "x86_64_logged": len(x86_logged),
    "x86_64_running": len(x86 | x86_logged),
    "running_minus_default": sorted((x86 | x86_logged) - default - set(not_probed)),
    "mined_and_default": len(x86 & default),
    "mined_minus_default": sorted(x86 - default - set(not_probed)),
    "mined_not_probed": sorted(x86 & set(not_probed)),
    "default_minus_mined": sorted(default - x86),
    "default_minus_mined_count": len(default - x86),
    "dangerous_blocked": [{"name": n, "why": dangerous[n]} for n in sorted(dangerous) if n in default and n not in x86],
    "dangerous_allowed": [{"name": n, "why": dangerous[n]} for n in sorted(dangerous) if n in x86],
}
json.dump(out, sys.stdout, indent=1, sort_keys=True)
print()
