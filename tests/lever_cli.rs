//! `sandmine lever` through the real binary: rollback, pin, force-log and
//! their releases on a git and a directory target at once, each one git
//! commit (exact messages) and one `levers.jsonl` line; scheduled rounds
//! (`sandmine publish`) respect them and say so; clear errors that change
//! nothing.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;
#[path = "common/web_store.rs"]
mod web_store;

use common::*;
use publish::PublishedMeta;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use store_common::H;
use web_store::{IMAGE, POLICY_A};

/// Publication times (hidden `--now-ms`), an hour apart.
const T: [u64; 12] = {
    let mut t = [0; 12];
    let mut i = 0;
    while i < 12 {
        t[i] = 1_800_000_000_000 + i as u64 * H;
        i += 1;
    }
    t
};

/// Policy A plus getrandom: another version of the same image.
fn policy_b() -> String {
    format!("must_allow = [\"getrandom\"]\n{POLICY_A}")
}

struct Setup {
    f: Fixture,
    store: String,
    repo: String,
    dir: String,
    policy_a: String,
    policy_b: String,
}

fn setup() -> Setup {
    let f = Fixture::new();
    let store = web_store::fill(&f);
    let policy_a = f.write("a.toml", POLICY_A).display().to_string();
    let policy_b = f.write("b.toml", &policy_b()).display().to_string();
    Setup {
        store,
        repo: f.arg("repo"),
        dir: f.arg("profiles"),
        policy_a,
        policy_b,
        f,
    }
}

impl Setup {
    fn run(&self, args: &[&str], now: u64) -> Out {
        let now = now.to_string();
        let mut a: Vec<&str> = args.to_vec();
        let (key, _) = self.f.signing_key();
        a.extend([
            "--set",
            &key,
            "--set",
            &self.store,
            "--git",
            &self.repo,
            "--dir",
            &self.dir,
            "--now-ms",
            &now,
        ]);
        self.f.sandmine(&a)
    }

    fn publish(&self, policy: &str, now: u64) -> Out {
        let o = self.run(
            &[
                "publish",
                "--policy",
                policy,
                "--runtime-base",
                "none",
                "--set",
                "publish.min_hosts=1",
            ],
            now,
        );
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        o
    }

    fn lever(&self, args: &[&str], now: u64) -> Out {
        let mut a = vec!["lever"];
        a.extend(args);
        self.run(&a, now)
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.repo)
            .args(args)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    fn commits(&self) -> u64 {
        self.git(&["rev-list", "--count", "HEAD"])
            .trim()
            .parse()
            .expect("count")
    }

    fn slug(&self) -> String {
        publish::image_slug(IMAGE)
    }

    fn git_current(&self) -> PublishedMeta {
        let text = self.git(&["show", &format!("HEAD:{}/current", self.slug())]);
        serde_json::from_str(&text).expect("meta")
    }

    fn dir_current(&self) -> PublishedMeta {
        let p = Path::new(&self.dir).join(self.slug()).join("current");
        serde_json::from_slice(&std::fs::read(p).expect("current")).expect("meta")
    }
}

fn short(m: &PublishedMeta) -> String {
    m.version_short.clone()
}

