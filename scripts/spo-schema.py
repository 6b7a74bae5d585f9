#!/usr/bin/env python3
"""Derive deploy/schemas/spo-seccompprofile.schema.json from the
security-profiles-operator's SeccompProfile CRD (a one-off, rerun when the
pinned SPO release changes; needs PyYAML, /var/cache/sandmine/deploy/py).

    scripts/spo-schema.py CRD.yaml TAG COMMIT > deploy/schemas/spo-seccompprofile.schema.json

CRD.yaml is deploy/base-crds/crds/seccompprofile.yaml of
kubernetes-sigs/security-profiles-operator at TAG (COMMIT). One JSON schema
(draft 7) accepts a SeccompProfile of any version the CRD serves, each under
its own openAPIV3Schema, made as strict as the API server is with strict
field validation:
  - an object with `properties` takes no other keys (the API server rejects
    unknown fields under `kubectl apply --validate=strict`);
  - `x-kubernetes-list-type: set` lists have unique items;
  - metadata.name is required and a DNS-1123 subdomain (a cluster-scoped
    object's name), labels and annotations map strings to strings.
What it cannot check: the CRD's CEL rules (x-kubernetes-validations) and
`map` list keys' uniqueness.
"""
import json
import sys

import yaml

DROP = {"description", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type", "x-kubernetes-validations"}


def strict(node):
    if isinstance(node, list):
        return [strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict(v) for k, v in node.items() if k not in DROP}
    if node.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    if "properties" in node and "additionalProperties" not in node \
            and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    out.pop("x-kubernetes-preserve-unknown-fields", None)
    return out


METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {
            "type": "string",
            "maxLength": 253,
            "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def main():
    path, tag, commit = sys.argv[1:4]
    with open(path) as f:
        crd = yaml.safe_load(f)
    group = crd["spec"]["group"]
    kind = crd["spec"]["names"]["kind"]
    versions = []
    for v in crd["spec"]["versions"]:
        if not v.get("served"):
            continue
        s = strict(v["schema"]["openAPIV3Schema"])
        s["properties"]["apiVersion"] = {"const": f"{group}/{v['name']}"}
        s["properties"]["kind"] = {"const": kind}
        s["properties"]["metadata"] = METADATA
        s["required"] = ["apiVersion", "kind", "metadata", "spec"]
        versions.append(s)
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": (
            f"Derived by scripts/spo-schema.py from "
            f"https://github.com/kubernetes-sigs/security-profiles-operator/blob/{commit}"
            f"/deploy/base-crds/crds/seccompprofile.yaml (release {tag}, commit {commit}; "
            f"Apache-2.0). Served versions: "
            + ", ".join(v["name"] for v in crd["spec"]["versions"] if v.get("served"))
        ),
        "title": f"{kind} ({group})",
        "oneOf": versions,
    }
    json.dump(schema, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
