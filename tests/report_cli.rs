//! `sandmine report` through the real binary, on the embedded store and on
//! ClickHouse (the same page from both): the exact rows of each section
//! for the analytics fleet, then for more containers (the changes since
//! the first report), the state file, the errors, `--help`; and the page
//! checked as a person sees it, in headless Chromium
//! (`scripts/check-report.py`: elements, console, CSP, chart pixels, each
//! check also failing on a broken sample).
//!
//! With SANDMINE_REPORT_EXAMPLE=DIR the second page and its rendering are
//! also copied to DIR (docs/examples/report/ holds the committed ones).

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;

use aggregator::store::Store;
use common::*;
use schemas::wire::{Envelope, SeccompFilter};
use schemas::{Abi, DenialKey, DenyAction};
use std::path::Path;
use std::process::Command;
use store_common::analytics_fleet::{analytics_fleet, breaks_fleet, KEYCTL, READ, T};
use store_common::{ctr, env, sc, H};

const PYTHON: &str = "/var/cache/sandmine/py/bin/python";
/// An image name that is markup: the page must show it, never run it.
const EVIL: &str = "evil\"><script src=http://127.0.0.1:9/x.js></script>:1";
const BPF: u32 = 321;
const MOUNT: u32 = 165;
const PTRACE_I386: u32 = 26;
const PROFILE: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What the second round adds: app:1 container a4 on h2 using keyctl (new
/// to app:1, high-risk); batch:3 (breaks_fleet's, stored late: its calls
/// are from before the first report); and an image named like markup,
/// using bpf.
fn second_round() -> Vec<Envelope> {
    let batch = breaks_fleet().pop().expect("batch:3's envelope");
    let mut a4 = ctr(
        "a4",
        "app:1",
        T + 4 * H,
        T + 4 * H + 10_000,
        None,
        vec![
            sc(
                schemas::Abi::X86_64,
                READ,
                2,
                &[schemas::Phase::Image],
                T + 4 * H + 100,
            ),
            sc(
                schemas::Abi::X86_64,
                KEYCTL,
                1,
                &[schemas::Phase::Image],
                T + 4 * H + 200,
            ),
        ],
    );
    a4.container.image_digest = "sha256:a2".into();
    // Its profile denied mount 3 times (errno 1).
    a4.container.seccomp = SeccompFilter::Profile(PROFILE.into());
    a4.denials.insert(
        DenialKey {
            abi: Abi::X86_64,
            nr: MOUNT,
            action: DenyAction::Errno(1),
        },
        3,
    );
    let mut e1 = ctr(
        "e1",
        EVIL,
        T + 4 * H,
        T + 4 * H + 10_000,
        None,
        vec![
            sc(
                schemas::Abi::X86_64,
                READ,
                3,
                &[schemas::Phase::Image],
                T + 4 * H + 300,
            ),
            sc(
                schemas::Abi::X86_64,
                BPF,
                1,
                &[schemas::Phase::Image],
                T + 4 * H + 400,
            ),
        ],
    );
    e1.container.image_digest = "sha256:e1".into();
    // Docker's default killed its i386 ptrace... once.
    e1.container.seccomp = SeccompFilter::RuntimeDefault;
    e1.denials.insert(
        DenialKey {
            abi: Abi::I386,
            nr: PTRACE_I386,
            action: DenyAction::Kill,
        },
        1,
    );
    vec![
        batch,
        env("h2", "b1", 3, T + 4 * H, vec![a4]),
        env("h3", "b1", 2, T + 4 * H, vec![e1]),
    ]
}

struct Stores {
    _ch: testsvc::ClickHouse,
    rt: tokio::runtime::Runtime,
    stores: Vec<Store>,
    /// `--set` flags of each store, in the same order.
    flags: Vec<Vec<String>>,
}

impl Stores {
    fn start(f: &Fixture) -> Stores {
        let ch = testsvc::ClickHouse::start();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let stores = rt.block_on(async {
            vec![
                store_common::open_embedded(f.path("").as_path()).await,
                store_common::open_ch(&ch).await,
            ]
        });
        Stores {
            flags: vec![
                vec![
                    "--set".into(),
                    format!("store.embedded.path=\"{}\"", f.path("store.db").display()),
                ],
                vec![
                    "--set".into(),
                    format!("store.clickhouse.url=\"{}\"", ch.url()),
                ],
            ],
            _ch: ch,
            rt,
            stores,
        }
    }

    fn insert(&self, batch: &[Envelope]) {
        self.rt.block_on(async {
            for s in &self.stores {
                s.insert(batch).await.unwrap();
            }
        });
    }
}

/// `sandmine report <store> ARGS` in `dir` (one per store), on both stores:
/// exit 0 and the same page; returns the page.
fn report_both(f: &Fixture, s: &Stores, args: &[&str]) -> String {
    let mut pages = Vec::new();
    for (flags, dir) in s.flags.iter().zip(["emb", "ch"]) {
        std::fs::create_dir_all(f.path(dir)).unwrap();
        let mut a: Vec<&str> = vec!["report"];
        a.extend(flags.iter().map(String::as_str));
        a.extend(args);
        let mut cmd = f.command(&a);
        cmd.current_dir(f.path(dir));
        let o = f.run_cmd(cmd, RUN_TIMEOUT);
        assert_eq!(o.code(), Some(0), "{args:?}: {}", o.describe());
        pages.push(std::fs::read_to_string(f.path(dir).join("fleet.html")).unwrap());
    }
    assert_eq!(pages[0], pages[1], "embedded and ClickHouse pages differ");
    pages.remove(0)
}

/// The cells of each `<tr>` of the table with id `id`, as text (the page
/// writes one row per line and no markup inside a cell).
fn rows(page: &str, id: &str) -> Vec<String> {
    let start = page
        .find(&format!("<table id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no table {id}"));
    let body = &page[start..start + page[start..].find("</table>").unwrap()];
    body.lines()
        .filter(|l| l.starts_with("<tr") && l.contains("<td"))
        .map(|l| {
            l.split("<td")
                .skip(1)
                .map(|c| {
                    let c = &c[c.find('>').unwrap() + 1..];
                    c[..c.find("</td>").unwrap()].to_string()
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

fn state(f: &Fixture, dir: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(f.path(dir).join("fleet.state.json")).unwrap())
        .unwrap()
}

/// Runs scripts/check-report.py on `page` (with `self_test`, also on its
/// broken samples); returns its stdout.
fn browser_check(
    page: &Path,
    png: &Path,
    images: &[&str],
    risks: &[&str],
    self_test: bool,
) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-report.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script).arg(page).arg("--png").arg(png);
    if self_test {
        cmd.arg("--self-test");
    }
    for i in images {
        cmd.arg("--expect-image").arg(i);
    }
    for r in risks {
        cmd.arg("--expect-risk").arg(r);
    }
    let o = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {PYTHON} (scripts/install-deps.sh installs it): {e}")
    });
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "check-report.py failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn report_on_both_stores_then_changes_and_the_page_in_a_browser() {
    let f = Fixture::new();
    let s = Stores::start(&f);
    s.insert(&analytics_fleet());
    let now1 = (T + 3 * H).to_string();
    let base = ["--runtime-base", "none", "-o", "fleet.html"];
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--now-ms", &now1]);
    let page = report_both(&f, &s, &args);

    assert_eq!(
        rows(&page, "images-table"),
        [
            "app:1 | log | 2 | 2 | 3 | 3 | 6 | 0 | io_uring_setup | 0 | 2023-11-15T01:00:10Z",
            "redis:7 | not_ready | 1 | 1 | 1 | 1 | 4 | 0 |  | 0 | 2023-11-15T01:00:10Z",
            "web:2 | not_ready | 1 | 1 | 1 | 2 | 4 | 0 |  | 0 | 2023-11-15T02:00:10Z",
            "(fleet) | log=1 not_ready=2 |  |  |  |  | 6 | 0 | io_uring_setup | 0 | ",
        ]
    );
    assert!(
        page.contains("<p id=\"denials-none\">No denial recorded.</p>"),
        "{page}"
    );
    assert_eq!(
        rows(&page, "risks-table"),
        [
            "app:1 | ptrace | x86_64 | 1 | 1 | 1 | 2023-11-15T01:00:10Z | logs | CVE-2019-13272",
            "app:1 | io_uring_setup | x86_64 | 2 | 3 | 9 | 2023-11-15T01:00:10Z | allows | CVE-2021-41073 CVE-2022-29582 CVE-2023-2598",
            "web:2 | keyctl | x86_64 | 1 | 1 | 7 | 2023-11-15T02:00:10Z | no profile | CVE-2016-0728 https://docs.docker.com/engine/security/seccomp/",
            "web:2 | io_uring_setup | x86_64 | 1 | 1 | 1 | 2023-11-15T02:00:10Z | no profile | CVE-2021-41073 CVE-2022-29582 CVE-2023-2598",
        ]
    );
    assert!(
        page.contains("<p id=\"changes-first\">No earlier report to compare with (no state file fleet.state.json)."),
        "{page}"
    );
    // The curves: app:1's three containers bring 2, then 0, then 1 (ptrace)
    // new syscalls, in the first two hours.
    assert!(
        page.contains("<title>syscalls: 3 at container 3</title>"),
        "{page}"
    );
    assert!(
        page.contains("<title>containers: 3 at the hour from 2023-11-15T01:00:00Z</title>"),
        "{page}"
    );
    let st = state(&f, "emb");
    assert_eq!(st, state(&f, "ch"));
    assert_eq!(
        st,
        serde_json::json!({
            "format": 1,
            "generated_at_ms": T + 3 * H,
            "images": {
                // The baseline, and what 2 hosts used.
                "app:1": {"state": "log", "allowed": ["exit", "exit_group", "io_uring_setup", "read", "restart_syscall", "rt_sigreturn"], "high_risk": ["io_uring_setup"]},
                "redis:7": {"state": "not_ready", "allowed": ["exit", "exit_group", "restart_syscall", "rt_sigreturn"], "high_risk": []},
                "web:2": {"state": "not_ready", "allowed": ["exit", "exit_group", "restart_syscall", "rt_sigreturn"], "high_risk": []},
            }
        })
    );

    // Round two: the state beside the page is the last report.
    s.insert(&second_round());
    let now2 = (T + 5 * H).to_string();
    let mut args: Vec<&str> = base.to_vec();
    args.extend(["--now-ms", &now2]);
    let page = report_both(&f, &s, &args);
    let evil = EVIL
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    assert_eq!(
        rows(&page, "changes-table"),
        [
            "app:1 | new syscalls | keyctl".to_string(),
            "batch:3 | new image | not_ready, 4 allowed".to_string(),
            format!("{evil} | new image | not_ready, 4 allowed"),
        ]
    );
    assert!(
        page.contains(
            "Compared with the report of 2023-11-15T03:00:00Z (state file fleet.state.json)."
        ),
        "{page}"
    );
    assert!(
        !page.contains("<script"),
        "markup from the store reached the page"
    );
    assert_eq!(
        rows(&page, "images-table"),
        [
            "app:1 | log | 2 | 2 | 4 | 4 | 6 | 0 | io_uring_setup | 3 | 2023-11-15T04:00:10Z"
                .to_string(),
            "batch:3 | not_ready | 1 | 1 | 1 | 3 | 4 | 0 |  | 0 | 2023-11-15T02:00:10Z".to_string(),
            format!("{evil} | not_ready | 1 | 1 | 1 | 2 | 4 | 0 |  | 1 | 2023-11-15T04:00:10Z"),
            "redis:7 | not_ready | 1 | 1 | 1 | 1 | 4 | 0 |  | 0 | 2023-11-15T01:00:10Z".to_string(),
            "web:2 | not_ready | 1 | 1 | 1 | 2 | 4 | 0 |  | 0 | 2023-11-15T02:00:10Z".to_string(),
            "(fleet) | log=1 not_ready=4 |  |  |  |  | 6 | 0 | io_uring_setup | 4 | ".to_string(),
        ]
    );
    // The denials, per image, syscall, action and profile version.
    assert_eq!(
        rows(&page, "denials-table"),
        [
            "app:1 | mount | errno 1 | 0123456789abcdef | 3 | 1 | 1 | 2023-11-15T04:00:10Z"
                .to_string(),
            format!(
                "{evil} | ptrace (i386) | kill | runtime/default | 1 | 1 | 1 | 2023-11-15T04:00:10Z"
            ),
        ]
    );
    const KEYRING: &str = "CVE-2016-0728 https://docs.docker.com/engine/security/seccomp/";
    const IO_URING: &str = "CVE-2021-41073 CVE-2022-29582 CVE-2023-2598";
    assert_eq!(
        rows(&page, "risks-table"),
        [
            "app:1 | ptrace | x86_64 | 1 | 1 | 1 | 2023-11-15T01:00:10Z | logs | CVE-2019-13272".to_string(),
            // Used on one host: not allowed, logged (log state).
            format!("app:1 | keyctl | x86_64 | 1 | 1 | 1 | 2023-11-15T04:00:10Z | logs | {KEYRING}"),
            format!("app:1 | io_uring_setup | x86_64 | 2 | 3 | 9 | 2023-11-15T01:00:10Z | allows | {IO_URING}"),
            // i386's keyctl: the catalogue goes by name.
            format!("batch:3 | keyctl | i386 | 1 | 1 | 2 | 2023-11-15T02:00:10Z | no profile | {KEYRING}"),
            format!("{evil} | bpf | x86_64 | 1 | 1 | 1 | 2023-11-15T04:00:10Z | no profile | CVE-2017-16995 CVE-2021-3490"),
            format!("web:2 | keyctl | x86_64 | 1 | 1 | 7 | 2023-11-15T02:00:10Z | no profile | {KEYRING}"),
            format!("web:2 | io_uring_setup | x86_64 | 1 | 1 | 1 | 2023-11-15T02:00:10Z | no profile | {IO_URING}"),
        ]
    );

    let png = f.path("fleet.png");
    let out = browser_check(
        &f.path("ch").join("fleet.html"),
        &png,
        &["app:1", "batch:3", EVIL, "redis:7", "web:2"],
        &[
            "app:1/ptrace",
            "app:1/keyctl",
            "app:1/io_uring_setup",
            // i386's keyctl: the catalogue goes by name.
            "batch:3/keyctl",
            &format!("{EVIL}/bpf"),
            "web:2/keyctl",
            "web:2/io_uring_setup",
        ],
        true,
    );
    for check in ["elements", "console", "csp", "pixels"] {
        assert!(out.contains(&format!("check-report: {check}: ok")), "{out}");
    }
    for sample in [
        "external script",
        "external image",
        "no CSP",
        "empty chart",
        "missing section",
    ] {
        assert!(
            out.contains(&format!("check-report: self-test: {sample}: caught by")),
            "{out}"
        );
    }
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
    if let Some(dir) = std::env::var_os("SANDMINE_REPORT_EXAMPLE") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::copy(f.path("ch").join("fleet.html"), dir.join("fleet.html")).unwrap();
        std::fs::copy(
            f.path("ch").join("fleet.state.json"),
            dir.join("fleet.state.json"),
        )
        .unwrap();
        std::fs::copy(&png, dir.join("fleet.png")).unwrap();
    }
}

