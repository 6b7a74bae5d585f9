//! A delta larger than the broker takes is cut into several messages
//! under the limit nats-server announces (`max_payload`), each with its own
//! seq, and the store ends up with exactly what the containers did.

mod common;

use common::fleet::*;
use std::time::Duration;
use testsvc::{ClickHouse, Kafka, Nats};

#[test]
fn a_delta_over_the_brokers_max_payload_is_split_and_nothing_is_lost() {
    let nats = Nats::start_with_conf("max_payload: 4096");
    split_and_converge(&nats_broker(&nats));
}

/// Kafka (tansu): the limit is the producer's `message.max.bytes`.
#[test]
fn a_delta_over_kafkas_message_max_bytes_is_split_and_nothing_is_lost() {
    let kafka = Kafka::start();
    let broker = format!(
        "{}[broker.properties]\n\"message.max.bytes\" = \"5120\"\n",
        kafka_broker(&kafka)
    );
    split_and_converge(&broker);
}

fn split_and_converge(broker: &str) {
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(broker, &ch);
    fleet.start_aggregator();
    // No tick until the stop: all 16 containers are in the one delta cut
    // then, far more than the 4 KiB the broker takes.
    fleet.start_collector_with("hS", &["collector.interval=\"1h\""]);
    fleet.run(&Batch {
        host: "hS",
        image: "probe",
        containers: 16,
        calls: &[(GETPGRP, 7), (TIMES, 3)],
    });
    let collector = fleet.collectors.remove("hS").expect("collector");
    let out = collector.terminate(Duration::from_secs(60));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    // The window was hit: the last delta was split.
    let split: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("split into"))
        .collect();
    assert_eq!(split.len(), 1, "{}", out.describe());
    let pieces: u64 = split[0]
        .split("split into ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(pieces >= 2, "{}", split[0]);
    fleet.assert_converges("after the split delta");
    let rejected = fleet.f.path("state-hS").join("spool/rejected");
    assert!(!rejected.exists(), "{}", out.describe());
}
