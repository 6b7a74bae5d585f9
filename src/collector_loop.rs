//! The collector's loop: a thread cuts a delta every interval
//! (`collector::daemon::Daemon::tick`, which spools it crash-safely), and an
//! async task drains the spool into a sink (the broker, or for `sandmine
//! standalone` the embedded store), removing each message only after the
//! sink confirmed it.
//!
//! A message the sink refuses for good (over the broker's size limit, or
//! rows the store refuses) is moved to `spool/rejected/` with the reason,
//! logged and counted (`spool_rejected_messages`), like one that does not
//! decode; the drain goes on with the next.
//!
//! The drain only sends messages the daemon has committed (sequence at most
//! the committed one): a spooled message whose state commit did not happen
//! is discarded on restart and its sequence reused, so it must never leave
//! the host.

use crate::metrics::Metrics;
use anyhow::{Context, Result};
use collector::daemon::{Daemon, DaemonConfig, Spool};
use schemas::wire::Envelope;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sysutil::Backoff;
use tokio::sync::watch;

/// Where spooled messages go.
pub enum Sink {
    Broker {
        cfg: Box<transport::BrokerConfig>,
        publisher: Option<Box<transport::Publisher>>,
    },
    Store(aggregator::store::Store),
}

impl Sink {
    /// Sends one message: its bytes, and `env`, what they decode to.
    async fn send(&mut self, msg_id: &str, bytes: &[u8], env: Envelope) -> Result<()> {
        self.connect().await?;
        match self {
            Sink::Broker { publisher, .. } => {
                if let Some(p) = publisher.as_ref() {
                    if let Err(e) = p.publish(msg_id, bytes).await {
                        if !e.refuses_message() {
                            // Connect anew next time: a Kafka idempotent
                            // producer is fenced once its broker lost its
                            // state; NATS clients reconnect cheaply.
                            *publisher = None;
                        }
                        return Err(e.into());
                    }
                }
                Ok(())
            }
            Sink::Store(store) => {
                store.insert(&[env]).await?;
                Ok(())
            }
        }
    }

    /// Connects to the broker if not connected (the store is always
    /// open): its message limit is then known before anything is sent.
    async fn connect(&mut self) -> Result<()> {
        if let Sink::Broker { cfg, publisher } = self {
            if publisher.is_none() {
                *publisher = Some(Box::new(transport::Publisher::connect(cfg).await?));
            }
        }
        Ok(())
    }

    /// The largest message the sink takes, once known: the connected
    /// broker's limit; no limit for the store.
    fn message_limit(&self) -> Option<usize> {
        match self {
            Sink::Broker { publisher, .. } => publisher.as_ref().map(|p| p.max_message_bytes()),
            Sink::Store(_) => Some(usize::MAX),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Sink::Broker { .. } => "broker",
            Sink::Store(_) => "store",
        }
    }
}

