#!/usr/bin/env python3
"""Compare two evaluation runs on the same, unchanged use cases.

Usage: lib/before_after.py BEFORE_DIR AFTER_DIR > BEFORE-AFTER.md
Reads <dir>/<app>/counts.json and usecases.json of both runs.
"""
import json
import os
import sys

APPS = ["nginx", "apache2", "node", "django", "redis", "postgresql", "mariadb"]


def load(d, app, name):
    p = os.path.join(d, app, name)
    return json.load(open(p)) if os.path.exists(p) else None


def main(before, after):
    print("| App | Allowed before | after | Use cases passed before | after | mined − Docker default before | after |")
    print("|---|---:|---:|---:|---:|---|---|")
    for app in APPS:
        cb, ca = load(before, app, "counts.json"), load(after, app, "counts.json")
        ub, ua = load(before, app, "usecases.json"), load(after, app, "usecases.json")
        if not (cb and ca and ub and ua):
            print(f"| {app} | – | – | – | – | – | – |")
            continue
        mb = ", ".join(cb.get("mined_minus_default", [])) or "none"
        ma = ", ".join(ca.get("mined_minus_default", [])) or "none"
        print(f"| {app} | {cb['allowed']} | {ca['allowed']} | {ub['passed']}/{ub['total']} | "
              f"{ua['passed']}/{ua['total']} | {mb} | {ma} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
