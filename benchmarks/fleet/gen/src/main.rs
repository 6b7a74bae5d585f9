//! `fleetgen`: simulated collectors for the fleet benchmarks
//! (`benchmarks/fleet/run.sh`).
//!
//! The model: H hosts, each running 50 containers of 5 images drawn from a
//! fleet-wide pool of 100 images. Every image has a syscall set of 80
//! numbers; a steady container calls the image's 30 "hot" syscalls in
//! every interval (counts change, nothing new), a new container calls all
//! 80 in its first interval (all new). Churn: each interval, on every
//! host, `churn` containers (default 1 = 2% of 50) exit (reported with
//! `exited_at_ms`) and as many new ones start. The warm-up (every
//! container's first interval) is assumed to have happened before the
//! run: interval 0 is already steady.
//!
//! `--model realistic` (for `prepare` and `scale`) replaces the uniform
//! draws with heavy tails ([`Model::Realistic`]): image popularity is Zipf
//! (a few images run on most hosts), syscall popularity is Zipf (every
//! image uses `read`-like syscalls, few use the rare ones), image sizes
//! vary (40-150 syscalls), a steady container calls its image's core set
//! every interval and each tail syscall with a probability that falls as a
//! power of its rank (so a long-lived container still meets a syscall for
//! the first time now and then: incidence rows), a new container calls its
//! start-up set, and churn differs by host (most hosts little, a few batch
//! hosts a fifth of their containers per interval). `--cross-hour-at`
//! adds the hourly refresh burst to either model.
//!
//! Subcommands (all print one JSON object on stdout):
//! - `prepare`: one interval of N hosts, published to JetStream with
//!   `publish_many`; writes the exact rows `rows::explode` makes as TSV
//!   (for the bulk-insert floor; only with `--out`) and times decode and
//!   row building (`--timing 0` skips that).
//! - `scale`: pre-encodes K intervals of H hosts, then publishes one
//!   interval every `interval` seconds and watches the aggregator's
//!   `sandmine_messages_acked_total` to time how long each interval takes
//!   to drain.
//! - `wire`: encoded sizes of a steady and a busy host, and the NATS
//!   protocol bytes around them (measured from this process's socket I/O).

use aggregator::store::rows::{self, Rows};
use anyhow::{anyhow, bail, Context, Result};
use schemas::wire::{
    self, ContainerDelta, ContainerRef, Envelope, PodRef, SeccompFilter, SyscallDelta,
};
use schemas::{Abi, Phase, PhaseSet};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use transport::{BrokerConfig, KafkaConfig, NatsConfig, Publisher};

const CONTAINERS_PER_HOST: usize = 50;
const IMAGES_PER_HOST: usize = 5;
const IMAGE_POOL: usize = 100;
const SYSCALLS_PER_IMAGE: usize = 80;
const HOT_SYSCALLS: usize = 30;
/// 2026-01-01T00:01:00Z: intervals start a minute after an hour, so a run
/// shorter than 59 minutes never crosses an hour (no hourly refresh burst)
/// unless asked to.
const T0_MS: u64 = 1_767_225_660_000;
const HOUR_MS: u64 = 3_600_000;

/// splitmix64: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn hex(&mut self, chars: usize) -> String {
        let mut s = String::with_capacity(chars);
        while s.len() < chars {
            s.push_str(&format!("{:016x}", self.next()));
        }
        s.truncate(chars);
        s
    }
}

/// How the fleet's draws are made.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Model {
    /// 80 syscalls per image drawn uniformly, the same 30 hot ones every
    /// interval, images drawn uniformly, 1 exit and 1 start per host per
    /// interval (`--churn`).
    Uniform,
    /// Heavy tails everywhere (see the module doc and [`realistic_images`]).
    Realistic,
}

impl Model {
    fn parse(a: &Args) -> Result<Model> {
        match a.get("model", "uniform").as_str() {
            "uniform" => Ok(Model::Uniform),
            "realistic" => Ok(Model::Realistic),
            m => bail!("--model {m}: expected uniform or realistic"),
        }
    }
    fn name(self) -> &'static str {
        match self {
            Model::Uniform => "uniform",
            Model::Realistic => "realistic",
        }
    }
}

