//! The aggregation loop: fetch a batch from the broker, decode, insert
//! into the store, and only then ack.
//!
//! Exactly-once in effect: a message is acked only after the store accepted
//! the batch it was in; anything that fails before the ack is redelivered,
//! and the store's idempotency key (host, boot, seq) makes the second
//! insert a no-op. A message that cannot be decoded is published to the
//! dead-letter subject with the reason, counted, and acked: it never stops
//! the loop. A message of a newer wire version is dead-lettered the same
//! way and replayed by `sandmine replay-dead-letters` after an upgrade.
//!
//! With `enrolled_hosts` set ([`crate::enrolled`]), a message is stored
//! only if it is signed (wire v5) by a key enrolled for the host it
//! names, and that host is not revoked; any other is dead-lettered the
//! same way, with the reason (a forged host identity, an unsigned or
//! revoked host), and counted in `identity_refused`. Without it,
//! `host_id` is what the sender asserts (one warning at start).
//!
//! A store error is either transient (an outage, an overload, a timeout:
//! the same batch is retried with backoff, forever) or the store refusing
//! the rows themselves ([`StoreError::refuses_rows`]). Then the batch is
//! split in halves, recursively, until the message at fault is alone; it
//! is dead-lettered with the store's reason and the rest are stored (each
//! exactly once: the halves that were taken are not sent again, and the
//! store is idempotent anyway).

use crate::enrolled::Enrolled;
use crate::store::{Store, StoreError};
use schemas::wire;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use sysutil::Backoff;
use transport::{Consumer, Delivery, Publisher};

/// The loop's counters (exported as Prometheus metrics by the binary).
#[derive(Default, Debug)]
pub struct IngestMetrics {
    /// Delta messages inserted into the store.
    pub messages: AtomicU64,
    /// Batches inserted into the store.
    pub batches: AtomicU64,
    /// Rows written to the store.
    pub rows: AtomicU64,
    /// Messages acked to the broker.
    pub acked: AtomicU64,
    /// Messages sent to the dead-letter subject.
    pub dead_lettered: AtomicU64,
    /// Of those, messages whose host identity was refused
    /// (`enrolled_hosts`: unsigned, not enrolled, another host's key,
    /// revoked).
    pub identity_refused: AtomicU64,
    /// Failed store inserts (retried).
    pub store_errors: AtomicU64,
    /// Failed broker operations (retried).
    pub broker_errors: AtomicU64,
    /// Seccomp denials in the stored messages (wire v6), per image,
    /// bounded.
    pub denials: DenialsByImage,
}

/// At most this many images get their own `sandmine_denials_total`
/// series; denials of any later image count under `image="(other)"`.
pub const DENIALS_LISTED: usize = 50;

/// Seccomp denials per image, counted as messages are stored: the first
/// [`DENIALS_LISTED`] images to have denials get a counter of their own
/// (a counter never moves to another label, so `rate` stays right), the
/// rest share one. A redelivered message counts again, as in
/// `messages_stored_total`; the store's answers (`query denials`) are
/// exact.
#[derive(Default, Debug)]
pub struct DenialsByImage {
    inner: std::sync::Mutex<(std::collections::BTreeMap<String, u64>, u64)>,
}

impl DenialsByImage {
    /// Counts the denials of a stored batch.
    pub fn add(&self, batch: &[schemas::wire::Envelope]) {
        let mut g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (listed, other) = &mut *g;
        for c in batch.iter().flat_map(|e| &e.containers) {
            let n = c.denials.values().fold(0u64, |a, n| a.saturating_add(*n));
            if n == 0 {
                continue;
            }
            let image = &c.container.image;
            if let Some(v) = listed.get_mut(image) {
                *v = v.saturating_add(n);
            } else if listed.len() < DENIALS_LISTED {
                listed.insert(image.clone(), n);
            } else {
                *other = other.saturating_add(n);
            }
        }
    }

    /// (per listed image, its denials; the others' denials).
    pub fn snapshot(&self) -> (Vec<(String, u64)>, u64) {
        let g = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        (g.0.iter().map(|(i, n)| (i.clone(), *n)).collect(), g.1)
    }
}

