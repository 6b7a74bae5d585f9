//! `sandmine query drift IMAGE --since-version V --published DIR`: what is
//! new in an image since a version of its profile was published, the
//! publication time read from the real `sandmine publish`'s dir target.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;
#[path = "common/web_store.rs"]
mod web_store;

use common::*;
use publish::PublishedMeta;
use schemas::{Abi, Phase};
use std::path::Path;
use store_common::{ctr, env, sc, T0};
use web_store::{IMAGE, POLICY_A};

/// The publication time (hidden `--now-ms`): an hour after the fleet.
const PUBLISHED: u64 = T0 + 3_600_000;

#[test]
fn drift_since_a_published_version() {
    let f = Fixture::new();
    let store = web_store::fill(&f);
    let dir = f.arg("profiles");
    let policy = f.write("a.toml", POLICY_A).display().to_string();
    let (key, _) = f.signing_key();
    let o = f.sandmine(&[
        "publish",
        "--set",
        &key,
        "--policy",
        &policy,
        "--runtime-base",
        "none",
        "--set",
        "publish.min_hosts=1",
        "--set",
        &store,
        "--dir",
        &dir,
        "--now-ms",
        &PUBLISHED.to_string(),
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let slug = publish::image_slug(IMAGE);
    let meta: PublishedMeta = serde_json::from_slice(
        &std::fs::read(Path::new(&dir).join(&slug).join("current")).expect("current"),
    )
    .expect("meta");

    // After the publication: a container that also calls fsync (74).
    let later = PUBLISHED + 60_000;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s = store_common::open_embedded(f.path("").as_path()).await;
        let calls = vec![
            sc(Abi::X86_64, 0, 5, &[Phase::Image], later),
            sc(Abi::X86_64, 74, 2, &[Phase::Image], later + 10),
        ];
        let e = env(
            "h3",
            "b1",
            1,
            later,
            vec![ctr("c4", IMAGE, later, later + 5_000, None, calls)],
        );
        s.insert(&[e]).await.expect("insert");
    });

    let drift = |v: &str| {
        f.sandmine(&[
            "query",
            "--set",
            &store,
            "drift",
            IMAGE,
            "--since-version",
            v,
            "--published",
            &dir,
        ])
    };
    // fsync is new; read (0) was used again; write and openat were not
    // seen since the publication.
    let want = "\
CHANGE  ABI     SYSCALL   NR  HOSTS  CONTAINERS  FIRST_SEEN            LAST_SEEN
new     x86_64  fsync     74      1           1  2023-11-14T23:14:20Z  2023-11-14T23:14:25Z
gone    x86_64  write      1      2           3  2023-11-14T22:13:20Z  2023-11-14T22:13:25Z
gone    x86_64  openat   257      2           3  2023-11-14T22:13:20Z  2023-11-14T22:13:25Z
";
    for v in [
        meta.version_short.as_str(),
        meta.version.as_str(),
        "current",
    ] {
        let o = drift(v);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        assert_eq!(o.stdout, want, "{v}: {}", o.describe());
    }
    // The same as --since at the publication time (T0 + 1 h).
    let o = f.sandmine(&[
        "query",
        "--set",
        &store,
        "drift",
        IMAGE,
        "--since",
        "2023-11-14T23:13:20Z",
    ]);
    assert_eq!(o.stdout, want, "{}", o.describe());

    // Errors: an unknown version names the ones there are; no --published.
    let o = drift("0123456789ab");
    assert_eq!(o.code(), Some(2));
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: {IMAGE:?} has no version 0123456789ab in {dir} (it has: {})",
            meta.version_short
        )
    );
    let o = f.sandmine(&[
        "query",
        "--set",
        &store,
        "drift",
        IMAGE,
        "--since-version",
        "current",
    ]);
    assert_eq!(o.code(), Some(2));
    assert!(
        one_error_line(&o).contains("--published"),
        "{}",
        o.describe()
    );
}