struct Image {
    name: String,
    digest: String,
    /// Uniform: all 80, sorted. Realistic: the image's syscalls, most
    /// popular (fleet-wide) first.
    all: Vec<u32>,
    /// Uniform: the 30 a steady container calls, sorted. Realistic: the
    /// core, `all[..core]`, called every interval.
    hot: Vec<u32>,
    /// Realistic: what a new container calls in its first interval,
    /// `all[..startup]`.
    startup: usize,
}

/// Realistic: the chance that a steady container calls the `k`-th syscall
/// past its image's core (k from 1) in a given interval: 0.5 k^-1.2, so
/// the first tail syscall every other interval, the 10th about once in 32,
/// the 100th about once in 500 (a rare admin path).
fn tail_p(k: usize) -> f64 {
    0.5 * (k as f64).powf(-1.2)
}

/// Zipf weights 1/(rank+1)^s for `n` ranks.
fn zipf(n: usize, s: f64) -> Vec<f64> {
    (0..n).map(|r| 1.0 / ((r + 1) as f64).powf(s)).collect()
}

/// A draw from [0, 1).
fn unit(rng: &mut Rng) -> f64 {
    (rng.next() >> 11) as f64 / (1u64 << 53) as f64
}

/// Index drawn with probability proportional to `cum`'s steps (a
/// cumulative weight table).
fn pick(rng: &mut Rng, cum: &[f64]) -> usize {
    let total = cum.last().copied().unwrap_or(0.0);
    let x = unit(rng) * total;
    cum.partition_point(|&c| c <= x).min(cum.len().saturating_sub(1))
}

fn cumulative(w: &[f64]) -> Vec<f64> {
    w.iter()
        .scan(0.0, |acc, x| {
            *acc += x;
            Some(*acc)
        })
        .collect()
}

/// The realistic image pool: syscall numbers get a fleet-wide Zipf
/// popularity (s = 1.1, ranks in a seeded random order); each image draws
/// 40-150 of them (skewed small: 40 + 110 u^2, mean ~77) by weighted
/// sampling without replacement (Efraimidis-Spirakis keys), ordered most
/// popular first; its core (called every interval) is its first 15-39,
/// its start-up set its first core + 20.
fn realistic_images() -> Vec<Image> {
    let mut rng = Rng(4242);
    let nrs = 335usize;
    let mut rank: Vec<usize> = (0..nrs).collect();
    for k in 0..nrs {
        let j = k + rng.below((nrs - k) as u64) as usize;
        rank.swap(k, j);
    }
    // rank[nr] = its popularity rank.
    let w = zipf(nrs, 1.1);
    (0..IMAGE_POOL)
        .map(|i| {
            let u = unit(&mut rng);
            let n = 40 + (110.0 * u * u) as usize;
            let mut keyed: Vec<(f64, u32)> = (0..nrs)
                .map(|nr| {
                    let u = unit(&mut rng).max(f64::MIN_POSITIVE);
                    (u.ln() / w[rank[nr]], nr as u32)
                })
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            let mut all: Vec<u32> = keyed[..n].iter().map(|k| k.1).collect();
            all.sort_by_key(|&nr| rank[nr as usize]);
            let core = (15 + rng.below(25) as usize).min(n);
            let startup = (core + 20).min(n);
            Image {
                name: format!(
                    "registry.example.com/team-{:02}/service-{i:03}:1.{}.{}",
                    i % 17,
                    i % 7,
                    i % 11
                ),
                digest: format!("sha256:{}", rng.hex(64)),
                hot: all[..core].to_vec(),
                all,
                startup,
            }
        })
        .collect()
}

fn pool(model: Model) -> Vec<Image> {
    match model {
        Model::Uniform => images(),
        Model::Realistic => realistic_images(),
    }
}

