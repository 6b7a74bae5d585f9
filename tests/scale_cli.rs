//! Scale-out (issue 12): two `sandmine aggregate` processes on one durable
//! consumer (NATS JetStream) or one consumer group (Kafka, tansu, a topic
//! of 2 partitions) share the work, into one ClickHouse 18.16, and the
//! stored totals stay exact while one of them is killed with SIGKILL and
//! restarted.
//!
//! The load is generated: rounds of hand-made deltas (one container of one
//! image per message, a known number of getpgrp calls), published through
//! the real broker client, so the ground truth is exact and the volume is
//! enough for both replicas to get some. Each aggregator serves its own
//! metrics; "did some of the work" is its `sandmine_messages_acked_total`
//! above 0. Both are started at once, as a Deployment starts its replicas
//! (both run the schema migrations on the same new database).
//!
//! Needs nats-server, clickhouse-server and tansu (scripts/install-deps.sh).

mod common;

use common::fleet::{
    envelope, kafka_broker_tagged, kafka_committed, kafka_records, kafka_uncommitted, nats_broker,
    nats_jsz_at, nats_stream_state, publish_to, unique, wait_for_line, GETPGRP,
};
use common::{Fixture, Running};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testsvc::gate::Gate;
use testsvc::{ClickHouse, Kafka, Nats};

/// Messages per store batch: small, so a round is several batches.
const BATCH: usize = 20;
/// How long one round may take to be consumed.
const ROUND: Duration = Duration::from_secs(60);
/// The same, on tansu after a member was killed (see its use).
const AFTER_KILL_ON_TANSU: Duration = Duration::from_secs(240);
/// Simulated hosts per round, and deltas per host per round.
const HOSTS: u64 = 6;
const PER_HOST: u64 = 10;

/// The aggregators, the published ground truth, and how to ask the store.
struct Scale {
    f: Fixture,
    cfg: PathBuf,
    broker: transport::BrokerConfig,
    image: String,
    /// Rounds published so far (the next seq of every host).
    rounds: u64,
    /// Ground truth: getpgrp calls, containers (one per message), hosts.
    calls: u64,
    containers: u64,
    hosts: BTreeSet<String>,
    /// name → (process, metrics port)
    aggs: Vec<(String, Option<Running>, u16)>,
    /// The broker's own view, printed when a round is not consumed (NATS:
    /// the monitor's `/jsz?consumers=true`).
    broker_view: Option<Box<dyn Fn() -> String>>,
}

impl Scale {
    /// `broker`: the `[broker]` section's body.
    fn new(broker: &str, ch: &ClickHouse) -> Scale {
        let f = Fixture::new();
        let cfg = f.write(
            "sandmine.toml",
            &format!(
                r#"[broker]
{broker}

[store.clickhouse]
url = "{ch_url}"
database = "scale"
timeout_secs = 5
connect_timeout_secs = 2

[aggregator]
batch_max_messages = {BATCH}
batch_max_wait = "200ms"
retry_max_backoff = "2s"
"#,
                ch_url = ch.url()
            ),
        );
        let text = std::fs::read_to_string(&cfg).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        let broker: transport::BrokerConfig = v["broker"].clone().try_into().unwrap();
        Scale {
            f,
            cfg,
            broker,
            image: format!("scale-{}", unique()),
            rounds: 0,
            calls: 0,
            containers: 0,
            hosts: BTreeSet::new(),
            aggs: Vec::new(),
            broker_view: None,
        }
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = self.f.command(args);
        c.arg("--config").arg(&self.cfg);
        c.env("SANDMINE_LOG", "debug");
        c
    }

    /// Starts aggregator `name` (not waiting for it) with its own metrics
    /// port and `--set`s; returns its index.
    fn spawn_aggregator(&mut self, name: &str, sets: &[&str]) -> usize {
        let port = testsvc::free_port();
        let mut cmd = self.cmd(&["aggregate"]);
        cmd.args(["--set", &format!("metrics.listen=\"127.0.0.1:{port}\"")]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        let r = self.f.spawn(cmd);
        match self.aggs.iter().position(|a| a.0 == name) {
            Some(i) => {
                self.aggs[i] = (name.to_string(), Some(r), port);
                i
            }
            None => {
                self.aggs.push((name.to_string(), Some(r), port));
                self.aggs.len() - 1
            }
        }
    }

    fn wait_consuming(&self, i: usize) {
        wait_for_line(
            self.aggs[i].1.as_ref().expect("running"),
            "msg=\"consuming\"",
        );
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut r) = self.aggs[i].1.take() {
            r.kill9();
        }
    }

