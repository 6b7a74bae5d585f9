//! The fleet pipeline end to end, with the real binary and real services:
//! `sandmine collect` (several, one per simulated host) → nats-server
//! JetStream (or tansu, Kafka protocol) → `sandmine aggregate` →
//! ClickHouse 18.16, through faults. The ground truth is a probe that makes
//! a known number of each of a known set of syscalls per container, so the
//! store's totals are checked exactly: no loss, no double count.
//!
//! Simulated hosts share this kernel: each collector only publishes the
//! containers started under its own cgroup parent
//! (`collector.cgroup_parent`, `docker run --cgroup-parent`).
//!
//! Needs root, dockerd (scripts/start-dockerd.sh), the image
//! sandmine-test/busybox:1 (tests/images/build.sh), nats-server,
//! clickhouse-server and tansu (scripts/install-deps.sh). Fails, never
//! skips, when one is missing.

mod common;

use common::fleet::{
    docker, envelope, kafka_broker, kafka_broker_tagged, kafka_committed, kafka_records,
    kafka_records_keyed, kafka_uncommitted, nats_broker, nats_consumer_state, nats_jsz,
    nats_stream_state, publish, publish_to, serve, wait_calls, wait_for_line, Batch, Fleet,
    BUSYBOX, GETPGRP, SYSINFO, TIMES,
};
use common::Fixture;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use testsvc::gate::Gate;
use testsvc::{ClickHouse, Kafka, Nats};