fn images() -> Vec<Image> {
    let mut rng = Rng(42);
    (0..IMAGE_POOL)
        .map(|i| {
            let mut nrs: Vec<u32> = (0..335).collect();
            // Fisher-Yates, first 80.
            for k in 0..SYSCALLS_PER_IMAGE {
                let j = k + rng.below((nrs.len() - k) as u64) as usize;
                nrs.swap(k, j);
            }
            let mut hot = nrs[..HOT_SYSCALLS].to_vec();
            let mut all = nrs[..SYSCALLS_PER_IMAGE].to_vec();
            hot.sort_unstable();
            all.sort_unstable();
            Image {
                name: format!(
                    "registry.example.com/team-{:02}/service-{i:03}:1.{}.{}",
                    i % 17,
                    i % 7,
                    i % 11
                ),
                digest: format!("sha256:{}", rng.hex(64)),
                all,
                hot,
                startup: SYSCALLS_PER_IMAGE,
            }
        })
        .collect()
}

struct Slot {
    id: String,
    image: usize,
    pod: PodRef,
    started_ms: u64,
    /// Realistic: the syscalls it has called (a bit per number).
    seen: [u64; 6],
}

impl Slot {
    fn seen(&self, nr: u32) -> bool {
        self.seen[(nr >> 6) as usize] & (1 << (nr & 63)) != 0
    }
    fn see(&mut self, nr: u32) {
        self.seen[(nr >> 6) as usize] |= 1 << (nr & 63);
    }
}

struct Host {
    id: String,
    boot: String,
    seq: u64,
    images: Vec<usize>,
    slots: Vec<Slot>,
    rng: Rng,
    /// Realistic: containers that exit (and start) per interval, in
    /// tenths: 5 on 70% of hosts, 25 on 25%, 100 (a fifth of 50) on the
    /// 5% that run batch work. None: the uniform model's `--churn`.
    churn_tenths: Option<u64>,
}

impl Host {
    fn new(index: usize, t0: u64, model: Model, imgs: &[Image]) -> Host {
        let mut rng = Rng(0xF1EE7 ^ (index as u64).wrapping_mul(0x1000_0000_01B3));
        let id = rng.hex(32);
        let b = rng.hex(32);
        let boot = format!(
            "{}-{}-{}-{}-{}",
            &b[0..8],
            &b[8..12],
            &b[12..16],
            &b[16..20],
            &b[20..32]
        );
        let (images, churn_tenths) = match model {
            Model::Uniform => (
                (0..IMAGES_PER_HOST)
                    .map(|_| rng.below(IMAGE_POOL as u64) as usize)
                    .collect::<Vec<_>>(),
                None,
            ),
            Model::Realistic => {
                // Zipf (s = 1) image popularity: 5 distinct images.
                let cum = cumulative(&zipf(IMAGE_POOL, 1.0));
                let mut v: Vec<usize> = Vec::with_capacity(IMAGES_PER_HOST);
                while v.len() < IMAGES_PER_HOST {
                    let i = pick(&mut rng, &cum);
                    if !v.contains(&i) {
                        v.push(i);
                    }
                }
                let u = unit(&mut rng);
                let churn = if u < 0.70 {
                    5
                } else if u < 0.95 {
                    25
                } else {
                    100
                };
                (v, Some(churn))
            }
        };
        let mut h = Host {
            id,
            boot,
            seq: 1000 + rng.below(1000),
            images,
            slots: Vec::new(),
            rng,
            churn_tenths,
        };
        for i in 0..CONTAINERS_PER_HOST {
            // Started within the last day: steady.
            let started = t0 - 60_000 - h.rng.below(86_400_000);
            let mut s = h.new_slot(i, started);
            if model == Model::Realistic {
                // What it has called since it started: its core, and each
                // tail syscall with the chance of being met in that many
                // intervals.
                let img = &imgs[s.image];
                let age = ((t0 - started) / 10_000) as f64;
                for (j, &nr) in img.all.iter().enumerate() {
                    let met = if j < img.hot.len() {
                        1.0
                    } else {
                        1.0 - (1.0 - tail_p(j + 1 - img.hot.len())).powf(age)
                    };
                    if unit(&mut h.rng) < met {
                        s.see(nr);
                    }
                }
            }
            h.slots.push(s);
        }
        h
    }

