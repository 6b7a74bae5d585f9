//! `sandmine sync-profiles` through the real binary: the profiles in force
//! of a directory target published by the real `sandmine publish` reach a
//! kubelet seccomp directory, byte for byte; a new version replaces them;
//! a torn or altered version is refused and the installed profile stays;
//! foreign files are kept and reported; the loop mode follows a new
//! publication and stops cleanly on SIGTERM; clear errors.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;
#[path = "common/web_store.rs"]
mod web_store;

use common::*;
use publish::PublishedMeta;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use store_common::H;
use web_store::{IMAGE, POLICY_A};

struct Setup {
    f: Fixture,
    store: String,
    dir: String,
    node: String,
}

fn setup() -> Setup {
    let f = Fixture::new();
    let store = web_store::fill(&f);
    let node = f.path("node-seccomp");
    std::fs::create_dir_all(&node).expect("node dir");
    Setup {
        store,
        dir: f.arg("profiles"),
        node: node.display().to_string(),
        f,
    }
}

impl Setup {
    /// Publish web:1 under `policy` (extra TOML before policy A's bars).
    fn publish(&self, extra: &str, now: u64) -> PublishedMeta {
        let policy = self
            .f
            .write(&format!("p{now}.toml"), &format!("{extra}{POLICY_A}"));
        let now = now.to_string();
        let (key, _) = self.f.signing_key();
        let o = self.f.sandmine(&[
            "publish",
            "--set",
            &key,
            "--policy",
            &policy.display().to_string(),
            "--runtime-base",
            "none",
            "--set",
            "publish.min_hosts=1",
            "--set",
            &self.store,
            "--dir",
            &self.dir,
            "--now-ms",
            &now,
        ]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        self.current()
    }

    fn current(&self) -> PublishedMeta {
        let slug = publish::image_slug(IMAGE);
        let b = std::fs::read(Path::new(&self.dir).join(&slug).join("current")).expect("current");
        serde_json::from_slice(&b).expect("meta")
    }

    /// The kubelet files of `meta`'s version, relative to the kubelet dir
    /// (not their signatures, which are never installed).
    fn kubelet_files(&self, meta: &PublishedMeta) -> BTreeMap<String, Vec<u8>> {
        let vdir = Path::new(&self.dir)
            .join(&meta.slug)
            .join(&meta.version_short);
        meta.files
            .iter()
            .filter(|rel| !rel.ends_with(".sig"))
            .filter_map(|rel| rel.strip_prefix("kubelet/").map(|k| (rel, k)))
            .map(|(rel, k)| (k.to_string(), std::fs::read(vdir.join(rel)).expect("file")))
            .collect()
    }

    fn node_file(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(Path::new(&self.node).join(rel)).ok()
    }

    fn sync(&self) -> Out {
        self.f
            .sandmine(&["sync-profiles", "--from", &self.dir, "--to", &self.node])
    }
}

#[test]
fn published_profiles_reach_the_kubelet_directory_verified_and_atomically() {
    let s = setup();
    let a = s.publish("", 1_800_000_000_000);
    let files_a = s.kubelet_files(&a);
    let slug_path = format!("sandmine/{}.json", a.slug);
    assert!(files_a.contains_key(&slug_path), "{:?}", files_a.keys());

    // First pass: every kubelet file of the version in force, byte for byte.
    let o = s.sync();
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    for (rel, bytes) in &files_a {
        assert!(
            o.stdout.contains(&format!(
                "installed {rel} ({IMAGE} version {})",
                a.version_short
            )),
            "{}",
            o.describe()
        );
        assert_eq!(s.node_file(rel).as_ref(), Some(bytes), "{rel}");
    }
    // What the kubelet gets is a profile the one parser takes, enforcing.
    let text = String::from_utf8(s.node_file(&slug_path).expect("installed")).expect("utf-8");
    let p = policy_compiler::oci::parse(&text).expect("a valid profile");
    assert_eq!(p.default_action, policy_compiler::Action::Errno);
    assert!(o.stdout.ends_with(&format!(
        "sync: {} installed, 0 unchanged, 0 refused, 0 stale\n",
        files_a.len()
    )));

    // Second pass: nothing to do.
    let o = s.sync();
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout.ends_with(&format!(
            "sync: 0 installed, {} unchanged, 0 refused, 0 stale\n",
            files_a.len()
        )),
        "{}",
        o.describe()
    );

