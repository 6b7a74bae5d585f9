//! A whole round: every outcome kind, a deterministic report.

mod common;

use common::*;
use publish::{image_slug, publish_all, DirTarget, ImageReport, Outcome, Version};

#[tokio::test]
async fn report_covers_every_outcome_in_image_order() {
    let tmp = tempfile::tempdir().unwrap();
    let target = DirTarget::new(tmp.path());
    let steady = cand("steady:1", "enforce", &["read"], 3, T0);
    publish_all(std::slice::from_ref(&steady), &target, &policy(2), T0).await;

    let fresh = cand("fresh:1", "enforce", &["read", "write"], 2, T0);
    let mut lonely = cand("lonely:1", "enforce", &["read", "openat"], 2, T0);
    lonely
        .syscall_hosts
        .insert(("x86_64".into(), "openat".into()), 1);
    let mut waiting = cand("waiting:1", "log", &["read"], 3, T0);
    waiting.confidence_summary = "confidence 0.5 (1 host)".into();
    waiting.state = "not_ready".into();
    let mut evil = cand("evil:1", "enforce", &["read"], 3, T0);
    evil.files.insert("../../etc/passwd".into(), b"x".to_vec());
    let mut clash = cand("clash:1", "enforce", &["read"], 3, T0);
    clash.files.insert("current".into(), b"x".to_vec());
    let dup = cand("fresh:1", "enforce", &["read"], 3, T0);

    let now = T0 + DAY_MS;
    let cands = vec![
        waiting.clone(),
        lonely.clone(),
        steady.clone(),
        fresh.clone(),
        evil.clone(),
        clash.clone(),
        dup,
    ];
    let r = publish_all(&cands, &target, &policy(2), now).await;
    let v = |c: &publish::Candidate| Version::of_files(&c.files);
    let entry = |image: &str, outcome: Outcome| ImageReport {
        image: image.into(),
        slug: image_slug(image),
        outcome,
        levers: Default::default(),
        log_since_ms: None,
    };
    assert_eq!(
        r.images,
        vec![
            entry(
                "clash:1",
                Outcome::Failed {
                    error: "file \"current\" collides with a name the publisher writes itself"
                        .into()
                }
            ),
            entry(
                "evil:1",
                Outcome::Failed {
                    error: "file path \"../../etc/passwd\" is not a plain relative path (no absolute paths, `..`, `.` or empty parts)".into()
                }
            ),
            entry(
                "fresh:1",
                Outcome::Published {
                    version: v(&fresh).full,
                    previous: None,
                    added: 2,
                    removed: 0
                }
            ),
            entry(
                "fresh:1",
                Outcome::Failed {
                    error: "more than one candidate for this image in the round".into()
                }
            ),
            entry(
                "lonely:1",
                Outcome::HeldBack {
                    candidate: v(&lonely).full,
                    reasons: vec![
                        "new syscall x86_64 openat seen on 1 host(s), fewer than min_hosts 2"
                            .into()
                    ],
                    shrink_eligible_at_ms: None
                }
            ),
            entry("steady:1", Outcome::Unchanged { version: v(&steady).full }),
            entry(
                "waiting:1",
                Outcome::NotReady {
                    reason: "the compiler marked the profile not_ready: confidence 0.5 (1 host)"
                        .into()
                }
            ),
        ]
    );
    assert_eq!(
        r.to_text(),
        format!(
            "publish to dir:{}: 1 published, 1 unchanged, 1 held back, 1 not ready, 3 failed\n\
             \x20 clash:1: failed: file \"current\" collides with a name the publisher writes itself\n\
             \x20 evil:1: failed: file path \"../../etc/passwd\" is not a plain relative path (no absolute paths, `..`, `.` or empty parts)\n\
             \x20 fresh:1: published {} (was none) +2 -0 syscalls\n\
             \x20 fresh:1: failed: more than one candidate for this image in the round\n\
             \x20 lonely:1: held back {}:\n    new syscall x86_64 openat seen on 1 host(s), fewer than min_hosts 2\n\
             \x20 steady:1: unchanged {}\n\
             \x20 waiting:1: not ready: the compiler marked the profile not_ready: confidence 0.5 (1 host)\n",
            tmp.path().display(),
            v(&fresh).short,
            v(&lonely).short,
            v(&steady).short,
        )
    );
    let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(
        j["images"][4],
        serde_json::json!({
            "image": "lonely:1",
            "slug": image_slug("lonely:1"),
            "outcome": "held_back",
            "candidate": v(&lonely).full,
            "reasons": ["new syscall x86_64 openat seen on 1 host(s), fewer than min_hosts 2"],
            "shrink_eligible_at_ms": null
        })
    );
    // Nothing was written for the failed, held-back or not_ready images.
    let mut dirs: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    // (each under its slug and, for one release, the folder of earlier
    // releases too)
    let mut want = vec![
        image_slug("fresh:1"),
        image_slug("steady:1"),
        schemas::slug::legacy("fresh:1").folder,
        schemas::slug::legacy("steady:1").folder,
    ];
    want.sort();
    assert_eq!(dirs, want);

    // Deterministic: a second target given the same round reports the same.
    let tmp2 = tempfile::tempdir().unwrap();
    let t2 = DirTarget::new(tmp2.path());
    publish_all(std::slice::from_ref(&steady), &t2, &policy(2), T0).await;
    let mut reversed = cands.clone();
    reversed.reverse();
    let r2 = publish_all(&reversed, &t2, &policy(2), now).await;
    // Duplicates keep their input order (stable sort): reversed, the
    // second fresh:1 comes first.
    assert_eq!(r2.images.len(), r.images.len());
    assert_eq!(r2.images[4..], r.images[4..]);
    assert_eq!(r2.images[..2], r.images[..2]);
}
