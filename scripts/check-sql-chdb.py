#!/usr/bin/env python3
"""Runs every ClickHouse statement of the fleet store on current ClickHouse.

The aggregator's SQL lives in aggregator/sql/clickhouse/ (the Rust store
`include_str!`s the same files; a Rust test checks that no file is unused
and no statement lives elsewhere). The Rust tests run it on Debian's
ClickHouse 18.16; this script runs it on the ClickHouse embedded in PyPI's
chdb (current ClickHouse), on the worked example of docs/STORE.md, and
checks:
  - DDL (bootstrap + migrations) applies, and applies again harmlessly;
  - every query returns exactly the expected rows, with exactly the column
    types the Rust side decodes (RowBinary is positional and untyped, so a
    type drift, e.g. UInt64 -> Int64, would corrupt reads silently);
  - the answers are identical after redelivered rows and after OPTIMIZE
    TABLE ... FINAL;
  - the Grafana dashboard deploy/grafana/sandmine.json: scripts/check-grafana.py
    (its ClickHouse panels with the macros expanded, its Prometheus panels'
    metrics, and broken samples it must reject).

Run: /var/cache/sandmine/py/bin/python scripts/check-sql-chdb.py
Exit status 0 when everything matches; otherwise prints what differs.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

from chdb import session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SQL_DIR = os.path.join(ROOT, "aggregator", "sql", "clickhouse")
DB = "sandmine_check"
H = 3_600_000
T0 = 1_700_000_000_000
HOUR0 = T0 // H * H  # the hour every worked-example interval ends in
X86_64, I386 = 0, 1  # wire ABI codes
SETUP, RUNTIME, UNFILTERED, IMAGE = 1, 2, 4, 8  # phase bits

failures = []


def read(name):
    with open(os.path.join(SQL_DIR, name)) as f:
        return f.read().replace("{db}", DB)


def split(sql):
    return [s.strip().rstrip(";").strip() for s in sql.split(";\n") if s.strip().rstrip(";").strip()]


def lit(v):
    if isinstance(v, list):  # the Rust client binds a slice as an array literal
        return "[" + ",".join(lit(x) for x in v) + "]"
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(v)


def bind(sql, *params):
    parts = sql.split("?")
    assert len(parts) == len(params) + 1, f"{len(parts) - 1} placeholders, {len(params)} params: {sql}"
    out = parts[0]
    for p, rest in zip(params, parts[1:]):
        out += lit(p) + rest
    return out


def run(sess, sql):
    try:
        r = sess.query(sql, "JSONCompact")
    except Exception as e:  # chdb raises its own error type
        raise SystemExit(f"FAILED on current ClickHouse:\n{sql}\n{e}")
    body = r.bytes() if hasattr(r, "bytes") else bytes(r)
    if not body.strip():
        return [], []
    j = json.loads(body)
    types = [m["type"] for m in j["meta"]]
    # 64-bit integers come quoted or not depending on the version's
    # output_format_json_quote_64bit_integers default: normalise to int.
    rows = [[int(v) if t.startswith(("UInt", "Int")) else v for t, v in zip(types, r)] for r in j["data"]]
    return types, rows


def check(name, got, want):
    if got != want:
        failures.append(f"{name}:\n  got  {got}\n  want {want}")
    else:
        print(f"ok   {name}")


# The worked example (aggregator/tests/common/mod.rs `hand_made`), as
# envelopes: (host, boot, seq, start, [containers]); container:
# (id, image, digest, seccomp, pod, started, last, exited, [(abi, nr, calls, phases, first)][, incomplete[, unverified]]).
# Plus (not in the worked example) host h3's app:1 container n1: complete in
# its first message, incomplete (wire v3) in its second, never a syscall
# (a workload that never got a slot): it has a row in incomplete_containers,
# and (wire v4) one in unverified_containers from its second message.
ENVELOPES = [
    ("h1", "b1", 1, T0, [
        ("c1", "nginx:1", "", "unknown", None, T0 + 1000, T0 + 10_000, None,
         [(X86_64, 0, 5, IMAGE, T0 + 2000), (X86_64, 59, 1, RUNTIME, T0 + 1500)]),
        ("c2", "nginx:1", "", "unknown", None, T0 + 3000, T0 + 10_000, None,
         [(X86_64, 0, 7, IMAGE, T0 + 3500)]),
        ("c4", "redis:7", "", "unknown", None, T0, T0 + 10_000, None,
         [(X86_64, 0, 100, IMAGE, T0 + 100)]),
    ]),
    ("h1", "b1", 2, T0 + 10_000, [
        ("c1", "nginx:1", "", "unknown", None, T0 + 1000, T0 + 20_000, None,
         [(X86_64, 0, 10, IMAGE, T0 + 2000), (X86_64, 1, 3, IMAGE, T0 + 12_000)]),
        ("c2", "nginx:1", "", "unknown", None, T0 + 3000, T0 + 15_000, T0 + 15_000,
         [(X86_64, 0, 1, IMAGE, T0 + 3500)]),
        ("c4", "redis:7", "", "unknown", None, T0, T0 + 20_000, None, []),
    ]),
    ("h2", "b9", 1, T0, [
        ("c3", "nginx:1", "sha256:aa", "runtime/default", ("web", "nginx-0", "nginx"), T0 + 500, T0 + 10_000, None,
         [(X86_64, 0, 4, IMAGE, T0 + 700), (I386, 20, 2, IMAGE, T0 + 600)]),
    ]),
    ("h3", "b3", 1, T0, [
        ("n1", "app:1", "", "unknown", None, T0 + 100, T0 + 5000, None, [], 0),
    ]),
    ("h3", "b3", 2, T0 + 10_000, [
        ("n1", "app:1", "", "unknown", None, T0 + 100, T0 + 20_000, T0 + 20_000, [], 1, 1),
    ]),
]


# Seccomp denials (wire v6, migration 5) of some of those envelopes, per
# (host, boot, seq): (container, image, profile version, abi, nr, action,
# errno, count); action 0 errno, 2 kill (schemas::wire::action_code).
DENIALS = {
    ("h1", "b1", 1): [("c1", "nginx:1", "0123456789abcdef", X86_64, 155, 0, 1, 5)],
    ("h1", "b1", 2): [("c1", "nginx:1", "0123456789abcdef", X86_64, 155, 0, 1, 2),
                      ("c2", "nginx:1", "0123456789abcdef", X86_64, 165, 2, 0, 1)],
    ("h2", "b9", 1): [("c3", "nginx:1", "runtime/default", X86_64, 155, 0, 1, 4)],
}


def explode_denials(envs):
    """The `denials` rows of rows.rs `explode`."""
    out = []
    for host, boot, seq, start, _ in envs:
        for cid, image, profile, abi, nr, action, errno, n in DENIALS.get((host, boot, seq), []):
            out.append((image, abi, nr, action, errno, profile, host, boot, cid, seq, n, start + 10_000))
    return out


# Argument sets (wire v7, migration 6) of some of those envelopes, per
# (host, boot, seq): (container, image, abi, nr, fields, [values], overflow)
# in rows.rs's text forms. c1's set of socket grows and is sent whole
# again; n1's counts nowhere (unverified).
FT = "0:ffffffff,1:f"
ARGS = {
    ("h1", "b1", 1): [("c1", "nginx:1", X86_64, 41, FT, ["2,1", "1,2"], 0),
                      ("c2", "nginx:1", X86_64, 41, FT, ["2,1"], 3)],
    ("h1", "b1", 2): [("c1", "nginx:1", X86_64, 41, FT, ["2,1", "1,2", "a,2"], 0)],
    ("h2", "b9", 1): [("c3", "nginx:1", X86_64, 41, FT, ["2,1"], 0)],
    ("h3", "b3", 2): [("n1", "app:1", X86_64, 41, FT, ["a,2"], 1)],
}


def explode_args(envs):
    """The `arg_values` and `arg_sets` rows of rows.rs `explode`."""
    values, sets = [], []
    for host, boot, seq, start, _ in envs:
        end = start + 10_000
        for cid, image, abi, nr, fields, vals, overflow in ARGS.get((host, boot, seq), []):
            for v in vals:
                values.append((image, abi, nr, host, boot, cid, fields, v, end))
            sets.append((image, abi, nr, host, boot, cid, fields, overflow, end))
    return values, sets


# Executed files (wire v8, migration 7) of some of those envelopes, per
# (host, boot, seq): (container, image, path, kind, dev, ino), kind 0
# exec, 1 mapped. nginx is the same path on two hosts (two inodes); n1's
# count nowhere (unverified).
EXECUTED = {
    ("h1", "b1", 1): [("c1", "nginx:1", "/usr/sbin/nginx", 0, 1, 10),
                      ("c1", "nginx:1", "/lib/ld.so", 1, 1, 20),
                      ("c2", "nginx:1", "/usr/sbin/nginx", 0, 1, 10)],
    ("h1", "b1", 2): [("c1", "nginx:1", "/usr/lib/mod.so", 1, 1, 30)],
    ("h2", "b9", 1): [("c3", "nginx:1", "/usr/sbin/nginx", 0, 2, 10)],
    ("h3", "b3", 2): [("n1", "app:1", "/tmp/x", 0, 3, 5)],
}


def explode_executed(envs):
    """The `executed_files` rows of rows.rs `explode`."""
    out = []
    for host, boot, seq, start, _ in envs:
        end = start + 10_000
        for cid, image, path, kind, dev, ino in EXECUTED.get((host, boot, seq), []):
            out.append((image, host, boot, cid, path, kind, dev, ino, end))
    return out


def explode(envs):
    """Python twin of aggregator/src/store/rows.rs `explode`."""
    calls, inc, cont, incomplete, unverified = [], [], [], [], []
    for host, boot, seq, start, containers in envs:
        end = start + 10_000
        agg = {}
        for cid, image, digest, seccomp, pod, started, last, exited, syscalls, *flag in containers:
            is_incomplete = flag[0] if flag else 0
            is_unverified = flag[1] if len(flag) > 1 else 0
            for abi, nr, n, phases, first in syscalls:
                l = max(last, first)
                a = agg.setdefault((image, abi, nr), [0, 0, 0])
                a[0] += n
                a[1] |= phases
                a[2] = max(a[2], l)
                due = first >= start or exited is not None or start // H != end // H or (phases & ~IMAGE) != 0
                if due:
                    inc.append((image, abi, nr, host, boot, cid, phases, first, l))
            ns, pn, pc = pod or ("", "", "")
            cont.append((image, host, boot, cid, "docker", digest, ns, pn, pc, seccomp, started, last, exited or 0))
            if is_incomplete:
                incomplete.append((image, host, boot, cid))
            if is_unverified:
                unverified.append((image, host, boot, cid))
        for (image, abi, nr), (n, phases, l) in sorted(agg.items()):
            calls.append((image, abi, nr, host, boot, seq, n, phases, l, end))
    return calls, inc, cont, incomplete, unverified


COLUMNS = {
    "calls": "image, abi, nr, host_id, boot_id, seq, calls, phases, last_seen_ms, interval_end_ms",
    "incidence": "image, abi, nr, host_id, boot_id, container_id, phases, first_seen_ms, last_seen_ms",
    "containers": "image, host_id, boot_id, container_id, runtime, image_digest, pod_namespace, pod_name, "
                  "pod_container, seccomp, started_at_ms, last_seen_ms, exited_at_ms",
    "incomplete_containers": "image, host_id, boot_id, container_id",
    "unverified_containers": "image, host_id, boot_id, container_id",
    "denials": "image, abi, nr, action, errno, profile, host_id, boot_id, container_id, seq, count, interval_end_ms",
    "arg_values": "image, abi, nr, host_id, boot_id, container_id, fields, value, first_seen_ms",
    "arg_sets": "image, abi, nr, host_id, boot_id, container_id, fields, overflow, last_seen_ms",
    "executed_files": "image, host_id, boot_id, container_id, path, kind, dev, ino, first_seen_ms",
}


def insert(sess, envs):
    calls, inc, cont, incomplete, unverified = explode(envs)
    arg_values, arg_sets = explode_args(envs)
    for table, rows in (("containers", cont), ("incomplete_containers", incomplete),
                        ("unverified_containers", unverified), ("incidence", inc), ("calls", calls),
                        ("denials", explode_denials(envs)), ("arg_values", arg_values),
                        ("arg_sets", arg_sets), ("executed_files", explode_executed(envs))):
        if rows:
            values = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)
            run(sess, f"INSERT INTO {DB}.{table} ({COLUMNS[table]}) VALUES {values}")
    return len(calls), len(inc), len(cont), len(incomplete), len(unverified)


def migrate(sess):
    for s in split(read("0000_bootstrap.sql")):
        run(sess, s)
    _, applied = run(sess, read("q_migrations.sql"))
    applied = [r[0] for r in applied]
    migrations = sorted(f for f in os.listdir(SQL_DIR) if re.match(r"^\d{4}_.*\.sql$", f) and not f.startswith("0000"))
    for f in migrations:
        v = int(f[:4])
        if v in applied:
            continue
        for s in split(read(f)):
            run(sess, s)
        run(sess, bind(read("q_record_migration.sql"), v))


def answers(sess):
    """Every query, with its result types and rows."""
    out = {}
    out["q_migrations"] = run(sess, read("q_migrations.sql"))
    out["q_images"] = run(sess, read("q_images.sql"))
    for q in ("q_image_containers", "q_image_calls", "q_image_incidence", "q_image_arg_values", "q_image_arg_sets",
              "q_image_executed"):
        for image in ("nginx:1", "redis:7", "app:1", "nope"):
            sql = read(q + ".sql")
            out[f"{q}({image})"] = run(sess, bind(sql, *[image] * sql.count("?")))
    out["q_syscall_totals"] = run(sess, read("q_syscall_totals.sql"))
    out["q_runtime_syscalls"] = run(sess, read("q_runtime_syscalls.sql"))
    # query uses: (abi, nr, from hour, to hour); containers: (abi, nr, to, from).
    end = 2**63 - 1
    out["q_uses_calls(read)"] = run(sess, bind(read("q_uses_calls.sql"), X86_64, 0, 0, end))
    out["q_uses_calls(read, later hour)"] = run(sess, bind(read("q_uses_calls.sql"), X86_64, 0, HOUR0 + H, end))
    out["q_uses_containers(read)"] = run(sess, bind(read("q_uses_containers.sql"), X86_64, 0, end, 0))
    out["q_uses_containers(read, later hour)"] = run(sess, bind(read("q_uses_containers.sql"), X86_64, 0, end, HOUR0 + H))
    out["q_drift_digests(nginx:1)"] = run(sess, bind(read("q_drift_digests.sql"), "nginx:1", "nginx:1", "", "sha256:aa"))
    out["q_drift_digests(nginx:1, other)"] = run(sess, bind(read("q_drift_digests.sql"), "nginx:1", "nginx:1", "sha256:zz", "sha256:yy"))
    # query usage: (image, one syscall?, abi, nr).
    out["q_usage_calls(nginx:1)"] = run(sess, bind(read("q_usage_calls.sql"), "nginx:1", 0, 0, 0))
    out["q_usage_calls(nginx:1, execve)"] = run(sess, bind(read("q_usage_calls.sql"), "nginx:1", 1, X86_64, 59))
    out["q_usage_first(nginx:1)"] = run(sess, bind(read("q_usage_first.sql"), "nginx:1", 0, 0, 0))
    out["q_usage_first(nginx:1, execve)"] = run(sess, bind(read("q_usage_first.sql"), "nginx:1", 1, X86_64, 59))
    # query breaks: ('' or image twice, from hour, to hour); containers:
    # (image twice, to, from); reach: (image twice, keys, to, from).
    out["q_window_calls(all)"] = run(sess, bind(read("q_window_calls.sql"), "", "", 0, end))
    out["q_window_calls(nginx:1, later hour)"] = run(sess, bind(read("q_window_calls.sql"), "nginx:1", "nginx:1", HOUR0 + H, end))
    out["q_window_containers(all)"] = run(sess, bind(read("q_window_containers.sql"), "", "", end, 0))
    out["q_window_containers(redis:7)"] = run(sess, bind(read("q_window_containers.sql"), "redis:7", "redis:7", end, 0))
    out["q_reach_containers(read, i386 20)"] = run(sess, bind(read("q_reach_containers.sql"), "", "", [0, I386 * 2**32 + 20], end, 0))
    out["q_reach_containers(nginx:1, execve)"] = run(sess, bind(read("q_reach_containers.sql"), "nginx:1", "nginx:1", [59], end, 0))
    out["q_reach_containers(read, later hour)"] = run(sess, bind(read("q_reach_containers.sql"), "", "", [0], end, HOUR0 + H))
    out["q_denials(all)"] = run(sess, bind(read("q_denials.sql"), "", "", 0))
    out["q_denials(nginx:1, this hour)"] = run(sess, bind(read("q_denials.sql"), "nginx:1", "nginx:1", HOUR0))
    out["q_denials(redis:7)"] = run(sess, bind(read("q_denials.sql"), "redis:7", "redis:7", 0))
    out["q_denials(all, later hour)"] = run(sess, bind(read("q_denials.sql"), "", "", HOUR0 + H))
    return out


def u64(v):
    """A UInt64 column value (marks where the Rust side reads u64)."""
    return v


WANT = {
    "q_migrations": (["UInt32"], [[1], [2], [4], [5], [6], [7]]),
    "q_image_executed(nginx:1)": (
        ["UInt8", "String"],
        [[0, "/usr/sbin/nginx"], [1, "/lib/ld.so"], [1, "/usr/lib/mod.so"]],
    ),
    "q_image_executed(redis:7)": ([], []),
    "q_image_executed(app:1)": ([], []),
    "q_image_executed(nope)": ([], []),
    "q_image_arg_values(nginx:1)": (
        ["UInt8", "UInt32", "String", "String", "UInt64", "UInt64"],
        [
            [X86_64, 41, FT, "1,2", u64(1), u64(1)],
            [X86_64, 41, FT, "2,1", u64(2), u64(3)],
            [X86_64, 41, FT, "a,2", u64(1), u64(1)],
        ],
    ),
    "q_image_arg_values(redis:7)": ([], []),
    "q_image_arg_values(app:1)": ([], []),
    "q_image_arg_values(nope)": ([], []),
    "q_image_arg_sets(nginx:1)": (
        ["UInt8", "UInt32", "UInt64", "UInt64", "UInt64"],
        [[X86_64, 41, u64(3), u64(1), u64(1)]],
    ),
    "q_image_arg_sets(redis:7)": ([], []),
    "q_image_arg_sets(app:1)": ([], []),
    "q_image_arg_sets(nope)": ([], []),
    "q_images": (["String"], [["app:1"], ["nginx:1"], ["redis:7"]]),
    "q_image_containers(nginx:1)": (
        ["String", "String", "String", "UInt64", "UInt64", "String", "String", "UInt8", "UInt8"],
        [
            ["h2", "b9", "c3", u64(T0 + 500), u64(T0 + 10_000), "runtime/default", "sha256:aa", 0, 0],
            ["h1", "b1", "c1", u64(T0 + 1000), u64(T0 + 20_000), "unknown", "", 0, 0],
            ["h1", "b1", "c2", u64(T0 + 3000), u64(T0 + 15_000), "unknown", "", 0, 0],
        ],
    ),
    "q_image_containers(redis:7)": (
        ["String", "String", "String", "UInt64", "UInt64", "String", "String", "UInt8", "UInt8"],
        [["h1", "b1", "c4", u64(T0), u64(T0 + 20_000), "unknown", "", 0, 0]],
    ),
    "q_image_containers(app:1)": (
        ["String", "String", "String", "UInt64", "UInt64", "String", "String", "UInt8", "UInt8"],
        [["h3", "b3", "n1", u64(T0 + 100), u64(T0 + 20_000), "unknown", "", 1, 1]],
    ),
    "q_image_calls(app:1)": ([], []),
    "q_image_incidence(app:1)": ([], []),
    "q_image_containers(nope)": ([], []),
    # Calls are summed in two 32-bit halves (high, low), so that no SQL sum
    # can overflow (docs/STORE.md, "Ranges and saturation").
    "q_image_calls(nginx:1)": (
        ["UInt8", "UInt32", "UInt64", "UInt64", "UInt8", "UInt64"],
        [
            [X86_64, 0, u64(0), u64(27), IMAGE, u64(T0 + 20_000)],
            [X86_64, 1, u64(0), u64(3), IMAGE, u64(T0 + 20_000)],
            [X86_64, 59, u64(0), u64(1), RUNTIME, u64(T0 + 10_000)],
            [I386, 20, u64(0), u64(2), IMAGE, u64(T0 + 10_000)],
        ],
    ),
    "q_image_calls(redis:7)": (
        ["UInt8", "UInt32", "UInt64", "UInt64", "UInt8", "UInt64"],
        [[X86_64, 0, u64(0), u64(100), IMAGE, u64(T0 + 10_000)]],
    ),
    "q_image_calls(nope)": ([], []),
    "q_image_incidence(nginx:1)": (
        ["String", "String", "String", "UInt8", "UInt32", "UInt8", "UInt64", "UInt64"],
        [
            ["h1", "b1", "c1", X86_64, 0, IMAGE, u64(T0 + 2000), u64(T0 + 10_000)],
            ["h1", "b1", "c1", X86_64, 1, IMAGE, u64(T0 + 12_000), u64(T0 + 20_000)],
            ["h1", "b1", "c1", X86_64, 59, RUNTIME, u64(T0 + 1500), u64(T0 + 10_000)],
            ["h1", "b1", "c2", X86_64, 0, IMAGE, u64(T0 + 3500), u64(T0 + 15_000)],
            ["h2", "b9", "c3", X86_64, 0, IMAGE, u64(T0 + 700), u64(T0 + 10_000)],
            ["h2", "b9", "c3", I386, 20, IMAGE, u64(T0 + 600), u64(T0 + 10_000)],
        ],
    ),
    "q_image_incidence(redis:7)": (
        ["String", "String", "String", "UInt8", "UInt32", "UInt8", "UInt64", "UInt64"],
        [["h1", "b1", "c4", X86_64, 0, IMAGE, u64(T0 + 100), u64(T0 + 10_000)]],
    ),
    "q_image_incidence(nope)": ([], []),
    "q_syscall_totals": (
        ["String", "UInt8", "UInt32", "UInt64", "UInt64", "UInt64", "UInt64"],
        [
            ["nginx:1", X86_64, 0, u64(0), u64(27), u64(2), u64(3)],
            ["nginx:1", X86_64, 1, u64(0), u64(3), u64(1), u64(1)],
            ["nginx:1", X86_64, 59, u64(0), u64(1), u64(1), u64(1)],
            ["nginx:1", I386, 20, u64(0), u64(2), u64(1), u64(1)],
            ["redis:7", X86_64, 0, u64(0), u64(100), u64(1), u64(1)],
        ],
    ),
    "q_uses_calls(read)": (
        ["String", "UInt64", "UInt64", "UInt64"],
        [["nginx:1", u64(0), u64(27), u64(T0 + 20_000)], ["redis:7", u64(0), u64(100), u64(T0 + 10_000)]],
    ),
    "q_uses_calls(read, later hour)": ([], []),
    "q_uses_containers(read)": (
        ["String", "UInt64", "UInt64"],
        [["nginx:1", u64(2), u64(3)], ["redis:7", u64(1), u64(1)]],
    ),
    "q_uses_containers(read, later hour)": ([], []),
    "q_drift_digests(nginx:1)": (
        ["String", "UInt8", "UInt32", "UInt64", "UInt64", "UInt64", "UInt64"],
        [
            ["", X86_64, 0, u64(1), u64(2), u64(T0 + 2000), u64(T0 + 15_000)],
            ["", X86_64, 1, u64(1), u64(1), u64(T0 + 12_000), u64(T0 + 20_000)],
            ["", X86_64, 59, u64(1), u64(1), u64(T0 + 1500), u64(T0 + 10_000)],
            ["sha256:aa", X86_64, 0, u64(1), u64(1), u64(T0 + 700), u64(T0 + 10_000)],
            ["sha256:aa", I386, 20, u64(1), u64(1), u64(T0 + 600), u64(T0 + 10_000)],
        ],
    ),
    "q_drift_digests(nginx:1, other)": ([], []),
    "q_usage_calls(nginx:1)": (["UInt64"] * 4, [[u64(HOUR0), u64(0), u64(33), u64(2)]]),
    "q_usage_calls(nginx:1, execve)": (["UInt64"] * 4, [[u64(HOUR0), u64(0), u64(1), u64(1)]]),
    "q_usage_first(nginx:1)": (["UInt64"] * 2, [[u64(HOUR0), u64(3)]]),
    "q_usage_first(nginx:1, execve)": (["UInt64"] * 2, [[u64(HOUR0), u64(1)]]),
    "q_window_calls(all)": (
        ["String", "UInt8", "UInt32", "UInt64", "UInt64", "UInt64"],
        [
            ["nginx:1", X86_64, 0, u64(0), u64(27), u64(T0 + 20_000)],
            ["nginx:1", X86_64, 1, u64(0), u64(3), u64(T0 + 20_000)],
            ["nginx:1", X86_64, 59, u64(0), u64(1), u64(T0 + 10_000)],
            ["nginx:1", I386, 20, u64(0), u64(2), u64(T0 + 10_000)],
            ["redis:7", X86_64, 0, u64(0), u64(100), u64(T0 + 10_000)],
        ],
    ),
    "q_window_calls(nginx:1, later hour)": ([], []),
    "q_window_containers(all)": (
        ["String", "UInt8", "UInt32", "UInt64", "UInt64"],
        [
            ["nginx:1", X86_64, 0, u64(2), u64(3)],
            ["nginx:1", X86_64, 1, u64(1), u64(1)],
            ["nginx:1", X86_64, 59, u64(1), u64(1)],
            ["nginx:1", I386, 20, u64(1), u64(1)],
            ["redis:7", X86_64, 0, u64(1), u64(1)],
        ],
    ),
    "q_window_containers(redis:7)": (
        ["String", "UInt8", "UInt32", "UInt64", "UInt64"],
        [["redis:7", X86_64, 0, u64(1), u64(1)]],
    ),
    "q_reach_containers(read, i386 20)": (
        ["String", "UInt64", "UInt64"],
        [["nginx:1", u64(2), u64(3)], ["redis:7", u64(1), u64(1)]],
    ),
    "q_reach_containers(nginx:1, execve)": (["String", "UInt64", "UInt64"], [["nginx:1", u64(1), u64(1)]]),
    "q_reach_containers(read, later hour)": ([], []),
    "q_runtime_syscalls": (
        ["String", "String", "UInt8", "UInt32"],
        [["docker", "nginx:1", X86_64, 59]],
    ),
    "q_denials(all)": (
        ["String", "UInt8", "UInt32", "UInt8", "UInt16", "String"] + ["UInt64"] * 6,
        [
            ["nginx:1", X86_64, 155, 0, 1, "0123456789abcdef", u64(0), u64(7), u64(1), u64(1), u64(T0 + 10_000), u64(T0 + 20_000)],
            ["nginx:1", X86_64, 155, 0, 1, "runtime/default", u64(0), u64(4), u64(1), u64(1), u64(T0 + 10_000), u64(T0 + 10_000)],
            ["nginx:1", X86_64, 165, 2, 0, "0123456789abcdef", u64(0), u64(1), u64(1), u64(1), u64(T0 + 20_000), u64(T0 + 20_000)],
        ],
    ),
    "q_denials(nginx:1, this hour)": (
        ["String", "UInt8", "UInt32", "UInt8", "UInt16", "String"] + ["UInt64"] * 6,
        [
            ["nginx:1", X86_64, 155, 0, 1, "0123456789abcdef", u64(0), u64(7), u64(1), u64(1), u64(T0 + 10_000), u64(T0 + 20_000)],
            ["nginx:1", X86_64, 155, 0, 1, "runtime/default", u64(0), u64(4), u64(1), u64(1), u64(T0 + 10_000), u64(T0 + 10_000)],
            ["nginx:1", X86_64, 165, 2, 0, "0123456789abcdef", u64(0), u64(1), u64(1), u64(1), u64(T0 + 20_000), u64(T0 + 20_000)],
        ],
    ),
    "q_denials(redis:7)": ([], []),
    "q_denials(all, later hour)": ([], []),
}


def check_answers(sess, when):
    got = answers(sess)
    for k, (types, rows) in WANT.items():
        gt, gr = got[k]
        if rows:
            check(f"{k} types [{when}]", gt, types)
        check(f"{k} rows [{when}]", gr, rows)


def main():
    with tempfile.TemporaryDirectory() as d:
        sess = session.Session(os.path.join(d, "chdb"))
        _, v = run(sess, "SELECT version()")
        print(f"current ClickHouse (chdb): {v[0][0]}")
        migrate(sess)
        migrate(sess)  # idempotent: nothing to apply, nothing breaks
        for s in split(read("0000_bootstrap.sql")) + split(read("0001_init.sql")) + split(read("0002_incomplete.sql")) + split(read("0004_unverified.sql")) + split(read("0005_denials.sql")) + split(read("0006_args.sql")) + split(read("0007_executed.sql")):
            run(sess, s)  # every DDL statement again: IF NOT EXISTS
        check("python explode row counts", insert(sess, ENVELOPES), (7, 8, 9, 1, 1))
        check_answers(sess, "once")
        # Redelivery: everything twice more, and envelopes one by one.
        insert(sess, ENVELOPES)
        insert(sess, ENVELOPES[::-1])
        for e in ENVELOPES:
            insert(sess, [e])
        check_answers(sess, "redelivered")
        for s in split(read("optimize.sql")):
            run(sess, s)
        check_answers(sess, "after OPTIMIZE FINAL")
        _, n = run(sess, f"SELECT toUInt64(count()) FROM {DB}.calls")
        check("calls rows after OPTIMIZE FINAL", n, [[7]])
        _, n = run(sess, f"SELECT container_id FROM {DB}.incomplete_containers")
        check("incomplete_containers after OPTIMIZE FINAL", n, [["n1"]])
        _, n = run(sess, f"SELECT toUInt64(count()) FROM {DB}.executed_files")
        check("executed_files rows after OPTIMIZE FINAL", n, [[6]])
        # The example queries of docs/STORE.md run too.
        docs = open(os.path.join(ROOT, "docs", "STORE.md")).read()
        examples = re.findall(r"```sql\n(.*?)```", docs, re.S)
        for i, q in enumerate(examples):
            _, rows = run(sess, q.replace("sandmine.", DB + ".").strip().rstrip(";"))
            if i == 0:
                check("docs example 1 (per image/abi/syscall)", rows, [
                    ["nginx:1", X86_64, 0, 2, 3, 27, T0 + 700, T0 + 20_000],
                    ["nginx:1", X86_64, 1, 1, 1, 3, T0 + 12_000, T0 + 20_000],
                    ["nginx:1", X86_64, 59, 1, 1, 1, T0 + 1500, T0 + 10_000],
                    ["nginx:1", I386, 20, 1, 1, 2, T0 + 600, T0 + 10_000],
                    ["redis:7", X86_64, 0, 1, 1, 100, T0 + 100, T0 + 10_000],
                ])
            elif i == 3:
                check("docs example 4 (incomplete containers per image)", rows, [
                    ["app:1", 1, 1], ["nginx:1", 3, 0], ["redis:7", 1, 0],
                ])
            else:
                print(f"ok   docs example {i + 1} runs ({len(rows)} rows)")
        # And those of docs/ANALYTICS.md (several statements per block).
        docs = open(os.path.join(ROOT, "docs", "ANALYTICS.md")).read()
        for i, block in enumerate(re.findall(r"```sql\n(.*?)```", docs, re.S)):
            for q in split(block.replace("sandmine.", DB + ".")):
                _, rows = run(sess, q)
                print(f"ok   ANALYTICS.md example {i + 1} runs ({len(rows)} rows)")
        # A container with several runtime-phase syscalls keeps them all
        # (current ClickHouse's ANY INNER JOIN would keep one per container).
        insert(sess, [("h9", "b9", 1, T0, [
            ("r1", "join:1", "", "unknown", None, T0, T0 + 10_000, None,
             [(X86_64, 1, 1, RUNTIME, T0 + 1), (X86_64, 2, 1, RUNTIME, T0 + 2), (X86_64, 3, 1, IMAGE, T0 + 3)]),
        ])])
        _, rows = run(sess, read("q_runtime_syscalls.sql"))
        check("q_runtime_syscalls keeps every syscall of a container", rows, [
            ["docker", "join:1", X86_64, 1], ["docker", "join:1", X86_64, 2], ["docker", "nginx:1", X86_64, 59],
        ])
        sess.close()
    # The Grafana dashboard's SQL panels, on the same schema (its own process:
    # one chdb session per process).
    sys.stdout.flush()
    grafana = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "check-grafana.py")])
    if grafana.returncode != 0:
        failures.append("scripts/check-grafana.py (deploy/grafana/sandmine.json) failed, above")
    if failures:
        print("\nFAILED:\n" + "\n".join(failures))
        sys.exit(1)
    print("all statements OK on current ClickHouse")


if __name__ == "__main__":
    main()