    fn new_slot(&mut self, i: usize, started_ms: u64) -> Slot {
        let image = self.images[i % IMAGES_PER_HOST];
        let deploy = format!("service-{image:03}");
        Slot {
            id: self.rng.hex(64),
            image,
            pod: PodRef {
                namespace: format!("team-{:02}", image % 17),
                pod: format!("{deploy}-{}-{}", self.rng.hex(10), self.rng.hex(5)),
                container: deploy,
            },
            started_ms,
            seen: [0; 6],
        }
    }

    /// Realistic: what steady container `s` calls in the interval
    /// `[start, start + len)`: its core and some of its tail, each with
    /// its first-seen time (this interval's for a syscall never called
    /// before, which makes it news).
    fn realistic_calls(
        &mut self,
        img: &Image,
        s: &mut Slot,
        start: u64,
        len: u64,
    ) -> Vec<(u32, u64)> {
        let core = img.hot.len();
        let mut v = Vec::with_capacity(core + 8);
        for (j, &nr) in img.all.iter().enumerate() {
            if j >= core && unit(&mut self.rng) >= tail_p(j + 1 - core) {
                continue;
            }
            let first = if s.seen(nr) {
                s.started_ms
            } else {
                s.see(nr);
                start + self.rng.below(len)
            };
            v.push((nr, first));
        }
        v
    }

    fn delta(
        &mut self,
        img: &Image,
        s: &Slot,
        syscalls: &[(u32, u64)],
        last_seen: u64,
        exited: Option<u64>,
    ) -> ContainerDelta {
        let phases = PhaseSet(Phase::Image.bit());
        ContainerDelta {
            container: ContainerRef {
                runtime: "containerd".into(),
                id: s.id.clone(),
                image: img.name.clone(),
                image_digest: img.digest.clone(),
                pod: Some(s.pod.clone()),
                seccomp: SeccompFilter::RuntimeDefault,
            },
            started_at_ms: s.started_ms,
            last_seen_ms: last_seen,
            exited_at_ms: exited,
            incomplete: false,
            unverified: false,
            denials: Default::default(),
            args: Default::default(),
            executed: Default::default(),
            syscalls: syscalls
                .iter()
                .map(|&(nr, first_seen_ms)| SyscallDelta {
                    abi: Abi::X86_64,
                    nr,
                    calls: 1 + self.rng.below(5000),
                    phases,
                    first_seen_ms,
                })
                .collect(),
        }
    }

    /// The envelope of interval `[start, start + len)`: steady containers,
    /// `churn` exits and as many starts (realistic: the host's own churn).
    fn interval(&mut self, imgs: &[Image], start: u64, len: u64, churn: usize) -> Envelope {
        let end = start + len;
        self.seq += 1;
        let realistic = self.churn_tenths.is_some();
        let churn = match self.churn_tenths {
            None => churn,
            Some(t) => {
                let extra = self.rng.below(10) < t % 10;
                ((t / 10) as usize + usize::from(extra)).min(CONTAINERS_PER_HOST)
            }
        };
        let mut containers = Vec::with_capacity(CONTAINERS_PER_HOST + churn);
        let mut churned = Vec::new();
        if realistic {
            // Distinct slots.
            while churned.len() < churn {
                let i = self.rng.below(CONTAINERS_PER_HOST as u64) as usize;
                if !churned.contains(&i) {
                    churned.push(i);
                }
            }
        } else {
            for _ in 0..churn {
                churned.push(self.rng.below(CONTAINERS_PER_HOST as u64) as usize);
            }
        }
        let slots = std::mem::take(&mut self.slots);
        let mut next = Vec::with_capacity(slots.len());
        for (i, mut s) in slots.into_iter().enumerate() {
            let img = &imgs[s.image];
            let exiting = churned.contains(&i);
            let (last, exited) = if exiting {
                let exit = start + 1 + self.rng.below(len / 2);
                (exit, Some(exit))
            } else {
                (end, None)
            };
            let calls: Vec<(u32, u64)> = if realistic {
                self.realistic_calls(img, &mut s, start, last - start)
            } else {
                img.hot.iter().map(|&nr| (nr, s.started_ms)).collect()
            };
            containers.push(self.delta(img, &s, &calls, last, exited));
            if let Some(exit) = exited {
                let born = exit + 1 + self.rng.below(len / 4);
                let mut n = self.new_slot(i, born);
                let img = &imgs[n.image];
                let calls: Vec<(u32, u64)> =
                    img.all[..img.startup].iter().map(|&nr| (nr, born)).collect();
                for &(nr, _) in &calls {
                    n.see(nr);
                }
                containers.push(self.delta(img, &n, &calls, end, None));
                next.push(n);
            } else {
                next.push(s);
            }
        }
        self.slots = next;
        Envelope {
            host_id: self.id.clone(),
            boot_id: self.boot.clone(),
            seq: self.seq,
            interval_start_ms: start,
            interval_end_ms: end,
            containers,
        }
    }

