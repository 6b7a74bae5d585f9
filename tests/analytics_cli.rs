//! `sandmine query uses|drift|surface|usage` through the real binary, on
//! the embedded store and on ClickHouse: exact table, CSV and JSON output,
//! the same from both stores; clear errors; `--help` with examples.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;

use aggregator::store::Store;
use common::*;
use publish::PublishedMeta;
use std::collections::{BTreeMap, BTreeSet};
use store_common::analytics_fleet::{analytics_fleet, breaks_fleet};

/// Both stores loaded with the analytics fleet, and the `--set` flags that
/// select each.
struct Stores {
    _ch: testsvc::ClickHouse,
    embedded: Vec<String>,
    clickhouse: Vec<String>,
}

fn stores(f: &Fixture) -> Stores {
    stores_of(f, analytics_fleet())
}

fn stores_of(f: &Fixture, fleet: Vec<schemas::wire::Envelope>) -> Stores {
    let ch = testsvc::ClickHouse::start();
    let db = f.path("store.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let emb = store_common::open_embedded(f.path("").as_path()).await;
        let chs = store_common::open_ch(&ch).await;
        for s in [&emb, &chs] {
            s.insert(&fleet).await.unwrap();
        }
        drop::<[Store; 2]>([emb, chs]);
    });
    Stores {
        embedded: vec![
            "--set".into(),
            format!("store.embedded.path=\"{}\"", db.display()),
        ],
        clickhouse: vec![
            "--set".into(),
            format!("store.clickhouse.url=\"{}\"", ch.url()),
        ],
        _ch: ch,
    }
}

/// `sandmine query <store flags> ARGS` on both stores: the same stdout,
/// exit code 0; returns it.
fn query_both(f: &Fixture, s: &Stores, args: &[&str]) -> String {
    query_both_exit(f, s, args, 0)
}

/// [`query_both`], with exit code `code`.
fn query_both_exit(f: &Fixture, s: &Stores, args: &[&str], code: i32) -> String {
    let mut outs = Vec::new();
    for flags in [&s.embedded, &s.clickhouse] {
        let mut a: Vec<&str> = vec!["query"];
        a.extend(flags.iter().map(String::as_str));
        a.extend(args);
        let o = f.sandmine(&a);
        assert_eq!(o.code(), Some(code), "{args:?}: {}", o.describe());
        outs.push(o.stdout);
    }
    assert_eq!(outs[0], outs[1], "{args:?}: embedded and ClickHouse differ");
    outs.remove(0)
}

/// A publish folder (a `dir` target's root) with a publication for app:1
/// (enforce: read and io_uring_setup allowed) and web:2 (log: keyctl).
fn published(f: &Fixture) -> String {
    let root = f.path("published");
    for (image, state, names) in [
        ("app:1", "enforce", &["read", "io_uring_setup"][..]),
        ("web:2", "log", &["keyctl"][..]),
    ] {
        let slug = publish::image_slug(image);
        let meta = PublishedMeta {
            format: publish::META_FORMAT,
            image: image.into(),
            slug: slug.clone(),
            version: format!("sha256:{}", "0".repeat(64)),
            version_short: "000000000000".into(),
            published_at_ms: 1_700_000_000_000,
            state: state.into(),
            allowed: BTreeMap::from([(
                "x86_64".to_string(),
                names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
            )]),
            files: vec![],
            previous_version: None,
            confidence_summary: String::new(),
            log_since_ms: None,
            levers: Default::default(),
            after_denials: Vec::new(),
        };
        let dir = root.join(&slug);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("current"),
            serde_json::to_vec_pretty(&meta).unwrap(),
        )
        .unwrap();
    }
    root.display().to_string()
}

