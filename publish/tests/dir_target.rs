//! The directory target: exact layout, atomic `current`, idempotence and
//! recovery from an interrupted publication.

mod common;

use common::*;
use publish::{image_slug, publish_all, DirTarget, Outcome, PublishedMeta, Target, Version};
use std::fs;

#[tokio::test]
async fn layout_versions_and_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("profiles");
    let target = DirTarget::new(&root);
    let img = "nginx:1.25";
    let slug = image_slug(img);
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
        }
    );
    let f = |name: &str| c1.files[name].len();
    let kube = format!("kubelet/sandmine/{slug}.json");
    let s1 = &v1.short;
    let meta1: PublishedMeta =
        serde_json::from_slice(&fs::read(root.join(&slug).join("current")).unwrap()).unwrap();
    let meta_len = fs::metadata(root.join(&slug).join("current"))
        .unwrap()
        .len();
    let diff1 = "+ x86_64 read\n+ x86_64 write\n";
    let diff_json_len = fs::metadata(root.join(&slug).join(s1).join("diff.json"))
        .unwrap()
        .len();
    // For one release the folder of earlier releases gets the same
    // versions (docs/UPGRADING.md).
    let legacy = schemas::slug::legacy(img).folder;
    let (new_tree, old_tree): (Vec<String>, Vec<String>) = tree(&root)
        .into_iter()
        .partition(|e| e.starts_with(&format!("{} {slug}/", &e[..1])));
    assert_eq!(old_tree.len(), new_tree.len(), "{old_tree:?}");
    assert!(old_tree
        .iter()
        .all(|e| e.starts_with(&format!("{} {legacy}/", &e[..1]))));
    let old_meta: PublishedMeta =
        serde_json::from_slice(&fs::read(root.join(&legacy).join("current")).unwrap()).unwrap();
    assert_eq!(
        (old_meta.version.as_str(), old_meta.slug.as_str()),
        (meta1.version.as_str(), legacy.as_str())
    );
    assert_eq!(
        fs::read(root.join(&legacy).join(s1).join("profile.json")).unwrap(),
        c1.files["profile.json"]
    );
    assert_eq!(
        new_tree,
        vec![
            format!("d {slug}/"),
            format!("d {slug}/{s1}/"),
            format!("f {slug}/{s1}/diff.json ({diff_json_len} bytes)"),
            format!("f {slug}/{s1}/diff.txt ({} bytes)", diff1.len()),
            format!("d {slug}/{s1}/kubelet/"),
            format!("d {slug}/{s1}/kubelet/sandmine/"),
            format!("f {slug}/{s1}/{kube} ({} bytes)", f(&kube)),
            format!("f {slug}/{s1}/meta.json ({meta_len} bytes)"),
            format!("f {slug}/{s1}/profile.json ({} bytes)", f("profile.json")),
            format!("f {slug}/{s1}/report.json ({} bytes)", c1.report_json.len()),
            format!("f {slug}/{s1}/report.txt ({} bytes)", c1.report_text.len()),
            format!(
                "f {slug}/{s1}/seccompprofile.yaml ({} bytes)",
                f("seccompprofile.yaml")
            ),
            format!("f {slug}/current ({meta_len} bytes)"),
            format!("l {slug}/latest -> {s1}"),
        ]
    );
    for (name, bytes) in &c1.files {
        assert_eq!(
            &fs::read(root.join(&slug).join(s1).join(name)).unwrap(),
            bytes
        );
    }
    assert_eq!(
        fs::read_to_string(root.join(&slug).join("latest/diff.txt")).unwrap(),
        diff1
    );
    assert_eq!(
        fs::read(root.join(&slug).join("current")).unwrap(),
        fs::read(root.join(&slug).join(s1).join("meta.json")).unwrap()
    );
    assert_eq!(
        meta1,
        PublishedMeta {
            format: 1,
            image: img.into(),
            slug: slug.clone(),
            version: v1.full.clone(),
            version_short: v1.short.clone(),
            published_at_ms: T0,
            state: "enforce".into(),
            allowed: c1.allowed.clone(),
            files: vec![
                "diff.json".into(),
                "diff.txt".into(),
                kube.clone(),
                "profile.json".into(),
                "report.json".into(),
                "report.txt".into(),
                "seccompprofile.yaml".into(),
            ],
            previous_version: None,
            confidence_summary: c1.confidence_summary.clone(),
            log_since_ms: None,
            levers: Default::default(),
            after_denials: Vec::new(),
        }
    );
    assert_eq!(target.current(&slug).await.unwrap(), Some(meta1.clone()));

    // Same candidate a day later: unchanged, nothing rewritten.
    let before = tree(&root);
    let r = publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0 + DAY_MS).await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Unchanged {
            version: v1.full.clone()
        }
    );
    assert_eq!(tree(&root), before);
    assert_eq!(target.current(&slug).await.unwrap(), Some(meta1));

    // A change: a second version directory, latest and current move, the
    // first version stays.
    let c2 = cand(img, "enforce", &["read", "write", "openat"], 3, T0);
    let v2 = Version::of_files(&c2.files);
    let r = publish_all(
        std::slice::from_ref(&c2),
        &target,
        &policy(2),
        T0 + 2 * DAY_MS,
    )
    .await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Published {
            version: v2.full.clone(),
            previous: Some(v1.full.clone()),
            added: 1,
            removed: 0
        }
    );
    let top: Vec<String> = tree(&root)
        .into_iter()
        .filter(|l| {
            let path = l.split(' ').nth(1).unwrap().trim_end_matches('/');
            path.matches('/').count() <= 1 && path.starts_with(&slug)
        })
        .collect();
    let mut expected = vec![
        format!("d {slug}/"),
        format!("d {slug}/{}/", v1.short),
        format!("d {slug}/{}/", v2.short),
        format!(
            "f {slug}/current ({} bytes)",
            fs::metadata(root.join(&slug).join("current"))
                .unwrap()
                .len()
        ),
        format!("l {slug}/latest -> {}", v2.short),
    ];
    expected.sort_by_key(|l| l.split(' ').nth(1).unwrap().to_string());
    assert_eq!(top, expected);
    assert_eq!(
        fs::read_to_string(root.join(&slug).join("latest/diff.txt")).unwrap(),
        "+ x86_64 openat\n"
    );
    let meta2 = target.current(&slug).await.unwrap().unwrap();
    assert_eq!(meta2.version, v2.full);
    assert_eq!(meta2.previous_version, Some(v1.full.clone()));
    assert_eq!(meta2.published_at_ms, T0 + 2 * DAY_MS);
}