/// Two simulated hosts, two images, and every fault the issue names, each
/// followed by an exact check of the store's totals.
#[test]
fn fleet_totals_stay_exact_through_faults() {
    let mut nats = Nats::start();
    let mut ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.start_aggregator();
    // The collectors publish through a gate of their own, which holds
    // their n-th publish in the collector cell.
    let pub_gate = Gate::start(nats.port);
    let via_pub_gate = format!("broker.url=\"nats://127.0.0.1:{}\"", pub_gate.port());
    fleet.start_collector_with("hA", &[&via_pub_gate]);
    fleet.start_collector_with("hB", &[&via_pub_gate]);
    let p = &[(GETPGRP, 1000), (TIMES, 10)];
    let b = &[(GETPGRP, 500), (SYSINFO, 3)];
    let round = |fleet: &mut Fleet| {
        fleet.run(&Batch {
            host: "hA",
            image: "probe",
            containers: 2,
            calls: p,
        });
        fleet.run(&Batch {
            host: "hA",
            image: "busybox",
            containers: 1,
            calls: b,
        });
        fleet.run(&Batch {
            host: "hB",
            image: "probe",
            containers: 1,
            calls: p,
        });
        fleet.run(&Batch {
            host: "hB",
            image: "busybox",
            containers: 2,
            calls: b,
        });
    };

    round(&mut fleet);
    fleet.assert_converges("steady state");

    // The faults land at points the test observes, not after sleeps: a
    // gate (testsvc::gate) between the aggregator and nats-server holds
    // its n-th ack, one between the aggregator and ClickHouse holds its
    // n-th insert. Each cell runs twice, n drawn from a seeded generator.
    let seed = fault_seed();
    eprintln!("fault points from seed {seed} (SANDMINE_FAULT_SEED={seed} repeats them)");
    let mut rng = seed;
    let nats_gate = Gate::start(nats.port);
    let ch_gate = Gate::start(ch.http_port);
    let via_nats_gate = format!("broker.url=\"nats://127.0.0.1:{}\"", nats_gate.port());
    let via_ch_gate = format!(
        "store.clickhouse.url=\"http://127.0.0.1:{}\"",
        ch_gate.port()
    );
    for rep in 1..=fault_reps() {
        // kill -9 of the aggregator between its insert and its ack. It
        // acks only after the insert, so once the gate holds its n-th ack
        // the rows are in ClickHouse and the broker never got the ack.
        let mut cell = Cell::start("aggregator-kill", "nats", seed, rep);
        fleet.kill_aggregator();
        let before = fleet.observed();
        round(&mut fleet);
        let waiting = wait_deliverable(&nats, 1, cell.name, rep);
        let nth = pick(&mut rng, waiting);
        cell.n = nth;
        nats_gate.trip_on_request(b"$JS.ACK", nth);
        fleet.start_aggregator_with(&[&via_nats_gate]);
        assert!(
            nats_gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the aggregator never sent ack {nth} (it sent {} in 60 s; {waiting} \
             messages were waiting)\njsz: {}\n{}",
            nats_gate.seen(),
            nats_jsz(&nats),
            fleet.logs()
        );
        fleet.kill_aggregator();
        nats_gate.cut();
        // The window was hit: the store has rows of this round, and the
        // message of the held ack is delivered and unacked (the consumer's
        // ack_pending; not the stream's count, which can hold orphans:
        // wait_deliverable).
        let inserted = fleet.observed() != before;
        let (_, unacked) = nats_consumer_state(&nats, DURABLE);
        cell.window(
            inserted && unacked >= 1,
            format!("ack {nth} held: rows inserted {inserted}, {unacked} unacked"),
        );
        fleet.start_aggregator();
        cell.exact(
            &fleet,
            &format!(
                "rep {rep}: aggregator killed between insert and ack {nth} ({unacked} unacked)"
            ),
        );

        // nats-server restarted with deliveries in flight: the aggregator
        // holds delivered, unacked messages (the gate holds its n-th ack)
        // when the server goes down; the collectors publish across it.
        let mut cell = Cell::start("broker-restart", "nats", seed, rep);
        fleet.kill_aggregator();
        round(&mut fleet);
        let waiting = wait_deliverable(&nats, 1, cell.name, rep);
        let nth = pick(&mut rng, waiting);
        cell.n = nth;
        nats_gate.trip_on_request(b"$JS.ACK", nth);
        fleet.start_aggregator_with(&[&via_nats_gate]);
        assert!(
            nats_gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the aggregator never sent ack {nth} (it sent {} in 60 s; {waiting} \
             messages were waiting)\njsz: {}\n{}",
            nats_gate.seen(),
            nats_jsz(&nats),
            fleet.logs()
        );
        let (_, in_flight) = nats_consumer_state(&nats, DURABLE);
        cell.window(
            in_flight >= 1,
            format!("nothing in flight at the restart (ack {nth} held)"),
        );
        nats.restart();
        nats_gate.cut();
        round(&mut fleet);
        cell.exact(
            &fleet,
            &format!(
                "rep {rep}: nats-server restarted with {in_flight} messages in flight (ack {nth} held)"
            ),
        );

        // ClickHouse stopped during an insert: the gate holds the
        // aggregator's n-th INSERT request, then the server goes down; the
        // collectors go on; the server comes back.
        let mut cell = Cell::start("store-outage", "nats", seed, rep);
        fleet.kill_aggregator();
        round(&mut fleet);
        wait_deliverable(&nats, 1, cell.name, rep);
        // containers, incidence and calls: three inserts per batch.
        let nth = pick(&mut rng, 3);
        cell.n = nth;
        ch_gate.trip_on_request(b"INSERT", nth);
        fleet.start_aggregator_with(&[&via_ch_gate]);
        assert!(
            ch_gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the aggregator never sent insert {nth}\n{}",
            fleet.logs()
        );
        ch.stop();
        ch_gate.cut();
        // The window: the insert in flight failed on the outage.
        wait_for_line(
            fleet.aggregator.as_ref().expect("aggregator"),
            "store unavailable",
        );
        cell.window(true, String::new());
        round(&mut fleet);
        ch.restart();
        cell.exact(
            &fleet,
            &format!("rep {rep}: ClickHouse stopped during insert {nth}"),
        );
        assert_eq!(
            nats_stream_state(&nats, "SANDMINE_DEADLETTER", "messages"),
            0,
            "rep {rep}: an outage dead-lettered a message"
        );
        fleet.kill_aggregator();
        fleet.start_aggregator();

        // kill -9 of the collectors between their spool (and state
        // commit) and the broker's write: their gate holds the n-th
        // publish to the delta subject, and everything after it; both
        // collector processes are killed while it is held.
        let mut cell = Cell::start("collector-kill", "nats", seed, rep);
        let stored = nats_stream_state(&nats, "SANDMINE_DELTAS", "last_seq");
        // A round makes at least two publishes (one delta per host).
        let nth = pick(&mut rng, 2);
        cell.n = nth;
        pub_gate.trip_on_request(b"PUB sandmine.deltas ", nth);
        round(&mut fleet);
        assert!(
            pub_gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the collectors published {} times, not {nth}\n{}",
            pub_gate.seen(),
            fleet.logs()
        );
        fleet.kill_collector("hA");
        fleet.kill_collector("hB");
        // The window was hit: the stream stored fewer than n messages
        // since (the n-th never reached it), and a host's spool on disk
        // holds a message it committed (seq at most state.json's) and
        // never had acked.
        let since = nats_stream_state(&nats, "SANDMINE_DELTAS", "last_seq") - stored;
        let mut held = Vec::new();
        for host in ["hA", "hB"] {
            let committed = fleet.committed_seq(host);
            for (env, _) in fleet.spooled(host) {
                if env.seq <= committed {
                    held.push(format!("{host} seq {} (committed {committed})", env.seq));
                }
            }
        }
        cell.window(
            since < nth as u64 && !held.is_empty(),
            format!("publish {nth} held: {since} stored since, spooled and committed: {held:?}"),
        );
        pub_gate.cut();
        fleet.start_collector_with("hA", &[&via_pub_gate]);
        fleet.start_collector_with("hB", &[&via_pub_gate]);
        cell.exact(
            &fleet,
            &format!(
                "rep {rep}: collectors killed with publish {nth} held ({since} stored since; \
                 spooled, unacked: {})",
                held.join(", ")
            ),
        );
    }

    // A collector killed and restarted; containers ran while it was down.
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 1,
        calls: p,
    });
    fleet.kill_collector("hA");
    fleet.run(&Batch {
        host: "hA",
        image: "busybox",
        containers: 2,
        calls: b,
    });
    fleet.start_collector("hA");
    fleet.assert_converges("collector restarted");
}

