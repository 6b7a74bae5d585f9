//! `sandmine publish` to an OCI registry through the real binary, against a
//! real registry (Debian's docker-registry, distribution 2.8.2) over TLS
//! with a throwaway CA and basic auth (htpasswd): the profile is pushed as
//! a seccomp-profile artifact and pulled back byte for byte, digest for
//! digest, by an independent client (the oras Python SDK), with its
//! signature on the layer that `sandmine verify` checks; publishing the
//! same version again pushes nothing; a wrong password, an unknown CA and
//! an unreachable registry are one clear line; a profile over a limit is
//! refused and nothing reaches the registry.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;
#[path = "common/web_store.rs"]
mod web_store;

use common::*;
use publish::PublishedMeta;
use std::path::Path;
use std::process::Command;
use testsvc::{Registry, TestPki};
use web_store::{IMAGE, POLICY_A};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-Pw";
const ORAS_PYTHON: &str = "/var/cache/sandmine/py/bin/python3";

struct Setup {
    f: Fixture,
    store: String,
    pki: TestPki,
    reg: Registry,
    policy: String,
    dir: String,
    /// `--set` of the signing key, and its public key.
    key: (String, String),
}

fn setup() -> Setup {
    let f = Fixture::new();
    let store = web_store::fill(&f);
    let pki = TestPki::generate();
    let reg = Registry::start_tls(&pki, USER, PASSWORD);
    let policy = f.write("policy.toml", POLICY_A).display().to_string();
    f.write("password", &format!("{PASSWORD}\n"));
    f.write("wrong-password", "not-the-password\n");
    let key = f.signing_key();
    Setup {
        key,
        dir: f.arg("profiles"),
        f,
        store,
        pki,
        reg,
        policy,
    }
}

impl Setup {
    /// A config naming the registry; `extra` goes into `[publish.oci]`.
    fn config(&self, name: &str, registry: &str, extra: &str) -> String {
        self.f
            .write(
                name,
                &format!(
                    "[publish.oci]\nregistry = \"{registry}\"\nrepository = \"team/profiles\"\n\
                     username = \"{USER}\"\n{extra}"
                ),
            )
            .display()
            .to_string()
    }

    fn good_config(&self) -> String {
        self.config(
            "good.toml",
            &self.reg.host(),
            &format!(
                "password_file = \"{}\"\nca_file = \"{}\"\n",
                self.f.path("password").display(),
                self.pki.ca_cert.display()
            ),
        )
    }

    /// `sandmine publish` with `config`, also to the directory target
    /// (the reference for the bytes) when `dir`.
    fn publish(&self, config: &str, dir: bool, now: u64) -> Out {
        let now = now.to_string();
        let mut args = vec![
            "publish",
            "--config",
            config,
            "--policy",
            &self.policy,
            "--runtime-base",
            "none",
            "--set",
            "publish.min_hosts=1",
            "--set",
            &self.store,
            "--now-ms",
            &now,
            "--set",
            &self.key.0,
        ];
        if dir {
            args.extend(["--dir", &self.dir]);
        }
        self.f.sandmine(&args)
    }

    fn dir_current(&self) -> PublishedMeta {
        let slug = publish::image_slug(IMAGE);
        let b = std::fs::read(Path::new(&self.dir).join(&slug).join("current")).expect("current");
        serde_json::from_slice(&b).expect("meta")
    }

    /// Pulls `reference` (`repo@digest` or `repo:tag`) with oras-py.
    fn oras_pull(&self, reference: &str, outdir: &str) -> serde_json::Value {
        assert!(
            Path::new(ORAS_PYTHON).exists(),
            "{ORAS_PYTHON} is missing: run scripts/install-deps.sh as root (it installs oras from PyPI into /var/cache/sandmine/py)"
        );
        let mut cmd = Command::new(ORAS_PYTHON);
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oci/pull.py"))
            .args([
                &self.reg.host(),
                reference,
                &self.pki.ca_cert.display().to_string(),
                USER,
                &self.f.path("password").display().to_string(),
                outdir,
            ]);
        let o = self.f.run_cmd(cmd, RUN_TIMEOUT);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        serde_json::from_str(o.stdout.trim()).expect("pull.py output")
    }