/// Runs the collector until `stop`; on stop, cuts a last delta and tries
/// for `drain_deadline` to hand everything spooled to the sink (what is
/// left stays spooled for the next start).
pub async fn run(
    cfg: DaemonConfig,
    mut sink: Sink,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
    drain_deadline: Duration,
) -> Result<()> {
    let interval = cfg.interval;
    let daemon = tokio::task::spawn_blocking(move || Daemon::open(cfg))
        .await
        .context("collector start-up panicked")?
        .context("cannot start the collector")?;
    log::info!(
        "collecting as host {} (stream {}), every {:?}, from seq {}",
        daemon.host_id(),
        daemon.stream_id(),
        interval,
        daemon.seq() + 1
    );
    let spool = Spool::open(daemon.spool().dir(), daemon.host_id(), &daemon.stream_id())
        .context("cannot open the spool")?;
    let boot = daemon.stream_id();
    let (committed_tx, mut committed_rx) = watch::channel(daemon.seq());
    let stopping = Arc::new(AtomicBool::new(false));
    // The sink's message limit, once connected: the tick thread splits
    // larger deltas.
    let limit = Arc::new(AtomicUsize::new(
        collector::daemon::DEFAULT_MAX_MESSAGE_BYTES,
    ));
    let ticker = {
        let (stopping, metrics, limit) = (stopping.clone(), metrics.clone(), limit.clone());
        std::thread::Builder::new()
            .name("sandmine-tick".into())
            .spawn(move || tick_loop(daemon, interval, committed_tx, &stopping, &metrics, &limit))
            .context("cannot start the tick thread")?
    };

    let mut backoff = Backoff::new(Duration::from_secs(10));
    let mut retry_at = Instant::now();
    loop {
        wait_for_work(&mut committed_rx, &mut stop).await?;
        if *stop.borrow() {
            break;
        }
        if Instant::now() >= retry_at {
            let committed = *committed_rx.borrow();
            let drained = drain(&spool, &boot, committed, &mut sink, &metrics).await;
            if let Some(l) = sink.message_limit() {
                limit.store(l, Ordering::Relaxed);
            }
            match drained {
                Ok(()) => backoff.reset(sink.name()),
                Err(e) => {
                    metrics.publish_errors.fetch_add(1, Ordering::Relaxed);
                    // Logged once per outage; the spool keeps everything.
                    retry_at = Instant::now() + backoff.fail(sink.name(), &format!("{e:#}"));
                }
            }
        }
    }

    // Last delta, then a bounded final drain.
    stopping.store(true, Ordering::Relaxed);
    let ticker = tokio::task::spawn_blocking(move || ticker.join());
    let _ = ticker.await;
    let committed = *committed_rx.borrow();
    let deadline = Instant::now() + drain_deadline;
    loop {
        match tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            drain(&spool, &boot, committed, &mut sink, &metrics),
        )
        .await
        {
            Ok(Ok(())) => break,
            Ok(Err(e)) if Instant::now() < deadline => {
                log::debug!("final drain: {e:#}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => {
                let left = spool.pending().map(|p| p.len()).unwrap_or(0);
                log::warn!(
                    "stopping with {left} message(s) spooled; they are sent on the next start"
                );
                break;
            }
        }
    }
    log::info!("collector stopped");
    Ok(())
}

/// Waits for a commit of the tick thread, a stop, or half a second.
///
/// The tick thread only returns when asked to stop, so a dropped sender
/// means it died (a panic, already printed): that is an error, and the
/// collector exits non-zero so that its supervisor restarts it, instead of
/// waking up at once forever without counting.
async fn wait_for_work(
    committed: &mut watch::Receiver<u64>,
    stop: &mut watch::Receiver<bool>,
) -> Result<()> {
    tokio::select! {
        changed = committed.changed() => changed.map_err(|_| anyhow::anyhow!(
            "the tick thread died; exiting so that the collector is restarted (what it spooled is kept)"
        )),
        _ = tokio::time::sleep(Duration::from_millis(500)) => Ok(()),
        _ = stop.changed() => Ok(()),
    }
}