    /// A host whose 50 containers are all new and call 80 syscalls each.
    fn busy(&mut self, imgs: &[Image], start: u64, len: u64) -> Envelope {
        let end = start + len;
        self.seq += 1;
        let mut containers = Vec::new();
        for i in 0..CONTAINERS_PER_HOST {
            let born = start + 1 + self.rng.below(len / 2);
            let n = self.new_slot(i, born);
            let img = &imgs[n.image];
            let calls: Vec<(u32, u64)> = img.all.iter().map(|&nr| (nr, born)).collect();
            containers.push(self.delta(img, &n, &calls, end, None));
        }
        Envelope {
            host_id: self.id.clone(),
            boot_id: self.boot.clone(),
            seq: self.seq,
            interval_start_ms: start,
            interval_end_ms: end,
            containers,
        }
    }
}

/// `--key value` arguments.
struct Args(BTreeMap<String, String>);
impl Args {
    fn parse(v: &[String]) -> Result<Args> {
        let mut m = BTreeMap::new();
        let mut it = v.iter();
        while let Some(k) = it.next() {
            let k = k
                .strip_prefix("--")
                .ok_or_else(|| anyhow!("expected --key, got {k}"))?;
            let val = it.next().ok_or_else(|| anyhow!("--{k} needs a value"))?;
            m.insert(k.to_string(), val.clone());
        }
        Ok(Args(m))
    }
    fn get(&self, k: &str, default: &str) -> String {
        self.0
            .get(k)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }
    fn num(&self, k: &str, default: u64) -> Result<u64> {
        match self.0.get(k) {
            Some(v) => v.parse().with_context(|| format!("--{k} {v}")),
            None => Ok(default),
        }
    }
}

/// NATS (`--nats URL --stream S --subject S`), or Kafka with `--kafka
/// BROKERS --topic T --partitions P` (the topic created with P partitions
/// if missing).
fn broker(a: &Args) -> Result<BrokerConfig> {
    if let Some(brokers) = a.0.get("kafka") {
        return Ok(BrokerConfig::Kafka(KafkaConfig {
            brokers: brokers.clone(),
            topic: a.get("topic", "sandmine.deltas"),
            dead_letter_topic: a.get("topic", "sandmine.deltas") + ".dl",
            partitions: i32::try_from(a.num("partitions", 2)?).context("--partitions")?,
            timeout: Duration::from_secs(30),
            ..KafkaConfig::default()
        }));
    }
    Ok(BrokerConfig::Nats(NatsConfig {
        url: a.get("nats", "nats://127.0.0.1:4222"),
        stream: a.get("stream", "SANDMINE_DELTAS"),
        subject: a.get("subject", "sandmine.deltas"),
        dead_letter_stream: a.get("stream", "SANDMINE_DELTAS") + "_DL",
        dead_letter_subject: a.get("subject", "sandmine.deltas") + "-dl",
        // As the aggregator's config says (run.sh): the stream is updated
        // to whichever limit connects last.
        stream_max_bytes: i64::try_from(a.num("stream-max-bytes", 1 << 30)?)
            .context("--stream-max-bytes")?,
        timeout: Duration::from_secs(30),
        ..NatsConfig::default()
    }))
}

fn encode_all(envs: &[Envelope]) -> Result<Vec<(String, Vec<u8>)>> {
    envs.iter()
        .map(|e| Ok((e.dedupe_id(), wire::encode(e).map_err(|e| anyhow!("{e}"))?)))
        .collect()
}