/// `[aggregator]` section.
#[derive(serde::Deserialize, serde::Serialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct AggregatorConfig {
    /// Most messages per store insert.
    pub batch_max_messages: usize,
    /// How long to wait for a batch to fill.
    #[serde(with = "sysutil::duration")]
    pub batch_max_wait: Duration,
    /// Longest pause between retries while the store or broker is down.
    #[serde(with = "sysutil::duration")]
    pub retry_max_backoff: Duration,
    /// The registry of enrolled hosts ([`crate::enrolled`]): when set,
    /// only messages signed by an enrolled, unrevoked host's key are
    /// stored. Unset: host ids are asserted by the senders, not verified.
    pub enrolled_hosts: Option<std::path::PathBuf>,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig {
            batch_max_messages: 1000,
            batch_max_wait: Duration::from_secs(1),
            retry_max_backoff: Duration::from_secs(10),
            enrolled_hosts: None,
        }
    }
}

/// Runs until `stop` turns true (Ctrl-C, SIGTERM), finishing the batch in
/// hand first. Every failure is retried with backoff, so it only returns
/// when stopped. `enrolled`: the registry opened from
/// `cfg.enrolled_hosts` (refreshed before every batch), or `None`.
pub async fn run(
    cfg: &AggregatorConfig,
    consumer: &mut Consumer,
    dead_letters: &Publisher,
    store: &Store,
    metrics: &IngestMetrics,
    mut enrolled: Option<Enrolled>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(cfg.retry_max_backoff);
    let mut broker_backoff = Backoff::new(cfg.retry_max_backoff);
    // The batch fetched while the previous one was being inserted.
    let mut next: Option<Vec<Delivery>> = None;
    while !*stop.borrow() {
        let mut deliveries = match next.take() {
            Some(d) => d,
            None => {
                let fetched = tokio::select! {
                    r = consumer.fetch(cfg.batch_max_messages, cfg.batch_max_wait) => r,
                    _ = stop.changed() => break,
                };
                match fetched {
                    Ok(d) => {
                        broker_backoff.reset("broker");
                        d
                    }
                    Err(e) => {
                        metrics.broker_errors.fetch_add(1, Ordering::Relaxed);
                        wait(
                            &mut broker_backoff,
                            "broker",
                            &sysutil::error_chain(&e),
                            &mut stop,
                        )
                        .await;
                        continue;
                    }
                }
            }
        };
        // A rebalance while this batch waited (it may have been fetched
        // during the previous insert) can have handed some of it to
        // another aggregator, which gets it again from the committed
        // offset: leave that to it. If the assignment cannot be read,
        // storing them is only duplicate work (the store ignores copies).
        match consumer.retain_owned(&mut deliveries).await {
            Ok(0) => {}
            Ok(n) => log::info!(
                "{n} fetched messages left to the consumer that took over their partition"
            ),
            Err(e) => log::debug!(
                "could not check this batch's partitions are still ours: {}",
                sysutil::error_chain(&e)
            ),
        }
        if let Some(e) = enrolled.as_mut() {
            e.refresh();
        }
        if deliveries.is_empty() {
            continue;
        }
        // Insert this batch while the next one is fetched: the store's
        // work and ours overlap. The next batch is only held, not acked,
        // so a crash here redelivers both.
        let mut insert_stop = stop.clone();
        let (stored, fetched) = tokio::join!(
            process(
                &deliveries,
                enrolled.as_ref(),
                dead_letters,
                store,
                metrics,
                &mut backoff,
                &mut insert_stop,
            ),
            consumer.fetch(cfg.batch_max_messages, cfg.batch_max_wait)
        );
        if !stored {
            // Stopped while the store was down: nothing acked, all of it
            // will be redelivered.
            break;
        }
        match fetched {
            Ok(d) => {
                broker_backoff.reset("broker");
                next = Some(d);
            }
            Err(e) => {
                metrics.broker_errors.fetch_add(1, Ordering::Relaxed);
                let _ = broker_backoff.fail("broker", &sysutil::error_chain(&e));
            }
        }
        // Acked only now. If the ack is lost the messages come again and
        // the store ignores them.
        if let Err(e) = consumer.ack(&deliveries).await {
            metrics.broker_errors.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "ack of {} messages failed (they will be redelivered and deduplicated): {}",
                deliveries.len(),
                sysutil::error_chain(&e)
            );
        } else {
            metrics
                .acked
                .fetch_add(deliveries.len() as u64, Ordering::Relaxed);
        }
    }
    log::info!("aggregator stopped");
}