    // A new version (getrandom added) replaces the profile.
    let b = s.publish("must_allow = [\"getrandom\"]\n", 1_800_000_000_000 + H);
    assert_ne!(a.version, b.version);
    let files_b = s.kubelet_files(&b);
    assert_ne!(files_a[&slug_path], files_b[&slug_path]);
    let o = s.sync();
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(s.node_file(&slug_path), Some(files_b[&slug_path].clone()));
    assert!(o.stdout.contains(&format!(
        "installed {slug_path} ({IMAGE} version {})",
        b.version_short
    )));

    // A foreign file in the kubelet's sandmine/ folder is kept and reported.
    std::fs::write(Path::new(&s.node).join("sandmine/hand-made.json"), b"{}").expect("write");

    // An altered copy of the version in force: refused, nothing replaced,
    // exit 1, and the reason names the version and the hash.
    let vfile = Path::new(&s.dir)
        .join(&b.slug)
        .join(&b.version_short)
        .join("kubelet")
        .join(&slug_path);
    let original = std::fs::read(&vfile).expect("version file");
    let mut altered = original.clone();
    let at = altered
        .windows(b"SCMP_ACT_ERRNO".len())
        .position(|w| w == b"SCMP_ACT_ERRNO")
        .expect("an errno default");
    altered.splice(
        at..at + b"SCMP_ACT_ERRNO".len(),
        b"SCMP_ACT_ALLOW".iter().copied(),
    );
    std::fs::write(&vfile, &altered).expect("alter");
    let o = s.sync();
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert!(
        o.stderr.contains(&format!(
            "sandmine: refused {IMAGE}: version {}: its files hash to sha256:",
            b.version_short
        )) && o.stderr.contains(&format!(
            "not to the published {}: a torn or altered copy; the installed profile is kept",
            b.version
        )),
        "{}",
        o.describe()
    );
    assert_eq!(s.node_file(&slug_path), Some(files_b[&slug_path].clone()));
    assert!(
        o.stdout
            .contains("stale sandmine/hand-made.json (no image in force installs it; kept)"),
        "{}",
        o.describe()
    );
    assert_eq!(s.node_file("sandmine/hand-made.json"), Some(b"{}".to_vec()));
    std::fs::write(&vfile, &original).expect("restore");

    // No temporary file is left behind in the kubelet directory.
    let leftovers: Vec<String> = std::fs::read_dir(Path::new(&s.node).join("sandmine"))
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_loop_follows_new_publications_and_stops_on_sigterm() {
    let s = setup();
    let a = s.publish("", 1_800_000_000_000);
    let slug_path = format!("sandmine/{}.json", a.slug);
    let files_a = s.kubelet_files(&a);
    let run = s.f.spawn(s.f.command(&[
        "sync-profiles",
        "--from",
        &s.dir,
        "--to",
        &s.node,
        "--interval",
        "200ms",
    ]));
    let wait_for = |want: &[u8], what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while s.node_file(&slug_path).as_deref() != Some(want) {
            assert!(
                Instant::now() < deadline,
                "{what}: not installed within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&files_a[&slug_path], "version A");
    let b = s.publish("must_allow = [\"getrandom\"]\n", 1_800_000_000_000 + H);
    wait_for(&s.kubelet_files(&b)[&slug_path], "version B");
    let o = run.terminate(Duration::from_secs(10));
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout.contains(&format!(
            "installed {slug_path} ({IMAGE} version {})",
            b.version_short
        )),
        "{}",
        o.describe()
    );
}

#[test]
fn errors_are_one_line_and_help_has_examples() {
    let f = Fixture::new();
    let node = f.path("node");
    std::fs::create_dir_all(&node).expect("node");
    let o = f.sandmine(&[
        "sync-profiles",
        "--from",
        "/nonexistent/profiles",
        "--to",
        &node.display().to_string(),
    ]);
    assert_eq!(o.code(), Some(2));
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: --from /nonexistent/profiles: not a directory"
    );
    let o = f.sandmine(&[
        "sync-profiles",
        "--from",
        &node.display().to_string(),
        "--to",
        "/nonexistent/kubelet",
    ]);
    assert_eq!(o.code(), Some(2));
    assert!(one_error_line(&o)
        .starts_with("sandmine: error: --to /nonexistent/kubelet: not a directory"));
    let o = f.sandmine(&[
        "sync-profiles",
        "--from",
        "a",
        "--to",
        "b",
        "--interval",
        "0s",
    ]);
    assert_eq!(o.code(), Some(2));
    assert!(
        one_error_line(&o).contains("must be more than 0"),
        "{}",
        o.describe()
    );
    let o = f.sandmine(&["sync-profiles", "--help"]);
    assert_eq!(o.code(), Some(0));
    assert!(
        o.stdout.contains("Examples:")
            && o.stdout.contains("localhostProfile: sandmine/<slug>.json")
    );
}
