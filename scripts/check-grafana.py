#!/usr/bin/env python3
"""Checks the Grafana dashboard deploy/grafana/sandmine.json.

Run by scripts/check-sql-chdb.py (CI step "store SQL on current ClickHouse
(chdb)"), or alone:
    /var/cache/sandmine/py/bin/python scripts/check-grafana.py

Prometheus panels:
  - every metric an expression names is one sandmine exports (the rows of
    `Metrics::render` in src/metrics.rs, prefixed `sandmine_`, as many as
    its array declares) or `up`;
  - a counter (`_total`) is only read through rate/increase/irate, and a
    gauge never is;
  - every expression parses: `promtool check rules` on a rules file made of
    them ($__rate_interval and $__interval set to 5m).
ClickHouse panels (plugin grafana-clickhouse-datasource, its v4 macros):
  - the macros are expanded as the plugin's backend does (pkg/macros of
    grafana/clickhouse-datasource) for a fixed range and a 60 s interval, and
    ${database} as the store's database; an unknown macro is an error;
  - each query runs on current ClickHouse (chdb) against the real schema
    (aggregator/sql/clickhouse migrations, applied as the store does) holding
    the worked example of scripts/check-sql-chdb.py plus a few rows of its
    own, and returns exactly the expected columns and rows;
  - the high-risk list in the "High-risk syscalls in use" panel is exactly
    policy-compiler/src/risk.rs CATALOGUE, numbered per ABI by
    schemas/src/syscalls/syscall_table.rs.
Then each check is known to check: deliberately broken copies of the
dashboard (a wrong column, a metric that does not exist, a raw counter, a
PromQL syntax error, a macro typo, a macro argument with a comma, a renamed
column, a range filter dropped, a high-risk entry missing) must each fail,
for the reason meant.

Exit status 0 when everything holds; otherwise prints what failed.
"""

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone

from chdb import session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARD = os.path.join(ROOT, "deploy", "grafana", "sandmine.json")
CH_PLUGIN = "grafana-clickhouse-datasource"

# The store's statements, the worked example and its loader, shared with
# scripts/check-sql-chdb.py.
_spec = importlib.util.spec_from_file_location("check_sql_chdb", os.path.join(ROOT, "scripts", "check-sql-chdb.py"))
store = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(store)
DB, T0, H = store.DB, store.T0, store.H
X86_64, I386, IMAGE, RUNTIME = store.X86_64, store.I386, store.IMAGE, store.RUNTIME

# The fixed range the macros are expanded for: T0 (the worked example) +- 1 h.
FROM_MS, TO_MS = T0 - H, T0 + H
INTERVAL_S = 60

ABIS = ["X86_64", "I386", "X32", "AARCH64"]  # schemas/src/abi.rs: code = position


# ------------------------------------------------------------------ sources
def exported_metrics():
    """{name: kind} of the metrics src/metrics.rs renders."""
    src = open(os.path.join(ROOT, "src", "metrics.rs")).read()
    rows = re.findall(r'\(\s*"([a-z_]+)",\s*"(counter|gauge)",', src)
    # The counters' array, and the publishing round's labelled rows.
    declared = re.search(r"let rows: \[\(&str, &str, &str, &AtomicU64\); (\d+)\] = \[", src)
    round_rows = re.search(r"pub const ROUND_ROWS: \[\(&str, &str, &str\); (\d+)\] = \[", src)
    # The labelled rows rendered by hand: ROUND_ROWS, DENIAL_ROWS.
    labelled = [int(n) for n in re.findall(r"pub const [A-Z_]+_ROWS: \[\(&str, &str, &str\); (\d+)\] = \[", src)]
    if declared is None or round_rows is None or int(declared.group(1)) + sum(labelled) != len(rows):
        raise SystemExit(f"check-grafana: read {len(rows)} metrics from src/metrics.rs, which declares "
                         f"{declared.group(1) if declared else 'no'} + "
                         f"{' + '.join(map(str, labelled)) or 'no'} rows; has its shape changed?")
    return {"sandmine_" + n: k for n, k in rows}


def syscall_tables():
    """Per ABI code, {name: number}, from the generated syscall tables."""
    text = open(os.path.join(ROOT, "schemas", "src", "syscalls", "syscall_table.rs")).read()
    out = []
    for a in ABIS:
        body = text.split(f"pub(super) const {a}: &[(u32, &str)] = &[")[1].split("];")[0]
        out.append({n: int(nr) for nr, n in re.findall(r'\((\d+), "([a-z0-9_]+)"\)', body)})
    return out


