//! The fleet of docs/ANALYTICS.md's examples, shared by the store tests
//! (aggregator/tests/analytics.rs) and the CLI tests
//! (tests/analytics_cli.rs).

use super::{ctr, env, sc, H};
use schemas::wire::{ContainerDelta, Envelope};
use schemas::{Abi, Phase};

/// An hour boundary (2023-11-15T00:00:00Z).
pub const T: u64 = 472_224 * H;
pub const READ: u32 = 0;
pub const PTRACE: u32 = 101;
pub const KEYCTL: u32 = 250;
pub const IO_URING_SETUP: u32 = 425;

/// A container of `image` (digest `digest`) seen from `started` to `last`,
/// making `calls` (nr, calls, first seen).
fn c(
    id: &str,
    image: &str,
    digest: &str,
    started: u64,
    last: u64,
    calls: &[(u32, u64, u64)],
) -> ContainerDelta {
    let mut x = ctr(
        id,
        image,
        started,
        last,
        None,
        calls
            .iter()
            .map(|&(nr, n, first)| sc(Abi::X86_64, nr, n, &[Phase::Image], first))
            .collect(),
    );
    x.container.image_digest = digest.into();
    x
}

/// The analytics fleet (docs/ANALYTICS.md's example): app:1 on h1 and
/// h2 in the first hour, its new digest sha256:a2 on h1 an hour later
/// (adds ptrace), redis:7 on h1 in both, web:2 on h3 two hours later.
pub fn analytics_fleet() -> Vec<Envelope> {
    vec![
        env(
            "h1",
            "b1",
            1,
            T,
            vec![
                c(
                    "a1",
                    "app:1",
                    "sha256:a1",
                    T + 100,
                    T + 10_000,
                    &[(READ, 10, T + 200), (IO_URING_SETUP, 2, T + 1000)],
                ),
                c(
                    "r1",
                    "redis:7",
                    "sha256:r1",
                    T,
                    T + 10_000,
                    &[(READ, 5, T + 300)],
                ),
            ],
        ),
        env(
            "h2",
            "b1",
            1,
            T,
            vec![c(
                "a2",
                "app:1",
                "sha256:a1",
                T + 500,
                T + 10_000,
                &[(IO_URING_SETUP, 3, T + 2000), (READ, 1, T + 2500)],
            )],
        ),
        env(
            "h1",
            "b1",
            2,
            T + H,
            vec![
                c(
                    "a3",
                    "app:1",
                    "sha256:a2",
                    T + H,
                    T + H + 10_000,
                    &[
                        (READ, 6, T + H + 700),
                        (PTRACE, 1, T + H + 600),
                        (IO_URING_SETUP, 4, T + H + 500),
                    ],
                ),
                c(
                    "r1",
                    "redis:7",
                    "sha256:r1",
                    T,
                    T + H + 10_000,
                    &[(READ, 7, T + 300)],
                ),
            ],
        ),
        env(
            "h3",
            "b1",
            1,
            T + 2 * H,
            vec![c(
                "w1",
                "web:2",
                "sha256:w1",
                T + 2 * H,
                T + 2 * H + 10_000,
                &[
                    (KEYCTL, 7, T + 2 * H + 100),
                    (IO_URING_SETUP, 1, T + 2 * H + 200),
                ],
            )],
        ),
    ]
}

pub const CLONE: u32 = 56;
/// i386's keyctl.
pub const KEYCTL_I386: u32 = 288;

/// The analytics fleet plus batch:3 on h2 in the third hour: clone (which
/// Docker's default judges by its flags), read, and an i386 keyctl
/// (`query breaks`' fleet; the other questions keep the analytics fleet).
pub fn breaks_fleet() -> Vec<Envelope> {
    let mut v = analytics_fleet();
    let mut b = c(
        "b1",
        "batch:3",
        "sha256:b3",
        T + 2 * H,
        T + 2 * H + 10_000,
        &[(CLONE, 3, T + 2 * H + 400), (READ, 4, T + 2 * H + 300)],
    );
    b.syscalls.push(sc(
        Abi::I386,
        KEYCTL_I386,
        2,
        &[Phase::Image],
        T + 2 * H + 500,
    ));
    v.push(env("h2", "b1", 2, T + 2 * H, vec![b]));
    v
}
