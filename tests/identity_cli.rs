//! Issue 9 item 2, forged host identity, end to end with real parts: real
//! collectors (`sandmine collect`, the BPF counter, real containers under
//! each simulated host's cgroup parent), nats-server 2.9 JetStream or
//! tansu (Kafka protocol), `sandmine aggregate` with
//! `aggregator.enrolled_hosts`, and ClickHouse 18.16.
//!
//! - A collector that holds host A's key but claims to be host B: every
//!   message of it is dead-lettered with the reason, and the store holds
//!   host A's exact totals and one host (NATS and Kafka).
//! - A forgery of a victim's next `host.boot.seq`, published before the
//!   victim sends it, under the old-style message id `host.boot.seq` and
//!   signed by a key of no host: the victim loses nothing (exact totals),
//!   and the forgeries are dead-lettered.
//! - A revoked host's messages are refused, from the start and after a
//!   live revocation (the file is reloaded): exact counts.
//!
//! The enrolled-hosts file is made with the real `sandmine host-key`.
//! Needs what tests/fleet_cli.rs needs (root, dockerd, the test image,
//! nats-server, clickhouse-server, tansu).

mod common;

use common::fleet::{
    docker, envelope, kafka_broker, nats_broker, nats_stream_state, publish, wait_for_line, Batch,
    Fleet, GETPGRP,
};
use schemas::wire::{self, HostKey};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testsvc::{ClickHouse, Kafka, Nats};

/// The collector's settings that make it sign with the key at `key`.
fn signing(key: &str) -> [String; 2] {
    [
        "collector.max_wire_version=5".to_string(),
        format!("collector.signing_key=\"{key}\""),
    ]
}

fn start_signed(fleet: &mut Fleet, host: &str, key: &str) {
    let sets = signing(key);
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    fleet.start_collector_with(host, &sets);
}

/// The key file of simulated host `name` (created by `sandmine host-key`).
fn key_path(fleet: &Fleet, name: &str) -> String {
    fleet.f.arg(&format!("key-{name}"))
}

/// `sandmine host-key --path KEY --host-id HOST`: the entry it prints
/// (and the key file it creates).
fn host_key_entry(fleet: &Fleet, host: &str, key: &str) -> String {
    let o = fleet.f.run_cmd(
        fleet.cmd(&["host-key", "--path", key, "--host-id", host]),
        common::RUN_TIMEOUT,
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    o.stdout
}

/// Writes the enrolled-hosts file: per (host, key file, revoked).
fn write_enrolled(fleet: &Fleet, entries: &[(&str, &str, bool)]) -> PathBuf {
    let mut text = String::new();
    for (host, key, revoked) in entries {
        text.push_str(&host_key_entry(fleet, host, key));
        if *revoked {
            text.push_str("revoked = true\n");
        }
    }
    // Written whole then renamed: the aggregator never reads half a file.
    let path = fleet.f.path("enrolled.toml");
    let tmp = fleet.f.path("enrolled.toml.tmp");
    std::fs::write(&tmp, text).expect("write enrolled hosts");
    std::fs::rename(&tmp, &path).expect("rename enrolled hosts");
    path
}

fn public_key(fleet: &Fleet, key: &str) -> String {
    let entry = host_key_entry(fleet, "x", key);
    let start = entry.find("[\"").expect("a key in the entry") + 2;
    entry[start..start + 64].to_string()
}

fn start_verifying_aggregator(fleet: &mut Fleet, enrolled: &std::path::Path) {
    let set = format!("aggregator.enrolled_hosts=\"{}\"", enrolled.display());
    fleet.start_aggregator_with(&[&set]);
}

/// Runs one probe container under `host`'s cgroup parent, making `calls`
/// getpgrp, without recording it as ground truth: what a forger's or a
/// revoked host's collector sees, which must count for nothing.
fn run_unrecorded(fleet: &Fleet, host: &str, calls: u64) {
    let parent = format!("/sm-{}-{host}", fleet.tag);
    let arg = format!("{GETPGRP}:{calls}");
    docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
        &fleet.probe_image,
        "/probe",
        &arg,
    ]);
}

