//! The analytics questions (`sandmine query uses|drift|surface|usage`)
//! against a real ClickHouse 18.16 and SQLite: exact rows for a fleet
//! built for the purpose, the same rows from both stores, and the same
//! answers on the pseudo-random fleet of the store tests. Envelopes go in
//! through `Store::insert`, what the aggregator's ingest loop calls.

mod common;

use aggregator::store::analytics::{
    Drift, DriftBase, DriftRow, ImageReach, ImageSyscallUse, SyscallUse, UsageRow, Window,
};
use aggregator::store::Store;
use common::analytics_fleet::*;
use common::*;
use schemas::Abi;
use std::collections::BTreeSet;

/// Both stores with the analytics fleet, inserted twice (redelivery: the
/// answers must not change) in different groupings.
async fn stores(ch: &testsvc::ClickHouse, dir: &std::path::Path) -> [Store; 2] {
    let chs = open_ch(ch).await;
    let emb = open_embedded(dir).await;
    let fleet = analytics_fleet();
    for s in [&chs, &emb] {
        s.insert(&fleet).await.unwrap();
        for e in fleet.iter().rev() {
            s.insert(std::slice::from_ref(e)).await.unwrap();
        }
    }
    [chs, emb]
}

fn u(image: &str, hosts: u64, containers: u64, calls: u64, last: u64) -> SyscallUse {
    SyscallUse {
        image: image.into(),
        hosts,
        containers,
        calls,
        last_seen_ms: last,
    }
}

fn window(since: Option<u64>, until: Option<u64>) -> Window {
    Window {
        since_ms: since,
        until_ms: until,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_exact_rows_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let all = Window::default();
    let cases: Vec<(u32, Window, Vec<SyscallUse>)> = vec![
        (
            IO_URING_SETUP,
            all,
            vec![
                u("app:1", 2, 3, 9, T + H + 10_000),
                u("web:2", 1, 1, 1, T + 2 * H + 10_000),
            ],
        ),
        // The second hour only: a3's calls; a1 and a2 were last seen in
        // the first hour, w1 first in the third.
        (
            IO_URING_SETUP,
            window(Some(T + H), Some(T + 2 * H)),
            vec![u("app:1", 1, 1, 4, T + H + 10_000)],
        ),
        // Widened to whole hours: the same.
        (
            IO_URING_SETUP,
            window(Some(T + H + 300_000), Some(T + H + 600_000)),
            vec![u("app:1", 1, 1, 4, T + H + 10_000)],
        ),
        (
            IO_URING_SETUP,
            window(Some(T + 2 * H), None),
            vec![u("web:2", 1, 1, 1, T + 2 * H + 10_000)],
        ),
        (IO_URING_SETUP, window(None, Some(T)), vec![]),
        (
            READ,
            all,
            vec![
                u("app:1", 2, 3, 17, T + H + 10_000),
                u("redis:7", 1, 1, 12, T + H + 10_000),
            ],
        ),
        // r1's read in the second hour: calls counted, and its incidence
        // (last seen in the first hour: not refreshed, no new hour was
        // crossed) does not overlap: hour precision, as documented.
        (
            READ,
            window(Some(T + H), Some(T + 2 * H)),
            vec![
                u("app:1", 1, 1, 6, T + H + 10_000),
                u("redis:7", 0, 0, 7, T + H + 10_000),
            ],
        ),
        (PTRACE, all, vec![u("app:1", 1, 1, 1, T + H + 10_000)]),
        (KEYCTL, all, vec![u("web:2", 1, 1, 7, T + 2 * H + 10_000)]),
        (KEYCTL, window(Some(T), Some(T + 2 * H)), vec![]),
    ];
    let stores = stores(&ch, dir.path()).await;
    for (nr, w, want) in cases {
        for (name, s) in ["clickhouse", "embedded"].iter().zip(&stores) {
            let got = s.syscall_uses(Abi::X86_64, nr, w).await.unwrap();
            assert_eq!(got, want, "{name}: uses {nr} in {w:?}");
        }
    }
}

/// On the pseudo-random fleet of the store tests, `uses` without a window
/// is the store's totals, and both stores agree in every window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_agree_with_totals_and_across_stores_on_a_random_fleet() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let chs = open_ch(&ch).await;
    let emb = open_embedded(dir.path()).await;
    let fleet = generated(3, 20);
    for s in [&chs, &emb] {
        for chunk in fleet.chunks(9) {
            s.insert(chunk).await.unwrap();
        }
    }
    let totals = chs.syscall_totals().await.unwrap();
    let t0 = fleet[0].interval_start_ms;
    for (abi, nr) in (0..11).map(|n| (Abi::X86_64, n)).chain([(Abi::I386, 11)]) {
        let got = chs.syscall_uses(abi, nr, Window::default()).await.unwrap();
        let want: Vec<SyscallUse> = totals
            .iter()
            .filter(|t| (t.1, t.2) == (abi, nr))
            .map(|t| SyscallUse {
                image: t.0.clone(),
                hosts: t.4,
                containers: t.5,
                calls: t.3,
                last_seen_ms: got
                    .iter()
                    .find(|g| g.image == t.0)
                    .map_or(0, |g| g.last_seen_ms),
            })
            .collect();
        assert_eq!(got, want, "{abi} {nr}");
        for w in [
            Window::default(),
            window(Some(t0), Some(t0 + 60_000)),
            window(Some(t0 + H), None),
            window(None, Some(t0 + 150_000)),
        ] {
            assert_eq!(
                chs.syscall_uses(abi, nr, w).await.unwrap(),
                emb.syscall_uses(abi, nr, w).await.unwrap(),
                "{abi} {nr} {w:?}"
            );
        }
    }
}