#[test]
fn report_errors_and_help() {
    let f = Fixture::new();
    let db = f.path("store.db");
    let set = format!("store.embedded.path=\"{}\"", db.display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let emb = store_common::open_embedded(f.path("").as_path()).await;
        emb.insert(&analytics_fleet()).await.unwrap();
    });
    let o = f.sandmine(&[
        "report",
        "--set",
        &set,
        "-o",
        "r.html",
        "--since-report",
        "nope.json",
    ]);
    assert_eq!(o.code(), Some(2));
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: cannot read the last report's state nope.json: No such file or directory"
    );
    f.write(
        "bad.json",
        "{\"format\": 1, \"generated_at_ms\": 5, \"images\": {}, \"extra\": 1}",
    );
    let o = f.sandmine(&[
        "report",
        "--set",
        &set,
        "-o",
        "r.html",
        "--since-report",
        "bad.json",
    ]);
    assert_eq!(o.code(), Some(2));
    assert!(
        one_error_line(&o).starts_with(
            "sandmine: error: bad.json is not a report state file: unknown field `extra`"
        ),
        "{}",
        o.describe()
    );
    let o = f.sandmine(&["report", "--set", &set, "-o", "r.html", "--image", "nope:1"]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: image \"nope:1\" is not in the store (`sandmine query images` lists them)"
    );
    assert!(!f.path("r.html").exists() && !f.path("r.state.json").exists());
    let o = f.sandmine(&["report", "--help"]);
    assert_eq!(o.code(), Some(0));
    assert!(
        o.stdout
            .contains("Examples:\n  sandmine report -o fleet.html"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("Since the last report"), "{}", o.stdout);
}

