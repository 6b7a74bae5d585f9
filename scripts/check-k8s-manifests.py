#!/usr/bin/env python3
"""sandmine's own invariants of a rendered Kubernetes overlay (what
kubernetes-validate cannot know). Reads `kubectl kustomize OVERLAY` output
on stdin; prints one line per violation and exits 1 if there is any.
Run by scripts/check-deploy.sh with /var/cache/sandmine/deploy/py's python
(PyYAML; tomllib from Python 3.11).

  - the collector DaemonSet: capabilities drop [ALL] and add exactly BPF,
    PERFMON, SYS_PTRACE (tests/privileges_cli.rs); not privileged, no
    hostPID/hostNetwork/hostIPC, no runtime socket but, where an overlay
    opts in (cri-containerd), exactly one CRI runtime's socket (hostPath of
    type Socket) mounted where its collector.cri_socket names it; a
    Localhost seccomp
    profile, sandmine's own (deploy/own-profile/sandmine-collect.json:
    EPERM by default, never a kill); the host's /proc read-only at its
    config's proc_root; BTF
    read-only; the pin directory on the host's bpffs;
  - every pod of the namespace `sandmine`: non-root, drop [ALL], no
    privilege escalation, RuntimeDefault or Localhost seccomp;
  - every container has CPU and memory requests and limits;
  - the aggregator has 2 or more replicas and a PodDisruptionBudget;
  - the sync-profiles DaemonSet, where an overlay ships one: no added
    capability, sandmine's own Localhost profile of sync-profiles, the
    publish target read-only, no host path but the kubelet's
    seccomp/sandmine directory, and only signed profiles
    (--public-key-file);
  - each namespace has Pod Security enforce/warn/audit labels and a
    default-deny NetworkPolicy; no RBAC objects and no mounted tokens.
"""
import json
import pathlib
import sys
import tomllib

import yaml

COLLECTOR_CAPS = ["BPF", "PERFMON", "SYS_PTRACE"]
# The CRI runtimes' sockets an overlay may mount (containerd, CRI-O): the
# runtime socket the collector may be given, never Docker's.
CRI_SOCKETS = {"/run/containerd/containerd.sock", "/run/crio/crio.sock"}
# The collector's own profile, as the kubelet finds it under its seccomp
# directory, and where deploy/own-profile/build.sh writes it.
OWN_PROFILE = "sandmine/sandmine-collect.json"
OWN_PROFILE_FILE = pathlib.Path(__file__).resolve().parent.parent / "deploy/own-profile/sandmine-collect.json"
errors = []


def err(msg):
    errors.append(msg)


def pod_spec(obj):
    kind = obj["kind"]
    if kind in ("DaemonSet", "Deployment", "StatefulSet", "Job"):
        return obj["spec"]["template"]["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def name(obj):
    return f'{obj["kind"]}/{obj["metadata"].get("namespace", "")}/{obj["metadata"]["name"]}'


docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
if not docs:
    print("check-k8s-manifests: no documents on stdin")
    sys.exit(1)
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)

for kind in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"):
    for d in by_kind.get(kind, []):
        err(f"{name(d)}: no workload uses the API server, so no RBAC")

namespaces = {d["metadata"]["name"]: d for d in by_kind.get("Namespace", [])}
if set(namespaces) != {"sandmine", "sandmine-collector"}:
    err(f"namespaces are {sorted(namespaces)}, not sandmine and sandmine-collector")
for ns, d in namespaces.items():
    labels = d["metadata"].get("labels", {})
    for mode in ("enforce", "warn", "audit"):
        if f"pod-security.kubernetes.io/{mode}" not in labels:
            err(f"Namespace/{ns}: no pod-security.kubernetes.io/{mode} label")
    if not any(
        p["metadata"]["namespace"] == ns and p["spec"].get("podSelector") == {}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
        and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        for p in by_kind.get("NetworkPolicy", [])
    ):
        err(f"Namespace/{ns}: no default-deny NetworkPolicy")
if namespaces.get("sandmine", {}).get("metadata", {}).get("labels", {}).get(
        "pod-security.kubernetes.io/enforce") != "restricted":
    err("Namespace/sandmine: must enforce the restricted Pod Security level")