/// Stops `host`'s collector cleanly (a last delta, then a drain of the
/// spool) and returns how many messages it ever published: its committed
/// seq, with nothing left in its spool.
fn stop_and_count(fleet: &mut Fleet, host: &str) -> u64 {
    let r = fleet.collectors.remove(host).expect("a running collector");
    let o = r.terminate(Duration::from_secs(3600));
    assert!(o.stderr.contains("collector stopped"), "{}", o.describe());
    let state = fleet.f.path(&format!("state-{host}"));
    let left: Vec<_> = std::fs::read_dir(state.join("spool"))
        .expect("spool")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".msg"))
        .collect();
    assert!(left.is_empty(), "{host}: still spooled: {left:?}");
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("state.json")).expect("state.json"),
    )
    .expect("state JSON");
    v["seq"].as_u64().expect("seq")
}

/// Every dead letter, as (message id, reason), once exactly `want` are
/// there (and no more arrive for 2 s). Reads them for good (acked).
fn dead_letters(broker: &str, want: usize) -> Vec<(String, String)> {
    let cfg: transport::BrokerConfig = toml::from_str(broker).expect("broker config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = transport::Consumer::connect_dead_letter(&cfg)
            .await
            .expect("dead-letter consumer");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while got.len() < want && Instant::now() < deadline {
            let batch = c
                .fetch(100, Duration::from_secs(1))
                .await
                .expect("fetch dead letters");
            for d in &batch {
                got.push((
                    d.msg_id.clone().unwrap_or_default(),
                    d.reason.clone().unwrap_or_default(),
                ));
            }
            // Acked: none comes again, so any more is one more.
            c.ack(&batch).await.expect("ack dead letters");
        }
        let more = c
            .fetch(100, Duration::from_secs(2))
            .await
            .expect("fetch dead letters");
        assert!(more.is_empty(), "more dead letters than {want}: {got:?}");
        got
    })
}

/// Host A's key in a collector that claims to be host B: dead-lettered,
/// with the reason; the store holds host A's exact totals, one host.
fn another_hosts_key_is_dead_lettered(broker: &str) {
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(broker, &ch);
    let (ka, kb) = (key_path(&fleet, "hA"), key_path(&fleet, "hB"));
    let enrolled = write_enrolled(&fleet, &[("hA", &ka, false), ("hB", &kb, false)]);
    let a = public_key(&fleet, &ka);
    start_verifying_aggregator(&mut fleet, &enrolled);
    start_signed(&mut fleet, "hA", &ka);
    // The forger: host B's id, host A's key.
    start_signed(&mut fleet, "hB", &ka);
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 2,
        calls: &[(GETPGRP, 7)],
    });
    run_unrecorded(&fleet, "hB", 1000);
    run_unrecorded(&fleet, "hB", 1000);
    let forged = stop_and_count(&mut fleet, "hB");
    assert!(forged >= 1, "the forger published nothing");
    let dl = dead_letters(broker, forged as usize);
    let reason = format!(
        "forged host identity: the message claims host \"hB\" but is signed by host \"hA\"'s key ({a})"
    );
    assert_eq!(dl.len() as u64, forged, "{dl:?}");
    for (id, why) in &dl {
        assert!(id.starts_with("hB."), "{id}");
        assert_eq!(why, &reason, "{id}");
    }
    // Host A alone, exactly: 14 calls, 1 host, 2 containers.
    fleet.assert_converges("forged identity");
    let agg = std::fs::read_to_string(&fleet.aggregator.as_ref().expect("aggregator").stderr)
        .expect("aggregator log");
    assert!(agg.contains("enrolled hosts: "), "{agg}");
    assert!(agg.contains("forged host identity"), "{agg}");
}

#[test]
fn a_collector_with_another_hosts_key_is_dead_lettered() {
    let nats = Nats::start();
    another_hosts_key_is_dead_lettered(&nats_broker(&nats));
}

#[test]
fn kafka_a_collector_with_another_hosts_key_is_dead_lettered() {
    let kafka = Kafka::start();
    another_hosts_key_is_dead_lettered(&kafka_broker(&kafka));
}

