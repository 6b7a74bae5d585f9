//! Seccomp denials (wire v6, migration 5) in both stores: exact rows per
//! (image, syscall, action, profile version), hosts and containers, first
//! and last seen, `--since` by whole hours, exactly once under
//! redelivery and regrouping, and the same answers from ClickHouse 18.16
//! and SQLite.

mod common;

use aggregator::store::analytics::ImageDenials;
use aggregator::store::Store;
use common::*;
use schemas::wire::{ContainerDelta, Envelope, SeccompFilter};
use schemas::{Abi, DenialKey, DenyAction, Phase};

const PIVOT_ROOT: u32 = 155;
const MOUNT: u32 = 165;
const PROFILE: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn with_denials(
    mut c: ContainerDelta,
    seccomp: SeccompFilter,
    d: &[(u32, DenyAction, u64)],
) -> ContainerDelta {
    c.container.seccomp = seccomp;
    for &(nr, action, n) in d {
        c.denials.insert(
            DenialKey {
                abi: Abi::X86_64,
                nr,
                action,
            },
            n,
        );
    }
    c
}

/// Two hosts; app:1 under one profile on both, and under Docker's default
/// on h2; a kill; db:2 with an errno in the next hour.
fn fleet() -> Vec<Envelope> {
    use DenyAction::*;
    let p = || SeccompFilter::Profile(PROFILE.into());
    let busy = |id: &str, img: &str| {
        ctr(
            id,
            img,
            T0,
            T0 + 10_000,
            None,
            vec![sc(Abi::X86_64, 0, 3, &[Phase::Image], T0 + 100)],
        )
    };
    vec![
        env(
            "h1",
            "b1",
            1,
            T0,
            vec![
                with_denials(busy("a1", "app:1"), p(), &[(PIVOT_ROOT, Errno(1), 5)]),
                with_denials(busy("a2", "app:1"), p(), &[(PIVOT_ROOT, Errno(1), 2)]),
            ],
        ),
        env(
            "h1",
            "b1",
            2,
            T0 + 10_000,
            vec![with_denials(
                ctr("a1", "app:1", T0, T0 + 20_000, Some(T0 + 20_000), vec![]),
                p(),
                &[(PIVOT_ROOT, Errno(1), 1), (MOUNT, Kill, 1)],
            )],
        ),
        env(
            "h2",
            "b7",
            1,
            T0,
            vec![
                with_denials(busy("a3", "app:1"), p(), &[(PIVOT_ROOT, Errno(1), 10)]),
                with_denials(
                    busy("a4", "app:1"),
                    SeccompFilter::RuntimeDefault,
                    &[(MOUNT, Errno(1), 4)],
                ),
            ],
        ),
        env(
            "h2",
            "b7",
            2,
            T0 + H,
            vec![with_denials(
                busy("d1", "db:2"),
                SeccompFilter::Unknown,
                &[(PIVOT_ROOT, Errno(38), 6)],
            )],
        ),
    ]
}

fn row(
    image: &str,
    nr: u32,
    action: DenyAction,
    profile: &str,
    (denials, hosts, containers): (u64, u64, u64),
    (first, last): (u64, u64),
) -> ImageDenials {
    ImageDenials {
        image: image.into(),
        abi: Abi::X86_64,
        nr,
        action,
        profile: profile.into(),
        denials,
        hosts,
        containers,
        first_seen_ms: first,
        last_seen_ms: last,
    }
}

fn expected_all() -> Vec<ImageDenials> {
    use DenyAction::*;
    let e1 = T0 + 10_000;
    let e2 = T0 + 20_000;
    vec![
        row(
            "app:1",
            PIVOT_ROOT,
            Errno(1),
            "0123456789abcdef",
            (18, 2, 3),
            (e1, e2),
        ),
        row(
            "app:1",
            MOUNT,
            Errno(1),
            "runtime/default",
            (4, 1, 1),
            (e1, e1),
        ),
        row(
            "app:1",
            MOUNT,
            Kill,
            "0123456789abcdef",
            (1, 1, 1),
            (e2, e2),
        ),
        row(
            "db:2",
            PIVOT_ROOT,
            Errno(38),
            "unknown",
            (6, 1, 1),
            (T0 + H + 10_000, T0 + H + 10_000),
        ),
    ]
}

async fn assert_denials(s: &Store) {
    assert_eq!(s.denials(None, None).await.unwrap(), expected_all());
    let app: Vec<ImageDenials> = expected_all()
        .into_iter()
        .filter(|r| r.image == "app:1")
        .collect();
    assert_eq!(s.denials(Some("app:1"), None).await.unwrap(), app);
    assert_eq!(s.denials(Some("nope:0"), None).await.unwrap(), []);
    // Since a time inside the next hour: whole hours, so only db:2's.
    let later: Vec<ImageDenials> = expected_all()
        .into_iter()
        .filter(|r| r.image == "db:2")
        .collect();
    assert_eq!(s.denials(None, Some(T0 + H + 1)).await.unwrap(), later);
    // Since a time in the first hour: everything.
    assert_eq!(
        s.denials(None, Some(T0 + 9_999)).await.unwrap(),
        expected_all()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_are_exact_and_stored_once_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let c = open_ch(&ch).await;
    let e = open_embedded(dir.path()).await;
    assert_eq!(
        c.applied_migrations().await.unwrap(),
        vec![1, 2, 4, 5, 6, 7]
    );
    assert_eq!(
        e.applied_migrations().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    for s in [&c, &e] {
        s.insert(&fleet()).await.unwrap();
        assert_denials(s).await;
        // Redelivered whole, one by one, and regrouped: counted once.
        s.insert(&fleet()).await.unwrap();
        for m in fleet().iter().rev() {
            s.insert(std::slice::from_ref(m)).await.unwrap();
        }
        s.insert(&fleet()[1..3]).await.unwrap();
        assert_denials(s).await;
    }
    // Before and after ClickHouse's merges.
    if let Store::ClickHouse(x) = &c {
        x.optimize().await.unwrap();
    }
    assert_denials(&c).await;
    // The denials change no other answer: the calls are what they were.
    let app = c.image_observations("app:1").await.unwrap().unwrap();
    assert_eq!(app.containers, 4);
    assert_eq!(app, e.image_observations("app:1").await.unwrap().unwrap());
}

/// Counts at the wire's limit (2^48) sum exactly, alike, in both stores
/// (summed in 32-bit halves, like calls).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denial_counts_at_the_wire_limit_sum_exactly_alike() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let c = open_ch(&ch).await;
    let e = open_embedded(dir.path()).await;
    let max = 1u64 << 48;
    let msgs: Vec<Envelope> = (1..=40)
        .map(|seq| {
            env(
                "h1",
                "b1",
                seq,
                T0,
                vec![with_denials(
                    ctr("x", "big:1", T0, T0 + 10_000, None, vec![]),
                    SeccompFilter::RuntimeDefault,
                    &[(PIVOT_ROOT, DenyAction::Trap, max)],
                )],
            )
        })
        .collect();
    for s in [&c, &e] {
        s.insert(&msgs).await.unwrap();
        let got = s.denials(None, None).await.unwrap();
        assert_eq!(
            got,
            [row(
                "big:1",
                PIVOT_ROOT,
                DenyAction::Trap,
                "runtime/default",
                (40 * max, 1, 1),
                (T0 + 10_000, T0 + 10_000)
            )]
        );
    }
}