    fn manifest_puts(&self) -> usize {
        self.reg.requests("PUT", "/manifests/")
    }
}

/// The `pushed REF` lines of a publish run.
fn pushed(o: &Out) -> Vec<String> {
    o.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pushed "))
        .map(str::to_string)
        .collect()
}

#[test]
fn pushed_artifact_pulls_back_identical_and_the_same_version_is_pushed_once() {
    let s = setup();
    let cfg = s.good_config();
    let o = s.publish(&cfg, true, 1_800_000_000_000);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let meta = s.dir_current();
    let slug = publish::image_slug(IMAGE);
    let repo = format!("team/profiles/{slug}");
    let refs = pushed(&o);
    assert_eq!(refs.len(), 1, "{}", o.describe());
    let prefix = format!("{}/{repo}@sha256:", s.reg.host());
    let digest = refs[0]
        .strip_prefix(&prefix)
        .map(|h| format!("sha256:{h}"))
        .unwrap_or_else(|| panic!("{:?} does not start with {prefix}", refs[0]));
    assert_eq!(digest.len(), 7 + 64, "{digest}");
    assert!(
        o.stdout.contains(&format!(
            "publish to oci:{}/team/profiles: 1 published",
            s.reg.host()
        )),
        "{}",
        o.describe()
    );
    // One version manifest and `current`; two blobs (config, profile).
    assert_eq!(s.manifest_puts(), 2, "{}", s.reg.log());
    assert_eq!(
        s.reg.requests(
            "PUT",
            &format!("/v2/{repo}/manifests/{}", meta.version_short)
        ),
        1
    );
    assert_eq!(
        s.reg
            .requests("PUT", &format!("/v2/{repo}/manifests/current")),
        1
    );
    assert_eq!(s.reg.requests("PUT", "/blobs/uploads/"), 2);

    // Pulled back by digest with oras-py: the manifest the registry
    // serves hashes to the printed digest, and the one layer is the
    // directory target's seccomp.json, byte for byte.
    let out = s.f.path("pulled");
    let p = s.oras_pull(&format!("{repo}@{digest}"), &out.display().to_string());
    assert_eq!(p["digest"], digest.as_str());
    assert_eq!(p["header_digest"], digest.as_str());
    let m = &p["manifest"];
    let kind = "application/vnd.cncf.seccomp-profile.config.v1+json";
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["artifactType"], kind);
    assert_eq!(m["config"]["mediaType"], kind);
    let layers = m["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/json");
    assert_eq!(
        layers[0]["annotations"]["org.opencontainers.image.title"],
        "seccomp.json"
    );
    let ann = &m["annotations"];
    assert_eq!(ann["dev.sandmine.image"], IMAGE);
    assert_eq!(ann["dev.sandmine.version"], meta.version.as_str());
    assert_eq!(ann["dev.sandmine.state"], "enforce");
    assert_eq!(
        ann["dev.sandmine.confidence"],
        meta.confidence_summary.as_str()
    );
    assert!(!meta.confidence_summary.is_empty());
    let conf: serde_json::Value = serde_json::from_str(
        ann["dev.sandmine.confidence.json"]
            .as_str()
            .expect("confidence.json"),
    )
    .expect("confidence JSON");
    assert_eq!(conf["hosts"], 2, "{conf}");
    assert_eq!(conf["containers"], 3, "{conf}");
    let oci_meta: PublishedMeta =
        serde_json::from_str(ann["dev.sandmine.meta"].as_str().expect("meta annotation"))
            .expect("meta");
    assert_eq!(oci_meta.version, meta.version);
    assert_eq!(oci_meta.allowed, meta.allowed);
    let files: Vec<String> = p["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().expect("file").to_string())
        .collect();
    assert_eq!(files, vec![out.join("seccomp.json").display().to_string()]);
    let want = std::fs::read(
        Path::new(&s.dir)
            .join(&slug)
            .join(&meta.version_short)
            .join("seccomp.json"),
    )
    .expect("dir seccomp.json");
    assert_eq!(
        std::fs::read(out.join("seccomp.json")).expect("pulled"),
        want
    );
    // The layer carries the profile's signature: written next to the
    // pulled profile, `sandmine verify` accepts it, and refuses the
    // profile with one byte changed.
    let sig = layers[0]["annotations"]["dev.sandmine.signature"]
        .as_str()
        .expect("signature annotation");
    let dir_sig = std::fs::read_to_string(
        Path::new(&s.dir)
            .join(&slug)
            .join(&meta.version_short)
            .join("seccomp.json.sig"),
    )
    .expect("dir seccomp.json.sig");
    assert_eq!(sig, dir_sig.trim_end());
    std::fs::write(out.join("seccomp.json.sig"), format!("{sig}\n")).expect("write sig");
    let pulled = out.join("seccomp.json").display().to_string();
    let o = s.f.sandmine(&["verify", "--key", &s.key.1, &pulled]);
    assert_eq!(
        (o.code(), o.stdout.as_str()),
        (Some(0), "ok\n"),
        "{}",
        o.describe()
    );
    let mut bytes = want.clone();
    bytes[10] ^= 0x01;
    std::fs::write(out.join("seccomp.json"), &bytes).expect("tamper");
    let o = s.f.sandmine(&["verify", "--key", &s.key.1, &pulled]);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    assert_eq!(
        o.stderr,
        format!(
            "sandmine: refused {pulled}: the signature by {} does not match the profile's bytes: altered after signing\n",
            s.key.1
        )
    );

    // `current` and the version tag are the same manifest.
    for tag in ["current", meta.version_short.as_str()] {
        let p = s.oras_pull(
            &format!("{repo}:{tag}"),
            &s.f.path(&format!("pulled-{tag}")).display().to_string(),
        );
        assert_eq!(p["digest"], digest.as_str(), "{tag}");
    }

    // The same version again: the gate reads `current` back from the
    // registry (a GET of the manifest), finds it unchanged, and nothing
    // is pushed.
    let gets = s
        .reg
        .requests("GET", &format!("/v2/{repo}/manifests/current"));
    let o = s.publish(&cfg, false, 1_800_000_600_000);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout
            .contains(&format!("{IMAGE}: unchanged {}", meta.version_short)),
        "{}",
        o.describe()
    );
    assert_eq!(pushed(&o), Vec::<String>::new());
    assert_eq!(
        s.reg
            .requests("GET", &format!("/v2/{repo}/manifests/current")),
        gets + 1
    );
    assert_eq!(s.manifest_puts(), 2, "{}", s.reg.log());
    assert_eq!(s.reg.requests("PUT", "/blobs/uploads/"), 2);
    assert_eq!(s.reg.requests("POST", "/blobs/uploads/"), 2);
}