#[test]
fn levers_are_commits_and_rounds_respect_them() {
    let s = setup();
    let slug = s.slug();

    // Two rounds: version A, then B (getrandom added).
    s.publish(&s.policy_a, T[0]);
    let a = s.git_current();
    assert_eq!(a.state, "enforce");
    let a_json = s.git(&["show", &format!("HEAD:{slug}/seccomp.json")]);
    s.publish(&s.policy_b, T[1]);
    let b = s.git_current();
    assert_ne!(a.version, b.version);
    assert_eq!(s.commits(), 2);
    assert_eq!(s.dir_current().version, b.version);

    // versions: newest first, the one in force marked.
    let o = s.lever(&["versions", IMAGE], T[2]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let n_a: usize = a.allowed.values().map(|v| v.len()).sum();
    let n_b: usize = b.allowed.values().map(|v| v.len()).sum();
    assert_eq!(n_b, n_a + 1);
    let listing = |target: String| {
        format!(
            "{target}:\n  * {} enforce 2027-01-15T09:00:00Z {n_b} syscalls\n    {} enforce 2027-01-15T08:00:00Z {n_a} syscalls\n",
            short(&b),
            short(&a)
        )
    };
    assert_eq!(
        o.stdout,
        format!(
            "{}{}",
            listing(format!("dir:{}", s.dir)),
            listing(format!("git:{}", s.repo))
        )
    );

    // Rollback to A: one commit, A's files again, pinned.
    let o = s.lever(
        &[
            "rollback",
            IMAGE,
            "--to",
            &short(&a),
            "--reason",
            "INC-1: B denies a call web needs",
            "--by",
            "alice",
        ],
        T[2],
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let subject = format!(
        "{IMAGE}: rollback to {} from {} (pinned)",
        short(&a),
        short(&b)
    );
    assert_eq!(
        o.stdout,
        format!("dir:{}: {subject}\ngit:{}: {subject}\n", s.dir, s.repo)
    );
    assert_eq!(s.commits(), 3);
    assert_eq!(
        s.git(&["log", "-1", "--format=%B%n--%n%ad", "--date=unix"]),
        format!(
            "{subject}\n\nby: alice\nreason: INC-1: B denies a call web needs\n\n- x86_64 getrandom\n\nversion: {}\nwas: {}\n\n--\n{}\n",
            a.version,
            b.version,
            T[2] / 1000
        )
    );
    assert_eq!(
        s.git(&["show", &format!("HEAD:{slug}/seccomp.json")]),
        a_json
    );
    assert_eq!(
        s.git(&["show", &format!("HEAD:{slug}/diff.txt")]),
        "- x86_64 getrandom\n"
    );
    let cur = s.git_current();
    assert_eq!(
        (
            cur.version.as_str(),
            cur.previous_version.as_deref(),
            cur.published_at_ms
        ),
        (a.version.as_str(), Some(b.version.as_str()), T[2])
    );
    let pin = cur.levers.pinned.clone().expect("pinned");
    assert_eq!(
        (pin.by.as_str(), pin.reason.as_str(), pin.at_ms),
        ("alice", "INC-1: B denies a call web needs", T[2])
    );
    assert_eq!(cur.levers.forced_log, None);
    let d = s.dir_current();
    assert_eq!(
        (d.version.clone(), d.levers.clone()),
        (a.version.clone(), cur.levers.clone())
    );
    assert_eq!(
        std::fs::read_link(Path::new(&s.dir).join(&slug).join("latest")).expect("latest"),
        Path::new(&short(&a))
    );
    assert_eq!(
        std::fs::read_to_string(
            Path::new(&s.dir)
                .join(&slug)
                .join(short(&a))
                .join("seccomp.json")
        )
        .expect("dir seccomp.json"),
        a_json
    );
    let jsonl = std::fs::read_to_string(Path::new(&s.dir).join(&slug).join("levers.jsonl"))
        .expect("levers.jsonl");
    assert_eq!(
        jsonl,
        format!(
            "{{\"at_ms\":{},\"image\":\"web:1\",\"lever\":\"rollback\",\"version\":\"{}\",\"was\":\"{}\",\"by\":\"alice\",\"reason\":\"INC-1: B denies a call web needs\"}}\n",
            T[2], a.version, b.version
        )
    );

    // A round leaves the pinned image alone and says so.
    let o = s.publish(&s.policy_b, T[3]);
    let pinned_line = format!(
        "  web:1: pinned {} by alice since 2027-01-15T10:00:00Z: INC-1: B denies a call web needs (candidate {} not published; `sandmine lever unpin` to resume)\n",
        short(&a),
        short(&b)
    );
    assert_eq!(
        o.stdout,
        format!(
            "publish to dir:{}: 0 published, 0 unchanged, 0 held back, 0 not ready, 0 failed, 1 pinned\n{pinned_line}\
             publish to git:{}: 0 published, 0 unchanged, 0 held back, 0 not ready, 0 failed, 1 pinned\n{pinned_line}",
            s.dir, s.repo
        )
    );
    assert_eq!(s.commits(), 3);
    assert_eq!(s.git_current(), cur);
    assert_eq!(s.dir_current(), d);

    // Refusals change nothing: one error line each, exit 2.
    let refused = |args: &[&str], want: String| {
        let o = s.lever(args, T[4]);
        assert_eq!(o.code(), Some(2), "{args:?}: {}", o.describe());
        assert_eq!(o.stdout, "", "{args:?}");
        assert_eq!(o.stderr, format!("sandmine: error: {want}\n"), "{args:?}");
    };
    let git_t = format!("git:{}", s.repo);
    let dir_t = format!("dir:{}", s.dir);
    refused(
        &["pin", IMAGE, "--reason", "again", "--by", "bob"],
        format!("image \"web:1\" is already pinned at {} in {dir_t} (by alice: INC-1: B denies a call web needs); `sandmine lever unpin` first", short(&a)),
    );
    refused(
        &["rollback", IMAGE, "--to", "0123456789ab", "--reason", "x", "--by", "bob"],
        format!("image \"web:1\" has no version \"0123456789ab\" in {dir_t}; known versions, newest first: {}, {}", short(&a), short(&b)),
    );
    refused(
        &[
            "rollback",
            IMAGE,
            "--to",
            &short(&a),
            "--reason",
            "x",
            "--by",
            "bob",
        ],
        format!(
            "{} is already the version in force for \"web:1\" in {dir_t}",
            short(&a)
        ),
    );
    refused(
        &["pin", "nosuch:1", "--reason", "x", "--by", "bob"],
        format!("image \"nosuch:1\" has nothing published in {dir_t} (`sandmine publish` publishes it first)"),
    );
    refused(
        &["force-log", IMAGE, "--reason", "x", "--by", "bob", "--runtime-base", "none", "--policy", &s.policy_b],
        format!("image \"web:1\" is pinned at {} in {dir_t} (by alice: INC-1: B denies a call web needs); `sandmine lever unpin` first", short(&a)),
    );
    refused(
        &["release-log", IMAGE, "--reason", "x", "--by", "bob"],
        format!("image \"web:1\" is not forced into log mode in {dir_t}"),
    );
    refused(
        &["unpin", IMAGE, "--reason", "  ", "--by", "bob"],
        "a lever needs a reason (--reason)".into(),
    );
    refused(
        &["unpin", IMAGE, "--reason", "x", "--by", "bob", "--set", "publish.object_store=true"],
        "levers act on the dir and git targets only; the NATS object store keeps no history and no levers (unset publish.object_store for this command, docs/OPERATIONS.md)".into(),
    );
    let o = s.lever(&["unpin", IMAGE, "--by", "bob"], T[4]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        o.stderr.starts_with(
            "sandmine: error: the following required arguments were not provided: --reason <TEXT>"
        ),
        "{}",
        o.stderr
    );
    assert_eq!(s.commits(), 3);
    assert_eq!(s.git_current(), cur);
    assert_eq!(s.dir_current(), d);
    let _ = git_t;

    // Unpin: one commit changing only `current`; the next round publishes B.
    let o = s.lever(
        &[
            "unpin",
            IMAGE,
            "--reason",
            "INC-1 fixed in B'",
            "--by",
            "alice",
        ],
        T[5],
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(s.commits(), 4);
    assert_eq!(
        s.git(&["show", "--format=%s", "--name-only", "HEAD"]),
        format!(
            "{IMAGE}: unpin {} (rounds publish it again)\n\n{legacy}/current\n{slug}/current\n",
            short(&a),
            // The folder of earlier releases follows (schemas::slug::legacy).
            legacy = schemas::slug::legacy(IMAGE).folder
        )
    );
    assert_eq!(s.git_current().levers, Default::default());
    let o = s.publish(&s.policy_b, T[6]);
    assert!(
        o.stdout.contains(&format!(
            "  web:1: published {} (was {}) +1 -0 syscalls\n",
            short(&b),
            short(&a)
        )),
        "{}",
        o.stdout
    );
    assert_eq!(s.commits(), 5);

    // Force log mode: compiled from the store in log mode, published now.
    let o = s.lever(
        &[
            "force-log",
            IMAGE,
            "--reason",
            "relearning after the upgrade",
            "--by",
            "carol",
            "--runtime-base",
            "none",
            "--policy",
            &s.policy_b,
        ],
        T[7],
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(s.commits(), 6);
    let forced = s.git_current();
    assert_eq!(forced.state, "log");
    assert_eq!(forced.allowed, b.allowed);
    assert_ne!(forced.version, b.version);
    let subject = format!(
        "{IMAGE}: force log mode {} (was enforce {})",
        short(&forced),
        short(&b)
    );
    assert_eq!(
        o.stdout,
        format!("dir:{}: {subject}\ngit:{}: {subject}\n", s.dir, s.repo)
    );
    let profile: Value =
        serde_json::from_str(&s.git(&["show", &format!("HEAD:{slug}/seccomp.json")]))
            .expect("json");
    assert_eq!(profile["defaultAction"], "SCMP_ACT_LOG");
    let mark = forced.levers.forced_log.clone().expect("forced");
    assert_eq!((mark.by.as_str(), mark.at_ms), ("carol", T[7]));
    assert_eq!(s.dir_current().version, forced.version);

    // Rounds keep publishing the log-mode profile, and say why.
    let o = s.publish(&s.policy_b, T[8]);
    let line = format!(
        "  web:1: unchanged {} [forced log mode by carol since 2027-01-15T15:00:00Z: relearning after the upgrade]\n",
        short(&forced)
    );
    assert_eq!(
        o.stdout,
        format!(
            "publish to dir:{}: 0 published, 1 unchanged, 0 held back, 0 not ready, 0 failed\n{line}\
             publish to git:{}: 0 published, 1 unchanged, 0 held back, 0 not ready, 0 failed\n{line}",
            s.dir, s.repo
        )
    );
    assert_eq!(s.commits(), 6);
    refused(
        &["rollback", IMAGE, "--to", &short(&a), "--reason", "x", "--by", "bob"],
        format!("image \"web:1\" is forced into log mode in {dir_t} (by carol: relearning after the upgrade); `sandmine lever release-log` first"),
    );

    // Release: one commit; the next round publishes the enforcing B again.
    let o = s.lever(
        &[
            "release-log",
            IMAGE,
            "--reason",
            "relearned",
            "--by",
            "carol",
        ],
        T[9],
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(s.commits(), 7);
    let o = s.publish(&s.policy_b, T[10]);
    assert!(
        o.stdout.contains(&format!(
            "  web:1: published {} (was {}) +0 -0 syscalls\n",
            short(&b),
            short(&forced)
        )),
        "{}",
        o.stdout
    );
    assert_eq!(s.commits(), 8);
    assert_eq!(s.git_current().state, "enforce");
    assert_eq!(
        s.git(&["log", "--format=%s"]),
        format!(
            "web:1: enforce {b} (+0 -0 syscalls)\n\
             web:1: release log mode ({f} stays until the next round)\n\
             web:1: force log mode {f} (was enforce {b})\n\
             web:1: enforce {b} (+1 -0 syscalls)\n\
             web:1: unpin {a} (rounds publish it again)\n\
             web:1: rollback to {a} from {b} (pinned)\n\
             web:1: enforce {b} (+1 -0 syscalls)\n\
             web:1: enforce {a} (+{n_a} -0 syscalls)\n",
            a = short(&a),
            b = short(&b),
            f = short(&forced),
        )
    );
    let levers: Vec<String> =
        std::fs::read_to_string(Path::new(&s.dir).join(&slug).join("levers.jsonl"))
            .expect("levers.jsonl")
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("line")["lever"]
                    .as_str()
                    .expect("lever")
                    .to_string()
            })
            .collect();
    assert_eq!(levers, ["rollback", "unpin", "force-log", "release-log"]);
}

#[test]
fn lever_help_has_examples() {
    let f = Fixture::new();
    for args in [
        &["lever", "--help"][..],
        &["lever", "rollback", "--help"],
        &["lever", "force-log", "--help"],
    ] {
        let o = f.sandmine(args);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        assert!(
            o.stdout.contains("  sandmine lever rollback nginx:1.25 --to 8e7f0c128629 --reason 'INC-42: denies sendfile' --git /srv/profiles-repo\n"),
            "{args:?}: {}",
            o.stdout
        );
    }
}