def risk_catalogue():
    text = open(os.path.join(ROOT, "policy-compiler", "src", "risk.rs")).read()
    body = text.split("pub const CATALOGUE: &[Risk] = &[")[1].split("\n];")[0]
    return re.findall(r'name: "([a-z0-9_]+)"', body)


def expected_risk_pairs():
    """[(abi * 2^32 + nr, name)] for every catalogue entry every ABI has."""
    tables = syscall_tables()
    return sorted((code * 2**32 + t[n], n) for code, t in enumerate(tables) for n in risk_catalogue() if n in t)


# ------------------------------------------------------------- the panels
def targets(dash):
    """(panel title, datasource type, target) of every query of the dashboard."""
    out = []
    for p in dash["panels"]:
        for q in p.get("targets", []):
            ds = (q.get("datasource") or p.get("datasource") or {}).get("type")
            out.append((p["title"], ds, q))
    return out


# --------------------------------------------------------------- PromQL
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
RATE_FUNCS = ("rate", "increase", "irate")


def promql_metrics(expr):
    """The metric names an expression selects (a small lexer: strings,
    label matchers, ranges and grouping label lists removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = []
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", e):
        name, call = m.group(1), m.group(2)
        if call or name in PROMQL_WORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.append(name)
    return names


def check_prometheus(dash, errors):
    metrics = exported_metrics()
    exprs = []
    for title, ds, q in targets(dash):
        if ds != "prometheus":
            continue
        expr = q["expr"]
        exprs.append((title, q["refId"], expr))
        names = promql_metrics(expr)
        if not names:
            errors.append(f"{title} {q['refId']}: no metric in {expr!r}")
        for n in names:
            if n == "up":
                continue
            kind = metrics.get(n)
            if kind is None:
                errors.append(f"{title} {q['refId']}: metric {n} is not exported by src/metrics.rs")
                continue
            wrapped = re.search(r"\b(?:%s)\s*\(\s*%s\b" % ("|".join(RATE_FUNCS), re.escape(n)), expr)
            if kind == "counter" and not wrapped:
                errors.append(f"{title} {q['refId']}: counter {n} is read without rate/increase/irate")
            if kind == "gauge" and wrapped:
                errors.append(f"{title} {q['refId']}: gauge {n} is read through rate/increase/irate")
    # Syntax: promtool parses them as recording rules.
    promtool = shutil.which("promtool")
    if promtool is None:
        errors.append("promtool missing (Debian package prometheus; scripts/install-deps.sh)")
        return len(exprs)
    with tempfile.TemporaryDirectory() as d:
        rules = os.path.join(d, "dashboard.rules.json")  # JSON is YAML
        json.dump({"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:panel{i}", "expr": e.replace("$__rate_interval", "5m").replace("$__interval", "5m")}
            for i, (_, _, e) in enumerate(exprs)]}]}, open(rules, "w"))
        r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
        if r.returncode != 0:
            errors.append("promtool check rules rejected the dashboard's expressions:\n" + r.stdout + r.stderr)
    return len(exprs)


# ------------------------------------------------------------ ClickHouse
def _args(s, i):
    """The comma-separated arguments of a call whose '(' is at s[i]; the index after ')'."""
    depth, args, cur, j = 0, [], "", i
    while j < len(s):
        ch = s[j]
        if ch == "(":
            depth += 1
            if depth == 1:
                j += 1
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append(cur.strip())
                return [a for a in args if a != ""], j + 1
        elif ch == "," and depth == 1:
            args.append(cur.strip())
            cur = ""
            j += 1
            continue
        cur += ch
        j += 1
    raise ValueError("unbalanced parentheses in a macro call")


def expand(sql, from_ms=FROM_MS, to_ms=TO_MS, interval_s=INTERVAL_S, db=DB):
    """Grafana's variables, then grafana-clickhouse-datasource's macros, as
    its backend expands them (pkg/macros/macros.go)."""
    sql = sql.replace("${database}", db).replace("$database", db)
    f_s, t_s = from_ms // 1000, to_ms // 1000
    dt = lambda s: f"toDateTime({s})"
    dt64 = lambda ms: f"fromUnixTimestamp64Milli({ms})"
    one = {
        "timeFilter": lambda c: f"{c} >= {dt(f_s)} AND {c} <= {dt(t_s)}",
        "timeFilter_ms": lambda c: f"{c} >= {dt64(from_ms)} AND {c} <= {dt64(to_ms)}",
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {max(interval_s, 1)} second)",
        "timeInterval_ms": lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {max(interval_s * 1000, 1)} millisecond)",
    }
    none = {
        "fromTime": dt(f_s), "toTime": dt(t_s),
        "fromTime_ms": dt64(from_ms), "toTime_ms": dt64(to_ms),
        "interval_s": str(max(interval_s, 1)),
    }
    out, i = "", 0
    for m in re.finditer(r"\$__(\w+)", sql):
        if m.start() < i:
            continue
        out += sql[i:m.start()]
        name, j = m.group(1), m.end()
        if name in one:
            if j >= len(sql) or sql[j] != "(":
                raise ValueError(f"macro $__{name} needs one argument")
            args, j = _args(sql, j)
            if len(args) != 1:
                raise ValueError(f"macro $__{name}: expected 1 argument, received {len(args)}")
            if "," in args[0]:  # older sqlds releases split macro arguments on every comma
                raise ValueError(f"macro $__{name}: a comma in its argument {args[0]!r}")
            out += one[name](args[0])
        elif name in none:
            if j < len(sql) and sql[j] == "(":
                args, j = _args(sql, j)  # the plugin takes $__fromTime() too
            out += none[name]
        else:
            raise ValueError(f"unknown macro $__{name} (not one of grafana-clickhouse-datasource's)")
        i = j
    out += sql[i:]
    if "$" in out:
        raise ValueError(f"unexpanded variable left: {out[out.index('$'):][:40]!r}")
    return out


def query(sess, sql):
    """(column names, rows) of a query; raises RuntimeError with ClickHouse's message."""
    try:
        r = sess.query(sql, "JSONCompact")
    except Exception as e:  # chdb raises its own error type
        raise RuntimeError(str(e).strip().splitlines()[0])
    body = r.bytes() if hasattr(r, "bytes") else bytes(r)
    if not body.strip():
        return [], []
    j = json.loads(body)
    types = [m["type"] for m in j["meta"]]
    rows = [[int(v) if t.startswith(("UInt", "Int")) else v for t, v in zip(types, row)] for row in j["data"]]
    return [m["name"] for m in j["meta"]], rows


