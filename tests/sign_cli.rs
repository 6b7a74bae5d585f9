//! Signed profiles (issue 13) through the real binary: `sandmine
//! signing-key` makes the key, the real `sandmine publish` signs every
//! profile file it writes (`F.sig`), `sandmine verify` accepts each and
//! refuses a tampered profile, a signature by another key and a missing
//! signature with one exact line; publishing without a key (and without
//! `allow_unsigned`) or with a key file others can read is refused; a new
//! key makes a new version; `sync-profiles --public-key` refuses a
//! tampered or unsigned version and keeps the installed profile.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;
#[path = "common/web_store.rs"]
mod web_store;

use common::*;
use publish::PublishedMeta;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use store_common::H;
use web_store::{IMAGE, POLICY_A};

const T0: u64 = 1_800_000_000_000;
const REPORTS: [&str; 4] = ["diff.json", "diff.txt", "report.json", "report.txt"];

struct Setup {
    f: Fixture,
    store: String,
    dir: String,
}

fn setup() -> Setup {
    let f = Fixture::new();
    let store = web_store::fill(&f);
    Setup {
        store,
        dir: f.arg("profiles"),
        f,
    }
}

impl Setup {
    /// `sandmine publish` of web:1 under POLICY_A (`extra` before it) with
    /// `sets` (`--set` values).
    fn publish(&self, extra: &str, sets: &[&str], now: u64) -> Out {
        self.f
            .run_cmd(self.publish_cmd(extra, sets, now), RUN_TIMEOUT)
    }

    fn publish_cmd(&self, extra: &str, sets: &[&str], now: u64) -> std::process::Command {
        let policy = self
            .f
            .write(&format!("p{now}.toml"), &format!("{extra}{POLICY_A}"));
        let policy = policy.display().to_string();
        let now = now.to_string();
        let mut a = vec![
            "publish",
            "--policy",
            &policy,
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
        ];
        for s in sets {
            a.extend(["--set", s]);
        }
        self.f.command(&a)
    }

    fn current(&self) -> PublishedMeta {
        let slug = publish::image_slug(IMAGE);
        let b = std::fs::read(Path::new(&self.dir).join(&slug).join("current")).expect("current");
        serde_json::from_slice(&b).expect("meta")
    }

    fn vdir(&self, m: &PublishedMeta) -> PathBuf {
        Path::new(&self.dir).join(&m.slug).join(&m.version_short)
    }

    fn verify(&self, args: &[&str]) -> Out {
        let mut a = vec!["verify"];
        a.extend(args);
        self.f.sandmine(&a)
    }
}

/// The profile files of a publication (not reports, not signatures).
fn profiles(m: &PublishedMeta) -> Vec<String> {
    m.files
        .iter()
        .filter(|f| !f.ends_with(".sig") && !REPORTS.contains(&f.as_str()))
        .cloned()
        .collect()
}