configmaps = {(d["metadata"]["namespace"], d["metadata"]["name"]): d
              for d in by_kind.get("ConfigMap", [])}

for obj in docs:
    spec = pod_spec(obj)
    if spec is None:
        continue
    ns = obj["metadata"]["namespace"]
    if spec.get("automountServiceAccountToken") is not False:
        err(f"{name(obj)}: automountServiceAccountToken must be false")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        res = c.get("resources", {})
        for part in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(part, {}):
                    err(f"{name(obj)}: container {c['name']} has no {part}.{r}")
        sc = c.get("securityContext", {})
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            err(f"{name(obj)}: container {c['name']} must drop [ALL] capabilities")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(f"{name(obj)}: container {c['name']} must set allowPrivilegeEscalation: false")
        if sc.get("privileged"):
            err(f"{name(obj)}: container {c['name']} is privileged")
        if sc.get("readOnlyRootFilesystem") is not True:
            err(f"{name(obj)}: container {c['name']} must have a read-only root file system")
    for host in ("hostPID", "hostNetwork", "hostIPC"):
        if spec.get(host):
            err(f"{name(obj)}: {host} is set")
    seccomp = spec.get("securityContext", {}).get("seccompProfile", {}).get("type")
    if ns == "sandmine":
        if spec.get("securityContext", {}).get("runAsNonRoot") is not True:
            err(f"{name(obj)}: must run as non-root")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            err(f"{name(obj)}: seccomp profile {seccomp}, not RuntimeDefault or Localhost")
        for v in spec.get("volumes", []):
            if "hostPath" in v:
                err(f"{name(obj)}: hostPath volume {v['name']} in the restricted namespace")
        for c in spec["containers"]:
            if c.get("securityContext", {}).get("capabilities", {}).get("add"):
                err(f"{name(obj)}: container {c['name']} adds capabilities")

collectors = [d for d in by_kind.get("DaemonSet", []) if d["metadata"]["name"] == "sandmine-collector"]
if len(collectors) != 1:
    err(f"{len(collectors)} collector DaemonSets, not 1")
for ds in collectors:
    spec = pod_spec(ds)
    (c,) = spec["containers"]
    add = sorted(c.get("securityContext", {}).get("capabilities", {}).get("add", []))
    if add != COLLECTOR_CAPS:
        err(f"{name(ds)}: adds capabilities {add}, not exactly {COLLECTOR_CAPS}")
    sp = spec.get("securityContext", {}).get("seccompProfile", {})
    if sp.get("type") != "Localhost" or not sp.get("localhostProfile"):
        err(f"{name(ds)}: needs a Localhost seccomp profile, has {sp}")
    elif sp["localhostProfile"] != OWN_PROFILE:
        err(f"{name(ds)}: seccomp profile {sp['localhostProfile']}, not sandmine's own {OWN_PROFILE}")
    else:
        own = json.loads(OWN_PROFILE_FILE.read_text())
        if own.get("defaultAction") != "SCMP_ACT_ERRNO" or "KILL" in json.dumps(own):
            err(f"{OWN_PROFILE_FILE}: must deny with SCMP_ACT_ERRNO and never kill")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    host = {v["hostPath"]["path"]: n for n, v in vols.items() if "hostPath" in v}
    cm_name = vols.get("config", {}).get("configMap", {}).get("name")
    cm = configmaps.get((ds["metadata"]["namespace"], cm_name))
    if cm is None:
        err(f"{name(ds)}: its ConfigMap {cm_name} is not in the output")
        continue
    cfg = tomllib.loads(cm["data"]["sandmine.toml"])
    cri = cfg.get("collector", {}).get("cri_socket")
    sockets = [p for p in host
               if p.endswith(".sock") or "containerd" in p or "docker" in p or "crio" in p]
    for path in sockets:
        v = vols[host[path]]
        m = mounts.get(host[path])
        opted_in = (cri is not None and path in CRI_SOCKETS and len(sockets) == 1
                    and v["hostPath"].get("type") == "Socket"
                    and m is not None and m["mountPath"] == cri)
        if not opted_in:
            err(f"{name(ds)}: mounts the runtime socket {path} (root-equivalent)"
                + ("" if cri is None else f", not exactly one CRI socket of type Socket at collector.cri_socket {cri}"))
    if cri is not None and not sockets:
        err(f"{name(ds)}: collector.cri_socket is {cri}, but no CRI runtime socket is mounted")
    proc_root = cfg.get("collector", {}).get("proc_root", "/proc")
    pin_dir = cfg.get("collector", {}).get("pin_dir", "/sys/fs/bpf/sandmine")
    want = {"/proc": (proc_root, True), "/sys/kernel/btf": ("/sys/kernel/btf", True),
            "/sys/fs/bpf": ("/sys/fs/bpf", False)}
    for path, (mount_path, ro) in want.items():
        m = mounts.get(host.get(path, ""))
        if m is None:
            err(f"{name(ds)}: the host's {path} is not mounted")
        elif m["mountPath"] != mount_path or bool(m.get("readOnly")) != ro:
            err(f"{name(ds)}: the host's {path} is mounted at {m['mountPath']} "
                f"(readOnly {bool(m.get('readOnly'))}), not at {mount_path} (readOnly {ro})")
    if proc_root == "/proc":
        err(f"{name(ds)}: collector.proc_root is /proc, the container's own; use the host's, mounted elsewhere")
    if not pin_dir.startswith("/sys/fs/bpf/"):
        err(f"{name(ds)}: collector.pin_dir {pin_dir} is not on the host's bpffs")