# Rows of their own (with the worked example at T0): an image first seen
# 5 hours before the range (read; outside it) that makes ptrace in range,
# and one with high-risk syscalls on two ABIs.
EXTRA = [
    ("h4", "b4", 1, T0 - 5 * H, [
        ("o1", "old:1", "", "unknown", None, T0 - 5 * H, T0 - 5 * H + 10_000, None,
         [(X86_64, 0, 9, IMAGE, T0 - 5 * H + 1)]),
    ]),
    ("h4", "b4", 2, T0, [
        ("o1", "old:1", "", "unknown", None, T0 - 5 * H, T0 + 10_000, None,
         [(X86_64, 101, 2, RUNTIME, T0 + 1)]),
    ]),
    ("h5", "b5", 1, T0 + 60_000, [
        ("r1", "risky:1", "", "unknown", None, T0 + 60_000, T0 + 70_000, None,
         [(X86_64, 321, 3, IMAGE, T0 + 60_005), (I386, 26, 1, IMAGE, T0 + 60_006), (X86_64, 0, 4, IMAGE, T0 + 60_007)]),
    ]),
]

# Time buckets (60 s; T0 is 2023-11-14 22:13:20 UTC): the worked example's
# and old:1's intervals end at T0 + 10 s and T0 + 20 s (bucket 22:13:00),
# risky:1's at T0 + 70 s (bucket 22:14:00); old:1's first interval, 5 h
# earlier, is outside the range.
B, B2 = "2023-11-14 22:13:00", "2023-11-14 22:14:00"