/// The same faults on Kafka: tansu on its SQLite storage (the log and the
/// committed offsets survive a restart), advertising a gate's address so
/// that every client connection goes through the gate
/// (`Gate::start_kafka`), which holds the aggregator's n-th OffsetCommit
/// or the collectors' n-th Produce. Each window is proved from tansu's
/// database on disk (and, for the collector kill, the collectors' spools).
#[test]
fn kafka_totals_stay_exact_through_faults() {
    /// The Kafka api_keys of OffsetCommit and Produce.
    const OFFSET_COMMIT: i16 = 8;
    const PRODUCE: i16 = 0;
    let kport = testsvc::free_port();
    let gate = Gate::start_kafka(kport);
    let mut kafka = Kafka::start_advertising(kport, gate.port());
    let mut ch = ClickHouse::start();
    let tag = common::fleet::unique();
    let (topic, dead, group) = (
        format!("deltas-{tag}"),
        format!("dead-{tag}"),
        format!("agg-{tag}"),
    );
    let mut fleet = Fleet::new(&kafka_broker_tagged(&kafka, &tag), &ch);
    fleet.start_aggregator();
    fleet.start_collector("hA");
    fleet.start_collector("hB");
    let p = &[(GETPGRP, 700), (TIMES, 7)];
    let b = &[(GETPGRP, 300), (SYSINFO, 5)];
    let round = |fleet: &mut Fleet| {
        for (host, image, containers, calls) in [
            ("hA", "probe", 1, p),
            ("hA", "busybox", 1, b),
            ("hB", "probe", 1, p),
            ("hB", "busybox", 2, b),
        ] {
            fleet.run(&Batch {
                host,
                image,
                containers,
                calls,
            });
        }
    };
    round(&mut fleet);
    fleet.assert_converges("kafka steady state");
    assert!(
        gate.accepted() >= 3,
        "the clients did not all go through the gate"
    );

    let seed = fault_seed();
    eprintln!("fault points from seed {seed} (SANDMINE_FAULT_SEED={seed} repeats them)");
    let mut rng = seed;
    let ch_gate = Gate::start(ch.http_port);
    let via_ch_gate = format!(
        "store.clickhouse.url=\"http://127.0.0.1:{}\"",
        ch_gate.port()
    );
    // One message per batch: each insert is followed by its own commit,
    // so the n-th commit follows the n-th insert.
    let one_per_batch = "aggregator.batch_max_messages=1";
    let wait_uncommitted = |kafka: &Kafka| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = kafka_uncommitted(kafka, &topic, &group);
            if n >= 1 {
                return n;
            }
            assert!(Instant::now() < deadline, "nothing uncommitted after 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    for rep in 1..=fault_reps() {
        // kill -9 of the aggregator between its insert and its offset
        // commit: the gate holds its n-th OffsetCommit. (Setup stops are
        // clean, so the gated aggregator gets the partitions at once.)
        let mut cell = Cell::start("aggregator-kill", "kafka", seed, rep);
        fleet.stop_aggregator();
        let before = fleet.observed();
        round(&mut fleet);
        let waiting = wait_uncommitted(&kafka);
        let committed = kafka_committed(&kafka, &topic, &group);
        let nth = pick(&mut rng, waiting);
        cell.n = nth;
        gate.trip_on_kafka_request(OFFSET_COMMIT, nth);
        fleet.start_aggregator_with(&[one_per_batch]);
        assert!(
            gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the aggregator sent {} commits, not {nth} ({waiting} waiting)\n{}",
            gate.seen(),
            fleet.logs()
        );
        fleet.kill_aggregator();
        gate.cut();
        // The window was hit: the store has rows of this round, and on
        // disk the group committed exactly the n - 1 commits before the
        // held one; the held commit's record is still uncommitted.
        let inserted = fleet.observed() != before;
        let on_disk = kafka_committed(&kafka, &topic, &group);
        let unacked = kafka_uncommitted(&kafka, &topic, &group);
        cell.window(
            inserted && on_disk == committed + nth as u64 - 1 && unacked >= 1,
            format!(
                "commit {nth} held: rows inserted {inserted}, committed offsets {on_disk} \
                 (want {committed} + {nth} - 1), {unacked} uncommitted"
            ),
        );
        fleet.start_aggregator();
        cell.exact(
            &fleet,
            &format!(
                "rep {rep}: aggregator killed between insert and commit {nth} ({unacked} uncommitted)"
            ),
        );

        // tansu restarted with messages in flight: the aggregator holds
        // fetched, uncommitted records (the gate holds its n-th commit)
        // when the broker goes down; the collectors publish across it.
        let mut cell = Cell::start("broker-restart", "kafka", seed, rep);
        fleet.stop_aggregator();
        round(&mut fleet);
        let waiting = wait_uncommitted(&kafka);
        let nth = pick(&mut rng, waiting);
        cell.n = nth;
        gate.trip_on_kafka_request(OFFSET_COMMIT, nth);
        fleet.start_aggregator_with(&[one_per_batch]);
        assert!(
            gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the aggregator sent {} commits, not {nth} ({waiting} waiting)\n{}",
            gate.seen(),
            fleet.logs()
        );
        let in_flight = kafka_uncommitted(&kafka, &topic, &group);
        let records = kafka_records(&kafka, &topic);
        kafka.restart();
        gate.cut();
        // The window: records in flight at the restart; the log and the
        // offsets survived it.
        let (records_after, in_flight_after) = (
            kafka_records(&kafka, &topic),
            kafka_uncommitted(&kafka, &topic, &group),
        );
        cell.window(
            in_flight >= 1 && records_after >= records && in_flight_after >= in_flight,
            format!(
                "commit {nth} held: {in_flight} in flight, records {records} -> {records_after}, \
                 uncommitted {in_flight} -> {in_flight_after}"
            ),
        );
        round(&mut fleet);
        cell.exact(
            &fleet,
            &format!(
                "rep {rep}: tansu restarted with {in_flight} records in flight (commit {nth} held)"
            ),
        );

        // ClickHouse stopped during an insert, on the Kafka path.
        let mut cell = Cell::start("store-outage", "kafka", seed, rep);
        fleet.stop_aggregator();
        round(&mut fleet);
        wait_uncommitted(&kafka);
        let nth = pick(&mut rng, 3);
        cell.n = nth;
        ch_gate.trip_on_request(b"INSERT", nth);
        fleet.start_aggregator_with(&[&via_ch_gate]);
        assert!(
            ch_gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the aggregator never sent insert {nth}\n{}",
            fleet.logs()
        );
        ch.stop();
        ch_gate.cut();
        wait_for_line(
            fleet.aggregator.as_ref().expect("aggregator"),
            "store unavailable",
        );
        cell.window(true, String::new());
        round(&mut fleet);
        ch.restart();
        cell.exact(
            &fleet,
            &format!("rep {rep}: ClickHouse stopped during insert {nth} (Kafka)"),
        );
        assert_eq!(
            kafka_records(&kafka, &dead),
            0,
            "rep {rep}: an outage dead-lettered a message"
        );

        // kill -9 of the collectors between their spool (and state
        // commit) and tansu's write: the gate holds the n-th Produce, so
        // tansu never gets it, and every later request; both collector
        // processes are killed while it is held.
        let mut cell = Cell::start("collector-kill", "kafka", seed, rep);
        // A round makes at least two Produce requests (each host publishes
        // at least one delta).
        let nth = pick(&mut rng, 2);
        cell.n = nth;
        gate.trip_on_kafka_request(PRODUCE, nth);
        round(&mut fleet);
        assert!(
            gate.wait_tripped(Duration::from_secs(60)),
            "rep {rep}: the collectors sent {} Produce requests, not {nth}\n{}",
            gate.seen(),
            fleet.logs()
        );
        fleet.kill_collector("hA");
        fleet.kill_collector("hB");
        // The window was hit, on disk: a host's spool holds a message it
        // committed (seq at most state.json's) whose id tansu's log lacks.
        let mut held = Vec::new();
        for host in ["hA", "hB"] {
            let committed = fleet.committed_seq(host);
            for (env, id) in fleet.spooled(host) {
                if env.seq <= committed && kafka_records_keyed(&kafka, &topic, &id) == 0 {
                    held.push(format!("{host} seq {} (committed {committed})", env.seq));
                }
            }
        }
        cell.window(
            !held.is_empty(),
            format!("Produce {nth} held: no committed spooled message is missing from tansu"),
        );
        gate.cut();
        fleet.start_collector("hA");
        fleet.start_collector("hB");
        cell.exact(
            &fleet,
            &format!(
                "rep {rep}: collectors killed with Produce {nth} held (spooled, not in tansu: {})",
                held.join(", ")
            ),
        );
        fleet.stop_aggregator();
        fleet.start_aggregator();
    }
}