#[tokio::test]
async fn interrupted_publication_is_redone() {
    let tmp = tempfile::tempdir().unwrap();
    let target = DirTarget::new(tmp.path());
    let img = "app";
    let slug = image_slug(img);
    let c1 = cand(img, "enforce", &["read"], 3, T0);
    let c2 = cand(img, "enforce", &["read", "write"], 3, T0);
    publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0).await;
    let current_v1 = fs::read(tmp.path().join(&slug).join("current")).unwrap();
    publish_all(std::slice::from_ref(&c2), &target, &policy(2), T0 + 1).await;
    let after_v2 = tree(tmp.path());

    // Crash before `current` was replaced: old meta, new version dir, and a
    // half-built temp dir of some other attempt.
    fs::write(tmp.path().join(&slug).join("current"), &current_v1).unwrap();
    fs::create_dir_all(tmp.path().join(&slug).join(".tmp-0123456789ab-1/x")).unwrap();
    let r = publish_all(std::slice::from_ref(&c2), &target, &policy(2), T0 + 1).await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Published {
            version: Version::of_files(&c2.files).full,
            previous: Some(Version::of_files(&c1.files).full),
            added: 1,
            removed: 0
        }
    );
    assert_eq!(tree(tmp.path()), after_v2);
}

/// Moving to the 64-bit slug: a deployment whose profiles sit under the
/// folder of an earlier release (the old slug) carries on from there, and
/// the new folder is filled even when nothing changed.
#[tokio::test]
async fn the_old_folder_is_the_previous_version_once() {
    let tmp = tempfile::tempdir().unwrap();
    let target = DirTarget::new(tmp.path());
    let img = "registry.example/app:2";
    let slug = image_slug(img);
    let legacy = schemas::slug::legacy(img).folder;
    assert_ne!(slug, legacy);
    let c1 = cand(img, "enforce", &["read"], 3, T0);
    let v1 = Version::of_files(&c1.files);
    publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0).await;
    // What an earlier release left: the old folder only.
    fs::remove_dir_all(tmp.path().join(&slug)).unwrap();
    assert_eq!(target.current(&slug).await.unwrap(), None);

    // Unchanged against the old folder's version, and now under both.
    let r = publish_all(std::slice::from_ref(&c1), &target, &policy(2), T0 + 1).await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Unchanged {
            version: v1.full.clone()
        }
    );
    let new = target.current(&slug).await.unwrap().unwrap();
    assert_eq!(
        (new.version.as_str(), new.slug.as_str()),
        (v1.full.as_str(), slug.as_str())
    );

    // Remove the new folder again: a change diffs against the old one.
    fs::remove_dir_all(tmp.path().join(&slug)).unwrap();
    let c2 = cand(img, "enforce", &["read", "write"], 3, T0);
    let r = publish_all(std::slice::from_ref(&c2), &target, &policy(2), T0 + 2).await;
    assert_eq!(
        r.images[0].outcome,
        Outcome::Published {
            version: Version::of_files(&c2.files).full,
            previous: Some(v1.full.clone()),
            added: 1,
            removed: 0
        }
    );
    for s in [&slug, &legacy] {
        let m = target.current(s).await.unwrap().unwrap();
        assert_eq!(m.version, Version::of_files(&c2.files).full, "{s}");
    }
}