    /// A counter from aggregator `i`'s /metrics (`sandmine_NAME`).
    fn metric(&self, i: usize, name: &str) -> u64 {
        let body = metrics_body(self.aggs[i].2);
        let key = format!("sandmine_{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&key))
            .unwrap_or_else(|| panic!("no {key} in the metrics of {}:\n{body}", self.aggs[i].0))
            .trim()
            .parse()
            .expect("a counter")
    }

    /// Per aggregator still running, (stored, acked) messages.
    fn progress(&self) -> Vec<(String, u64, u64)> {
        (0..self.aggs.len())
            .filter(|&i| self.aggs[i].1.is_some())
            .map(|i| {
                (
                    self.aggs[i].0.clone(),
                    self.metric(i, "messages_stored_total"),
                    self.metric(i, "messages_acked_total"),
                )
            })
            .collect()
    }

    /// Whether the store holds everything published so far.
    fn stored_all(&self) -> bool {
        self.observed() == self.expected()
    }

    fn acked(&self) -> Vec<u64> {
        (0..self.aggs.len())
            .map(|i| self.metric(i, "messages_acked_total"))
            .collect()
    }

    /// Publishes one round: PER_HOST deltas of each of HOSTS hosts, each
    /// one container with a different number of getpgrp calls.
    fn publish_round(&mut self) {
        let mut msgs = Vec::new();
        for h in 0..HOSTS {
            let host = format!("host-{h}");
            for k in 0..PER_HOST {
                let seq = self.rounds * PER_HOST + k + 1;
                let calls = 1 + seq * 7 + h * 1000;
                let env = envelope(&host, seq, &self.image, calls);
                let bytes = schemas::wire::encode(&env).unwrap();
                msgs.push((env.dedupe_id(), bytes));
                self.calls += calls;
                self.containers += 1;
            }
            self.hosts.insert(host);
        }
        self.rounds += 1;
        let refs: Vec<(&str, Vec<u8>)> =
            msgs.iter().map(|(i, b)| (i.as_str(), b.clone())).collect();
        publish_to(&self.broker, &refs, false);
    }

    fn expected(&self) -> (u64, u64, u64) {
        (self.calls, self.hosts.len() as u64, self.containers)
    }

    /// (getpgrp calls, hosts, containers) the store holds for the image.
    fn observed(&self) -> (u64, u64, u64) {
        let o = self.f.run_cmd(
            self.cmd(&["query", "image", &self.image]),
            common::RUN_TIMEOUT,
        );
        if o.code() != Some(0) {
            return (0, 0, 0);
        }
        let v: Value = serde_json::from_str(&o.stdout).expect("query JSON");
        let calls = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["abi"] == "x86_64" && s["nr"] == GETPGRP)
            .map(|s| s["calls"].as_u64().unwrap())
            .sum();
        (
            calls,
            v["hosts"].as_u64().unwrap(),
            v["containers"].as_u64().unwrap(),
        )
    }

