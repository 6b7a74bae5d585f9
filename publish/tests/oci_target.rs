//! `OciTarget` against a real registry (Debian's docker-registry over TLS
//! with basic auth): a version's manifest is pushed once, whatever the
//! rounds do. Publishing a publication again asks the registry for the
//! version tag first (HEAD) and pushes nothing; going back to an earlier
//! version re-points `current` at the manifest already there, so its
//! digest (what nodes pin) never changes.

use publish::{OciConfig, OciTarget, Publication, PublishedMeta, Target, META_FORMAT};
use std::collections::BTreeMap;
use testsvc::{Registry, TestPki};

const IMAGE: &str = "web:1";

fn publication(profile: &str, version_hex: char, at_ms: u64) -> Publication {
    let mut files = BTreeMap::new();
    files.insert("seccomp.json".to_string(), profile.as_bytes().to_vec());
    files.insert(
        "report.json".to_string(),
        b"{\"confidence\":{\"hosts\":2}}".to_vec(),
    );
    let version = format!("sha256:{}", version_hex.to_string().repeat(64));
    Publication {
        meta: PublishedMeta {
            format: META_FORMAT,
            image: IMAGE.into(),
            slug: publish::image_slug(IMAGE),
            version_short: version[7..19].to_string(),
            version,
            published_at_ms: at_ms,
            state: "enforce".into(),
            allowed: BTreeMap::new(),
            files: files.keys().cloned().collect(),
            previous_version: None,
            confidence_summary: "3 containers on 2 hosts".into(),
            log_since_ms: None,
            levers: Default::default(),
            after_denials: Vec::new(),
        },
        files,
        commit_message: String::new(),
        also_under: Vec::new(),
        lever: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_is_pushed_once_and_keeps_its_digest() {
    let pki = TestPki::generate();
    let reg = Registry::start_tls(&pki, "bob", "pw-1");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw-1\n").unwrap();
    let cfg: OciConfig = toml::from_str(&format!(
        "registry = \"{}\"\nca_file = \"{}\"\nusername = \"bob\"\npassword_file = \"{}\"\n",
        reg.host(),
        pki.ca_cert.display(),
        pw.display()
    ))
    .unwrap();
    let t = OciTarget::connect(cfg).await.unwrap();
    let slug = publish::image_slug(IMAGE);
    let repo = format!("sandmine/{slug}");
    assert_eq!(t.current(&slug).await.unwrap(), None);

    let a = publication(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#, 'a', 1_000);
    t.publish(&a).await.unwrap();
    let first = t.pushed_refs();
    assert_eq!(first.len(), 1);
    assert!(first[0].starts_with(&format!("{}/{repo}@sha256:", reg.host())));
    assert_eq!(reg.requests("PUT", "/manifests/"), 2);
    assert_eq!(t.current(&slug).await.unwrap(), Some(a.meta.clone()));

    // The same version again, later: HEAD finds it, nothing is pushed,
    // and `current` keeps the first publication's meta and digest.
    let heads = reg.requests("HEAD", &format!("/v2/{repo}/manifests/aaaaaaaaaaaa"));
    let mut again = a.clone();
    again.meta.published_at_ms = 2_000;
    t.publish(&again).await.unwrap();
    assert_eq!(
        reg.requests("HEAD", &format!("/v2/{repo}/manifests/aaaaaaaaaaaa")),
        heads + 1
    );
    assert_eq!(reg.requests("PUT", "/manifests/"), 2, "{}", reg.log());
    assert_eq!(reg.requests("POST", "/blobs/uploads/"), 2);
    assert_eq!(t.pushed_refs()[1], first[0]);
    assert_eq!(t.current(&slug).await.unwrap(), Some(a.meta.clone()));

    // A new version: its manifest and `current` (the config blob is
    // there already: only the new profile is uploaded).
    let b = publication(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
        'b',
        3_000,
    );
    t.publish(&b).await.unwrap();
    assert_eq!(reg.requests("PUT", "/manifests/"), 4);
    assert_eq!(reg.requests("POST", "/blobs/uploads/"), 3);
    assert_eq!(t.current(&slug).await.unwrap(), Some(b.meta.clone()));

    // Back to the first version: only `current` moves, to the digest the
    // first push printed.
    t.publish(&again).await.unwrap();
    assert_eq!(reg.requests("PUT", "/manifests/"), 5);
    assert_eq!(
        reg.requests("PUT", &format!("/v2/{repo}/manifests/current")),
        3
    );
    assert_eq!(t.pushed_refs()[3], first[0]);
    assert_eq!(t.current(&slug).await.unwrap(), Some(a.meta));
}