#[test]
fn uses_in_three_formats_on_both_stores() {
    let f = Fixture::new();
    let s = stores(&f);
    let dir = published(&f);
    assert_eq!(
        query_both(&f, &s, &["uses", "io_uring_setup", "--published", &dir]),
        "\
IMAGE  HOSTS  CONTAINERS  CALLS  LAST_SEEN             PUBLISHED
app:1      2           3      9  2023-11-15T01:00:10Z  yes
web:2      1           1      1  2023-11-15T02:00:10Z  logged
"
    );
    // keyctl: web:2's log profile lists it; app:1 never used it.
    assert_eq!(
        query_both(
            &f,
            &s,
            &["uses", "keyctl", "--published", &dir, "--format", "csv"]
        ),
        "image,hosts,containers,calls,last_seen,published\nweb:2,1,1,7,2023-11-15T02:00:10Z,yes\n"
    );
    // ptrace: app:1's enforce profile does not list it; without
    // --published nothing is known.
    assert_eq!(
        query_both(
            &f,
            &s,
            &["uses", "ptrace", "--published", &dir, "--format", "csv"]
        ),
        "image,hosts,containers,calls,last_seen,published\napp:1,1,1,1,2023-11-15T01:00:10Z,no\n"
    );
    assert_eq!(
        query_both(&f, &s, &["uses", "101", "--format", "csv"]),
        "image,hosts,containers,calls,last_seen,published\napp:1,1,1,1,2023-11-15T01:00:10Z,unknown\n"
    );
    // A window: the second hour only (widened to whole hours).
    let j: serde_json::Value = serde_json::from_str(&query_both(
        &f,
        &s,
        &[
            "uses",
            "io_uring_setup",
            "--since",
            "2023-11-15T01:10:00Z",
            "--until",
            "2023-11-15T01:20:00Z",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(
        j,
        serde_json::json!([{
            "image": "app:1", "hosts": 1, "containers": 1, "calls": 4,
            "last_seen": "2023-11-15T01:00:10Z", "published": "unknown"
        }])
    );
    // Nobody: an empty answer, not an error.
    assert_eq!(
        query_both(&f, &s, &["uses", "bpf", "--format", "csv"]),
        "image,hosts,containers,calls,last_seen,published\n"
    );
    assert_eq!(
        query_both(&f, &s, &["uses", "bpf", "--format", "json"]),
        "[]\n"
    );
}

#[test]
fn uses_errors_and_help() {
    let f = Fixture::new();
    let db = f.path("store.db");
    let set = format!("store.embedded.path=\"{}\"", db.display());
    let o = f.sandmine(&["query", "--set", &set, "uses", "no_such_call"]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: \"no_such_call\" is not a x86_64 syscall name (Linux v6.18's table)"
    );
    let o = f.sandmine(&[
        "query",
        "--set",
        &set,
        "uses",
        "read",
        "--since",
        "2023-11-15",
        "--until",
        "2023-11-14",
    ]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: --since must be before --until"
    );
    let o = f.sandmine(&[
        "query",
        "--set",
        &set,
        "uses",
        "read",
        "--since",
        "last tuesday",
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        o.stderr.contains("is neither a UTC date"),
        "{}",
        o.describe()
    );
    let o = f.sandmine(&["query", "uses", "--help"]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout
            .contains("Examples:\n  sandmine query uses io_uring_setup"),
        "{}",
        o.stdout
    );
}

#[test]
fn drift_in_three_formats_on_both_stores() {
    let f = Fixture::new();
    let s = stores(&f);
    assert_eq!(
        query_both(
            &f,
            &s,
            &["drift", "app:1", "--since", "2023-11-15T01:00:00Z"]
        ),
        "\
CHANGE  ABI     SYSCALL   NR  HOSTS  CONTAINERS  FIRST_SEEN            LAST_SEEN
new     x86_64  ptrace   101      1           1  2023-11-15T01:00:00Z  2023-11-15T01:00:10Z
"
    );
    assert_eq!(
        query_both(
            &f,
            &s,
            &[
                "drift",
                "app:1",
                "--since",
                "2023-11-15T02:00:00Z",
                "--format",
                "csv"
            ]
        ),
        "\
change,abi,syscall,nr,hosts,containers,first_seen,last_seen
gone,x86_64,read,0,2,3,2023-11-15T00:00:00Z,2023-11-15T01:00:10Z
gone,x86_64,ptrace,101,1,1,2023-11-15T01:00:00Z,2023-11-15T01:00:10Z
gone,x86_64,io_uring_setup,425,2,3,2023-11-15T00:00:01Z,2023-11-15T01:00:10Z
"
    );
    let between = query_both(
        &f,
        &s,
        &[
            "drift",
            "--from",
            "app:1@sha256:a1",
            "--to",
            "app:1@sha256:a2",
            "--format",
            "json",
        ],
    );
    let j: serde_json::Value = serde_json::from_str(&between).unwrap();
    assert_eq!(
        j,
        serde_json::json!([{
            "change": "new", "abi": "x86_64", "syscall": "ptrace", "nr": 101, "hosts": 1,
            "containers": 1, "first_seen": "2023-11-15T01:00:00Z", "last_seen": "2023-11-15T01:00:10Z"
        }])
    );
    // The same with the image given once.
    assert_eq!(
        query_both(
            &f,
            &s,
            &[
                "drift",
                "app:1",
                "--from",
                "sha256:a1",
                "--to",
                "sha256:a2",
                "--format",
                "json"
            ]
        ),
        between
    );
    assert_eq!(
        query_both(
            &f,
            &s,
            &[
                "drift",
                "app:1",
                "--from",
                "sha256:a2",
                "--to",
                "sha256:a1",
                "--format",
                "csv"
            ]
        ),
        "change,abi,syscall,nr,hosts,containers,first_seen,last_seen\n\
         gone,x86_64,ptrace,101,1,1,2023-11-15T01:00:00Z,2023-11-15T01:00:10Z\n"
    );
}

#[test]
fn drift_errors() {
    let f = Fixture::new();
    let s = stores(&f);
    let err = |args: &[&str]| {
        let mut a = vec!["query"];
        a.extend(s.embedded.iter().map(String::as_str));
        a.extend(args);
        one_error_line(&f.sandmine(&a))
    };
    assert_eq!(
        err(&["drift", "app:1", "--from", "sha256:a1", "--to", "sha256:zz"]),
        "sandmine: error: image \"app:1\" has no container of digest \"sha256:zz\" (its digests: sha256:a1, sha256:a2)"
    );
    assert_eq!(
        err(&[
            "drift",
            "--from",
            "app:1@sha256:a1",
            "--to",
            "web:2@sha256:w1"
        ]),
        "sandmine: error: drift compares two digests of one image name; got app:1, web:2"
    );
    assert_eq!(
        err(&["drift", "app:1"]),
        "sandmine: error: drift needs --since, or --from and --to"
    );
    assert_eq!(
        err(&["drift", "nope:1", "--since", "1d"]),
        "sandmine: error: image \"nope:1\" is not in the store (see `sandmine query images`)"
    );
    let o = f.sandmine(&["query", "drift", "--help"]);
    assert!(
        o.stdout
            .contains("Examples:\n  sandmine query drift nginx:1.27 --since 2026-11-01"),
        "{}",
        o.stdout
    );
}

#[test]
fn usage_in_three_formats_on_both_stores() {
    let f = Fixture::new();
    let s = stores(&f);
    assert_eq!(
        query_both(&f, &s, &["usage", "app:1"]),
        "\
HOUR                  CALLS  HOSTS  NEW_CONTAINERS
2023-11-15T00:00:00Z     16      2               2
2023-11-15T01:00:00Z     11      1               1
"
    );
    assert_eq!(
        query_both(
            &f,
            &s,
            &["usage", "app:1", "io_uring_setup", "--format", "csv"]
        ),
        "hour,calls,hosts,new_containers\n\
         2023-11-15T00:00:00Z,5,2,2\n\
         2023-11-15T01:00:00Z,4,1,1\n"
    );
    let j: serde_json::Value = serde_json::from_str(&query_both(
        &f,
        &s,
        &["usage", "redis:7", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(
        j,
        serde_json::json!([
            {"hour": "2023-11-15T00:00:00Z", "calls": 5, "hosts": 1, "new_containers": 1},
            {"hour": "2023-11-15T01:00:00Z", "calls": 7, "hosts": 1, "new_containers": 0}
        ])
    );
    let mut a = vec!["query"];
    a.extend(s.embedded.iter().map(String::as_str));
    a.extend(["usage", "nope:1"]);
    assert_eq!(
        one_error_line(&f.sandmine(&a)),
        "sandmine: error: image \"nope:1\" is not in the store (see `sandmine query images`)"
    );
    let o = f.sandmine(&["query", "usage", "--help"]);
    assert!(
        o.stdout
            .contains("Examples:\n  sandmine query usage nginx:1.27"),
        "{}",
        o.stdout
    );
}

/// A fixed "now" (an hour after the fleet's last interval) and no runtime
/// base: the surface depends only on the store and the policy.
const SURFACE_NOW: &str = "1700017200000";

/// The analytics fleet, with web:2's container w1 under a profile that
/// denied mount 4 times (errno 1) and killed it at one i386 ptrace.
fn surface_fleet() -> Vec<schemas::wire::Envelope> {
    let mut fleet = analytics_fleet();
    let w1 = fleet
        .iter_mut()
        .flat_map(|e| e.containers.iter_mut())
        .find(|c| c.container.id == "w1")
        .expect("web:2's container w1");
    w1.container.seccomp = schemas::wire::SeccompFilter::Profile(
        "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210".into(),
    );
    for (abi, nr, action, n) in [
        (schemas::Abi::X86_64, 165, schemas::DenyAction::Errno(1), 4),
        (schemas::Abi::I386, 26, schemas::DenyAction::Kill, 1),
    ] {
        w1.denials.insert(schemas::DenialKey { abi, nr, action }, n);
    }
    fleet
}

#[test]
fn surface_in_three_formats_on_both_stores() {
    let f = Fixture::new();
    let s = stores_of(&f, surface_fleet());
    let fixed = ["--runtime-base", "none", "--now-ms", SURFACE_NOW];
    let mut args = vec!["surface"];
    args.extend(fixed);
    // The default policy: app:1 (3 containers on 2 hosts) is in log
    // state and allows what 2 hosts used (read, io_uring_setup: high-risk)
    // besides the baseline (exit, exit_group, rt_sigreturn,
    // restart_syscall); redis:7 and web:2 (one container) are not ready.
    assert_eq!(
        query_both(&f, &s, &args),
        "\
IMAGE    STATE              ALLOWED  DOCKER_DEFAULT  BEYOND_DEFAULT  HIGH_RISK       DENIED  DENIED_SYSCALLS
app:1    log                      6             292               0  io_uring_setup       0
redis:7  not_ready                4             292               0                       0
web:2    not_ready                4             292               0                       5  mount ptrace(i386)
(fleet)  log=1 not_ready=2        6             292               0  io_uring_setup       5  mount ptrace(i386)
"
    );
    // A single-host policy: every image in log state, each syscall it
    // used allowed; keyctl is beyond Docker's default.
    let policy = f.write(
        "policy.toml",
        "[syscall]\nmin_hosts = 1\nmin_containers = 1\n[log]\nmin_containers = 1\n",
    );
    let policy = policy.display().to_string();
    let mut with_policy = args.clone();
    with_policy.extend(["--policy", &policy, "--format", "csv"]);
    assert_eq!(
        query_both(&f, &s, &with_policy),
        "image,state,allowed,docker_default,beyond_default,high_risk,denied,denied_syscalls\n\
         app:1,log,7,292,0,ptrace io_uring_setup,0,\n\
         redis:7,log,5,292,0,,0,\n\
         web:2,log,6,292,1,keyctl io_uring_setup,5,mount ptrace(i386)\n\
         (fleet),log=3,8,292,1,ptrace keyctl io_uring_setup,5,mount ptrace(i386)\n"
    );
    // One image, JSON: the fleet row totals what is shown.
    let mut one = vec!["surface", "web:2"];
    one.extend(fixed);
    one.extend(["--policy", &policy, "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&query_both(&f, &s, &one)).unwrap();
    assert_eq!(
        j,
        serde_json::json!([
            {"image": "web:2", "state": "log", "allowed": 6, "docker_default": 292,
             "beyond_default": 1, "high_risk": ["keyctl", "io_uring_setup"],
             "denied": 5, "denied_syscalls": ["mount", "ptrace(i386)"]},
            {"image": "(fleet)", "state": "log=1", "allowed": 6, "docker_default": 292,
             "beyond_default": 1, "high_risk": ["keyctl", "io_uring_setup"],
             "denied": 5, "denied_syscalls": ["mount", "ptrace(i386)"]}
        ])
    );
    // The same state and allowed set as `sandmine compile` (the same
    // compiler, inputs and policy).
    let out = f.path("profiles");
    let mut a = vec!["compile"];
    a.extend(s.embedded.iter().map(String::as_str));
    let out_s = out.display().to_string();
    a.extend(["--policy", &policy, "-o", &out_s]);
    a.extend(fixed);
    let o = f.sandmine(&a);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    for (image, state, allowed) in [
        ("app:1", "log", 7),
        ("redis:7", "log", 5),
        ("web:2", "log", 6),
    ] {
        let report = out.join(publish::image_slug(image)).join("report.json");
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        assert_eq!(r["state"], state, "{image}");
        assert_eq!(
            r["allowed"]["x86_64"].as_array().map(Vec::len),
            Some(allowed),
            "{image}"
        );
    }
    // The catalogue, with its sources.
    let risks = query_both(&f, &s, &["surface", "--risks", "--format", "csv"]);
    assert!(risks.starts_with("syscall,why,sources\nptrace,"), "{risks}");
    assert!(risks.contains("CVE-2022-0185"), "{risks}");
    let o = f.sandmine(&["query", "surface", "--help"]);
    assert!(
        o.stdout.contains("Examples:\n  sandmine query surface\n"),
        "{}",
        o.stdout
    );
}

/// The same fleet through the real ingest path: wire-encoded, published
/// to NATS, decoded and stored by `sandmine aggregate` into ClickHouse;
/// the answers are those of the direct inserts above.
#[test]
fn the_fleet_through_nats_and_the_aggregator_gives_the_same_answers() {
    let f = Fixture::new();
    let nats = testsvc::Nats::start();
    let ch = testsvc::ClickHouse::start();
    let broker = format!(
        "kind = \"nats\"\nurl = \"{}\"\nack_wait = \"3s\"\ntimeout = \"2s\"\n",
        nats.url()
    );
    let cfg = f.write(
        "aggregator.toml",
        &format!(
            "[broker]\n{broker}\n[store.clickhouse]\nurl = \"{}\"\ntimeout_secs = 5\nconnect_timeout_secs = 2\n\n[aggregator]\nbatch_max_wait = \"200ms\"\n",
            ch.url()
        ),
    );
    let cfg = cfg.display().to_string();
    let aggregator = f.spawn(f.command(&["aggregate", "--config", &cfg]));
    let broker_cfg: transport::BrokerConfig = toml::from_str(&broker).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let p = transport::Publisher::connect(&broker_cfg).await.unwrap();
        for e in analytics_fleet() {
            p.publish(&e.dedupe_id(), &schemas::wire::encode(&e).unwrap())
                .await
                .unwrap();
        }
    });
    let query = |args: &[&str]| {
        let mut a = vec!["query", "--config", &cfg];
        a.extend(args);
        f.sandmine(&a)
    };
    let want = "image,hosts,containers,calls,last_seen,published\n\
                app:1,2,3,9,2023-11-15T01:00:10Z,unknown\n\
                web:2,1,1,1,2023-11-15T02:00:10Z,unknown\n";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let o = query(&["uses", "io_uring_setup", "--format", "csv"]);
        if o.stdout == want {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not converged: {}",
            o.describe()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let o = query(&[
        "drift",
        "--from",
        "app:1@sha256:a1",
        "--to",
        "app:1@sha256:a2",
        "--format",
        "csv",
    ]);
    assert_eq!(
        o.stdout,
        "change,abi,syscall,nr,hosts,containers,first_seen,last_seen\n\
         new,x86_64,ptrace,101,1,1,2023-11-15T01:00:00Z,2023-11-15T01:00:10Z\n",
        "{}",
        o.describe()
    );
    let o = query(&["usage", "app:1", "--format", "csv"]);
    assert_eq!(
        o.stdout,
        "hour,calls,hosts,new_containers\n\
         2023-11-15T00:00:00Z,16,2,2\n\
         2023-11-15T01:00:00Z,11,1,1\n",
        "{}",
        o.describe()
    );
    let out = aggregator.terminate(std::time::Duration::from_secs(30));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
}

/// Docker's default profile of dockerd 20.10.24, as the repo keeps it.
fn docker_default() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policy-compiler/tests/fixtures/docker/default-v20.10.24.json")
        .display()
        .to_string()
}

/// The conditions `breaks` judges under in these tests: a container with
/// Docker's default capabilities on an x86_64 kernel 6.1, whatever the
/// test host is.
const DOCKER_RUN: [&str; 6] = ["--caps", "docker", "--kernel", "6.1", "--arch", "x86_64"];

fn breaks_args<'a>(profile: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["breaks", "--profile", profile];
    a.extend(DOCKER_RUN);
    a.extend(more);
    a
}

#[test]
fn breaks_under_docker_default_on_both_stores() {
    let f = Fixture::new();
    let s = stores_of(&f, breaks_fleet());
    let docker = docker_default();
    // keyctl is not in Docker's default (EPERM); clone is allowed only
    // without namespace flags, which are not recorded: unknown; i386
    // keyctl is judged by the i386 rules. Exit 1: something would break.
    assert_eq!(
        query_both_exit(&f, &s, &breaks_args(&docker, &[]), 1),
        "\
IMAGE    ABI     SYSCALL  VERDICT             ACTION   HOSTS  CONTAINERS  CALLS  LAST_SEEN             CONDITIONS
app:1            (total)  denied=0 unknown=0               0           0      0
batch:3  x86_64  clone    unknown             errno 1      1           1      3  2023-11-15T02:00:10Z  allow if arg0 & 0x7e020000 == 0; else errno 1
batch:3  i386    keyctl   denied              errno 1      1           1      2  2023-11-15T02:00:10Z
batch:3          (total)  denied=1 unknown=1               1           1      5  2023-11-15T02:00:10Z
redis:7          (total)  denied=0 unknown=0               0           0      0
web:2    x86_64  keyctl   denied              errno 1      1           1      7  2023-11-15T02:00:10Z
web:2            (total)  denied=1 unknown=0               1           1      7  2023-11-15T02:00:10Z
"
    );
    // Docker's default names syscalls of other architectures: warned, as
    // `sandmine run` does, once the answer stands.
    let mut a = vec!["query"];
    a.extend(s.embedded.iter().map(String::as_str));
    a.extend(breaks_args(&docker, &["--image", "app:1"]));
    let o = f.sandmine(&a);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr.starts_with(&format!(
            "sandmine: warning: profile {docker} names syscalls no architecture has, ignored as runc ignores them: arm_fadvise64_64, "
        )),
        "{}",
        o.describe()
    );
    // With CAP_SYS_ADMIN, dockerd keeps the rule that allows clone
    // whatever its flags (and drops the one with arguments).
    assert_eq!(
        query_both_exit(
            &f,
            &s,
            &breaks_args(
                &docker,
                &[
                    "--image",
                    "batch:3",
                    "--cap-add",
                    "CAP_SYS_ADMIN",
                    "--format",
                    "csv"
                ]
            ),
            1
        ),
        "\
image,abi,syscall,verdict,action,hosts,containers,calls,last_seen,conditions
batch:3,i386,keyctl,denied,errno 1,1,1,2,2023-11-15T02:00:10Z,
batch:3,,(total),denied=1 unknown=0,,1,1,2,2023-11-15T02:00:10Z,
"
    );
    // ptrace needs kernel 4.8 (includes.minKernel); in the second hour only.
    let mut old = breaks_args(
        &docker,
        &[
            "--since",
            "2023-11-15T01:00:00Z",
            "--until",
            "2023-11-15T02:00:00Z",
            "--format",
            "csv",
        ],
    );
    old[6] = "4.4";
    assert_eq!(
        query_both_exit(&f, &s, &old, 1),
        "\
image,abi,syscall,verdict,action,hosts,containers,calls,last_seen,conditions
app:1,x86_64,ptrace,denied,errno 1,1,1,1,2023-11-15T01:00:10Z,
app:1,,(total),denied=1 unknown=0,,1,1,1,2023-11-15T01:00:10Z,
redis:7,,(total),denied=0 unknown=0,,0,0,0,,
"
    );
    // Nothing breaks: exit 0. --all lists what runs.
    let j: serde_json::Value = serde_json::from_str(&query_both_exit(
        &f,
        &s,
        &breaks_args(&docker, &["--image", "app:1", "--all", "--format", "json"]),
        0,
    ))
    .unwrap();
    let row = |abi: &str, name: &str, v: &str, a: &str, h: u64, c: u64, n: u64| {
        serde_json::json!({"image": "app:1", "abi": abi, "syscall": name, "verdict": v,
            "action": a, "hosts": h, "containers": c, "calls": n,
            "last_seen": if n > 0 { serde_json::json!("2023-11-15T01:00:10Z") } else { serde_json::Value::Null },
            "conditions": ""})
    };
    assert_eq!(
        j,
        serde_json::json!([
            row("x86_64", "read", "allowed", "allow", 2, 3, 17),
            row("x86_64", "ptrace", "allowed", "allow", 1, 1, 1),
            row("x86_64", "io_uring_setup", "allowed", "allow", 2, 3, 9),
            row("", "(total)", "denied=0 unknown=0", "", 0, 0, 0),
        ])
    );
    // One ABI.
    assert_eq!(
        query_both_exit(
            &f,
            &s,
            &breaks_args(&docker, &["--abi", "i386", "--format", "csv"]),
            1
        ),
        "\
image,abi,syscall,verdict,action,hosts,containers,calls,last_seen,conditions
batch:3,i386,keyctl,denied,errno 1,1,1,2,2023-11-15T02:00:10Z,
batch:3,,(total),denied=1 unknown=0,,1,1,2,2023-11-15T02:00:10Z,
"
    );
}

#[test]
fn breaks_under_a_hand_written_profile_with_argument_rules() {
    let f = Fixture::new();
    let s = stores_of(&f, breaks_fleet());
    // io_uring_setup is allowed for small rings only: the arguments decide
    // (unknown, never allowed); keyctl is logged (it runs: not broken);
    // the profile lists x86_64 only, so i386 calls are killed.
    let p = f.write(
        "hand.json",
        r#"{
  "defaultAction": "SCMP_ACT_ERRNO",
  "architectures": ["SCMP_ARCH_X86_64"],
  "syscalls": [
    {"names": ["read", "clone", "exit_group"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["io_uring_setup"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": 64, "op": "SCMP_CMP_LE"}]},
    {"names": ["keyctl"], "action": "SCMP_ACT_LOG"}
  ]
}"#,
    );
    let p = p.display().to_string();
    assert_eq!(
        query_both_exit(&f, &s, &breaks_args(&p, &["--all", "--format", "csv"]), 1),
        "\
image,abi,syscall,verdict,action,hosts,containers,calls,last_seen,conditions
app:1,x86_64,read,allowed,allow,2,3,17,2023-11-15T01:00:10Z,
app:1,x86_64,ptrace,denied,errno 1,1,1,1,2023-11-15T01:00:10Z,
app:1,x86_64,io_uring_setup,unknown,errno 1,2,3,9,2023-11-15T01:00:10Z,allow if arg0 <= 64; else errno 1
app:1,,(total),denied=1 unknown=1,,2,3,10,2023-11-15T01:00:10Z,
batch:3,x86_64,read,allowed,allow,1,1,4,2023-11-15T02:00:10Z,
batch:3,x86_64,clone,allowed,allow,1,1,3,2023-11-15T02:00:10Z,
batch:3,i386,keyctl,denied,kill_process,1,1,2,2023-11-15T02:00:10Z,
batch:3,,(total),denied=1 unknown=0,,1,1,2,2023-11-15T02:00:10Z,
redis:7,x86_64,read,allowed,allow,1,1,12,2023-11-15T01:00:10Z,
redis:7,,(total),denied=0 unknown=0,,0,0,0,,
web:2,x86_64,keyctl,logged,log,1,1,7,2023-11-15T02:00:10Z,
web:2,x86_64,io_uring_setup,unknown,errno 1,1,1,1,2023-11-15T02:00:10Z,allow if arg0 <= 64; else errno 1
web:2,,(total),denied=0 unknown=1,,1,1,1,2023-11-15T02:00:10Z,
"
    );
    // docs/ANALYTICS.md's example.
    assert_eq!(
        query_both_exit(&f, &s, &breaks_args(&p, &["--image", "web:2", "--all"]), 1),
        "\
IMAGE  ABI     SYSCALL         VERDICT             ACTION   HOSTS  CONTAINERS  CALLS  LAST_SEEN             CONDITIONS
web:2  x86_64  keyctl          logged              log          1           1      7  2023-11-15T02:00:10Z
web:2  x86_64  io_uring_setup  unknown             errno 1      1           1      1  2023-11-15T02:00:10Z  allow if arg0 <= 64; else errno 1
web:2          (total)         denied=0 unknown=1               1           1      1  2023-11-15T02:00:10Z
"
    );
    // An unknown alone fails the check too.
    assert_eq!(
        query_both_exit(&f, &s, &breaks_args(&p, &["--image", "web:2", "--format", "csv"]), 1),
        "\
image,abi,syscall,verdict,action,hosts,containers,calls,last_seen,conditions
web:2,x86_64,io_uring_setup,unknown,errno 1,1,1,1,2023-11-15T02:00:10Z,allow if arg0 <= 64; else errno 1
web:2,,(total),denied=0 unknown=1,,1,1,1,2023-11-15T02:00:10Z,
"
    );
}

#[test]
fn breaks_under_a_profile_sandmine_compiled() {
    let f = Fixture::new();
    let s = stores_of(&f, breaks_fleet());
    // app:1's own profile, compiled from the store (enforcing: every
    // syscall seen once is allowed) breaks nothing of app:1...
    let policy = f.write(
        "policy.toml",
        "mode = \"enforce\"\n[syscall]\nmin_hosts = 1\nmin_containers = 1\n[log]\nmin_containers = 1\n",
    );
    let policy = policy.display().to_string();
    let out = f.path("profiles");
    let out_s = out.display().to_string();
    let mut a = vec!["compile"];
    a.extend(s.embedded.iter().map(String::as_str));
    a.extend(["--policy", &policy, "-o", &out_s, "--image", "app:1"]);
    a.extend(["--runtime-base", "none", "--now-ms", SURFACE_NOW]);
    let o = f.sandmine(&a);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let app = out
        .join(publish::image_slug("app:1"))
        .join("seccomp.json")
        .display()
        .to_string();
    assert_eq!(
        query_both_exit(
            &f,
            &s,
            &breaks_args(&app, &["--image", "app:1", "--format", "csv"]),
            0
        ),
        "\
image,abi,syscall,verdict,action,hosts,containers,calls,last_seen,conditions
app:1,,(total),denied=0 unknown=0,,0,0,0,,
"
    );
    // ...and, applied to the others, denies what app:1 never made: clone
    // (sandmine allows it only as clone3's fallback), keyctl, and every
    // i386 call (the profile lists the ABIs app:1 used).
    assert_eq!(
        query_both_exit(&f, &s, &breaks_args(&app, &["--format", "csv"]), 1),
        "\
image,abi,syscall,verdict,action,hosts,containers,calls,last_seen,conditions
app:1,,(total),denied=0 unknown=0,,0,0,0,,
batch:3,x86_64,clone,denied,errno 1,1,1,3,2023-11-15T02:00:10Z,
batch:3,i386,keyctl,denied,kill_process,1,1,2,2023-11-15T02:00:10Z,
batch:3,,(total),denied=2 unknown=0,,1,1,5,2023-11-15T02:00:10Z,
redis:7,,(total),denied=0 unknown=0,,0,0,0,,
web:2,x86_64,keyctl,denied,errno 1,1,1,7,2023-11-15T02:00:10Z,
web:2,,(total),denied=1 unknown=0,,1,1,7,2023-11-15T02:00:10Z,
"
    );
}

#[test]
fn breaks_errors_and_help() {
    let f = Fixture::new();
    let db = f.path("store.db");
    let set = format!("store.embedded.path=\"{}\"", db.display());
    let run = |profile: &str, more: &[&str]| {
        let mut a = vec!["query", "--set", &set];
        a.extend(breaks_args(profile, more));
        f.sandmine(&a)
    };
    let missing = f.path("missing.json").display().to_string();
    let o = run(&missing, &[]);
    assert_eq!(
        one_error_line(&o),
        format!("sandmine: error: cannot read profile {missing}: No such file or directory")
    );
    let bad = f.write("bad.json", "{\"defaultAction\": \"SCMP_ACT_NOPE\"}");
    let bad = bad.display().to_string();
    let o = run(&bad, &[]);
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: invalid profile {bad}: unknown action \"SCMP_ACT_NOPE\" (expected one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL, SCMP_ACT_TRAP, SCMP_ACT_LOG)"
        )
    );
    let broken = f.write("broken.json", "{\"defaultAction\": ");
    let broken = broken.display().to_string();
    let o = run(&broken, &[]);
    assert!(
        one_error_line(&o).starts_with(&format!(
            "sandmine: error: invalid profile {broken}: malformed profile JSON at line 1"
        )),
        "{}",
        o.describe()
    );
    let ok = docker_default();
    let o = run(&ok, &["--image", "nope:1"]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: image \"nope:1\" is not in the store (see `sandmine query images`)"
    );
    let o = run(&ok, &["--cap-add", "CAP_NOPE"]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        o.stderr.contains("is not a capability name"),
        "{}",
        o.describe()
    );
    let o = f.sandmine(&[
        "query",
        "--set",
        &set,
        "breaks",
        "--profile",
        &ok,
        "--arch",
        "i386",
    ]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: --arch i386 is not a native architecture (x86_64 or aarch64)"
    );
    let o = f.sandmine(&["query", "breaks", "--help"]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout
            .contains("Examples:\n  sandmine query breaks --profile docker-default.json"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("Exit status: 0 when nothing would break"),
        "{}",
        o.stdout
    );
}
