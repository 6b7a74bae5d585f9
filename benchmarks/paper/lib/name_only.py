#!/usr/bin/env python3
"""The name-only variant of a mined profile: every name that an argument
rule allows goes back into the name-only allow list (syscalls[0]), and the
argument rules go. What the profile was before argument rules (issue 11),
for the use cases' side-by-side run (run.sh --args-compare).

    name_only.py PROFILE.json > NAME-ONLY.json
"""
import json
import sys

p = json.load(open(sys.argv[1]))
rules = p["syscalls"]
first = rules[0]
assert first["action"] == "SCMP_ACT_ALLOW" and not first.get("args"), "syscalls[0] is not the name-only allow rule"
names = set(first["names"])
kept = [first]
for r in rules[1:]:
    if r["action"] == "SCMP_ACT_ALLOW" and r.get("args"):
        names.update(r["names"])
    else:
        kept.append(r)
first["names"] = sorted(names)
p["syscalls"] = kept
json.dump(p, sys.stdout, indent=2)
print()
