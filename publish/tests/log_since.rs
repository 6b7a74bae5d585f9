//! When an image entered log mode is carried in its meta from one
//! log-mode publication to the next, reset on leaving log mode, and
//! reported per image (for the `sandmine_log_mode_since_seconds` gauge).

mod common;

use common::*;
use publish::{image_slug, publish_all, DirTarget, Outcome, PublishedMeta, Target};

#[tokio::test]
async fn log_since_is_carried_while_in_log_mode_and_reset_after() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let target = DirTarget::new(tmp.path().join("p"));
    let img = "web:1";
    let slug = image_slug(img);
    let round = |state: &'static str, names: &'static [&'static str], at: u64| {
        let c = cand(img, state, names, 3, T0);
        let target = &target;
        async move {
            let r = publish_all(std::slice::from_ref(&c), target, &policy(2), at).await;
            assert!(
                matches!(r.images[0].outcome, Outcome::Published { .. }),
                "{r:?}"
            );
            let m = target
                .current(&slug_of(img))
                .await
                .expect("current")
                .expect("meta");
            (r.images[0].log_since_ms, m)
        }
    };
    fn slug_of(i: &str) -> String {
        image_slug(i)
    }

    let (since, m) = round("log", &["read"], T0).await;
    assert_eq!((since, m.log_since_ms), (Some(T0), Some(T0)));
    // Another log-mode version a day later: still in log mode since T0.
    let (since, m) = round("log", &["read", "write"], T0 + DAY_MS).await;
    assert_eq!((since, m.log_since_ms), (Some(T0), Some(T0)));
    assert_eq!(m.published_at_ms, T0 + DAY_MS);
    // Enforced: out of log mode; the field is not even written.
    let (since, m) = round("enforce", &["read", "write"], T0 + 2 * DAY_MS).await;
    assert_eq!((since, m.log_since_ms), (None, None));
    let bytes = std::fs::read(tmp.path().join("p").join(&slug).join("current")).expect("current");
    assert!(!String::from_utf8_lossy(&bytes).contains("log_since_ms"));
    // Back in log mode: since then.
    let (since, m) = round("log", &["read", "write", "openat"], T0 + 3 * DAY_MS).await;
    assert_eq!(
        (since, m.log_since_ms),
        (Some(T0 + 3 * DAY_MS), Some(T0 + 3 * DAY_MS))
    );
    // Unchanged rounds report the same time.
    let c = cand(img, "log", &["read", "write", "openat"], 3, T0);
    let r = publish_all(
        std::slice::from_ref(&c),
        &target,
        &policy(2),
        T0 + 4 * DAY_MS,
    )
    .await;
    assert!(
        matches!(r.images[0].outcome, Outcome::Unchanged { .. }),
        "{r:?}"
    );
    assert_eq!(r.images[0].log_since_ms, Some(T0 + 3 * DAY_MS));
}

/// A meta written before `log_since_ms` existed: its publication time
/// stands in.
#[test]
fn older_metas_count_from_their_publication() {
    let text = r#"{"format":1,"image":"a","slug":"a","version":"sha256:00","version_short":"00",
        "published_at_ms":5,"state":"log","allowed":{},"files":[]}"#;
    let m: PublishedMeta = serde_json::from_str(text).expect("meta");
    assert_eq!(m.in_log_mode_since_ms(), Some(5));
    assert_eq!(PublishedMeta::log_since_for(Some(&m), "log", 9), Some(5));
    assert_eq!(PublishedMeta::log_since_for(Some(&m), "enforce", 9), None);
    assert_eq!(PublishedMeta::log_since_for(None, "log", 9), Some(9));
}