    /// Waits until the store holds exactly the ground truth, then checks
    /// that it stays there past the broker's redelivery time.
    fn assert_exact(&self, what: &str) {
        let want = self.expected();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut got = self.observed();
        while got != want {
            assert!(
                Instant::now() < deadline,
                "{what}: the store did not converge\n want (calls, hosts, containers) {want:?}\n got  {got:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(300));
            got = self.observed();
        }
        // Longer than ack_wait (3 s) and a Kafka session (6 s): a late
        // redelivery has happened and must not have added anything.
        std::thread::sleep(Duration::from_secs(7));
        assert_eq!(
            self.observed(),
            want,
            "{what}: changed after converging\n{}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for (name, r, _) in &self.aggs {
            if let Some(r) = r {
                let err = std::fs::read_to_string(&r.stderr).unwrap_or_default();
                let tail: Vec<&str> = err.lines().rev().take(30).collect();
                s.push_str(&format!("--- aggregator {name} (last lines)\n"));
                for l in tail.into_iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
        s
    }

    /// Publishes rounds until every running aggregator in `who` has acked
    /// something (each round drained before the next, `drained` says
    /// when, within `per_round`); at most `max_rounds`.
    fn until_all_worked(
        &mut self,
        who: &[usize],
        max_rounds: u64,
        per_round: Duration,
        drained: &dyn Fn(&Scale) -> bool,
    ) {
        for _ in 0..max_rounds {
            self.publish_round();
            let deadline = Instant::now() + per_round;
            while !drained(self) {
                assert!(
                    Instant::now() < deadline,
                    "a round was not consumed within {per_round:?}: store {:?}, want {:?}; \
                     per aggregator (stored, acked): {:?}\n{}{}",
                    self.observed(),
                    self.expected(),
                    self.progress(),
                    self.logs(),
                    self.broker_view
                        .as_ref()
                        .map(|v| format!("--- broker\n{}\n", v()))
                        .unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            if who
                .iter()
                .all(|&i| self.metric(i, "messages_acked_total") > 0)
            {
                return;
            }
        }
        panic!(
            "after {max_rounds} rounds of {} messages, not every aggregator of {who:?} had acked any: {:?}\n{}",
            HOSTS * PER_HOST,
            self.acked(),
            self.logs()
        );
    }
}

/// The body of `GET /metrics` on a local port.
fn metrics_body(port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("metrics on port {port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

impl Drop for Scale {
    fn drop(&mut self) {
        for i in 0..self.aggs.len() {
            self.kill9(i);
        }
    }
}

/// NATS: one durable pull consumer, two aggregators. The kill lands in
/// the window the fault matrix uses: a gate between aggregator A and
/// nats-server holds A's next `$JS.ACK`, so A has inserted the batch and
/// the broker never got the ack; A is killed there, B takes over the
/// redelivery, A comes back and gets work again.
#[test]
fn two_aggregators_share_one_nats_durable_and_stay_exact_through_a_kill() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut s = Scale::new(&nats_broker(&nats), &ch);
    let monitor = nats.monitor_port;
    s.broker_view = Some(Box::new(move || nats_jsz_at(monitor)));
    let gate = Gate::start(nats.port);
    let via_gate = format!("broker.url=\"nats://127.0.0.1:{}\"", gate.port());
    let a = s.spawn_aggregator("A", &[&via_gate]);
    let b = s.spawn_aggregator("B", &[]);
    s.wait_consuming(a);
    s.wait_consuming(b);
    let stream_empty = || nats_stream_state(&nats, "SANDMINE_DELTAS", "messages") == 0;

    // (a) Both do some of the work.
    s.until_all_worked(&[a, b], 30, ROUND, &|_: &Scale| stream_empty());
    let shared = s.acked();
    eprintln!("acked after sharing: A {}, B {}", shared[a], shared[b]);
    s.assert_exact("two aggregators on one durable");

    // (c) A killed between its insert and its ack.
    let stored_before = s.metric(a, "messages_stored_total");
    gate.trip_on_request(b"$JS.ACK", 1);
    let mut rounds = 0;
    while !gate.tripped() {
        assert!(
            rounds < 30,
            "A never acked again in 30 rounds\n{}",
            s.logs()
        );
        s.publish_round();
        rounds += 1;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !gate.tripped() && !stream_empty() {
            assert!(
                Instant::now() < deadline,
                "a round was not consumed\n{}",
                s.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let stored = s.metric(a, "messages_stored_total");
    s.kill9(a);
    let unacked = nats_stream_state(&nats, "SANDMINE_DELTAS", "messages");
    gate.cut();
    assert!(
        stored > stored_before && unacked >= 1,
        "the kill missed the window: A stored {stored_before} -> {stored}, {unacked} unacked at the kill"
    );
    eprintln!("A killed with its ack held: it had stored {stored} messages, {unacked} unacked");
    s.publish_round();
    let a = s.spawn_aggregator("A", &[]);
    s.wait_consuming(a);
    s.until_all_worked(&[a, b], 30, ROUND, &|_: &Scale| stream_empty());
    let after = s.acked();
    eprintln!(
        "acked after the restart: A {} (new process), B {}",
        after[a], after[b]
    );
    assert!(after[b] > shared[b], "B did nothing after the kill");
    s.assert_exact("after A was killed between insert and ack, and restarted");
    assert_eq!(
        nats_stream_state(&nats, "SANDMINE_DEADLETTER", "messages"),
        0,
        "something was dead-lettered\n{}",
        s.logs()
    );
}

/// Kafka (tansu): one consumer group, a topic of 2 partitions, two
/// aggregators. A is killed with SIGKILL when its own metrics show a
/// batch inserted and not yet acked (read just before the kill: the
/// commit may land in between), B gets its partitions, A comes back and
/// gets work again.
#[test]
fn two_aggregators_share_one_kafka_group_and_stay_exact_through_a_kill() {
    let kafka = Kafka::start();
    let ch = ClickHouse::start();
    let tag = unique();
    let broker = format!("{}partitions = 2\n", kafka_broker_tagged(&kafka, &tag));
    let mut s = Scale::new(&broker, &ch);
    let topic = format!("deltas-{tag}");
    let group = format!("agg-{tag}");
    let a = s.spawn_aggregator("A", &[]);
    let b = s.spawn_aggregator("B", &[]);
    s.wait_consuming(a);
    s.wait_consuming(b);

    // A round is consumed when the store holds it (the group's committed
    // offsets are not waited for: see the end).
    s.until_all_worked(&[a, b], 30, ROUND, &Scale::stored_all);
    let shared = s.acked();
    eprintln!("acked after sharing: A {}, B {}", shared[a], shared[b]);
    s.assert_exact("two aggregators in one consumer group");

    // Kill A once it has stored a batch it has not acked.
    let mut hit = None;
    for _ in 0..30 {
        s.publish_round();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut check = Instant::now();
        loop {
            let stored = s.metric(a, "messages_stored_total");
            let acked = s.metric(a, "messages_acked_total");
            if stored > acked {
                hit = Some((stored, acked));
                break;
            }
            if check.elapsed() > Duration::from_millis(300) {
                if s.stored_all() {
                    break;
                }
                check = Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "a round was not consumed\n{}",
                s.logs()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        if hit.is_some() {
            break;
        }
    }
    let (stored, acked) = hit.unwrap_or_else(|| {
        panic!(
            "A was never seen between an insert and its ack in 30 rounds\n{}",
            s.logs()
        )
    });
    s.kill9(a);
    let uncommitted = kafka_uncommitted(&kafka, &topic, &group);
    eprintln!(
        "A killed having stored {stored} and acked {acked}; {uncommitted} records uncommitted"
    );
    s.publish_round();
    let a = s.spawn_aggregator("A", &[]);
    s.wait_consuming(a);
    // tansu can keep a member killed with SIGKILL in the group past its
    // session timeout, with partitions assigned to it: the fleet fault
    // tests saw a new member get none for up to about 180 s, and this test
    // saw a round's share of one partition wait over 60 s (once in 16 runs
    // in a loop, and once in an earlier CI run). Exactness, not that wait,
    // is what this test checks.
    s.until_all_worked(&[a, b], 30, AFTER_KILL_ON_TANSU, &Scale::stored_all);
    let after = s.acked();
    eprintln!(
        "acked after the restart: A {} (new process), B {}",
        after[a], after[b]
    );
    assert!(after[b] > shared[b], "B did nothing after the kill");
    s.assert_exact("after A was killed and restarted");
    // Printed, not asserted: a member commits only partitions still
    // assigned to it, but a rebalance between that check and the commit
    // can still land a commit behind the new owner's; those messages come
    // again and the store counts them once. (Before that check, this
    // test's wait for the group's commits to reach the end timed out once
    // in nine runs, and a run ended with 233 of 240 records committed:
    // transport/tests/kafka.rs, `kafka_a_member_never_commits_a_partition_it_lost`.)
    eprintln!(
        "records {}, committed {} (sum over partitions)",
        kafka_records(&kafka, &topic),
        kafka_committed(&kafka, &topic, &group)
    );
}
