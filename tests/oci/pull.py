"""Pulls a seccomp-profile artifact with the oras Python SDK (an independent
client), for tests/oci_cli.rs.

usage: pull.py HOST REF CA_FILE USER PASSWORD_FILE OUTDIR

REF is repo@sha256:... or repo:tag. Prints one JSON object: the manifest as
the registry served it, the sha256 of those bytes, and the pulled files.
"""
import hashlib
import json
import sys

import oras.client

host, ref, ca, user, pw_file, outdir = sys.argv[1:7]
with open(pw_file) as f:
    password = f.readline().rstrip("\n")
client = oras.client.OrasClient(hostname=host, tls_verify=ca, auth_backend="basic")
client.auth.set_basic_auth(user, password)
target = f"{host}/{ref}"
container = client.get_container(target)
accept = "application/vnd.oci.image.manifest.v1+json"
resp = client.do_request(
    f"https://{container.manifest_url()}", "GET", headers={"Accept": accept}
)
if resp.status_code != 200:
    sys.exit(f"GET manifest {target}: HTTP {resp.status_code}: {resp.text}")
raw = resp.content
files = client.pull(target=target, outdir=outdir)
print(
    json.dumps(
        {
            "manifest": json.loads(raw),
            "digest": "sha256:" + hashlib.sha256(raw).hexdigest(),
            "header_digest": resp.headers.get("Docker-Content-Digest"),
            "files": sorted(files),
        }
    )
)