/// The seed of the fault points: `SANDMINE_FAULT_SEED`, else the clock.
fn fault_seed() -> u64 {
    std::env::var("SANDMINE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// A number in 1..=n from a 64-bit LCG (Knuth's MMIX constants).
fn pick(state: &mut u64, n: u64) -> usize {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (1 + (*state >> 33) % n.max(1)) as usize
}

/// Repetitions of each fault cell: `SANDMINE_FAULT_REPS`, else 2 (CI).
/// `benchmarks/faults/run.sh` sets it to run the matrix many times.
fn fault_reps() -> usize {
    std::env::var("SANDMINE_FAULT_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(2)
}

/// One run of one fault × broker cell. It prints one machine-readable
/// line (`FAULT-CELL,cell,broker,seed,rep,n,window,exact,seconds`, read by
/// `benchmarks/faults/run.sh`) before the test fails on a missed window or
/// inexact totals, so a failing run is recorded too.
struct Cell {
    name: &'static str,
    broker: &'static str,
    seed: u64,
    rep: usize,
    n: usize,
    start: Instant,
}

impl Cell {
    fn start(name: &'static str, broker: &'static str, seed: u64, rep: usize) -> Cell {
        Cell {
            name,
            broker,
            seed,
            rep,
            n: 0,
            start: Instant::now(),
        }
    }

    fn line(&self, window: bool, exact: bool) {
        let yes = |b: bool| if b { "yes" } else { "no" };
        eprintln!(
            "FAULT-CELL,{},{},{},{},{},{},{},{:.1}",
            self.name,
            self.broker,
            self.seed,
            self.rep,
            self.n,
            yes(window),
            yes(exact),
            self.start.elapsed().as_secs_f64()
        );
    }

    /// The on-disk proof that the fault hit its window: fails the run
    /// (with its line) when it did not.
    fn window(&self, hit: bool, what: String) {
        if !hit {
            self.line(false, false);
            panic!(
                "{}/{} rep {}: window missed: {what}",
                self.name, self.broker, self.rep
            );
        }
    }

    /// The exact ground-truth check, then the run's line.
    fn exact(&self, fleet: &Fleet, what: &str) {
        let r = fleet.converges(what);
        self.line(true, r.is_ok());
        if let Err(e) = r {
            panic!("{e}");
        }
    }
}

/// The aggregators' durable consumer on the delta stream (the default).
const DURABLE: &str = "sandmine-aggregator";

/// Waits until the aggregators' consumer has at least `at_least` messages
/// to deliver (the collectors published what the round ran); returns how
/// many: those never delivered (`num_pending`) and those delivered and not
/// acked (`num_ack_pending`, redelivered after `ack_wait`). Every one of
/// them will reach the next aggregator, so the n-th ack drawn from them
/// is sent.
///
/// Not the stream's message count. nats-server 2.9 killed with -9 can
/// come back with acked messages still in the work-queue stream, below
/// the consumer's ack floor: never delivered again, counted forever
/// (`benchmarks/faults/nats_orphans.py` shows it on 2.9.10, and none on
/// 2.15). After the broker-restart cell the count then exceeded what
/// the aggregator would ever ack, and a draw of n above it waited 60 s
/// for an ack that could not come (benchmarks/faults/README.md). Each
/// draw prints a `JS-DRAW` line with both counts.
fn wait_deliverable(nats: &Nats, at_least: u64, cell: &str, rep: usize) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (pending, ack_pending) = nats_consumer_state(nats, DURABLE);
        let n = pending + ack_pending;
        if n >= at_least {
            let stream = nats_stream_state(nats, "SANDMINE_DELTAS", "messages");
            eprintln!(
                "JS-DRAW,{cell},{rep},stream={stream},pending={pending},ack_pending={ack_pending}"
            );
            return n;
        }
        assert!(
            Instant::now() < deadline,
            "the aggregators' consumer has {n} messages to deliver after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The delta stream is bounded (work-queue retention, discard-new): with
/// no aggregator, a small stream fills up, the collector's publishes are
/// refused and its deltas stay in its spool; once an aggregator consumes
/// (which deletes what it acked), the spool drains and the totals are
/// exact: nothing was deleted to make room, nothing was lost.
///
/// Debian's nats-server 2.9 deletes the oldest message of a full stream
/// when a new one is just over the room left (nats-server#4771): CI lost
/// the collector's seq 1 here about one run in three, until sandmine
/// bounded such a stream by count too (it then refuses with "maximum
/// messages exceeded"; `transport/tests/nats.rs::the_edge_of_a_full_stream_*`).
#[test]
fn a_full_stream_makes_the_collector_spool_and_loses_nothing() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let broker = format!("{}stream_max_bytes = 4096\n", nats_broker(&nats));
    let mut fleet = Fleet::new(&broker, &ch);
    fleet.start_collector("hA");
    let spool = fleet.f.path("state-hA").join("spool");
    let spooled = || {
        std::fs::read_dir(&spool)
            .map(|d| d.filter_map(Result::ok).count())
            .unwrap_or(0)
    };
    let collector_log = fleet.collectors["hA"].stderr.clone();
    let refused = || {
        std::fs::read_to_string(&collector_log)
            .unwrap_or_default()
            .contains("maximum messages exceeded")
    };
    let mut runs = 0;
    while !refused() {
        assert!(
            runs < 40,
            "40 runs did not fill the stream\n{}",
            fleet.logs()
        );
        fleet.run(&Batch {
            host: "hA",
            image: "probe",
            containers: 1,
            calls: &[(GETPGRP, 11)],
        });
        runs += 1;
    }
    // The refused deltas wait in the spool; the stream holds what fits.
    assert!(spooled() > 0, "nothing spooled\n{}", fleet.logs());
    let held = nats_stream_state(&nats, "SANDMINE_DELTAS", "messages");
    assert!(held > 0, "the stream holds nothing");
    assert!(nats_stream_state(&nats, "SANDMINE_DELTAS", "bytes") <= 4096);
    fleet.start_aggregator();
    fleet.assert_converges("after the full stream drained");
    let deadline = Instant::now() + Duration::from_secs(60);
    while spooled() > 0 {
        assert!(
            Instant::now() < deadline,
            "spool never drained\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Kafka instead of NATS: the same exact totals through tansu.
#[test]
fn kafka_pipeline_is_exact() {
    let kafka = Kafka::start();
    let ch = ClickHouse::start();
    let broker = kafka_broker(&kafka);
    let mut fleet = Fleet::new(&broker, &ch);
    fleet.start_aggregator();
    fleet.start_collector("hA");
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 2,
        calls: &[(GETPGRP, 321), (TIMES, 4)],
    });
    fleet.run(&Batch {
        host: "hA",
        image: "busybox",
        containers: 1,
        calls: &[(SYSINFO, 9)],
    });
    fleet.assert_converges("kafka");
    // The aggregator restarts from its committed offsets: nothing again.
    fleet.kill_aggregator();
    fleet.start_aggregator();
    fleet.assert_converges("kafka after an aggregator restart");
}

/// JetStream forgets message ids after its duplicate window; a spool
/// replayed after a longer outage must still count once: the store's key
/// is (host, boot, seq), not the broker's id.
#[test]
fn a_replay_after_the_duplicate_window_counts_once() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(
        &format!("{}duplicate_window = \"1s\"\n", nats_broker(&nats)),
        &ch,
    );
    fleet.start_aggregator();
    let e = envelope("hR", 1, "replay-test", 7);
    let bytes = schemas::wire::encode(&e).unwrap();
    publish(&nats, &[(&e.dedupe_id(), bytes.clone())], false, "1s");
    wait_calls(&fleet, "replay-test", 7);
    // Past the window the broker takes the same message again...
    std::thread::sleep(Duration::from_millis(1500));
    publish(&nats, &[(&e.dedupe_id(), bytes.clone())], false, "1s");
    // ...and a new message after it proves the replay was consumed.
    let e2 = envelope("hR", 2, "replay-test", 5);
    publish(
        &nats,
        &[(&e2.dedupe_id(), schemas::wire::encode(&e2).unwrap())],
        false,
        "1s",
    );
    wait_calls(&fleet, "replay-test", 12);
    let stored = nats_stream_state(&nats, "SANDMINE_DELTAS", "last_seq");
    assert_eq!(stored, 3, "the broker must have delivered the replay");
    // Work-queue retention: consumed (acked) deltas are deleted.
    assert_eq!(nats_stream_state(&nats, "SANDMINE_DELTAS", "messages"), 0);
}

/// A malformed message and one of a future wire version go to the
/// dead-letter stream with the reason, the aggregator keeps going, and
/// `replay-dead-letters` re-publishes what this version can decode.
#[test]
fn bad_messages_are_dead_lettered_and_replayable() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.start_aggregator();
    let good = envelope("hD", 1, "dl-test", 3);
    let mut future = schemas::wire::encode(&envelope("hD", 2, "dl-test", 100)).unwrap();
    future[4] = 9; // wire version 9
    publish(
        &nats,
        &[
            ("garbage-1", b"not a delta at all".to_vec()),
            ("future-1", future),
            (&good.dedupe_id(), schemas::wire::encode(&good).unwrap()),
        ],
        false,
        "2m",
    );
    wait_calls(&fleet, "dl-test", 3);
    assert_eq!(
        nats_stream_state(&nats, "SANDMINE_DEADLETTER", "messages"),
        2
    );
    let agg_log = std::fs::read_to_string(&fleet.aggregator.as_ref().unwrap().stderr).unwrap();
    assert!(
        agg_log.contains("dead-lettered message \\\"garbage-1\\\": bad magic"),
        "{agg_log}"
    );
    assert!(
        agg_log.contains("wire version 9 is newer than this reader"),
        "{agg_log}"
    );

    // Nothing decodable yet: both are kept.
    let o = fleet
        .f
        .run_cmd(fleet.cmd(&["replay-dead-letters"]), common::RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr
            .contains("replayed 0 message(s); 2 still undecodable, kept"),
        "{}",
        o.describe()
    );
    // A message dead-lettered by an older aggregator that this one reads.
    let old = envelope("hD", 3, "dl-test", 40);
    publish(
        &nats,
        &[(&old.dedupe_id(), schemas::wire::encode(&old).unwrap())],
        true,
        "2m",
    );
    std::thread::sleep(Duration::from_secs(3)); // the kept ones' ack wait
    let o = fleet
        .f
        .run_cmd(fleet.cmd(&["replay-dead-letters"]), common::RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr.contains("replayed 1 message(s)"),
        "{}",
        o.describe()
    );
    wait_calls(&fleet, "dl-test", 43);
}

/// `replay-dead-letters` on Kafka: it re-publishes what this version
/// decodes and keeps the rest, and a kept dead letter that sits before a
/// replayed one in the topic is still there on the next run (a Kafka
/// commit is one offset per partition: it must stop at the first kept).
#[test]
fn kafka_replay_keeps_what_it_cannot_decode() {
    let kafka = Kafka::start();
    let ch = ClickHouse::start();
    let broker = kafka_broker(&kafka);
    let mut fleet = Fleet::new(&broker, &ch);
    fleet.start_aggregator();
    let a = envelope("hK", 1, "kdl-test", 3);
    let b = envelope("hK", 2, "kdl-test", 40);
    let mut future = schemas::wire::encode(&envelope("hK", 3, "kdl-test", 100)).unwrap();
    future[4] = 9; // wire version 9
    let cfg: transport::BrokerConfig = toml::from_str(&broker).unwrap();
    publish_to(
        &cfg,
        &[
            ("garbage-1", b"not a delta at all".to_vec()),
            (&a.dedupe_id(), schemas::wire::encode(&a).unwrap()),
            ("future-1", future),
            (&b.dedupe_id(), schemas::wire::encode(&b).unwrap()),
        ],
        true,
    );
    let replay = |want: &str| {
        let o = fleet
            .f
            .run_cmd(fleet.cmd(&["replay-dead-letters"]), common::RUN_TIMEOUT);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
        assert!(o.stderr.contains(want), "want {want:?}: {}", o.describe());
    };
    replay("replayed 2 message(s); 2 still undecodable, kept");
    wait_calls(&fleet, "kdl-test", 43);
    // The next run starts at the first kept one: both kept ones are read
    // again (and the decodable ones after the first, replayed again and
    // counted once by the store).
    replay("replayed 2 message(s); 2 still undecodable, kept");
    wait_calls(&fleet, "kdl-test", 43);
}

/// Wrong credentials are one clear line naming the server, not a retry
/// loop.
#[test]
fn wrong_passwords_are_clear_errors() {
    let ch = ClickHouse::start();
    let nats = Nats::start_with_conf("authorization { user: agg, password: right }");
    let f = Fixture::new();
    let cfg = f.write(
        "bad.toml",
        &format!(
            "[broker]\n{}user = \"agg\"\npassword = \"wrong\"\n\n[store.clickhouse]\nurl = \"{}\"\nuser = \"{}\"\npassword = \"wrong\"\n",
            nats_broker(&nats),
            ch.url(),
            ClickHouse::USER
        ),
    );
    let cfg = cfg.to_str().unwrap();
    let o = f.sandmine(&["aggregate", "--config", cfg]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let line = common::one_error_line(&o);
    assert!(
        line.contains(&format!(
            "rejected the credentials of user \"{}\"",
            ClickHouse::USER
        )) && line.contains(&ch.url()),
        "{line}"
    );
    // Right ClickHouse password, wrong NATS one.
    let o = f.sandmine(&[
        "aggregate",
        "--config",
        cfg,
        "--set",
        &format!("store.clickhouse.password=\"{}\"", ClickHouse::PASSWORD),
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    // Log lines of the store's start-up come first; one error line ends it.
    let errors: Vec<&str> = o
        .stderr
        .lines()
        .filter(|l| l.starts_with("sandmine: error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", o.describe());
    assert!(o.stderr.trim_end().ends_with(errors[0]), "{}", o.describe());
    let line = errors[0];
    assert!(
        line.contains("authorization violation") && line.contains(&nats.url()),
        "{line}"
    );
}

/// `sandmine standalone`: collector and embedded store in one process, no
/// servers; `query` reads the same answers from the file.
#[test]
fn standalone_counts_exactly_into_the_embedded_store() {
    let ch = ClickHouse::start(); // unused by standalone; Fleet wants a config
    let mut fleet = Fleet::new("kind = \"nats\"\nurl = \"nats://127.0.0.1:1\"\n", &ch);
    let db = fleet.f.arg("standalone.db");
    let state = fleet.f.arg("state-standalone");
    let mut cmd = fleet.cmd(&["standalone", "--store", &db]);
    cmd.args(["--set", &format!("collector.state_dir=\"{state}\"")])
        .args([
            "--set",
            &format!("collector.pin_dir=\"{}\"", fleet.pin_dir("hC")),
        ])
        .args(["--set", "collector.host_id=\"hC\""])
        .args([
            "--set",
            &format!("collector.cgroup_parent=\"sm-{}-hC\"", fleet.tag),
        ]);
    let r = fleet.f.spawn(cmd);
    wait_for_line(&r, "collecting as host");
    fleet.collectors.insert("hC".into(), r);
    fleet.run(&Batch {
        host: "hC",
        image: "probe",
        containers: 2,
        calls: &[(GETPGRP, 250), (TIMES, 2)],
    });
    // Stop it cleanly: the last delta is cut and stored on SIGTERM.
    std::thread::sleep(Duration::from_millis(1500));
    let r = fleet.collectors.remove("hC").unwrap();
    let o = r.terminate(Duration::from_secs(30));
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let q = fleet.f.sandmine(&[
        "query",
        "--set",
        &format!("store.embedded.path=\"{db}\""),
        "image",
        &fleet.probe_image,
    ]);
    assert_eq!(q.code(), Some(0), "{}", q.describe());
    let v: Value = serde_json::from_str(&q.stdout).unwrap();
    assert_eq!(
        (v["hosts"].as_u64(), v["containers"].as_u64()),
        (Some(1), Some(2))
    );
    let calls = |nr: u32| -> u64 {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["nr"] == nr && s["abi"] == "x86_64")
            .map(|s| s["calls"].as_u64().unwrap())
            .unwrap_or(0)
    };
    assert_eq!((calls(GETPGRP), calls(TIMES)), (500, 4));
}

/// Issue 4 end to end: containers of two images on two simulated hosts,
/// their observations in ClickHouse, `publish` to a directory, and the
/// published profile enforced by docker: the container starts and serves,
/// and a syscall outside the profile fails. A syscall seen on one host
/// only is excluded (minimum 2), which keeps its image in log mode, and
/// the report and `explain` say so.
#[test]
fn published_profiles_are_enforced_by_docker() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.start_aggregator();
    fleet.start_collector("hA");
    fleet.start_collector("hB");
    for host in ["hA", "hB"] {
        for _ in 0..3 {
            serve(&mut fleet, host, 3, None);
        }
        fleet.run(&Batch {
            host,
            image: "probe",
            containers: 3,
            calls: &[(GETPGRP, 10)],
        });
    }
    // times (100) only on hA: below the 2-host bar.
    fleet.run(&Batch {
        host: "hA",
        image: "probe",
        containers: 2,
        calls: &[(TIMES, 5)],
    });
    fleet.assert_converges("two images on two hosts");

    let policy = fleet.f.write("policy.toml", common::fleet::TEST_POLICY);
    let policy = policy.to_str().unwrap().to_string();
    let out = fleet.f.arg("published");
    let mut cmd = fleet.cmd(&["publish", "--dir", &out, "--policy", &policy]);
    let (key, _) = fleet.f.signing_key();
    cmd.args(["--json", "--set", &key]);
    let o = fleet.f.run_cmd(cmd, common::RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let report: Value = serde_json::from_str(&o.stdout).expect("publish --json");
    let outcome = |image: &str| -> Value {
        report["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["image"] == image)
            .unwrap_or_else(|| panic!("{image} not in {report}"))
            .clone()
    };
    let state = |image: &str| -> String {
        let o = outcome(image);
        assert_eq!(o["outcome"], "published", "{o}");
        let meta = std::path::Path::new(&out)
            .join(o["slug"].as_str().unwrap())
            .join("current");
        let meta: Value = serde_json::from_str(&std::fs::read_to_string(meta).unwrap()).unwrap();
        meta["state"].as_str().unwrap().to_string()
    };
    assert_eq!(state(BUSYBOX), "enforce");
    assert_eq!(state(&fleet.probe_image), "log");

    // The enforced profile: the container starts and serves under it.
    let dir = std::path::Path::new(&out).join(publish::image_slug(BUSYBOX));
    let profile = dir.join("latest/seccomp.json");
    let text = std::fs::read_to_string(&profile).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
    let profile = profile.to_str().unwrap().to_string();
    serve(&mut fleet, "enforced", 3, Some(&profile));

    // A syscall outside the profile fails: mount and ptrace with EPERM,
    // clone3 with ENOSYS (so libc falls back to clone).
    let src = include_str!("../policy-compiler/tests/consumers/probe.c");
    let c = fleet.f.write("errno_probe.c", src);
    let bin = fleet.f.path("errno_probe");
    let st = Command::new("cc")
        .args(["-static", "-nostdlib", "-fno-stack-protector", "-O1", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
        .unwrap();
    assert!(st.success());
    let mount = format!("{}:/errno_probe:ro", bin.display());
    let opt = format!("seccomp={profile}");
    let o = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &opt,
        "-v",
        &mount,
        BUSYBOX,
        "/errno_probe",
        "165",
        "101",
        "435",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "165:1 101:1 435:38"
    );

    // The rogue-host syscall: excluded, and said so with the numbers.
    let pdir = std::path::Path::new(&out).join(publish::image_slug(&fleet.probe_image));
    let report = std::fs::read_to_string(pdir.join("latest/report.txt")).unwrap();
    assert!(
        report.contains("x86_64 times was used in a relevant phase but is below the syscall thresholds (seen on 1 host(s), the policy needs at least 2)"),
        "{report}"
    );
    let o = fleet.f.run_cmd(
        {
            let mut c = fleet.cmd(&["explain", "--policy", &policy]);
            c.args([fleet.probe_image.as_str(), "times"]);
            c
        },
        common::RUN_TIMEOUT,
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout.contains("not allowed")
            && o.stdout
                .contains("seen on 1 host(s), the policy needs at least 2"),
        "{}",
        o.stdout
    );
}

/// Bad input to the compiler: a corrupt policy, an unknown image, an empty
/// store. Each is one clear error line.
#[test]
fn compile_bad_input_is_a_clear_error() {
    let ch = ClickHouse::start();
    let f = Fixture::new();
    let cfg = f.write(
        "c.toml",
        &format!(
            "[store.clickhouse]\nurl = \"{}\"\ndatabase = \"empty\"\n",
            ch.url()
        ),
    );
    let cfg = cfg.to_str().unwrap();
    let bad = f.write("bad.toml", "[syscall]\nmin_host = 2\n");
    let o = f.sandmine(&[
        "compile",
        "--config",
        cfg,
        "--runtime-base",
        "none",
        "--policy",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let line = common::one_error_line(&o);
    assert!(
        line.contains("unknown field `min_host`") && line.contains("line 2"),
        "{line}"
    );
    let o = f.sandmine(&[
        "compile",
        "--config",
        cfg,
        "--runtime-base",
        "none",
        "-o",
        &f.arg("out"),
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let line = common::one_error_line(&o);
    assert!(line.contains("the store has no observations yet"), "{line}");
    // One image in the store, another asked for.
    let db = f.arg("one.db");
    let e = envelope("hX", 1, "only-image", 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = aggregator::store::Store::open(&aggregator::store::StoreConfig::Embedded(
            aggregator::store::EmbeddedConfig {
                path: db.clone().into(),
            },
        ))
        .await
        .unwrap();
        s.insert(&[e]).await.unwrap();
    });
    let set = format!("store.embedded.path=\"{db}\"");
    let o = f.sandmine(&[
        "compile",
        "--set",
        &set,
        "--runtime-base",
        "none",
        "--image",
        "nope:1",
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let line = common::one_error_line(&o);
    assert!(
        line.contains("image \"nope:1\" is not in the store"),
        "{line}"
    );
    let o = f.sandmine(&[
        "explain",
        "--set",
        &set,
        "--runtime-base",
        "none",
        "only-image",
        "not_a_syscall",
    ]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(common::one_error_line(&o).contains("\"not_a_syscall\" is not a x86_64 syscall name"));
    // The one image compiles: not ready (one container), the report says why.
    let out = f.arg("out2");
    let o = f.sandmine(&[
        "compile",
        "--set",
        &set,
        "--runtime-base",
        "none",
        "-o",
        &out,
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr.contains("only-image: not_ready"),
        "{}",
        o.describe()
    );
    let report = std::fs::read_to_string(
        std::path::Path::new(&out)
            .join(publish::image_slug("only-image"))
            .join("report.txt"),
    )
    .unwrap();
    assert!(report.contains("state: not_ready"), "{report}");
    assert!(
        report
            .contains("1 container(s) made a profile-relevant syscall; log mode needs at least 3"),
        "{report}"
    );
}

/// The aggregator publishes on its schedule when `[publish]` names a
/// target: no CronJob needed.
#[test]
fn the_aggregator_publishes_on_its_schedule() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    let policy = fleet
        .f
        .write("single-host.toml", "[syscall]\nmin_hosts = 1\n");
    let out = fleet.f.arg("scheduled");
    let (key, _) = fleet.f.signing_key();
    let mut cmd = fleet.cmd(&["aggregate"]);
    cmd.args(["--set", &key])
        .args(["--set", &format!("publish.dir=\"{out}\"")])
        .args(["--set", "publish.schedule=\"every 2s\""])
        .args(["--set", "publish.min_hosts=1"])
        .args(["--set", "publish.runtime_base=\"none\""])
        .args(["--set", &format!("publish.policy=\"{}\"", policy.display())]);
    let r = fleet.f.spawn(cmd);
    wait_for_line(&r, "publishing every 2s (dir ");
    fleet.aggregator = Some(r);
    let msgs: Vec<(String, Vec<u8>)> = (1..=3)
        .map(|seq| {
            let e = envelope("hS", seq, "scheduled-test", 2);
            (e.dedupe_id(), schemas::wire::encode(&e).unwrap())
        })
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = msgs.iter().map(|(i, b)| (i.as_str(), b.clone())).collect();
    publish(&nats, &refs, false, "2m");
    wait_calls(&fleet, "scheduled-test", 6);
    let meta = std::path::Path::new(&out)
        .join(publish::image_slug("scheduled-test"))
        .join("current");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !meta.exists() {
        assert!(
            Instant::now() < deadline,
            "nothing published\n{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    // Three containers on one host: enough for log mode, not to enforce.
    assert_eq!(v["state"], "log", "{v}");
    assert!(
        v["allowed"]["x86_64"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "getpgrp"),
        "{v}"
    );
}