/// The first kubelet file of a publication (the one `sync-profiles`
/// checks first).
fn first_kubelet(m: &PublishedMeta) -> String {
    m.files
        .iter()
        .filter(|f| f.starts_with("kubelet/") && !f.ends_with(".sig"))
        .min()
        .cloned()
        .expect("a kubelet file")
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn every_published_profile_is_signed_and_verify_checks_it() {
    let s = setup();
    let (key, public) = s.f.signing_key();
    let o = s.publish("", &[&key], T0);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(o.stderr, "", "signed: no warning");
    let m = s.current();
    let profiles = profiles(&m);
    let kubelet = format!("kubelet/sandmine/{}.json", m.slug);
    assert!(
        profiles.contains(&"seccomp.json".to_string()) && profiles.contains(&kubelet),
        "{profiles:?}"
    );
    // Exactly one signature per profile file; reports are not signed.
    let sigs: BTreeSet<String> = m
        .files
        .iter()
        .filter(|f| f.ends_with(".sig"))
        .cloned()
        .collect();
    let want: BTreeSet<String> = profiles.iter().map(|p| format!("{p}.sig")).collect();
    assert_eq!(sigs, want);
    let vdir = s.vdir(&m);
    for p in &profiles {
        let o = s.verify(&["--key", &public, &path(&vdir.join(p))]);
        assert_eq!(o.code(), Some(0), "{p}: {}", o.describe());
        assert_eq!(o.stdout, "ok\n", "{p}");
        assert_eq!(o.stderr, "", "{p}");
    }
    // The .sig is one line of JSON naming the algorithm and the key.
    let sig = std::fs::read_to_string(vdir.join("seccomp.json.sig")).expect("sig");
    assert!(
        sig.starts_with(&format!(
            "{{\"alg\":\"ed25519\",\"key\":\"{public}\",\"sig\":\""
        )) && sig.ends_with("\"}\n")
            && sig.lines().count() == 1,
        "{sig}"
    );

    // --key-file and --sig.
    let pubfile = s.f.write("publish.pub", &format!("{public}\n"));
    let profile = vdir.join("seccomp.json");
    let elsewhere = s.f.path("elsewhere.sig");
    std::fs::copy(vdir.join("seccomp.json.sig"), &elsewhere).expect("copy");
    let o = s.verify(&[
        "--key-file",
        &path(&pubfile),
        &path(&profile),
        "--sig",
        &path(&elsewhere),
    ]);
    assert_eq!(
        (o.code(), o.stdout.as_str()),
        (Some(0), "ok\n"),
        "{}",
        o.describe()
    );

    // A tampered profile (one byte changed) next to its signature.
    let bytes = std::fs::read(&profile).expect("profile");
    let tampered = s.f.path("tampered.json");
    let mut t = bytes.clone();
    t[10] ^= 0x01;
    std::fs::write(&tampered, &t).expect("write");
    std::fs::copy(vdir.join("seccomp.json.sig"), s.f.path("tampered.json.sig")).expect("copy");
    let o = s.verify(&["--key", &public, &path(&tampered)]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert_eq!(o.stdout, "");
    assert_eq!(
        o.stderr,
        format!(
            "sandmine: refused {}: the signature by {public} does not match the profile's bytes: altered after signing\n",
            path(&tampered)
        )
    );

    // A key that did not sign it.
    let other =
        s.f.sandmine(&["signing-key", "--out", &s.f.arg("other.key")]);
    assert_eq!(other.code(), Some(0), "{}", other.describe());
    let other = other.stdout.trim().to_string();
    assert_ne!(other, public);
    let o = s.verify(&["--key", &other, &path(&profile)]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert_eq!(
        o.stderr,
        format!(
            "sandmine: refused {}: signed by {public}, which is not a trusted key\n",
            path(&profile)
        )
    );
    // Either key of a rotation is accepted.
    let o = s.verify(&["--key", &other, "--key", &public, &path(&profile)]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());

    // No signature.
    let bare = s.f.path("bare.json");
    std::fs::write(&bare, &bytes).expect("write");
    let o = s.verify(&["--key", &public, &path(&bare)]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert_eq!(
        o.stderr,
        format!(
            "sandmine: refused {}: no signature (missing {}.sig)\n",
            path(&bare),
            path(&bare)
        )
    );
    // Not a signature file.
    let junk = s.f.write("junk.sig", "hello\n");
    let o = s.verify(&["--key", &public, &path(&profile), "--sig", &path(&junk)]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert!(
        o.stderr.starts_with(&format!(
            "sandmine: refused {}: the signature file is not valid: not sandmine signature JSON (",
            path(&profile)
        )) && o.stderr.lines().count() == 1,
        "{}",
        o.describe()
    );

    // Usage errors: exit 2.
    let o = s.verify(&[&path(&profile)]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let o = s.verify(&["--key", "abc", &path(&profile)]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        one_error_line(&o).contains("\"abc\" is not an ed25519 public key"),
        "{}",
        o.describe()
    );
    let o = s.verify(&["--key", &public, &s.f.arg("nonexistent.json")]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(one_error_line(&o).contains("cannot read the profile"));
    let o = s.verify(&["--help"]);
    assert_eq!(o.code(), Some(0));
    assert!(
        o.stdout.contains("Examples:\n  sandmine verify --key"),
        "{}",
        o.stdout
    );

    // The same profile and key: unchanged (signatures are deterministic).
    let o = s.publish("", &[&key], T0 + H);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout
            .contains(&format!("  {IMAGE}: unchanged {}\n", m.version_short)),
        "{}",
        o.describe()
    );
    // A new key (rotation): a new version of the same syscalls, signed by
    // the new key.
    let rotated = format!("publish.signing_key_file=\"{}\"", s.f.arg("other.key"));
    let o = s.publish("", &[&rotated], T0 + 2 * H);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let m2 = s.current();
    assert_ne!(m2.version, m.version);
    assert!(
        o.stdout.contains(&format!(
            "  {IMAGE}: published {} (was {}) +0 -0 syscalls\n",
            m2.version_short, m.version_short
        )),
        "{}",
        o.describe()
    );
    let o = s.verify(&["--key", &other, &path(&s.vdir(&m2).join(&kubelet))]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
}

#[test]
fn publish_refuses_without_a_key_or_with_a_key_others_can_read() {
    let s = setup();
    let o = s.publish("", &[], T0);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: publishing needs a signing key: make one with `sandmine signing-key --out /etc/sandmine/publish.key` and set publish.signing_key_file to it (or set publish.allow_unsigned = true to publish unsigned profiles)"
    );
    assert!(!Path::new(&s.dir).exists(), "nothing published");

    let (key, public) = s.f.signing_key();
    let key_file = s.f.path("publish.key");
    assert_eq!(
        std::fs::metadata(&key_file)
            .expect("key")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // Asking again prints the same public key and changes nothing.
    assert_eq!(s.f.signing_key().1, public);
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = s.publish("", &[&key], T0);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert_eq!(
        one_error_line(&o),
        format!("sandmine: error: the signing key {} is readable or writable by others (mode 0644): anyone who reads it can sign profiles; `chmod 600` it, and if others may have read it, make a new key and rotate (docs/OPERATIONS.md)", path(&key_file))
    );
    assert!(!Path::new(&s.dir).exists(), "nothing published");

    // Explicitly unsigned: published, without signatures.
    let o = s.publish("", &["publish.allow_unsigned=true"], T0);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(
        o.stderr,
        "sandmine: warning: publishing unsigned profiles (publish.allow_unsigned = true, no signing key): nodes that check signatures refuse them\n"
    );
    let m = s.current();
    assert!(
        !m.files.iter().any(|f| f.ends_with(".sig")),
        "{:?}",
        m.files
    );

    // The seed as an environment variable (a Kubernetes Secret): signed,
    // so a new version.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let seed = std::fs::read_to_string(&key_file).expect("seed");
    let mut cmd = s.publish_cmd("", &[], T0 + H);
    cmd.env("SANDMINE_PUBLISH__SIGNING_KEY", seed.trim());
    let o = s.f.run_cmd(cmd, RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let m2 = s.current();
    assert_ne!(m2.version, m.version);
    let o = s.verify(&["--key", &public, &path(&s.vdir(&m2).join("seccomp.json"))]);
    assert_eq!(
        (o.code(), o.stdout.as_str()),
        (Some(0), "ok\n"),
        "{}",
        o.describe()
    );
    // Not both.
    let mut cmd = s.publish_cmd("", &[&key], T0 + 2 * H);
    cmd.env("SANDMINE_PUBLISH__SIGNING_KEY", seed.trim());
    let o = s.f.run_cmd(cmd, RUN_TIMEOUT);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: set one of publish.signing_key_file and publish.signing_key, not both"
    );
}

#[test]
fn sync_with_a_public_key_refuses_tampered_and_unsigned_versions() {
    let s = setup();
    let (key, public) = s.f.signing_key();
    let node = s.f.path("node");
    std::fs::create_dir_all(&node).expect("node");
    let pubfile = s.f.write("publish.pub", &format!("{public}\n"));
    let sync = |trust: &[&str]| {
        let mut a = vec!["sync-profiles", "--from", &s.dir];
        let node = path(&node);
        a.extend(["--to", &node]);
        a.extend(trust);
        s.f.sandmine(&a)
    };
    let o = s.publish("", &[&key], T0);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let a = s.current();
    let rel = format!("sandmine/{}.json", a.slug);
    let kubelet = format!("kubelet/{rel}");
    let vfile = s.vdir(&a).join(&kubelet);
    let signed = std::fs::read(&vfile).expect("profile");
    let o = sync(&["--public-key-file", &path(&pubfile)]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(std::fs::read(node.join(&rel)).ok(), Some(signed.clone()));
    // Signatures are checked, never installed.
    let installed: Vec<String> = std::fs::read_dir(node.join("sandmine"))
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        installed.contains(&format!("{}.json", a.slug))
            && !installed.iter().any(|f| f.ends_with(".sig")),
        "{installed:?}"
    );

    // Tampered by someone who can write the target: one byte of the
    // profile changed and the version hash in `current` recomputed, so
    // that only the signature can tell.
    let mut t = signed.clone();
    let at = t
        .windows(b"SCMP_ACT_ERRNO".len())
        .position(|w| w == b"SCMP_ACT_ERRNO")
        .expect("an errno default");
    t[at + 9..at + 14].copy_from_slice(b"ALLOW");
    std::fs::write(&vfile, &t).expect("tamper");
    let files = a
        .files
        .iter()
        .filter(|f| !REPORTS.contains(&f.as_str()))
        .map(|f| (f.clone(), std::fs::read(s.vdir(&a).join(f)).expect("file")))
        .collect();
    let mut forged = a.clone();
    forged.version = publish::Version::of_files(&files).full;
    let cur = Path::new(&s.dir).join(&a.slug).join("current");
    std::fs::write(&cur, serde_json::to_vec(&forged).expect("json")).expect("forge");
    let o = sync(&["--public-key", &public]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert_eq!(
        o.stderr,
        format!(
            "sandmine: refused {IMAGE}: version {}: {kubelet}: the signature by {public} does not match the profile's bytes: altered after signing; the installed profile is kept\n",
            a.version_short
        )
    );
    assert_eq!(std::fs::read(node.join(&rel)).ok(), Some(signed.clone()));
    // Without a key the forgery would have gone through: that is why
    // nodes pass one.
    std::fs::write(&vfile, &signed).expect("restore");
    std::fs::write(&cur, serde_json::to_vec(&a).expect("json")).expect("restore");

    // An unsigned version (allow_unsigned, new syscalls): refused.
    let o = s.publish(
        "must_allow = [\"getrandom\"]\n",
        &["publish.allow_unsigned=true"],
        T0 + H,
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let b = s.current();
    assert_ne!(b.version, a.version);
    let o = sync(&["--public-key", &public]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    // Refused once per folder of the image (its slug, and the folder of
    // earlier releases written for one release), at its first kubelet file.
    let first = first_kubelet(&b);
    assert_eq!(
        o.stderr,
        format!(
            "sandmine: refused {IMAGE}: version {}: {first}: no signature (missing {first}.sig); the installed profile is kept\n",
            b.version_short
        )
        .repeat(2)
    );
    assert_eq!(std::fs::read(node.join(&rel)).ok(), Some(signed.clone()));

    // Signed again, by a key the node does not trust: refused; with both
    // keys (a rotation): installed.
    let other =
        s.f.sandmine(&["signing-key", "--out", &s.f.arg("other.key")]);
    assert_eq!(other.code(), Some(0), "{}", other.describe());
    let other_pub = other.stdout.trim().to_string();
    let rotated = format!("publish.signing_key_file=\"{}\"", s.f.arg("other.key"));
    let o = s.publish("must_allow = [\"getrandom\"]\n", &[&rotated], T0 + 2 * H);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let c = s.current();
    let o = sync(&["--public-key", &public]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    let first = first_kubelet(&c);
    assert_eq!(
        o.stderr,
        format!(
            "sandmine: refused {IMAGE}: version {}: {first}: signed by {other_pub}, which is not a trusted key; the installed profile is kept\n",
            c.version_short
        )
        .repeat(2)
    );
    assert_eq!(std::fs::read(node.join(&rel)).ok(), Some(signed));
    let o = sync(&["--public-key", &public, "--public-key", &other_pub]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(
        std::fs::read(node.join(&rel)).ok(),
        std::fs::read(s.vdir(&c).join(&kubelet)).ok()
    );
}
