//! Signed candidates (`publish::sign`) on every target: the `.sig` files
//! are ordinary publication files, so the directory, git and NATS object
//! store targets carry them with no code of their own, and each verifies
//! against the key's public half.

mod common;

use common::*;
use publish::sign::{sig_path, verify, Signing};
use publish::{
    image_slug, publish_all, DirTarget, GitTarget, NatsObjectStore, ObjectStore, ObjectStoreTarget,
    Outcome, Target,
};
use schemas::wire::HostKey;
use std::collections::BTreeMap;
use std::time::Duration;

const REPORTS: [&str; 4] = ["diff.json", "diff.txt", "report.json", "report.txt"];

/// Every profile file of `files` has a signature by `key` beside it, and
/// nothing else is signed.
fn assert_signed(files: &BTreeMap<String, Vec<u8>>, key: &HostKey, what: &str) {
    let mut signed = 0;
    for (rel, bytes) in files {
        if rel.ends_with(".sig") {
            let profile = rel.trim_end_matches(".sig");
            assert!(files.contains_key(profile), "{what}: stray {rel}");
            continue;
        }
        if REPORTS.contains(&rel.as_str()) {
            assert!(!files.contains_key(&sig_path(rel)), "{what}: {rel} signed");
            continue;
        }
        let sig = files.get(&sig_path(rel)).map(Vec::as_slice);
        assert_eq!(
            verify(bytes, sig, &sig_path(rel), &[key.public_key()]),
            Ok(key.public_key()),
            "{what}: {rel}"
        );
        signed += 1;
    }
    // profile.json, seccompprofile.yaml, kubelet/sandmine/<slug>.json
    assert_eq!(signed, 3, "{what}: {:?}", files.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_carries_the_signatures() {
    let key = HostKey::from_seed([5; 32]);
    let signing = Signing::Key(Box::new(key.clone()));
    let img = "nginx:1.25";
    let slug = image_slug(img);
    let c = signing
        .apply(cand(img, "enforce", &["read", "write"], 3, T0))
        .unwrap();
    assert_signed(&c.files, &key, "candidate");

    let tmp = tempfile::tempdir().unwrap();
    let dir = DirTarget::new(tmp.path().join("dir"));
    let git = GitTarget::open_or_init(tmp.path().join("git")).unwrap();
    let nats = testsvc::Nats::start_new();
    let os = ObjectStoreTarget::new(NatsObjectStore::new(transport::NatsConfig {
        url: nats.url(),
        timeout: Duration::from_secs(5),
        ..Default::default()
    }));
    for r in [
        publish_all(std::slice::from_ref(&c), &dir, &policy(2), T0).await,
        publish_all(std::slice::from_ref(&c), &git, &policy(2), T0).await,
        publish_all(std::slice::from_ref(&c), &os, &policy(2), T0).await,
    ] {
        assert!(
            matches!(r.images[0].outcome, Outcome::Published { .. }),
            "{}",
            r.to_text()
        );
    }
    let meta = dir.current(&slug).await.unwrap().unwrap();
    assert_signed(&dir.version_files(&slug, &meta).await.unwrap(), &key, "dir");
    let meta = git.current(&slug).await.unwrap().unwrap();
    assert_signed(&git.version_files(&slug, &meta).await.unwrap(), &key, "git");
    let meta = os.current(&slug).await.unwrap().unwrap();
    let mut files = BTreeMap::new();
    for rel in &meta.files {
        let b = os.store().get(&format!("{slug}/{rel}")).await.unwrap();
        files.insert(rel.clone(), b.expect(rel));
    }
    assert_signed(&files, &key, "object store");

    // Signed again by the same key: the same version, unchanged.
    let again = signing
        .apply(cand(img, "enforce", &["read", "write"], 3, T0))
        .unwrap();
    let r = publish_all(std::slice::from_ref(&again), &dir, &policy(2), T0 + 1).await;
    assert!(
        matches!(r.images[0].outcome, Outcome::Unchanged { .. }),
        "{}",
        r.to_text()
    );
}