/// Reads "collecting as host H (stream S), every I, from seq N" from the
/// collector's log: its stream id and the next seq it will send.
fn stream_and_next_seq(fleet: &Fleet, host: &str) -> (String, u64) {
    let r = &fleet.collectors[host];
    let log = std::fs::read_to_string(&r.stderr).expect("collector log");
    let line = log
        .lines()
        .find(|l| l.contains("collecting as host"))
        .expect("the start line");
    let stream = line
        .split("(stream ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("stream id")
        .to_string();
    let seq = line
        .split("from seq ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .expect("next seq");
    (stream, seq)
}

/// A forger publishes the victim's next three `host.boot.seq` before the
/// victim does: unsigned under the old-style id, and signed by a key of
/// no host under the new one. The victim's real messages are stored with
/// their exact totals; the six forgeries are dead-lettered.
#[test]
fn a_pre_empting_forgery_costs_the_real_host_nothing() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let broker = nats_broker(&nats);
    let mut fleet = Fleet::new(&broker, &ch);
    let ka = key_path(&fleet, "hA");
    let enrolled = write_enrolled(&fleet, &[("hA", &ka, false)]);
    start_verifying_aggregator(&mut fleet, &enrolled);
    start_signed(&mut fleet, "hA", &ka);
    let (stream, next) = stream_and_next_seq(&fleet, "hA");
    let thief = HostKey::from_seed([7; 32]);
    let mut forged = Vec::new();
    for seq in next..next + 3 {
        let mut e = envelope("hA", seq, &fleet.probe_image, 1_000_000);
        e.boot_id = stream.clone();
        let unsigned = wire::encode(&e).expect("encode");
        forged.push((e.dedupe_id(), unsigned));
        let signed = wire::encode_signed(&e, &thief).expect("encode");
        forged.push((wire::message_id(&e, &signed), signed));
    }
    let msgs: Vec<(&str, Vec<u8>)> = forged
        .iter()
        .map(|(id, b)| (id.as_str(), b.clone()))
        .collect();
    publish(&nats, &msgs, false, "2m");
    // Now the victim's containers: its messages carry the seqs forged.
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 2,
        calls: &[(GETPGRP, 5)],
    });
    fleet.assert_converges("pre-empted");
    let sent = stop_and_count(&mut fleet, "hA");
    assert!(sent >= next, "the victim sent nothing ({sent} < {next})");
    let dl = dead_letters(&broker, 6);
    let unsigned = "host \"hA\": unsigned message (wire version 4); enrolled_hosts accepts only messages signed by an enrolled host key (wire version 5: set [collector] max_wire_version = 5 on the host)".to_string();
    let foreign = format!(
        "host \"hA\" did not sign this message: its key {} is not enrolled for any host",
        thief.public_key()
    );
    let mut reasons: Vec<String> = dl.iter().map(|(_, r)| r.clone()).collect();
    reasons.sort();
    let mut want = vec![unsigned; 3];
    want.extend(vec![foreign; 3]);
    want.sort();
    assert_eq!(reasons, want);
    // The stream took all of them: 6 forgeries and every real message.
    assert_eq!(
        nats_stream_state(&nats, "SANDMINE_DELTAS", "last_seq"),
        6 + sent - (next - 1)
    );
}