/// Decodes, dead-letters, inserts. False if stopped before the insert
/// succeeded.
async fn process(
    deliveries: &[Delivery],
    enrolled: Option<&Enrolled>,
    dead_letters: &Publisher,
    store: &Store,
    metrics: &IngestMetrics,
    backoff: &mut Backoff,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let mut good = Vec::with_capacity(deliveries.len());
    let mut of = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        // (reason, whether it is the host identity that is refused)
        let refused = match wire::decode_with_signer(&d.payload) {
            Ok((env, signer)) => {
                let version = wire::peek_version(&d.payload).unwrap_or_default();
                match enrolled.map(|r| r.check(&env.host_id, signer.as_ref(), version)) {
                    Some(Err(reason)) => Some((reason, true)),
                    _ => {
                        good.push(env);
                        of.push(d);
                        None
                    }
                }
            }
            Err(e) => Some((sysutil::error_chain(&e), false)),
        };
        if let Some((reason, identity)) = refused {
            if !dead_letter(d, &reason, dead_letters, metrics, backoff, stop).await {
                return false;
            }
            if identity {
                metrics.identity_refused.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Ranges of `good` still to store, the next one last.
    let mut todo: Vec<std::ops::Range<usize>> = Vec::with_capacity(8);
    todo.push(0..good.len());
    while let Some(r) = todo.pop() {
        if r.is_empty() {
            continue;
        }
        match store.insert(&good[r.clone()]).await {
            Ok(stats) => {
                backoff.reset("store");
                metrics
                    .messages
                    .fetch_add(r.len() as u64, Ordering::Relaxed);
                metrics.batches.fetch_add(1, Ordering::Relaxed);
                metrics.rows.fetch_add(stats.rows(), Ordering::Relaxed);
                metrics.denials.add(&good[r.clone()]);
            }
            Err(e) if e.refuses_rows() => {
                metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                if r.len() == 1 {
                    let reason = refused(&e);
                    if !dead_letter(of[r.start], &reason, dead_letters, metrics, backoff, stop)
                        .await
                    {
                        return false;
                    }
                } else {
                    let mid = r.start + r.len() / 2;
                    log::debug!(
                        "the store refused a batch of {} messages ({}); splitting it to find the one at fault",
                        r.len(),
                        sysutil::error_chain(&e)
                    );
                    todo.push(mid..r.end);
                    todo.push(r.start..mid);
                }
            }
            Err(e) => {
                metrics.store_errors.fetch_add(1, Ordering::Relaxed);
                if !wait(backoff, "store", &sysutil::error_chain(&e), stop).await {
                    return false;
                }
                todo.push(r);
            }
        }
    }
    true
}

/// The dead-letter reason of a message the store refused.
fn refused(e: &StoreError) -> String {
    format!(
        "the store refuses this message: {}",
        sysutil::error_chain(e)
    )
}

/// Publishes `d` to the dead-letter subject with `reason`, retrying like a
/// store outage: the dead letter must be safely stored before the
/// original is acked. False if stopped first.
async fn dead_letter(
    d: &Delivery,
    reason: &str,
    dead_letters: &Publisher,
    metrics: &IngestMetrics,
    backoff: &mut Backoff,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let id = d.msg_id.clone().unwrap_or_default();
    loop {
        match dead_letters
            .publish_dead_letter(&id, &d.payload, reason)
            .await
        {
            Ok(()) => break,
            Err(pe) => {
                metrics.broker_errors.fetch_add(1, Ordering::Relaxed);
                if !wait(backoff, "dead-letter", &sysutil::error_chain(&pe), stop).await {
                    return false;
                }
            }
        }
    }
    backoff.reset("dead-letter");
    metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
    log::warn!("dead-lettered message {id:?}: {reason}");
    true
}

/// Records a failure and sleeps its backoff; false if stopped meanwhile.
pub async fn wait(
    backoff: &mut Backoff,
    what: &'static str,
    err: &str,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> bool {
    let d = backoff.fail(what, err);
    tokio::select! {
        _ = tokio::time::sleep(d) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}