#[test]
fn registry_failures_are_one_line_and_nothing_is_pushed() {
    let s = setup();
    let host = s.reg.host();
    let ca = s.pki.ca_cert.display().to_string();
    // A wrong password: one line naming the user, never the password.
    let cfg = s.config(
        "wrong.toml",
        &host,
        &format!(
            "password_file = \"{}\"\nca_file = \"{ca}\"\n",
            s.f.path("wrong-password").display()
        ),
    );
    let o = s.publish(&cfg, false, 1_800_000_000_000);
    let line = one_error_line(&o);
    assert_eq!(
        line,
        format!(
            "sandmine: error: registry {host} refused the credentials of user \"{USER}\" (HTTP 401): check username and the password"
        )
    );
    assert!(!o.stdout.contains("not-the-password") && !o.stderr.contains("not-the-password"));
    // The password from the environment works the same way.
    let cfg = s.config(
        "env.toml",
        &host,
        &format!("password_env = \"SANDMINE_TEST_REGISTRY_PW\"\nca_file = \"{ca}\"\n"),
    );
    let o = s.publish(&cfg, false, 1_800_000_000_000);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: publish.oci.password_env: environment variable SANDMINE_TEST_REGISTRY_PW is not set"
    );
    // The registry's CA is not trusted: the line says to set ca_file.
    let cfg = s.config(
        "noca.toml",
        &host,
        &format!("password_file = \"{}\"\n", s.f.path("password").display()),
    );
    let o = s.publish(&cfg, false, 1_800_000_000_000);
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: registry {host}: TLS handshake failed: invalid peer certificate: UnknownIssuer; the registry's certificate is not signed by a CA in the system roots: set publish.oci.ca_file to the CA that signed it"
        )
    );
    // Nothing listens: unreachable, with the OS's reason.
    let port = testsvc::free_port();
    let cfg = s.config(
        "down.toml",
        &format!("127.0.0.1:{port}"),
        &format!(
            "password_file = \"{}\"\nca_file = \"{ca}\"\n",
            s.f.path("password").display()
        ),
    );
    let o = s.publish(&cfg, false, 1_800_000_000_000);
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: registry 127.0.0.1:{port} is unreachable: Connection refused (os error 111)"
        )
    );
    // Levers are refused while the OCI target is configured (it keeps
    // none), as for the object store.
    let o = s.f.sandmine(&[
        "lever",
        "pin",
        IMAGE,
        "--reason",
        "x",
        "--by",
        "bob",
        "--config",
        &s.good_config(),
        "--dir",
        &s.dir,
    ]);
    assert_eq!(
        one_error_line(&o),
        "sandmine: error: levers act on the dir and git targets only; the OCI registry target keeps no levers (leave [publish.oci] out of the config for this command, docs/OPERATIONS.md)"
    );
    assert_eq!(s.manifest_puts(), 0, "{}", s.reg.log());
    assert_eq!(s.reg.requests("POST", "/blobs/"), 0, "{}", s.reg.log());
}