SYNC_PROFILE = "sandmine/sandmine-sync-profiles.json"
SYNC_PROFILE_FILE = OWN_PROFILE_FILE.parent / "sandmine-sync-profiles.json"
for ds in [d for d in by_kind.get("DaemonSet", []) if d["metadata"]["name"] == "sandmine-sync-profiles"]:
    spec = pod_spec(ds)
    (c,) = spec["containers"]
    if c.get("securityContext", {}).get("capabilities", {}).get("add"):
        err(f"{name(ds)}: adds capabilities; sync-profiles needs none")
    sp = spec.get("securityContext", {}).get("seccompProfile", {})
    if sp != {"type": "Localhost", "localhostProfile": SYNC_PROFILE}:
        err(f"{name(ds)}: seccomp profile {sp}, not sandmine's own {SYNC_PROFILE}")
    else:
        own = json.loads(SYNC_PROFILE_FILE.read_text())
        if own.get("defaultAction") != "SCMP_ACT_ERRNO" or "KILL" in json.dumps(own):
            err(f"{SYNC_PROFILE_FILE}: must deny with SCMP_ACT_ERRNO and never kill")
    args = c.get("args", [])
    if args[:1] != ["sync-profiles"] or "--public-key-file" not in args and "--public-key" not in args:
        err(f"{name(ds)}: must run sync-profiles with --public-key-file (only signed profiles), runs {args}")
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"], {})
        if "hostPath" in v:
            if v["hostPath"]["path"] != "/var/lib/kubelet/seccomp/sandmine":
                err(f"{name(ds)}: mounts the host's {v['hostPath']['path']}; only /var/lib/kubelet/seccomp/sandmine")
        elif not m.get("readOnly"):
            err(f"{name(ds)}: mounts {m['name']} writable; only the kubelet's directory is written")

aggs = [d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "sandmine-aggregator"]
if len(aggs) != 1:
    err(f"{len(aggs)} aggregator Deployments, not 1")
for a in aggs:
    if a["spec"].get("replicas", 1) < 2:
        err(f"{name(a)}: {a['spec'].get('replicas', 1)} replica(s), not 2 or more")
    sel = a["spec"]["selector"]["matchLabels"]
    if not any(p["spec"]["selector"].get("matchLabels") == sel
               for p in by_kind.get("PodDisruptionBudget", [])):
        err(f"{name(a)}: no PodDisruptionBudget selects it")
if len(by_kind.get("CronJob", [])) != 1:
    err("no publish CronJob")

for e in errors:
    print(e)
if errors:
    sys.exit(1)
print(f"ok: {len(docs)} objects")
