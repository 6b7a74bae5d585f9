//! The fleet harness of `tests/fleet_cli.rs`: simulated hosts (one
//! `sandmine collect` per host, each under its own cgroup parent), an
//! aggregator, the known-call probe run in containers, and the exact
//! store totals they must add up to.

use super::{Fixture, Running};
use schemas::wire::Envelope;
use schemas::Phase;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use testsvc::{ClickHouse, Kafka, Nats};

pub const BUSYBOX: &str = "sandmine-test/busybox:1";
pub const PROBE_SRC: &str = include_str!("../probes/known_calls.c");
/// x86_64 numbers the probe makes and neither libc start-up nor runc does.
pub const GETPGRP: u32 = 111;
pub const TIMES: u32 = 100;
pub const SYSINFO: u32 = 99;
/// How long the store may take to show what the containers did.
pub const CONVERGE: Duration = Duration::from_secs(120);

pub fn docker(args: &[&str]) -> std::process::Output {
    let o = Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker ({e}); run scripts/install-deps.sh"));
    assert!(
        o.status.success(),
        "docker {args:?} failed (is dockerd running? scripts/start-dockerd.sh): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

pub fn unique() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}x{:x}", std::process::id(), t)
}

/// Expected store totals: image → syscall nr → (calls, hosts, containers).
pub type Expected = BTreeMap<String, BTreeMap<u32, (u64, u64, u64)>>;

/// One run of containers on one simulated host: the probe's arguments
/// (nr:count pairs), and how many containers.
pub struct Batch<'a> {
    pub host: &'a str,
    pub image: &'a str,
    pub containers: u64,
    pub calls: &'a [(u32, u64)],
}

pub struct Fleet {
    pub f: Fixture,
    pub tag: String,
    pub cfg: PathBuf,
    pub probe: PathBuf,
    pub probe_image: String,
    pub aggregator: Option<Running>,
    pub collectors: BTreeMap<String, Running>,
    /// Per image, per host: containers run; per image, per syscall: calls.
    pub hosts_seen: BTreeMap<String, BTreeMap<String, u64>>,
    pub calls: BTreeMap<String, BTreeMap<u32, u64>>,
    /// Per image, per syscall: per host, containers that made it.
    pub users: BTreeMap<String, BTreeMap<u32, BTreeMap<String, u64>>>,
}