def FIRST(ms):
    """A DateTime64(3) as ClickHouse prints it in UTC."""
    return datetime.fromtimestamp(ms // 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + f".{ms % 1000:03d}"


# Per panel title: (columns, rows) the query must return on the data above.
WANT = {
    "Calls per image": (["time", "image", "calls"], [
        # nginx:1: h1 (5 + 7 + 1) + (10 + 1 + 3), h2 4 + 2.
        [B, "nginx:1", 33], [B, "old:1", 2], [B, "redis:7", 100], [B2, "risky:1", 8],
    ]),
    "Top syscalls": (["arch", "nr", "calls", "images"], [
        # read: nginx:1 12 + 11 + 4, redis:7 100, risky:1 4 (not old:1's 9: before the range).
        ["x86_64", 0, 131, 3], ["x86_64", 1, 3, 1], ["x86_64", 321, 3, 1], ["x86_64", 101, 2, 1],
        ["i386", 20, 2, 1], ["x86_64", 59, 1, 1], ["i386", 26, 1, 1],
    ]),
    "Images by distinct syscalls": (["image", "syscalls", "calls", "hosts"], [
        ["nginx:1", 4, 33, 2], ["risky:1", 3, 8, 1], ["old:1", 1, 2, 1], ["redis:7", 1, 100, 1],
    ]),
    "New syscalls per image": (["image", "arch", "nr", "first_seen", "hosts", "containers"], [
        # Not old:1's read: first seen 5 h before the range.
        ["risky:1", "x86_64", 0, FIRST(T0 + 60_007), 1, 1],
        ["risky:1", "i386", 26, FIRST(T0 + 60_006), 1, 1],
        ["risky:1", "x86_64", 321, FIRST(T0 + 60_005), 1, 1],
        ["nginx:1", "x86_64", 1, FIRST(T0 + 12_000), 1, 1],
        ["nginx:1", "x86_64", 59, FIRST(T0 + 1500), 1, 1],
        ["nginx:1", "x86_64", 0, FIRST(T0 + 700), 2, 3],
        ["nginx:1", "i386", 20, FIRST(T0 + 600), 1, 1],
        ["redis:7", "x86_64", 0, FIRST(T0 + 100), 1, 1],
        ["old:1", "x86_64", 101, FIRST(T0 + 1), 1, 1],
    ]),
    "High-risk syscalls in use": (["image", "arch", "syscall", "hosts", "containers", "last_seen"], [
        ["old:1", "x86_64", "ptrace", 1, 1, FIRST(T0 + 10_000)],
        ["risky:1", "x86_64", "bpf", 1, 1, FIRST(T0 + 70_000)],
        ["risky:1", "i386", "ptrace", 1, 1, FIRST(T0 + 70_000)],
    ]),
}


def check_clickhouse(dash, sess, errors):
    n = 0
    seen = set()
    for title, ds, q in targets(dash):
        if ds != CH_PLUGIN:
            continue
        n += 1
        seen.add(title)
        try:
            sql = expand(q["rawSql"])
        except ValueError as e:
            errors.append(f"{title}: {e}")
            continue
        try:
            cols, rows = query(sess, sql)
        except RuntimeError as e:
            errors.append(f"{title}: ClickHouse rejected the query: {e}")
            continue
        want = WANT.get(title)
        if want is None:
            errors.append(f"{title}: no expected result in scripts/check-grafana.py")
            continue
        if cols != want[0]:
            errors.append(f"{title}: columns {cols}, want {want[0]}")
        if not rows:
            errors.append(f"{title}: no rows on the inserted data")
        elif rows != want[1]:
            errors.append(f"{title}: rows\n  got  {rows}\n  want {want[1]}")
    for title in sorted(set(WANT) - seen):
        errors.append(f"{title}: panel missing from the dashboard")
    # The high-risk list is the catalogue, numbered per ABI.
    risk = [q["rawSql"] for t, ds, q in targets(dash) if t == "High-risk syscalls in use"]
    if risk:
        m = re.search(r"transform\(toUInt64\(abi\) \* 4294967296 \+ nr, \[([\d, ]*)\], \[([^\]]*)\]", risk[0])
        if not m:
            errors.append("High-risk syscalls in use: no transform(key, [keys], [names], '') in its query")
        else:
            keys = [int(k) for k in m.group(1).split(",")]
            names = re.findall(r"'([a-z0-9_]+)'", m.group(2))
            got = sorted(zip(keys, names))
            want = expected_risk_pairs()
            if got != want:
                errors.append("High-risk syscalls in use: the list differs from policy-compiler/src/risk.rs x the syscall tables: "
                              f"missing {sorted(set(want) - set(got))}, extra {sorted(set(got) - set(want))}")
            if f"IN [{m.group(1)}]" not in risk[0]:
                errors.append("High-risk syscalls in use: its IN list is not the transform's key list")
    return n


def check(dash, sess):
    errors = []
    if dash.get("schemaVersion", 0) < 36:
        errors.append(f"schemaVersion {dash.get('schemaVersion')} (want a current Grafana's, >= 36)")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    for name, plugin in (("DS_PROMETHEUS", "prometheus"), ("DS_CLICKHOUSE", CH_PLUGIN)):
        v = variables.get(name)
        if not v or v.get("type") != "datasource" or v.get("query") != plugin:
            errors.append(f"no datasource variable {name} of type {plugin}")
    for title, ds, q in targets(dash):
        if ds not in ("prometheus", CH_PLUGIN):
            errors.append(f"{title}: datasource {ds!r} is neither prometheus nor {CH_PLUGIN}")
    n_prom = check_prometheus(dash, errors)
    n_ch = check_clickhouse(dash, sess, errors)
    return errors, n_prom, n_ch


def broken(dash, title, field, old, new):
    """A copy of the dashboard with `old` replaced by `new` in one panel's queries."""
    d = copy.deepcopy(dash)
    hit = False
    for p in d["panels"]:
        if p["title"] == title:
            for q in p["targets"]:
                if old in q[field]:
                    q[field] = q[field].replace(old, new, 1)
                    hit = True
    assert hit, f"broken sample: {old!r} not in {title}"
    return d


def main():
    dash = json.load(open(DASHBOARD))
    failed = False
    with tempfile.TemporaryDirectory() as d:
        sess = session.Session(os.path.join(d, "chdb"))
        query(sess, "SET session_timezone = 'UTC'")
        store.migrate(sess)
        store.insert(sess, store.ENVELOPES)
        store.insert(sess, EXTRA)
        store.insert(sess, store.ENVELOPES + EXTRA)  # redelivered: the panels dedupe
        errors, n_prom, n_ch = check(dash, sess)
        if errors:
            failed = True
            print("check-grafana: deploy/grafana/sandmine.json FAILED:\n  " + "\n  ".join(errors))
        else:
            print(f"ok   grafana dashboard: {n_prom} Prometheus queries (metrics of src/metrics.rs, promtool), "
                  f"{n_ch} ClickHouse queries (macros expanded, run on chdb, exact rows)")
        # The checks check: each broken sample must fail, saying why.
        samples = [
            ("a wrong column", broken(dash, "New syscalls per image", "rawSql", "min(first_seen_ms)", "min(first_seen)"),
             r"New syscalls per image: ClickHouse rejected the query: .*first_seen"),
            ("a metric that does not exist", broken(dash, "Spool size", "expr", "sandmine_spool_bytes", "sandmine_spool_size_bytes"),
             r"metric sandmine_spool_size_bytes is not exported"),
            ("a counter read raw", broken(dash, "Lost calls", "expr", "increase(sandmine_lost_calls_total{job=\"sandmine-collector\"}[$__rate_interval])",
                                          "sandmine_lost_calls_total{job=\"sandmine-collector\"}"),
             r"counter sandmine_lost_calls_total is read without"),
            ("a PromQL syntax error", broken(dash, "Dead letters", "expr", "[$__rate_interval])", "[$__rate_interval]"),
             r"promtool check rules rejected"),
            ("a macro typo", broken(dash, "Top syscalls", "rawSql", "$__fromTime_ms", "$__fromTimeMs"),
             r"unknown macro \$__fromTimeMs"),
            ("a macro argument with a comma", broken(dash, "Calls per image", "rawSql", "$__timeInterval(e_s)", "$__timeInterval(intDiv(e, 1000))"),
             r"macro \$__timeInterval: a comma in its argument"),
            ("a renamed column", broken(dash, "Top syscalls", "rawSql", "uniqExact(image) AS images", "uniqExact(image) AS n_images"),
             r"Top syscalls: columns \['arch', 'nr', 'calls', 'n_images'\]"),
            ("a range filter dropped", broken(dash, "New syscalls per image", "rawSql", "WHERE first >=", "WHERE first + 0 >= 0 OR first >="),
             r"New syscalls per image: rows"),
            ("a high-risk entry missing", broken(dash, "High-risk syscalls in use", "rawSql", "'ptrace', ", ""),
             r"the list differs from policy-compiler/src/risk.rs"),
        ]
        for what, sample, pattern in samples:
            errs, _, _ = check(sample, sess)
            text = "\n".join(errs)
            if not errs:
                failed = True
                print(f"check-grafana: {what}: the checker passed a deliberately broken dashboard")
            elif not re.search(pattern, text):
                failed = True
                print(f"check-grafana: {what}: it failed, but without saying /{pattern}/:\n{text}")
            else:
                print(f"ok   check-grafana rejects {what}")
        sess.close()
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