/// Sends every committed spooled message, oldest first; stops at the first
/// failure.
async fn drain(
    spool: &Spool,
    boot: &str,
    committed: u64,
    sink: &mut Sink,
    metrics: &Metrics,
) -> Result<()> {
    // Connected even with nothing to send, so that the broker's message
    // limit is known before the next delta is cut.
    sink.connect().await?;
    let pending = spool.pending()?;
    for p in pending {
        if p.boot_id == boot && p.seq > committed {
            // Written by a tick that has not committed yet.
            break;
        }
        let bytes = p.read()?;
        // A message that does not decode never will: set it aside rather
        // than block every message after it.
        let env = match schemas::wire::decode(&bytes) {
            Ok(env) => env,
            Err(e) => {
                spool.set_aside(&p, &format!("does not decode: {e}"))?;
                continue;
            }
        };
        // The broker's id hashes the bytes (`wire::message_id`): a forged
        // message of this host's next seq, published first, has another
        // id and cannot make the broker drop this one as its duplicate.
        let broker_id = schemas::wire::message_id(&env, &bytes);
        // Nor does one the sink refuses for good (over the broker's size
        // limit, rows the store refuses): set aside too.
        if let Err(e) = sink.send(&broker_id, &bytes, env).await {
            match refused_for_good(&e) {
                Some(reason) => {
                    spool.set_aside(&p, &format!("refused for good: {reason}"))?;
                    continue;
                }
                None => return Err(e),
            }
        }
        spool.ack(&p.msg_id)?;
        metrics.published.fetch_add(1, Ordering::Relaxed);
    }
    metrics
        .spool_rejected
        .store(spool.rejected()?, Ordering::Relaxed);
    let left = spool.pending()?;
    metrics
        .spooled_messages
        .store(left.len() as u64, Ordering::Relaxed);
    metrics
        .spooled_bytes
        .store(spool.size_bytes()?, Ordering::Relaxed);
    Ok(())
}

/// Why the sink will never take this message, if that is what `e` says:
/// the broker refuses it (too large), or the store refuses its rows.
fn refused_for_good(e: &anyhow::Error) -> Option<String> {
    if let Some(t) = e.downcast_ref::<transport::TransportError>() {
        return t.refuses_message().then(|| sysutil::error_chain(t));
    }
    if let Some(s) = e.downcast_ref::<aggregator::store::StoreError>() {
        return s.refuses_rows().then(|| sysutil::error_chain(s));
    }
    None
}