async fn publish(p: &Publisher, msgs: &[(String, Vec<u8>)]) -> Result<()> {
    for chunk in msgs.chunks(2000) {
        let refs: Vec<(&str, &[u8])> = chunk
            .iter()
            .map(|(i, b)| (i.as_str(), b.as_slice()))
            .collect();
        p.publish_many(&refs)
            .await
            .map_err(|e| anyhow!("publish: {e}"))?;
    }
    Ok(())
}

fn counts(r: &Rows) -> serde_json::Value {
    serde_json::json!({
        "calls": r.calls.len(),
        "incidence": r.incidence.len(),
        "containers": r.containers.len(),
        "rows": r.calls.len() + r.incidence.len() + r.containers.len(),
    })
}

fn write_tsv(dir: &PathBuf, r: &Rows) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("calls.tsv"))?);
    for c in &r.calls {
        writeln!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.image,
            c.abi,
            c.nr,
            c.host_id,
            c.boot_id,
            c.seq,
            c.calls,
            c.phases,
            c.last_seen_ms,
            c.interval_end_ms
        )?;
    }
    f.flush()?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("incidence.tsv"))?);
    for c in &r.incidence {
        writeln!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.image,
            c.abi,
            c.nr,
            c.host_id,
            c.boot_id,
            c.container_id,
            c.phases,
            c.first_seen_ms,
            c.last_seen_ms
        )?;
    }
    f.flush()?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("containers.tsv"))?);
    for c in &r.containers {
        writeln!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.image,
            c.host_id,
            c.boot_id,
            c.container_id,
            c.runtime,
            c.image_digest,
            c.pod_namespace,
            c.pod_name,
            c.pod_container,
            c.seccomp,
            c.started_at_ms,
            c.last_seen_ms,
            c.exited_at_ms
        )?;
    }
    f.flush()?;
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One interval of N hosts, published; TSV of the exact rows.
async fn prepare(a: &Args) -> Result<serde_json::Value> {
    let hosts = a.num("hosts", 2000)? as usize;
    let churn = a.num("churn", 1)? as usize;
    let out = PathBuf::from(a.get("out", "fleet-rows"));
    let model = Model::parse(a)?;
    let imgs = pool(model);
    let mut envs = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let mut h = Host::new(i, T0_MS, model, &imgs);
        envs.push(h.interval(&imgs, T0_MS, 10_000, churn));
    }
    let msgs = encode_all(&envs)?;
    let bytes: usize = msgs.iter().map(|m| m.1.len()).sum();
    let rows = rows::explode(&envs);
    if a.0.contains_key("out") {
        write_tsv(&out, &rows)?;
    }
    // Where an aggregator's CPU goes before the HTTP insert: decode and row
    // building of this very batch (median of `--timing` runs, default 5,
    // single thread; 0 skips it).
    let timing = a.num("timing", 5)?;
    let mut dec = Vec::new();
    let mut exp = Vec::new();
    for _ in 0..timing {
        let t = Instant::now();
        let d: Vec<Envelope> = msgs
            .iter()
            .map(|m| wire::decode(&m.1))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("{e}"))?;
        dec.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let r = rows::explode(&d);
        exp.push(t.elapsed().as_secs_f64());
        if r != rows {
            bail!("explode is not deterministic");
        }
    }
    let p = Publisher::connect(&broker(a)?)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let t = Instant::now();
    publish(&p, &msgs).await?;
    let pub_s = t.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "model": model.name(),
        "envelopes": hosts,
        "payload_bytes": bytes,
        "expected": counts(&rows),
        "decode_s": if dec.is_empty() { None } else { Some(median(dec)) },
        "explode_s": if exp.is_empty() { None } else { Some(median(exp)) },
        "publish_s": pub_s,
    }))
}

/// Reads `sandmine_messages_acked_total` from the aggregator's /metrics.
async fn acked(addr: &str) -> Result<u64> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    for line in body.lines() {
        if let Some(v) = line.strip_prefix("sandmine_messages_acked_total ") {
            return Ok(v.trim().parse()?);
        }
    }
    bail!("no sandmine_messages_acked_total in /metrics of {addr}")
}