/// A generated fleet (the store tests' pseudo-random one) and an image
/// that used 130 syscalls: the same page from both stores, and the heatmap
/// keeps to its 120 most widely used columns and says how many it left out.
#[test]
fn a_generated_fleet_and_a_wide_heatmap() {
    let f = Fixture::new();
    let s = Stores::start(&f);
    let mut fleet = store_common::generated(3, 8);
    let wide = ctr(
        "w1",
        "wide:1",
        T,
        T + 10_000,
        None,
        (0..130)
            .map(|nr| {
                sc(
                    schemas::Abi::X86_64,
                    nr,
                    1,
                    &[schemas::Phase::Image],
                    T + 100,
                )
            })
            .collect(),
    );
    fleet.push(env("wide-host", "b1", 1, T, vec![wide]));
    s.insert(&fleet);
    let page = report_both(
        &f,
        &s,
        &[
            "--runtime-base",
            "none",
            "-o",
            "fleet.html",
            "--now-ms",
            &(T + 3 * H).to_string(),
        ],
    );
    let images: Vec<String> = rows(&page, "images-table")
        .iter()
        .map(|r| r.split(" | ").take(5).collect::<Vec<_>>().join(" | "))
        .collect();
    assert_eq!(
        images,
        [
            // image | state | digests | hosts | containers
            "nginx:1 | log | 1 | 3 | 12",
            "postgres:16 | log | 1 | 3 | 6",
            "redis:7 | log | 0 | 3 | 6",
            "wide:1 | not_ready | 0 | 1 | 1",
            "(fleet) | log=3 not_ready=1 |  |  | ",
        ]
    );
    let heat = &page[page.find("<section id=\"heatmap\">").unwrap()..];
    let heat = &heat[..heat.find("</section>").unwrap()];
    assert_eq!(heat.matches("transform=\"rotate(-90").count(), 120);
    assert!(
        heat.contains(" 11 more syscalls, used by fewer images, are not shown."),
        "{heat}"
    );
    // i386's execve (11) is used by the three generated images; x86_64's
    // 119 and above only by wide:1, and they are the ones left out.
    assert!(heat.contains(">execve (i386)</text>"), "{heat}");
    assert!(
        heat.contains(">getresuid</text>") && !heat.contains(">setresgid</text>"),
        "{heat}"
    );
    // 12 containers of nginx:1: every chart still has ink.
    let out = browser_check(
        &f.path("ch").join("fleet.html"),
        &f.path("fleet.png"),
        &["nginx:1", "postgres:16", "redis:7", "wide:1"],
        &["wide:1/ptrace"],
        false,
    );
    for check in ["elements", "console", "csp", "pixels"] {
        assert!(out.contains(&format!("check-report: {check}: ok")), "{out}");
    }
}