fn tick_loop(
    mut daemon: Daemon,
    interval: Duration,
    committed: watch::Sender<u64>,
    stopping: &AtomicBool,
    metrics: &Metrics,
    limit: &AtomicUsize,
) {
    let mut next = Instant::now() + interval;
    loop {
        // Sleep to the next tick; a stop cuts the sleep short for one last
        // delta.
        while Instant::now() < next && !stopping.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(next - Instant::now()));
        }
        let last = stopping.load(Ordering::Relaxed);
        next += interval;
        let now = Instant::now();
        if next < now {
            // Fell behind (a slow tick, a suspended VM): skip, don't burst.
            next = now + interval;
        }
        daemon.set_max_message_bytes(limit.load(Ordering::Relaxed));
        match daemon.tick(sysutil::clock::now_ms()) {
            Ok(Some(env)) => {
                log::debug!("seq {}: {} container(s)", env.seq, env.containers.len());
                let _ = committed.send(env.seq);
            }
            Ok(None) => {}
            Err(e) => {
                log::error!(
                    "tick failed (counts stay in the kernel; retrying next interval): {}",
                    sysutil::error_chain(&e)
                )
            }
        }
        let st = daemon.last_stats();
        metrics.ticks.fetch_add(1, Ordering::Relaxed);
        metrics.containers.store(
            st.keys.saturating_sub(st.unattributed_keys) as u64,
            Ordering::Relaxed,
        );
        metrics.lost_calls.store(st.lost_calls, Ordering::Relaxed);
        metrics
            .incomplete_containers
            .store(st.incomplete_containers, Ordering::Relaxed);
        metrics
            .unverified_containers
            .store(st.unverified_containers, Ordering::Relaxed);
        metrics
            .withheld_containers
            .store(st.withheld_containers, Ordering::Relaxed);
        if last {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aggregator::store::{EmbeddedConfig, Store, StoreConfig};

    fn envelope(seq: u64) -> Envelope {
        Envelope {
            host_id: "h".into(),
            boot_id: "b".into(),
            seq,
            interval_start_ms: 1_700_000_000_000,
            interval_end_ms: 1_700_000_001_000,
            containers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_poison_message_is_set_aside_and_the_rest_is_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(&dir.path().join("spool"), "h", "b").expect("spool");
        spool
            .write(1, &schemas::wire::encode(&envelope(1)).expect("encode"))
            .expect("write");
        spool.write(2, b"not a message").expect("write");
        spool
            .write(3, &schemas::wire::encode(&envelope(3)).expect("encode"))
            .expect("write");
        let store = Store::open(&StoreConfig::Embedded(EmbeddedConfig {
            path: dir.path().join("store.db"),
        }))
        .await
        .expect("store");
        let mut sink = Sink::Store(store);
        let metrics = Metrics::default();
        drain(&spool, "b", 3, &mut sink, &metrics)
            .await
            .expect("the drain goes past the poison message");
        assert!(spool.pending().expect("pending").is_empty());
        assert_eq!(spool.rejected().expect("rejected"), 1);
        assert_eq!(metrics.published.load(Ordering::Relaxed), 2);
        assert_eq!(metrics.spool_rejected.load(Ordering::Relaxed), 1);
        assert_eq!(metrics.spooled_messages.load(Ordering::Relaxed), 0);
        assert!(dir.path().join("spool/rejected/h.b.2.msg").exists());
    }

    /// Message `seq` with `n` containers (about 150 bytes each).
    fn envelope_with(seq: u64, n: usize) -> Envelope {
        use schemas::wire::{ContainerDelta, ContainerRef, SeccompFilter, SyscallDelta};
        let mut e = envelope(seq);
        let mut phases = schemas::PhaseSet::default();
        phases.insert(schemas::Phase::Image);
        for i in 0..n {
            e.containers.push(ContainerDelta {
                container: ContainerRef {
                    runtime: "docker".into(),
                    id: format!("{i:064x}"),
                    image: format!("registry.example/team/app-{i}:1.0"),
                    image_digest: String::new(),
                    pod: None,
                    seccomp: SeccompFilter::Unknown,
                },
                started_at_ms: 1_700_000_000_000,
                last_seen_ms: 1_700_000_001_000,
                exited_at_ms: None,
                incomplete: false,
                unverified: false,
                denials: Default::default(),
                args: Default::default(),
                syscalls: vec![SyscallDelta {
                    abi: schemas::Abi::X86_64,
                    nr: 39,
                    calls: 1,
                    phases,
                    first_seen_ms: 1_700_000_000_000,
                }],
                executed: Default::default(),
            });
        }
        e
    }

    /// A spooled message the broker refuses for good (over the real
    /// nats-server's `max_payload`) is set aside with the reason, counted,
    /// and the messages after it are sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_the_broker_refuses_for_good_is_set_aside() {
        let nats = testsvc::Nats::start_with_conf("max_payload: 8192");
        let cfg = transport::BrokerConfig::Nats(transport::NatsConfig {
            url: nats.url(),
            ..Default::default()
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(&dir.path().join("spool"), "h", "b").expect("spool");
        let big = schemas::wire::encode(&envelope_with(2, 100)).expect("encode");
        assert!(big.len() > 8192, "{}", big.len());
        for (seq, bytes) in [
            (
                1,
                schemas::wire::encode(&envelope_with(1, 2)).expect("encode"),
            ),
            (2, big.clone()),
            (
                3,
                schemas::wire::encode(&envelope_with(3, 2)).expect("encode"),
            ),
        ] {
            spool.write(seq, &bytes).expect("write");
        }
        let mut sink = Sink::Broker {
            cfg: Box::new(cfg.clone()),
            publisher: None,
        };
        let metrics = Metrics::default();
        let drained = drain(&spool, "b", 3, &mut sink, &metrics).await;
        assert!(drained.is_ok(), "{:#}", drained.unwrap_err());
        assert!(spool.pending().expect("pending").is_empty());
        assert_eq!(
            [
                metrics.published.load(Ordering::Relaxed),
                metrics.spool_rejected.load(Ordering::Relaxed),
                metrics.spooled_messages.load(Ordering::Relaxed),
            ],
            [2, 1, 0]
        );
        assert_eq!(
            std::fs::read(dir.path().join("spool/rejected/h.b.2.msg")).expect("set aside"),
            big
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("spool/rejected/h.b.2.msg.reason"))
                .expect("reason"),
            format!(
                "refused for good: NATS server {} refuses a message of {} bytes: more than its limit of 8192 bytes\n",
                nats.url(),
                big.len()
            )
        );
        let mut consumer = transport::Consumer::connect(&cfg).await.expect("consumer");
        let got = consumer
            .fetch(10, Duration::from_secs(1))
            .await
            .expect("fetch");
        let ids: Vec<_> = got
            .iter()
            .map(|d| d.msg_id.clone().unwrap_or_default())
            .collect();
        // The broker's ids: host.boot.seq and a hash of the bytes.
        let id_of = |seq| {
            let bytes = schemas::wire::encode(&envelope_with(seq, 2)).expect("encode");
            schemas::wire::message_id(&envelope_with(seq, 2), &bytes)
        };
        assert_eq!(ids, [id_of(1), id_of(3)]);
        assert!(ids[0].starts_with("h.b.1."), "{ids:?}");
    }

    /// `standalone`: rows the embedded store refuses for good (here a
    /// trigger, as a CHECK would) set their message aside; the others are
    /// stored.
    #[tokio::test]
    async fn a_message_the_store_refuses_for_good_is_set_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(&dir.path().join("spool"), "h", "b").expect("spool");
        for seq in 1..=3 {
            let mut e = envelope_with(seq, 1);
            e.containers[0].container.image = format!("img-{seq}:1");
            spool
                .write(seq, &schemas::wire::encode(&e).expect("encode"))
                .expect("write");
        }
        let db = dir.path().join("store.db");
        let store = Store::open(&StoreConfig::Embedded(EmbeddedConfig { path: db.clone() }))
            .await
            .expect("store");
        rusqlite_refuse(&db, "img-2:1");
        let mut sink = Sink::Store(store.clone());
        let metrics = Metrics::default();
        let drained = drain(&spool, "b", 3, &mut sink, &metrics).await;
        assert!(drained.is_ok(), "{:#}", drained.unwrap_err());
        assert_eq!(
            [
                metrics.published.load(Ordering::Relaxed),
                metrics.spool_rejected.load(Ordering::Relaxed),
            ],
            [2, 1]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("spool/rejected/h.b.2.msg.reason"))
                .expect("reason"),
            format!(
                "refused for good: embedded store {}: img-2:1 is refused: Error code 1811: A RAISE function within a trigger fired\n",
                db.display()
            )
        );
        assert_eq!(
            store.images().await.expect("images"),
            ["img-1:1", "img-3:1"]
        );
    }

    /// A trigger that makes SQLite refuse every row of `image`.
    fn rusqlite_refuse(db: &std::path::Path, image: &str) {
        let sql = format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON containers WHEN NEW.image = '{image}' \
             BEGIN SELECT RAISE(ABORT, '{image} is refused'); END;"
        );
        rusqlite::Connection::open(db)
            .expect("open")
            .execute_batch(&sql)
            .expect("trigger");
    }

    #[tokio::test]
    async fn a_dead_tick_thread_is_an_error() {
        let (_stop_tx, mut stop) = watch::channel(false);
        let (committed_tx, mut committed) = watch::channel(0u64);
        // Alive: a commit wakes the loop.
        committed_tx.send(1).expect("receiver alive");
        wait_for_work(&mut committed, &mut stop)
            .await
            .expect("a commit is work");
        // The thread panics while holding the sender.
        let ticker = std::thread::spawn(move || {
            let _committed = committed_tx;
            panic!("a bug in tick");
        });
        assert!(ticker.join().is_err());
        let e = wait_for_work(&mut committed, &mut stop)
            .await
            .expect_err("a dead tick thread ends the loop");
        assert_eq!(
            e.to_string(),
            "the tick thread died; exiting so that the collector is restarted (what it spooled is kept)"
        );
    }
}