/// Migration 3 on an embedded store written before it: `calls_hourly` is
/// backfilled from `calls`, each (host, boot)'s calls in the hour of its
/// last use, so that totals stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_3_backfills_an_older_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let s = open_embedded(dir.path()).await;
    s.insert(&analytics_fleet()).await.unwrap();
    let before = s
        .syscall_uses(Abi::X86_64, READ, Window::default())
        .await
        .unwrap();
    drop(s);
    // Back to the schema of version 2.
    let db = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    db.execute_batch("DROP TABLE calls_hourly; DELETE FROM schema_migrations WHERE version = 3")
        .unwrap();
    drop(db);
    let s = open_embedded(dir.path()).await;
    assert_eq!(
        s.applied_migrations().await.unwrap(),
        vec![1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(
        s.syscall_uses(Abi::X86_64, READ, Window::default())
            .await
            .unwrap(),
        before
    );
    // h1's read by app:1 (10 + 6 calls, last used in the second hour) now
    // all counts in the second hour; h2's (1 call) in the first.
    assert_eq!(
        s.syscall_uses(Abi::X86_64, READ, window(Some(T + H), Some(T + 2 * H)))
            .await
            .unwrap(),
        vec![
            u("app:1", 1, 1, 16, T + H + 10_000),
            u("redis:7", 0, 0, 12, T + H + 10_000)
        ]
    );
}

fn dr(nr: u32, hosts: u64, containers: u64, first: u64, last: u64) -> DriftRow {
    DriftRow {
        abi: Abi::X86_64,
        nr,
        hosts,
        containers,
        first_seen_ms: first,
        last_seen_ms: last,
    }
}

fn digests(from: &str, to: &str) -> DriftBase {
    DriftBase::Digests {
        from: from.into(),
        to: to.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_exact_rows_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let ptrace = dr(PTRACE, 1, 1, T + H + 600, T + H + 10_000);
    let cases: Vec<(&str, DriftBase, Option<Drift>)> = vec![
        // ptrace is new in the second hour; nothing went.
        (
            "app:1",
            DriftBase::Since(T + H),
            Some(Drift {
                new: vec![ptrace.clone()],
                gone: vec![],
            }),
        ),
        // Since the third hour: nothing new, everything gone (image-wide
        // first seen and last seen, exact).
        (
            "app:1",
            DriftBase::Since(T + 2 * H),
            Some(Drift {
                new: vec![],
                gone: vec![
                    dr(READ, 2, 3, T + 200, T + H + 10_000),
                    ptrace.clone(),
                    dr(IO_URING_SETUP, 2, 3, T + 1000, T + H + 10_000),
                ],
            }),
        ),
        (
            "web:2",
            DriftBase::Since(T),
            Some(Drift {
                new: vec![
                    dr(KEYCTL, 1, 1, T + 2 * H + 100, T + 2 * H + 10_000),
                    dr(IO_URING_SETUP, 1, 1, T + 2 * H + 200, T + 2 * H + 10_000),
                ],
                gone: vec![],
            }),
        ),
        // The new release (sha256:a2) brings ptrace; the other way round
        // it is gone.
        (
            "app:1",
            digests("sha256:a1", "sha256:a2"),
            Some(Drift {
                new: vec![ptrace.clone()],
                gone: vec![],
            }),
        ),
        (
            "app:1",
            digests("sha256:a2", "sha256:a1"),
            Some(Drift {
                new: vec![],
                gone: vec![ptrace.clone()],
            }),
        ),
        // A digest nobody ran: everything of the other side is new.
        (
            "redis:7",
            digests("sha256:none", "sha256:r1"),
            Some(Drift {
                new: vec![dr(READ, 1, 1, T + 300, T + 10_000)],
                gone: vec![],
            }),
        ),
        ("nope:1", DriftBase::Since(0), None),
        ("nope:1", digests("a", "b"), None),
    ];
    let stores = stores(&ch, dir.path()).await;
    for (image, base, want) in cases {
        for (name, s) in ["clickhouse", "embedded"].iter().zip(&stores) {
            let got = s.drift(image, &base).await.unwrap();
            assert_eq!(got, want, "{name}: drift {image} {base:?}");
        }
    }
}

fn ur(hour: u64, calls: u64, hosts: u64, new_containers: u64) -> UsageRow {
    UsageRow {
        hour_ms: hour,
        calls,
        hosts,
        new_containers,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_exact_rows_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let x = |nr| Some((Abi::X86_64, nr));
    type Key = Option<(Abi, u32)>;
    let cases: Vec<(&str, Key, Vec<UsageRow>)> = vec![
        // Every syscall: a1 and a2 start using syscalls in the first hour,
        // a3 in the second.
        ("app:1", None, vec![ur(T, 16, 2, 2), ur(T + H, 11, 1, 1)]),
        (
            "app:1",
            x(IO_URING_SETUP),
            vec![ur(T, 5, 2, 2), ur(T + H, 4, 1, 1)],
        ),
        ("app:1", x(PTRACE), vec![ur(T + H, 1, 1, 1)]),
        ("app:1", x(KEYCTL), vec![]),
        // r1 keeps reading in the second hour: calls, no new container.
        ("redis:7", None, vec![ur(T, 5, 1, 1), ur(T + H, 7, 1, 0)]),
        ("web:2", None, vec![ur(T + 2 * H, 8, 1, 1)]),
        ("nope:1", None, vec![]),
    ];
    let stores = stores(&ch, dir.path()).await;
    for (image, key, want) in cases {
        for (name, s) in ["clickhouse", "embedded"].iter().zip(&stores) {
            let got = s.usage(image, key).await.unwrap();
            assert_eq!(got, want, "{name}: usage {image} {key:?}");
        }
    }
}

/// On the pseudo-random fleet: both stores agree hour by hour, and the
/// hours add up to the totals (calls) and to the containers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_adds_up_and_agrees_across_stores_on_a_random_fleet() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let chs = open_ch(&ch).await;
    let emb = open_embedded(dir.path()).await;
    let fleet = generated(3, 40);
    for s in [&chs, &emb] {
        for chunk in fleet.chunks(11) {
            s.insert(chunk).await.unwrap();
        }
    }
    let totals = chs.syscall_totals().await.unwrap();
    for image in chs.images().await.unwrap() {
        let obs = chs.image_observations(&image).await.unwrap().unwrap();
        let all = chs.usage(&image, None).await.unwrap();
        assert_eq!(all, emb.usage(&image, None).await.unwrap(), "{image}");
        assert!(all.len() >= 2, "{image}: the fleet crosses an hour");
        assert_eq!(
            all.iter().map(|r| r.new_containers).sum::<u64>(),
            obs.containers,
            "{image}"
        );
        assert_eq!(
            all.iter().map(|r| r.calls).sum::<u64>(),
            totals
                .iter()
                .filter(|t| t.0 == image)
                .map(|t| t.3)
                .sum::<u64>(),
            "{image}"
        );
        for t in totals.iter().filter(|t| t.0 == image) {
            let one = chs.usage(&image, Some((t.1, t.2))).await.unwrap();
            assert_eq!(one, emb.usage(&image, Some((t.1, t.2))).await.unwrap());
            assert_eq!(one.iter().map(|r| r.calls).sum::<u64>(), t.3);
            assert_eq!(one.iter().map(|r| r.new_containers).sum::<u64>(), t.5);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn w(
    image: &str,
    abi: Abi,
    nr: u32,
    hosts: u64,
    containers: u64,
    calls: u64,
    last: u64,
) -> ImageSyscallUse {
    ImageSyscallUse {
        image: image.into(),
        abi,
        nr,
        hosts,
        containers,
        calls,
        last_seen_ms: last,
    }
}

fn reach(image: &str, hosts: u64, containers: u64) -> ImageReach {
    ImageReach {
        image: image.into(),
        hosts,
        containers,
    }
}

fn keys(k: &[(Abi, u32)]) -> BTreeSet<(Abi, u32)> {
    k.iter().copied().collect()
}

/// `query breaks`' two questions: every syscall of every image in a
/// window (`uses` for all at once), and the containers that used any of
/// a set; exact rows on both stores, for the breaks fleet (the analytics
/// fleet plus batch:3, with an i386 call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_syscalls_and_reach_exact_rows_on_both_stores() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let chs = open_ch(&ch).await;
    let emb = open_embedded(dir.path()).await;
    let fleet = breaks_fleet();
    for s in [&chs, &emb] {
        s.insert(&fleet).await.unwrap();
        for e in fleet.iter().rev() {
            s.insert(std::slice::from_ref(e)).await.unwrap();
        }
    }
    let x = Abi::X86_64;
    let all = Window::default();
    let second = window(Some(T + H), Some(T + 2 * H));
    let last1 = T + H + 10_000;
    let last2 = T + 2 * H + 10_000;
    let window_cases: Vec<(Option<&str>, Window, Vec<ImageSyscallUse>)> = vec![
        (
            None,
            all,
            vec![
                w("app:1", x, READ, 2, 3, 17, last1),
                w("app:1", x, PTRACE, 1, 1, 1, last1),
                w("app:1", x, IO_URING_SETUP, 2, 3, 9, last1),
                w("batch:3", x, READ, 1, 1, 4, last2),
                w("batch:3", x, CLONE, 1, 1, 3, last2),
                w("batch:3", Abi::I386, KEYCTL_I386, 1, 1, 2, last2),
                w("redis:7", x, READ, 1, 1, 12, last1),
                w("web:2", x, KEYCTL, 1, 1, 7, last2),
                w("web:2", x, IO_URING_SETUP, 1, 1, 1, last2),
            ],
        ),
        // The second hour: the rows of `uses` in that window, redis:7's
        // read with its calls and no container (hour precision).
        (
            None,
            second,
            vec![
                w("app:1", x, READ, 1, 1, 6, last1),
                w("app:1", x, PTRACE, 1, 1, 1, last1),
                w("app:1", x, IO_URING_SETUP, 1, 1, 4, last1),
                w("redis:7", x, READ, 0, 0, 7, last1),
            ],
        ),
        (
            Some("web:2"),
            all,
            vec![
                w("web:2", x, KEYCTL, 1, 1, 7, last2),
                w("web:2", x, IO_URING_SETUP, 1, 1, 1, last2),
            ],
        ),
        (Some("web:2"), second, vec![]),
        (Some("nope"), all, vec![]),
        (None, window(None, Some(T)), vec![]),
    ];
    type ReachCase<'a> = (
        Option<&'a str>,
        BTreeSet<(Abi, u32)>,
        Window,
        Vec<ImageReach>,
    );
    let reach_cases: Vec<ReachCase> = vec![
        // a1, a2 (io_uring_setup) and a3 (both) count once each.
        (
            None,
            keys(&[(x, PTRACE), (x, IO_URING_SETUP), (x, KEYCTL)]),
            all,
            vec![reach("app:1", 2, 3), reach("web:2", 1, 1)],
        ),
        (
            Some("app:1"),
            keys(&[(x, PTRACE)]),
            all,
            vec![reach("app:1", 1, 1)],
        ),
        // An ABI is part of the key: x86_64 keyctl is not i386's.
        (
            None,
            keys(&[(Abi::I386, KEYCTL_I386), (x, CLONE)]),
            all,
            vec![reach("batch:3", 1, 1)],
        ),
        (None, keys(&[(Abi::I386, KEYCTL)]), all, vec![]),
        (None, keys(&[(x, READ)]), second, vec![reach("app:1", 1, 1)]),
        (None, keys(&[]), all, vec![]),
    ];
    for (name, s) in ["clickhouse", "embedded"].iter().zip([&chs, &emb]) {
        for (image, win, want) in &window_cases {
            let got = s.window_syscalls(*image, *win).await.unwrap();
            assert_eq!(&got, want, "{name}: window_syscalls {image:?} {win:?}");
        }
        for (image, k, win, want) in &reach_cases {
            let got = s.reach(*image, k, *win).await.unwrap();
            assert_eq!(&got, want, "{name}: reach {image:?} {k:?} {win:?}");
        }
    }
}

/// On the pseudo-random fleet of the store tests, every row of
/// `window_syscalls` is `uses` of its syscall, and `reach` of one syscall
/// is its `uses` hosts and containers, on both stores, in every window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_syscalls_and_reach_agree_with_uses_on_a_random_fleet() {
    let ch = testsvc::ClickHouse::start();
    let dir = tempfile::tempdir().unwrap();
    let chs = open_ch(&ch).await;
    let emb = open_embedded(dir.path()).await;
    let fleet = generated(3, 20);
    for s in [&chs, &emb] {
        for chunk in fleet.chunks(7) {
            s.insert(chunk).await.unwrap();
        }
    }
    let t0 = fleet[0].interval_start_ms;
    let syscalls: Vec<(Abi, u32)> = (0..11)
        .map(|n| (Abi::X86_64, n))
        .chain([(Abi::I386, 11)])
        .collect();
    let mut seen = 0;
    for win in [
        Window::default(),
        window(Some(t0 + H), None),
        window(None, Some(t0 + H)),
        window(Some(t0 + 150_000), Some(t0 + 300_000)),
    ] {
        let mut answers = Vec::new();
        for s in [&chs, &emb] {
            let rows = s.window_syscalls(None, win).await.unwrap();
            for &(abi, nr) in &syscalls {
                let want: Vec<ImageSyscallUse> = s
                    .syscall_uses(abi, nr, win)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|u| {
                        w(
                            &u.image,
                            abi,
                            nr,
                            u.hosts,
                            u.containers,
                            u.calls,
                            u.last_seen_ms,
                        )
                    })
                    .collect();
                let got: Vec<ImageSyscallUse> = rows
                    .iter()
                    .filter(|r| (r.abi, r.nr) == (abi, nr))
                    .cloned()
                    .collect();
                assert_eq!(got, want, "{abi} {nr} in {win:?}");
                let reach_want: Vec<ImageReach> = want
                    .iter()
                    .filter(|u| u.containers > 0)
                    .map(|u| reach(&u.image, u.hosts, u.containers))
                    .collect();
                let got = s.reach(None, &keys(&[(abi, nr)]), win).await.unwrap();
                assert_eq!(got, reach_want, "reach {abi} {nr} in {win:?}");
                seen += want.len();
            }
            // One image: its rows of the fleet-wide answer.
            let one = s.window_syscalls(Some("redis:7"), win).await.unwrap();
            let want: Vec<ImageSyscallUse> = rows
                .iter()
                .filter(|r| r.image == "redis:7")
                .cloned()
                .collect();
            assert_eq!(one, want, "redis:7 in {win:?}");
            answers.push(rows);
        }
        assert_eq!(answers[0], answers[1], "stores differ in {win:?}");
    }
    assert!(seen > 50, "{seen}");
}