/// Publishes one interval every `interval` seconds; times each drain.
async fn scale(a: &Args) -> Result<serde_json::Value> {
    let n = a.num("hosts", 1000)? as usize;
    let k = a.num("intervals", 6)? as usize;
    let churn = a.num("churn", 1)? as usize;
    let secs = a.num("interval", 10)?;
    let cross = a.num("cross-hour-at", u64::MAX)?;
    let metrics = a.get("metrics", "127.0.0.1:9464");
    let model = Model::parse(a)?;
    let imgs = pool(model);
    let t = Instant::now();
    let mut hosts: Vec<Host> = (0..n)
        .map(|i| Host::new(i, T0_MS, model, &imgs))
        .collect();
    let mut intervals = Vec::new();
    let mut per_interval_rows = Vec::new();
    for i in 0..k {
        // Optionally shift time so that interval `cross` ends in a new hour.
        let base = if (i as u64) >= cross {
            T0_MS + HOUR_MS - 60_000 - 5_000
        } else {
            T0_MS
        };
        let j = if (i as u64) >= cross {
            i as u64 - cross
        } else {
            i as u64
        };
        let start = base + j * secs * 1000;
        let envs: Vec<Envelope> = hosts
            .iter_mut()
            .map(|h| h.interval(&imgs, start, secs * 1000, churn))
            .collect();
        per_interval_rows.push(counts(&rows::explode(&envs)));
        let msgs = encode_all(&envs)?;
        let bytes: usize = msgs.iter().map(|m| m.1.len()).sum();
        intervals.push((msgs, bytes));
    }
    let gen_s = t.elapsed().as_secs_f64();
    drop(hosts);
    let p = Publisher::connect(&broker(a)?)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let base = acked(&metrics).await.context("aggregator metrics")?;
    let t0 = Instant::now();
    let mut report = Vec::new();
    let mut published = 0u64;
    let mut pending: std::collections::VecDeque<(usize, u64)> = Default::default();
    let mut drained: Vec<Option<f64>> = vec![None; k];
    let mut backlog_at_next: Vec<u64> = vec![0; k];
    let mut pub_s = vec![0.0; k];
    let poll = |pending: &mut std::collections::VecDeque<(usize, u64)>,
                drained: &mut Vec<Option<f64>>,
                got: u64,
                now: f64| {
        while let Some(&(i, target)) = pending.front() {
            if got >= target {
                drained[i] = Some(now - (i as u64 * secs) as f64);
                pending.pop_front();
            } else {
                break;
            }
        }
    };
    for (i, (msgs, _)) in intervals.iter().enumerate() {
        let due = Duration::from_secs(i as u64 * secs);
        // Until this interval is due: watch the drain.
        loop {
            let now = t0.elapsed();
            let got = acked(&metrics).await? - base;
            poll(&mut pending, &mut drained, got, now.as_secs_f64());
            if now >= due {
                if i > 0 {
                    backlog_at_next[i - 1] = published - got;
                }
                break;
            }
            tokio::time::sleep((due - now).min(Duration::from_millis(50))).await;
        }
        let t = Instant::now();
        publish(&p, msgs).await?;
        pub_s[i] = t.elapsed().as_secs_f64();
        published += msgs.len() as u64;
        pending.push_back((i, published));
    }
    let deadline = Duration::from_secs(k as u64 * secs + 120);
    let last_due = Duration::from_secs(k as u64 * secs);
    let mut last_backlog_set = false;
    while !pending.is_empty() && t0.elapsed() < deadline {
        let got = acked(&metrics).await? - base;
        let now = t0.elapsed();
        if !last_backlog_set && now >= last_due {
            backlog_at_next[k - 1] = published - got;
            last_backlog_set = true;
        }
        poll(&mut pending, &mut drained, got, now.as_secs_f64());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..k {
        report.push(serde_json::json!({
            "interval": i,
            "messages": intervals[i].0.len(),
            "payload_bytes": intervals[i].1,
            "rows": per_interval_rows[i],
            "publish_s": pub_s[i],
            "drained_after_s": drained[i],
            "backlog_at_next_interval": backlog_at_next[i],
        }));
    }
    let sustained = drained
        .iter()
        .all(|d| matches!(d, Some(s) if *s < secs as f64));
    Ok(serde_json::json!({
        "model": model.name(),
        "hosts": n,
        "containers_per_host": CONTAINERS_PER_HOST,
        "interval_s": secs,
        "churn_per_host_per_interval": if model == Model::Uniform { Some(churn) } else { None },
        "generate_s": gen_s,
        "sustained": sustained,
        "intervals": report,
    }))
}

fn proc_io() -> Result<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/io")?;
    let get = |k: &str| -> Result<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .ok_or_else(|| anyhow!("no {k} in /proc/self/io"))?
            .trim()
            .parse()
            .map_err(Into::into)
    };
    Ok((get("rchar:")?, get("wchar:")?))
}