#[test]
fn a_profile_over_a_limit_is_refused_and_not_pushed() {
    let s = setup();
    let cfg = s.config(
        "limit.toml",
        &s.reg.host(),
        &format!(
            "password_file = \"{}\"\nca_file = \"{}\"\n[publish.oci.limits]\nmax_syscall_entries = 1\n",
            s.f.path("password").display(),
            s.pki.ca_cert.display()
        ),
    );
    let o = s.publish(&cfg, true, 1_800_000_000_000);
    assert_eq!(o.code(), Some(1), "{}", o.describe());
    let meta = s.dir_current();
    let entries = {
        let slug = publish::image_slug(IMAGE);
        let b = std::fs::read(
            Path::new(&s.dir)
                .join(slug)
                .join(&meta.version_short)
                .join("seccomp.json"),
        )
        .expect("seccomp.json");
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        v["syscalls"].as_array().expect("syscalls").len()
    };
    assert!(entries > 1, "{entries}");
    assert!(
        o.stdout.contains(&format!(
            "  {IMAGE}: failed: seccomp.json of {IMAGE} is not pushed: {entries} syscall entries, over the limit of 1\n"
        )),
        "{}",
        o.describe()
    );
    assert_eq!(pushed(&o), Vec::<String>::new());
    // The registry was asked for `current` (the gate) and nothing else.
    assert_eq!(s.manifest_puts(), 0, "{}", s.reg.log());
    assert_eq!(s.reg.requests("POST", "/blobs/"), 0, "{}", s.reg.log());
    assert_eq!(s.reg.requests("HEAD", "/"), 0, "{}", s.reg.log());
}