impl Fleet {
    /// `broker` is the `[broker]` section's body.
    pub fn new(broker: &str, ch: &ClickHouse) -> Fleet {
        let f = Fixture::new();
        let tag = unique();
        docker(&["image", "inspect", BUSYBOX]);
        let probe = f.probe_static("known_calls", PROBE_SRC);
        // The second image: only the probe, imported from a tarball.
        let root = f.path("probe-root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::copy(&probe, root.join("probe")).unwrap();
        let tar = f.path("probe.tar");
        let st = Command::new("tar")
            .args([
                "-C",
                root.to_str().unwrap(),
                "-cf",
                tar.to_str().unwrap(),
                "probe",
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let probe_image = format!("sandmine-test/fleet-probe:{tag}");
        docker(&["import", tar.to_str().unwrap(), &probe_image]);
        let cfg = f.write(
            "sandmine.toml",
            &format!(
                r#"[collector]
interval = "1s"

[broker]
{broker}

[store.clickhouse]
url = "{ch_url}"
database = "fleet"
timeout_secs = 5
connect_timeout_secs = 2

[aggregator]
batch_max_wait = "200ms"
retry_max_backoff = "2s"
"#,
                ch_url = ch.url()
            ),
        );
        Fleet {
            f,
            tag,
            cfg,
            probe,
            probe_image,
            aggregator: None,
            collectors: BTreeMap::new(),
            hosts_seen: BTreeMap::new(),
            calls: BTreeMap::new(),
            users: BTreeMap::new(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.f.command(args);
        c.arg("--config").arg(&self.cfg);
        c.env("SANDMINE_LOG", "debug");
        c
    }

    pub fn start_aggregator(&mut self) {
        self.start_aggregator_with(&[]);
    }

    /// [`Fleet::start_aggregator`] with `--set KEY=VALUE`s.
    pub fn start_aggregator_with(&mut self, sets: &[&str]) {
        let mut cmd = self.cmd(&["aggregate"]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        let r = self.f.spawn(cmd);
        wait_for_line(&r, "msg=\"consuming\"");
        self.aggregator = Some(r);
    }

    /// SIGTERM: the aggregator stops cleanly (a Kafka consumer leaves its
    /// group, so the next one is assigned the partitions at once rather
    /// than after the broker gives up on a killed member).
    pub fn stop_aggregator(&mut self) {
        if let Some(mut a) = self.aggregator.take() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(a.pid(), libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while !a.has_exited() {
                if Instant::now() > deadline {
                    a.kill9();
                    panic!("the aggregator did not stop within 30 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn kill_aggregator(&mut self) {
        if let Some(mut a) = self.aggregator.take() {
            a.kill9();
        }
    }

    pub fn pin_dir(&self, host: &str) -> String {
        format!("/sys/fs/bpf/sandmine-test-{}-{host}", self.tag)
    }

    pub fn start_collector(&mut self, host: &str) {
        self.start_collector_with(host, &[]);
    }

    /// [`Fleet::start_collector`] with more `--set KEY=VALUE`s.
    pub fn start_collector_with(&mut self, host: &str, sets: &[&str]) {
        let state = self.f.arg(&format!("state-{host}"));
        let mut cmd = self.cmd(&["collect"]);
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.args(["--set", &format!("collector.host_id=\"{host}\"")])
            .args(["--set", &format!("collector.state_dir=\"{state}\"")])
            .args([
                "--set",
                &format!("collector.pin_dir=\"{}\"", self.pin_dir(host)),
            ])
            .args([
                "--set",
                &format!("collector.cgroup_parent=\"sm-{}-{host}\"", self.tag),
            ]);
        let r = self.f.spawn(cmd);
        // The kernel program is attached once the daemon says so.
        wait_for_line(&r, "collecting as host");
        self.collectors.insert(host.to_string(), r);
    }

    pub fn kill_collector(&mut self, host: &str) {
        if let Some(mut c) = self.collectors.remove(host) {
            c.kill9();
        }
    }

    /// Runs the batch's containers one after another (each exits at once)
    /// and records what the store must end up with.
    pub fn run(&mut self, b: &Batch) {
        let image = if b.image == "probe" {
            self.probe_image.clone()
        } else {
            BUSYBOX.to_string()
        };
        let args: Vec<String> = b.calls.iter().map(|(nr, n)| format!("{nr}:{n}")).collect();
        let parent = format!("/sm-{}-{}", self.tag, b.host);
        let mount = format!("{}:/probe:ro", self.probe.display());
        for _ in 0..b.containers {
            let mut a = vec![
                "run",
                "--rm",
                "--network",
                "none",
                "--cgroup-parent",
                &parent,
            ];
            if image == BUSYBOX {
                a.extend(["-v", &mount]);
            }
            a.push(&image);
            a.push("/probe");
            a.extend(args.iter().map(String::as_str));
            docker(&a);
        }
        *self
            .hosts_seen
            .entry(image.clone())
            .or_default()
            .entry(b.host.to_string())
            .or_default() += b.containers;
        for (nr, n) in b.calls {
            *self
                .calls
                .entry(image.clone())
                .or_default()
                .entry(*nr)
                .or_default() += n * b.containers;
            *self
                .users
                .entry(image.clone())
                .or_default()
                .entry(*nr)
                .or_default()
                .entry(b.host.to_string())
                .or_default() += b.containers;
        }
    }

    pub fn expected(&self) -> Expected {
        let mut e = Expected::new();
        for (image, per_nr) in &self.calls {
            for (nr, calls) in per_nr {
                let users = &self.users[image][nr];
                let hosts = users.len() as u64;
                let containers: u64 = users.values().sum();
                e.entry(image.clone())
                    .or_default()
                    .insert(*nr, (*calls, hosts, containers));
            }
        }
        e
    }

    /// What the store says now, for the probe's syscalls, plus per image
    /// (hosts, containers).
    pub fn observed(&self) -> (Expected, BTreeMap<String, (u64, u64)>) {
        let mut e = Expected::new();
        let mut exposure = BTreeMap::new();
        for image in self.hosts_seen.keys() {
            let o = self
                .f
                .run_cmd(self.cmd(&["query", "image", image]), super::RUN_TIMEOUT);
            if o.code() != Some(0) {
                continue;
            }
            let v: Value = serde_json::from_str(&o.stdout).expect("query JSON");
            exposure.insert(
                image.clone(),
                (
                    v["hosts"].as_u64().unwrap(),
                    v["containers"].as_u64().unwrap(),
                ),
            );
            for s in v["syscalls"].as_array().unwrap() {
                let nr = s["nr"].as_u64().unwrap() as u32;
                if s["abi"] == "x86_64" && [GETPGRP, TIMES, SYSINFO].contains(&nr) {
                    e.entry(image.clone()).or_default().insert(
                        nr,
                        (
                            s["calls"].as_u64().unwrap(),
                            s["hosts"].as_u64().unwrap(),
                            s["containers"].as_u64().unwrap(),
                        ),
                    );
                }
            }
        }
        (e, exposure)
    }

    pub fn expected_exposure(&self) -> BTreeMap<String, (u64, u64)> {
        self.hosts_seen
            .iter()
            .map(|(i, h)| (i.clone(), (h.len() as u64, h.values().sum())))
            .collect()
    }

    /// Waits until the store shows exactly the expected totals, then
    /// checks they stay exact (a late redelivery must not add anything).
    pub fn assert_converges(&self, what: &str) {
        if let Err(e) = self.converges(what) {
            panic!("{e}");
        }
    }

    /// [`Fleet::assert_converges`], with the failure as a value (the fault
    /// tests record a cell run's result before they fail).
    pub fn converges(&self, what: &str) -> Result<(), String> {
        let want = (self.expected(), self.expected_exposure());
        let deadline = Instant::now() + CONVERGE;
        let mut got = self.observed();
        while got != want {
            if Instant::now() > deadline {
                return Err(format!(
                    "{what}: the store did not converge to the exact totals\n want {want:?}\n got  {got:?}\n{}",
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
            got = self.observed();
        }
        // Longer than the broker's ack wait: any redelivery has happened.
        std::thread::sleep(Duration::from_secs(4));
        let again = self.observed();
        if again != want {
            return Err(format!(
                "{what}: totals changed after converging\n want {want:?}\n got  {again:?}\n{}",
                self.logs()
            ));
        }
        Ok(())
    }

    /// The seq a host's collector committed, as its `state.json` on disk
    /// says.
    pub fn committed_seq(&self, host: &str) -> u64 {
        let path = self.f.path(&format!("state-{host}")).join("state.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: Value = serde_json::from_slice(&bytes).expect("state.json is JSON");
        v["seq"].as_u64().expect("a seq in state.json")
    }

    /// A host's spooled messages on disk, in seq order: the envelope and
    /// the broker's message id of its bytes (`wire::message_id`).
    pub fn spooled(&self, host: &str) -> Vec<(Envelope, String)> {
        let dir = self.f.path(&format!("state-{host}")).join("spool");
        let mut v: Vec<(Envelope, String)> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a spool entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "msg"))
            .map(|p| {
                let bytes = std::fs::read(&p).expect("read a spooled message");
                let env = schemas::wire::decode(&bytes).expect("a spooled message decodes");
                let id = schemas::wire::message_id(&env, &bytes);
                (env, id)
            })
            .collect();
        v.sort_by_key(|(e, _)| e.seq);
        v
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for (name, r) in self
            .aggregator
            .iter()
            .map(|a| ("aggregator".to_string(), a))
            .chain(
                self.collectors
                    .iter()
                    .map(|(h, c)| (format!("collector {h}"), c)),
            )
        {
            let err = std::fs::read_to_string(&r.stderr).unwrap_or_default();
            let tail: Vec<&str> = err.lines().rev().take(25).collect();
            s.push_str(&format!("--- {name} (last lines)\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Fleet {
    /// `KEY=VALUE` for `docker create --label`: a container of this fleet
    /// that a test keeps after it exits, removed when the fleet is
    /// dropped. A test that needs the collector to learn the container's
    /// seccomp filter keeps it: the collector inspects a container when
    /// the engine announces it, and under load a `docker run --rm`
    /// container can be gone by then (its filter is then "unknown").
    pub fn keep_label(&self) -> String {
        format!("sandmine-test-fleet={}", self.tag)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.kill_aggregator();
        let hosts: Vec<String> = self.collectors.keys().cloned().collect();
        for h in hosts {
            self.kill_collector(&h);
        }
        // Every host's pins, whatever its name (spoof_cli's hS left its
        // pins behind when only hA to hC were removed).
        let mine = format!("sandmine-test-{}-", self.tag);
        if let Ok(entries) = std::fs::read_dir("/sys/fs/bpf") {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&mine) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        // The containers a test kept after they exited (see `keep_label`).
        if let Ok(o) = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label={}", self.keep_label()),
            ])
            .output()
        {
            let ids = String::from_utf8_lossy(&o.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.probe_image])
            .output();
    }
}

/// Waits until the process logged a line containing `needle`.
pub fn wait_for_line(r: &Running, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let err = std::fs::read_to_string(&r.stderr).unwrap_or_default();
        if err.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} within 60 s; stderr:\n{err}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn nats_broker(n: &Nats) -> String {
    format!(
        "kind = \"nats\"\nurl = \"{}\"\nack_wait = \"3s\"\ntimeout = \"2s\"\n",
        n.url()
    )
}

/// A `[broker]` body for tansu, with topics and group of their own.
pub fn kafka_broker(kafka: &Kafka) -> String {
    kafka_broker_tagged(kafka, &unique())
}

/// A `[broker]` body for tansu: topics `deltas-TAG` and `dead-TAG`, group
/// `agg-TAG`.
pub fn kafka_broker_tagged(kafka: &Kafka, tag: &str) -> String {
    format!(
        "kind = \"kafka\"\nbrokers = \"{}\"\ntopic = \"deltas-{tag}\"\ndead_letter_topic = \"dead-{tag}\"\ngroup_id = \"agg-{tag}\"\n",
        kafka.bootstrap(),
    )
}

/// One number from tansu's SQLite database (its on-disk log and offsets),
/// read with the sqlite3 CLI (read-only; tansu keeps it in WAL mode).
fn kafka_sql(kafka: &Kafka, sql: &str) -> u64 {
    let o = Command::new("sqlite3")
        .args(["-readonly", "-cmd", ".timeout 10000"])
        .arg(kafka.db())
        .arg(sql)
        .output()
        .unwrap_or_else(|e| panic!("cannot run sqlite3 ({e}); run scripts/install-deps.sh"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("sqlite3 {sql}: not a number: {out:?}"))
}

/// Records of `topic` in tansu's log on disk.
pub fn kafka_records(kafka: &Kafka, topic: &str) -> u64 {
    kafka_sql(
        kafka,
        &format!(
            "select count(*) from record r join topition p on r.topition = p.id \
             join topic t on p.topic = t.id where t.name = '{topic}'"
        ),
    )
}

/// The sum over `topic`'s partitions of `group`'s committed offset, on
/// disk (0 for a partition it never committed).
pub fn kafka_committed(kafka: &Kafka, topic: &str, group: &str) -> u64 {
    kafka_sql(
        kafka,
        &format!(
            "select coalesce(sum(o.committed_offset), 0) from consumer_offset o \
             join topition p on o.topition = p.id join topic t on p.topic = t.id \
             join consumer_group g on o.consumer_group = g.id \
             where t.name = '{topic}' and g.name = '{group}'"
        ),
    )
}

/// Records of `topic` whose key (the broker's message id) is `key`, on
/// disk.
pub fn kafka_records_keyed(kafka: &Kafka, topic: &str, key: &str) -> u64 {
    assert!(
        key.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)),
        "a message id to quote: {key:?}"
    );
    kafka_sql(
        kafka,
        &format!(
            "select count(*) from record r join topition p on r.topition = p.id \
             join topic t on p.topic = t.id where t.name = '{topic}' \
             and cast(r.k as text) = '{key}'"
        ),
    )
}

/// Records of `topic` at or past `group`'s committed offset, on disk.
pub fn kafka_uncommitted(kafka: &Kafka, topic: &str, group: &str) -> u64 {
    kafka_sql(
        kafka,
        &format!(
            "select count(*) from record r join topition p on r.topition = p.id \
             join topic t on p.topic = t.id \
             left join consumer_offset o on o.topition = p.id and o.consumer_group = \
             (select id from consumer_group where name = '{group}') \
             where t.name = '{topic}' and r.offset_id >= coalesce(o.committed_offset, 0)"
        ),
    )
}

/// A hand-made delta: `calls` getpgrp calls of one docker container of
/// `image`.
pub fn envelope(host: &str, seq: u64, image: &str, calls: u64) -> Envelope {
    let t = super::wire::at(seq);
    let getpgrp = super::wire::call(GETPGRP, calls, Phase::Image, t);
    super::wire::one_container(host, seq, "docker", image, vec![getpgrp])
}

/// Publishes raw payloads to the main subject (or the dead-letter one).
pub fn publish(nats: &Nats, msgs: &[(&str, Vec<u8>)], dead_letter: bool, window: &str) {
    let cfg: transport::BrokerConfig = toml::from_str(&format!(
        "{}duplicate_window = \"{window}\"\n",
        nats_broker(nats)
    ))
    .unwrap();
    publish_to(&cfg, msgs, dead_letter);
}

/// Publishes raw payloads through the broker of `cfg`.
pub fn publish_to(cfg: &transport::BrokerConfig, msgs: &[(&str, Vec<u8>)], dead_letter: bool) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let p = transport::Publisher::connect(cfg).await.unwrap();
        for (id, bytes) in msgs {
            if dead_letter {
                p.publish_dead_letter(id, bytes, "test").await.unwrap();
            } else {
                p.publish(id, bytes).await.unwrap();
            }
        }
    });
}

/// getpgrp calls the store holds for `image` (0 if it has none).
pub fn stored_calls(fleet: &Fleet, image: &str) -> u64 {
    let o = fleet
        .f
        .run_cmd(fleet.cmd(&["query", "image", image]), super::RUN_TIMEOUT);
    if o.code() != Some(0) {
        return 0;
    }
    let v: Value = serde_json::from_str(&o.stdout).unwrap();
    v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["nr"] == GETPGRP)
        .map(|s| s["calls"].as_u64().unwrap())
        .sum()
}

pub fn wait_calls(fleet: &Fleet, image: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while stored_calls(fleet, image) != want {
        assert!(
            Instant::now() < deadline,
            "{image}: store has {} calls, want {want}\n{}",
            stored_calls(fleet, image),
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // And it stays there.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored_calls(fleet, image), want, "{}", fleet.logs());
}

/// A field of the stream's state (`messages` held now, `last_seq` ever
/// stored), from the monitoring endpoint.
pub fn nats_stream_state(nats: &Nats, stream: &str, field: &str) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", nats.monitor_port)).unwrap();
    write!(s, "GET /jsz?streams=true HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let json = &body[body.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(json).unwrap();
    v["account_details"][0]["stream_detail"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == stream)
        .map(|d| d["state"][field].as_u64().unwrap())
        .unwrap_or_else(|| panic!("no stream {stream} in {v}"))
}

/// What the delta stream's consumer `durable` will still deliver: its
/// `(num_pending, num_ack_pending)` (`/jsz`): messages never delivered,
/// and messages delivered and not acked yet (redelivered after
/// `ack_wait`).
pub fn nats_consumer_state(nats: &Nats, durable: &str) -> (u64, u64) {
    let v: Value = serde_json::from_str(&nats_jsz(nats)).unwrap();
    let consumers = v["account_details"][0]["stream_detail"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "SANDMINE_DELTAS")
        .map(|d| d["consumer_detail"].clone())
        .unwrap_or_else(|| panic!("no stream SANDMINE_DELTAS in {v}"));
    consumers
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == durable))
        .map(|c| {
            (
                c["num_pending"].as_u64().unwrap_or(0),
                c["num_ack_pending"].as_u64().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0))
}

/// The JetStream state of every stream and consumer (`/jsz`), for a
/// failure message: what the broker held and had delivered, unacked.
pub fn nats_jsz(nats: &Nats) -> String {
    nats_jsz_at(nats.monitor_port)
}

/// [`nats_jsz`] by the server's monitor port.
pub fn nats_jsz_at(monitor_port: u16) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", monitor_port)).unwrap();
    write!(s, "GET /jsz?consumers=true HTTP/1.0\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body[body.find("\r\n\r\n").unwrap() + 4..].to_string()
}

/// Serves HTTP from the busybox image on a simulated host: starts httpd,
/// fetches the page `gets` times, removes the container.
pub fn serve(fleet: &mut Fleet, host: &str, gets: usize, seccomp: Option<&str>) {
    let port = testsvc::free_port();
    let parent = format!("/sm-{}-{host}", fleet.tag);
    let listen = format!("127.0.0.1:{port}");
    let mut a = vec!["run", "-d", "--network", "host", "--cgroup-parent", &parent];
    let opt;
    if let Some(f) = seccomp {
        opt = format!("seccomp={f}");
        a.extend(["--security-opt", &opt]);
    }
    a.extend([
        BUSYBOX, "busybox", "httpd", "-f", "-p", &listen, "-h", "/www",
    ]);
    let id = String::from_utf8(docker(&a).stdout)
        .unwrap()
        .trim()
        .to_string();
    for _ in 0..gets {
        let body = http_get(port);
        assert!(body.contains("sandmine-ok"), "httpd answered {body:?}");
    }
    docker(&["rm", "-f", &id]);
    *fleet
        .hosts_seen
        .entry(BUSYBOX.to_string())
        .or_default()
        .entry(host.to_string())
        .or_default() += 1;
}

pub fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok() {
                let mut body = String::new();
                if s.read_to_string(&mut body).is_ok() && !body.is_empty() {
                    return body;
                }
            }
        }
        assert!(Instant::now() < deadline, "nothing answered on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Low bars so a test fleet of 6 containers per image can be enforced; the
/// per-syscall host bar stays at its default of 2 (`fleet_cli`,
/// `denials_cli`).
pub const TEST_POLICY: &str = r#"
[syscall]
min_hosts = 2
min_containers = 2

[enforce]
min_containers = 4
min_hosts = 2
min_container_hours = 0.0
min_coverage = 0.0
min_quiet_hours = 0.0
max_recent_new_share = 1.0
"#;