/// Encoded sizes, and NATS bytes per message on both legs.
async fn wire_sizes(a: &Args) -> Result<serde_json::Value> {
    let imgs = images();
    let m = a.num("messages", 2000)? as usize;
    let mut steady = Vec::new();
    let mut steady_nochurn = Vec::new();
    let mut busy = Vec::new();
    let mut steady_env = Vec::new();
    for i in 0..m {
        let mut h = Host::new(i, T0_MS, Model::Uniform, &imgs);
        steady_nochurn.push(
            wire::encode(&h.interval(&imgs, T0_MS, 10_000, 0))
                .map_err(|e| anyhow!("{e}"))?
                .len() as f64,
        );
        let e = h.interval(&imgs, T0_MS + 10_000, 10_000, 1);
        steady.push(wire::encode(&e).map_err(|e| anyhow!("{e}"))?.len() as f64);
        steady_env.push(e);
        busy.push(
            wire::encode(&h.busy(&imgs, T0_MS + 20_000, 10_000))
                .map_err(|e| anyhow!("{e}"))?
                .len() as f64,
        );
    }
    let msgs = encode_all(&steady_env)?;
    let payload: u64 = msgs.iter().map(|m| m.1.len() as u64).sum();
    let id_len = median(msgs.iter().map(|m| m.0.len() as f64).collect());
    // Publisher leg: everything this process writes to its socket while
    // publishing M messages (HPUB line, headers, reply inbox). Only writes:
    // the client receives with recv(), which /proc/self/io does not count.
    let p = Publisher::connect(&broker(a)?)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let (_, w0) = proc_io()?;
    publish(&p, &msgs).await?;
    let (_, w1) = proc_io()?;
    // Consumer leg: fetch and ack them with a fresh durable (what the
    // aggregator sends back: pull requests and acks).
    let mut cfg = match broker(a)? {
        BrokerConfig::Nats(c) => c,
        BrokerConfig::Kafka(_) => bail!("nats only"),
    };
    cfg.durable = "fleetgen-wire-probe".into();
    let mut c = transport::Consumer::connect(&BrokerConfig::Nats(cfg))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let (_, w2) = proc_io()?;
    let mut got = 0;
    while got < m {
        let d = c
            .fetch(500, Duration::from_millis(500))
            .await
            .map_err(|e| anyhow!("{e}"))?;
        if d.is_empty() {
            bail!("only {got} of {m} messages came back");
        }
        c.ack(&d).await.map_err(|e| anyhow!("{e}"))?;
        got += d.len();
    }
    let (_, w3) = proc_io()?;
    let mf = m as f64;
    Ok(serde_json::json!({
        "messages": m,
        "steady_no_churn_bytes_median": median(steady_nochurn),
        "steady_churn1_bytes_median": median(steady),
        "busy_bytes_median": median(busy),
        "msg_id_len": id_len,
        "publish_sent_bytes_per_msg": (w1 - w0) as f64 / mf,
        "publish_overhead_bytes_per_msg": ((w1 - w0) as f64 - payload as f64) / mf,
        "consume_sent_bytes_per_msg": (w3 - w2) as f64 / mf,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        bail!("usage: fleetgen prepare|scale|wire [--key value]...");
    };
    let a = Args::parse(rest)?;
    let v = match cmd.as_str() {
        "prepare" => prepare(&a).await?,
        "scale" => scale(&a).await?,
        "wire" => wire_sizes(&a).await?,
        c => bail!("unknown subcommand {c}"),
    };
    println!("{v}");
    Ok(())
}
