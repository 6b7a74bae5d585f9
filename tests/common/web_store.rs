//! The fleet the publishing tests publish (`lever_cli`, `sync_cli`): web:1,
//! three containers on two hosts, in an embedded store, and bars low enough
//! that it enforces. Included by path (`#[path = "common/web_store.rs"]`)
//! beside `store_common` (aggregator/tests/common), which it uses.

use crate::common::Fixture;
use crate::store_common::{ctr, env, sc, T0};
use schemas::{Abi, Phase};

pub const IMAGE: &str = "web:1";

/// Bars low enough that web:1's three containers on two hosts enforce.
pub const POLICY_A: &str = "[syscall]\nmin_hosts = 1\nmin_containers = 1\n\
[enforce]\nmin_containers = 3\nmin_hosts = 2\nmin_container_hours = 0.0\nmin_coverage = 0.0\n\
min_quiet_hours = 0.0\nmax_recent_new_share = 1.0\n";

/// Fills `f`'s `store.db` with web:1's fleet; returns the `--set` that
/// names the store.
pub fn fill(f: &Fixture) -> String {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let s = crate::store_common::open_embedded(f.path("").as_path()).await;
        let calls = |first| {
            vec![
                sc(Abi::X86_64, 0, 10, &[Phase::Image], first),
                sc(Abi::X86_64, 1, 10, &[Phase::Image], first),
                sc(Abi::X86_64, 257, 3, &[Phase::Image], first),
            ]
        };
        let fleet = vec![
            env(
                "h1",
                "b1",
                1,
                T0,
                vec![
                    ctr("c1", IMAGE, T0, T0 + 5_000, None, calls(T0 + 10)),
                    ctr("c2", IMAGE, T0, T0 + 5_000, None, calls(T0 + 20)),
                ],
            ),
            env(
                "h2",
                "b1",
                1,
                T0,
                vec![ctr("c3", IMAGE, T0, T0 + 5_000, None, calls(T0 + 30))],
            ),
        ];
        s.insert(&fleet).await.expect("insert");
    });
    format!("store.embedded.path=\"{}\"", f.path("store.db").display())
}