/// A host revoked in the file is refused from the start; a host revoked
/// while the aggregator runs is refused from the reload on, and what it
/// sent before stays stored. Exact counts of both.
#[test]
fn a_revoked_hosts_messages_are_refused() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let broker = nats_broker(&nats);
    let mut fleet = Fleet::new(&broker, &ch);
    let (ka, kb) = (key_path(&fleet, "hA"), key_path(&fleet, "hB"));
    let enrolled = write_enrolled(&fleet, &[("hA", &ka, false), ("hB", &kb, true)]);
    start_verifying_aggregator(&mut fleet, &enrolled);
    start_signed(&mut fleet, "hA", &ka);
    start_signed(&mut fleet, "hB", &kb);
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 1,
        calls: &[(GETPGRP, 3)],
    });
    run_unrecorded(&fleet, "hB", 500);
    let revoked_b = stop_and_count(&mut fleet, "hB");
    assert!(revoked_b >= 1);
    fleet.assert_converges("hB revoked");
    assert_eq!(
        nats_stream_state(&nats, "SANDMINE_DEADLETTER", "messages"),
        revoked_b
    );

    // Revoke hA while everything runs: after the reload, nothing of hA
    // counts any more.
    // Its seq so far, with its spool drained: stop it, count, restart.
    let sent_before = stop_and_count(&mut fleet, "hA");
    write_enrolled(&fleet, &[("hA", &ka, true), ("hB", &kb, true)]);
    let agg = fleet.aggregator.as_ref().expect("aggregator");
    wait_for_line(agg, "enrolled hosts reloaded");
    start_signed(&mut fleet, "hA", &ka);
    run_unrecorded(&fleet, "hA", 900);
    let sent_after = stop_and_count(&mut fleet, "hA");
    assert!(sent_after > sent_before, "{sent_after} <= {sent_before}");
    let dl = dead_letters(&broker, (revoked_b + sent_after - sent_before) as usize);
    let mut by_host = std::collections::BTreeMap::<String, u64>::new();
    for (id, why) in &dl {
        let host = id.split('.').next().unwrap_or_default().to_string();
        assert_eq!(why, &format!("host \"{host}\" is revoked"), "{id}");
        *by_host.entry(host).or_default() += 1;
    }
    assert_eq!(
        by_host,
        [
            ("hA".to_string(), sent_after - sent_before),
            ("hB".to_string(), revoked_b)
        ]
        .into()
    );
    // hA's first batch, exactly, and nothing of what came after.
    fleet.assert_converges("hA revoked live");
}

/// `sandmine host-key`: the entry to enroll, the key created once, 0600,
/// and refused once others can read it.
#[test]
fn host_key_prints_the_entry_and_creates_the_key_once() {
    use std::os::unix::fs::PermissionsExt;
    let f = common::Fixture::new();
    let key = f.arg("keys/host.key");
    let o = f.sandmine(&["host-key", "--path", &key, "--host-id", "web 1"]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr
            .contains(&format!("created the signing key {key} (mode 0600)")),
        "{}",
        o.describe()
    );
    let seed = std::fs::read_to_string(&key).expect("the key file");
    let public = HostKey::from_seed_hex(&seed).expect("a seed").public_key();
    assert_eq!(
        o.stdout,
        format!("[hosts.\"web 1\"]\nkeys = [\"{public}\"]\n")
    );
    let mode = std::fs::metadata(&key).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Again: the same key, not created anew; the seed is never printed.
    let again = f.sandmine(&["host-key", "--path", &key, "--host-id", "web-1"]);
    assert_eq!(
        again.stdout,
        format!("[hosts.web-1]\nkeys = [\"{public}\"]\n")
    );
    assert!(!again.stderr.contains("created"), "{}", again.describe());
    assert!(!again.stdout.contains(seed.trim()));
    // Readable by others: refused, saying what to do.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = f.sandmine(&["host-key", "--path", &key]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let line = common::one_error_line(&o);
    assert!(
        line.contains("is readable or writable by others (mode 0644)")
            && line.contains("chmod 600"),
        "{line}"
    );
    let help = f.sandmine(&["host-key", "--help"]);
    assert!(help.stdout.contains("Example:"), "{}", help.describe());
}

/// An enrolled-hosts file that does not load stops the aggregator at
/// start, with a clear error, before anything is consumed.
#[test]
fn the_aggregator_refuses_to_start_on_a_bad_enrolled_hosts_file() {
    let f = common::Fixture::new();
    let db = format!("store.embedded.path={}", f.arg("store.db"));
    let missing = f.arg("nope.toml");
    let o = f.sandmine(&[
        "aggregate",
        "--set",
        &db,
        "--set",
        &format!("aggregator.enrolled_hosts={missing}"),
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        o.stderr.contains(&format!(
            "sandmine: error: cannot read the enrolled hosts file {missing}: No such file or directory"
        )),
        "{}",
        o.describe()
    );
    let bad = f.write("bad.toml", "[hosts.h]\nkeys = [\"00\"]\n");
    let o = f.sandmine(&[
        "aggregate",
        "--set",
        &db,
        "--set",
        &format!("aggregator.enrolled_hosts={}", bad.display()),
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        o.stderr.contains(&format!(
            "sandmine: error: enrolled hosts file {}: host \"h\": \"00\" is not an ed25519 public key",
            bad.display()
        )),
        "{}",
        o.describe()
    );
}
