//! The object store target against a real nats-server 2.15 (bucket
//! `sandmine-profiles`).

mod common;

use common::*;
use publish::{
    image_slug, publish_all, NatsObjectStore, ObjectStore, ObjectStoreTarget, Outcome,
    PublishedMeta, Target, Version, BUCKET,
};
use std::time::Duration;
use transport::NatsConfig;

fn cfg(url: String) -> NatsConfig {
    NatsConfig {
        url,
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_on_nats_2_15() {
    let nats = testsvc::Nats::start_new();
    let target = ObjectStoreTarget::new(NatsObjectStore::new(cfg(nats.url())));
    let img = "nginx:1.25";
    let slug = image_slug(img);
    // No bucket yet: nothing published.
    assert_eq!(target.current(&slug).await.unwrap(), None);

    let c1 = cand(img, "enforce", &["read", "write"], 3, T0);
    let v1 = Version::of_files(&c1.files);
    let r = publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0).await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Published {
            version: v1.full.clone(),
            previous: None,
            added: 2,
            removed: 0
        },
        "{}",
        r.to_text()
    );
    assert_eq!(r.target, format!("object-store:{}/{BUCKET}", nats.url()));

    // Read back as a consumer would: current.json, then the files it lists.
    let raw =
        transport::object_store::get(&cfg(nats.url()), BUCKET, &format!("{slug}/current.json"))
            .await
            .unwrap();
    let meta: PublishedMeta = serde_json::from_slice(&raw).unwrap();
    assert_eq!(meta.version, v1.full);
    assert_eq!(meta.state, "enforce");
    assert_eq!(meta.allowed, c1.allowed);
    assert_eq!(
        meta.files,
        vec![
            "diff.json".to_string(),
            "diff.txt".into(),
            format!("kubelet/sandmine/{slug}.json"),
            "profile.json".into(),
            "report.json".into(),
            "report.txt".into(),
            "seccompprofile.yaml".into(),
        ]
    );
    let store = target.store();
    for (name, bytes) in &c1.files {
        assert_eq!(
            store.get(&format!("{slug}/{name}")).await.unwrap().as_ref(),
            Some(bytes),
            "{name}"
        );
    }
    assert_eq!(
        store.get(&format!("{slug}/diff.txt")).await.unwrap(),
        Some(b"+ x86_64 read\n+ x86_64 write\n".to_vec())
    );
    assert_eq!(
        store.get(&format!("{slug}/report.txt")).await.unwrap(),
        Some(c1.report_text.clone().into_bytes())
    );
    assert_eq!(store.get(&format!("{slug}/nope")).await.unwrap(), None);
    assert_eq!(target.current(&slug).await.unwrap(), Some(meta.clone()));

    // Unchanged, then a change.
    let r = publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0 + DAY_MS).await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Unchanged {
            version: v1.full.clone()
        }
    );
    let c2 = cand(img, "enforce", &["read", "write", "openat"], 2, T0);
    let v2 = Version::of_files(&c2.files);
    let r = publish_all(std::slice::from_ref(&c2), &target, &policy(2), T0 + DAY_MS).await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Published {
            version: v2.full.clone(),
            previous: Some(v1.full.clone()),
            added: 1,
            removed: 0
        }
    );
    let cur = target.current(&slug).await.unwrap().unwrap();
    assert_eq!(cur.version, v2.full);
    assert_eq!(cur.previous_version, Some(v1.full));
    assert_eq!(cur.published_at_ms, T0 + DAY_MS);
    assert_eq!(
        store
            .get(&format!("{slug}/profile.json"))
            .await
            .unwrap()
            .as_ref(),
        Some(&c2.files["profile.json"])
    );
    assert_eq!(
        store.get(&format!("{slug}/diff.txt")).await.unwrap(),
        Some(b"+ x86_64 openat\n".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_server_is_a_reported_failure() {
    // Debian's 2.9 cannot hold object stores: the image fails, with the
    // reason, and nothing is claimed published.
    let nats = testsvc::Nats::start();
    let target = ObjectStoreTarget::new(NatsObjectStore::new(cfg(nats.url())));
    let c = cand("app", "enforce", &["read"], 3, T0);
    let r = publish_all(std::slice::from_ref(&c), &target, &policy(2), T0).await;
    match &r.images[0].outcome {
        Outcome::Failed { error } => {
            assert!(error.starts_with("object store: "), "{error}");
            assert!(error.contains("2.10"), "{error}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(r.published(), 0);
    assert_eq!(r.failed(), 1);
}
