//! The attacks of tests/identity_cli.rs against the code before the fix
//! (main at the commit named in benchmarks/security/): no host keys, no
//! enrolled_hosts, the broker id `host.boot.seq`. Same harness, same
//! assertions on the store.

mod common;

use common::fleet::{docker, envelope, nats_broker, publish, Batch, Fleet, GETPGRP};
use testsvc::{ClickHouse, Nats};

fn run_unrecorded(fleet: &Fleet, host: &str, calls: u64) {
    let parent = format!("/sm-{}-{host}", fleet.tag);
    let arg = format!("{GETPGRP}:{calls}");
    docker(&[
        "run", "--rm", "--network", "none", "--cgroup-parent", &parent,
        &fleet.probe_image, "/probe", &arg,
    ]);
}

/// Host A's broker credentials in a collector that claims to be host B.
#[test]
fn a_collector_with_another_hosts_key_is_dead_lettered() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.start_aggregator();
    fleet.start_collector("hA");
    fleet.start_collector("hB");
    fleet.run(&Batch { host: "hA", image: "probe", containers: 2, calls: &[(GETPGRP, 7)] });
    run_unrecorded(&fleet, "hB", 1000);
    run_unrecorded(&fleet, "hB", 1000);
    fleet.assert_converges("forged identity");
}

fn stream_and_next_seq(fleet: &Fleet, host: &str) -> (String, u64) {
    let log = std::fs::read_to_string(&fleet.collectors[host].stderr).unwrap();
    let line = log.lines().find(|l| l.contains("collecting as host")).unwrap();
    let stream = line.split("(stream ").nth(1).and_then(|s| s.split(')').next()).unwrap().to_string();
    let seq = line.split("from seq ").nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok()).unwrap();
    (stream, seq)
}

/// The victim's next three host.boot.seq, forged and published first.
#[test]
fn a_pre_empting_forgery_costs_the_real_host_nothing() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.start_aggregator();
    fleet.start_collector("hA");
    let (stream, next) = stream_and_next_seq(&fleet, "hA");
    let mut forged = Vec::new();
    for seq in next..next + 3 {
        let mut e = envelope("hA", seq, &fleet.probe_image, 1_000_000);
        e.boot_id = stream.clone();
        forged.push((e.dedupe_id(), schemas::wire::encode(&e).unwrap()));
    }
    let msgs: Vec<(&str, Vec<u8>)> = forged.iter().map(|(id, b)| (id.as_str(), b.clone())).collect();
    publish(&nats, &msgs, false, "2m");
    fleet.run(&Batch { host: "hA", image: "probe", containers: 2, calls: &[(GETPGRP, 5)] });
    fleet.assert_converges("pre-empted");
}
