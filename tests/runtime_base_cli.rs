//! The fleet's runtime base comes from the store: `compile`, `explain` and
//! `publish` with the default `--runtime-base auto` derive it from the
//! runtime-phase calls the collectors already observed, per runtime name,
//! and never load eBPF, reach the local Docker engine or start a probe
//! container. Run unprivileged (no CAP_BPF, no access to the Docker
//! socket, DOCKER_HOST pointing nowhere), they still work.

mod common;

use common::Fixture;
use schemas::wire::Envelope;
use schemas::Phase;

const GETPGRP: u32 = 111;
const SETGROUPS: u32 = 116;
const CAPSET: u32 = 126;
const PRCTL: u32 = 157;

/// One container of `image` under `runtime` that made `runtime_calls` in
/// the runtime phase and getpgrp in its own.
fn envelope(seq: u64, runtime: &str, image: &str, runtime_calls: &[u32]) -> Envelope {
    let t = common::wire::at(seq);
    let mut syscalls: Vec<_> = runtime_calls
        .iter()
        .map(|nr| common::wire::call(*nr, 1, Phase::Runtime, t))
        .collect();
    syscalls.push(common::wire::call(GETPGRP, 3, Phase::Image, t));
    common::wire::one_container("h1", seq, runtime, image, syscalls)
}

/// An embedded store, readable and writable by the unprivileged user.
fn store(f: &Fixture) -> String {
    let db = f.arg("fleet.db");
    let envelopes = vec![
        // Docker: one image's containers did capset, another's setgroups.
        envelope(1, "docker", "app-a:1", &[CAPSET]),
        envelope(2, "docker", "app-a:1", &[CAPSET]),
        envelope(3, "docker", "app-b:1", &[SETGROUPS]),
        // podman did prctl.
        envelope(4, "podman", "app-c:1", &[PRCTL]),
    ];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = aggregator::store::Store::open(&aggregator::store::StoreConfig::Embedded(
            aggregator::store::EmbeddedConfig {
                path: db.clone().into(),
            },
        ))
        .await
        .unwrap();
        s.insert(&envelopes).await.unwrap();
    });
    use std::os::unix::fs::PermissionsExt;
    for e in std::fs::read_dir(f.dir.path()).unwrap() {
        let p = e.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    db
}

const NO_DOCKER: &[(&str, &str)] = &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")];

#[test]
fn the_runtime_base_is_derived_from_the_store_per_runtime() {
    let f = Fixture::new();
    let set = format!("store.embedded.path=\"{}\"", store(&f));
    let explain = |image: &str, syscall: &str| {
        let o = common::sandmine_unprivileged_env(
            &f,
            &["explain", "--set", &set, image, syscall],
            NO_DOCKER,
        );
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        o.stdout
    };
    // setgroups: app-a's containers never made it, app-b's (also docker)
    // did, so docker's base allows it in app-a.
    let out = explain("app-a:1", "setgroups");
    assert!(
        out.contains("in the measured base of the runtime (runc docker (observed in the store))"),
        "{out}"
    );
    // prctl was only seen under podman: not in docker's base.
    let out = explain("app-a:1", "prctl");
    assert!(!out.contains("base of the runtime"), "{out}");
    // And podman's image gets podman's base, not docker's.
    let out = explain("app-c:1", "prctl");
    assert!(out.contains("runc podman (observed in the store)"), "{out}");
    let out = explain("app-c:1", "setgroups");
    assert!(!out.contains("base of the runtime"), "{out}");

    // `compile` writes the same decision into the profile.
    let dir = f.arg("profiles");
    let o = common::sandmine_unprivileged_env(
        &f,
        &["compile", "--set", &set, "-o", &dir, "--image", "app-a:1"],
        NO_DOCKER,
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let report = std::fs::read_to_string(
        std::path::Path::new(&dir)
            .join(publish::image_slug("app-a:1"))
            .join("report.txt"),
    )
    .unwrap();
    assert!(
        report.contains("x86_64 setgroups: - - - - -> allow (runtime base)\n"),
        "{report}"
    );
    assert!(
        report.contains("x86_64 capset: 1 2 1.0000 2 -> allow (runtime base)\n"),
        "{report}"
    );
    assert!(!report.contains("prctl"), "{report}");

    // `publish` (what `aggregate` runs on its schedule) compiles the same
    // way, unprivileged too.
    let out = f.arg("published");
    // The key is nobody's, as the publisher's own key would be.
    let key_file = f.arg("publish.key");
    let o = common::sandmine_unprivileged(&f, &["signing-key", "--out", &key_file]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let key = format!("publish.signing_key_file=\"{key_file}\"");
    let o = common::sandmine_unprivileged_env(
        &f,
        &["publish", "--set", &set, "--set", &key, "--dir", &out],
        NO_DOCKER,
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout
            .contains("0 published, 0 unchanged, 0 held back, 3 not ready, 0 failed"),
        "{}",
        o.describe()
    );
    // `none` keeps only what the image's own containers did.
    let o = common::sandmine_unprivileged_env(
        &f,
        &[
            "explain",
            "--set",
            &set,
            "--runtime-base",
            "none",
            "app-a:1",
            "setgroups",
        ],
        NO_DOCKER,
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(!o.stdout.contains("base of the runtime"), "{}", o.stdout);
}
