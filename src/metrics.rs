//! Prometheus metrics of the long-running commands, served as text on
//! `GET /metrics` (a tiny HTTP/1.0 responder: no framework for a dozen
//! counters).
//!
//! The listener never stops: a failed accept (EMFILE, ENFILE, ENOBUFS) is
//! counted, warned about at most once a minute and retried with backoff;
//! and a client
//! gets [`IO_TIMEOUT`] to send its request and to take the answer, so a
//! client that connects and sends nothing cannot hold a descriptor.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a metrics client has to send its request, and to read the
/// answer.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// First wait after a failed accept; it doubles up to
/// [`ACCEPT_MAX_BACKOFF`] while accepts keep failing.
const ACCEPT_FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between accepts after a failed one.
const ACCEPT_MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning about failed accepts this often.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(60);

/// At most this many images get a `sandmine_log_mode_since_seconds`
/// series (those longest in log mode): the label set stays bounded
/// however many images the fleet has; `sandmine_log_mode_images` counts
/// them all.
pub const LOG_MODE_LISTED: usize = 50;

/// The metrics of the last publishing round of this process (`aggregate`
/// and `standalone` with a `[publish]` target), rendered from
/// [`LogMode`]; scripts/check-grafana.py reads these rows too.
pub const ROUND_ROWS: [(&str, &str, &str); 2] = [
    (
        "log_mode_images",
        "gauge",
        "Images whose profile in force is in log mode, after this process's last publish round",
    ),
    (
        "log_mode_since_seconds",
        "gauge",
        "When each image entered log mode (unix seconds), for the 50 longest in log mode; forced=\"true\" when an operator forced it (sandmine lever force-log)",
    ),
];

/// The aggregator's seccomp denials per image (issue 11), bounded to
/// `aggregator::ingest::DENIALS_LISTED` images and `image="(other)"`;
/// scripts/check-grafana.py reads this row too.
pub const DENIAL_ROWS: [(&str, &str, &str); 1] = [(
    "denials_total",
    "counter",
    "Seccomp denials in the stored delta messages (wire v6), per image: the first 50 images with denials each, the rest as image=\"(other)\"",
)];

/// Images in log mode after the last publishing round.
#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct LogMode {
    /// How many (every image, listed or not).
    pub images: u64,
    /// (image, forced by an operator, entered log mode at, unix seconds),
    /// at most [`LOG_MODE_LISTED`], longest in log mode first.
    pub listed: Vec<(String, bool, u64)>,
}

impl LogMode {
    /// From a round's reports (one per target): per image the earliest
    /// time any target has it in log mode since.
    pub fn from_reports(reports: &[publish::PublishReport]) -> LogMode {
        let mut by_image: std::collections::BTreeMap<&str, (bool, u64)> = Default::default();
        for r in reports {
            for i in &r.images {
                if let Some(ms) = i.log_since_ms {
                    let forced = i.levers.forced_log.is_some();
                    let e = by_image.entry(&i.image).or_insert((forced, ms));
                    *e = (e.0 || forced, e.1.min(ms));
                }
            }
        }
        let mut listed: Vec<(String, bool, u64)> = by_image
            .into_iter()
            .map(|(i, (f, ms))| (i.to_string(), f, ms / 1000))
            .collect();
        let images = listed.len() as u64;
        listed.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        listed.truncate(LOG_MODE_LISTED);
        LogMode { images, listed }
    }
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counters; every field is exported as `sandmine_<name>`.
#[derive(Default, Debug)]
pub struct Metrics {
    /// The aggregation loop's counters.
    pub ingest: aggregator::ingest::IngestMetrics,
    // collector
    pub published: AtomicU64,
    pub publish_errors: AtomicU64,
    pub spooled_messages: AtomicU64,
    pub spooled_bytes: AtomicU64,
    pub spool_rejected: AtomicU64,
    pub containers: AtomicU64,
    pub ticks: AtomicU64,
    pub lost_calls: AtomicU64,
    pub incomplete_containers: AtomicU64,
    pub unverified_containers: AtomicU64,
    pub withheld_containers: AtomicU64,
    /// The metrics listener's own failed accepts.
    pub metrics_accept_errors: AtomicU64,
    /// Images in log mode after the last publishing round.
    pub log_mode: std::sync::Mutex<LogMode>,
}

impl Metrics {
    pub fn render(&self) -> String {
        let i = &self.ingest;
        let rows: [(&str, &str, &str, &AtomicU64); 20] = [
            (
                "messages_stored_total",
                "counter",
                "Delta messages inserted into the store",
                &i.messages,
            ),
            (
                "store_batches_total",
                "counter",
                "Batches inserted into the store",
                &i.batches,
            ),
            (
                "store_rows_total",
                "counter",
                "Rows written to the store",
                &i.rows,
            ),
            (
                "messages_acked_total",
                "counter",
                "Messages acked to the broker",
                &i.acked,
            ),
            (
                "dead_lettered_total",
                "counter",
                "Messages sent to the dead-letter subject",
                &i.dead_lettered,
            ),
            (
                "identity_refused_total",
                "counter",
                "Messages dead-lettered because their host identity was refused (enrolled_hosts: unsigned, not enrolled, another host's key, revoked)",
                &i.identity_refused,
            ),
            (
                "store_errors_total",
                "counter",
                "Failed store inserts (retried)",
                &i.store_errors,
            ),
            (
                "broker_errors_total",
                "counter",
                "Failed broker operations (retried)",
                &i.broker_errors,
            ),
            (
                "published_total",
                "counter",
                "Delta messages confirmed by the broker",
                &self.published,
            ),
            (
                "publish_errors_total",
                "counter",
                "Failed publishes (kept in the spool)",
                &self.publish_errors,
            ),
            (
                "spool_messages",
                "gauge",
                "Messages waiting in the spool",
                &self.spooled_messages,
            ),
            (
                "spool_bytes",
                "gauge",
                "Bytes waiting in the spool",
                &self.spooled_bytes,
            ),
            (
                "spool_rejected_messages",
                "gauge",
                "Spooled messages set aside because they can never be sent (kept in spool/rejected/)",
                &self.spool_rejected,
            ),
            (
                "containers",
                "gauge",
                "Containers tracked",
                &self.containers,
            ),
            (
                "ticks_total",
                "counter",
                "Collection intervals completed",
                &self.ticks,
            ),
            (
                "lost_calls_total",
                "counter",
                "Syscalls the kernel could not record (map full)",
                &self.lost_calls,
            ),
            (
                "incomplete_containers_total",
                "counter",
                "Containers marked incomplete (some calls lost) since the collector started",
                &self.incomplete_containers,
            ),
            (
                "unverified_containers_total",
                "counter",
                "Containers marked unverified (cgroup not provably its runtime's) since the collector started",
                &self.unverified_containers,
            ),
            (
                "withheld_containers_total",
                "counter",
                "Incomplete (unverified) containers left out of the messages since the collector started (max_wire_version below 3 (4) cannot carry the flag)",
                &self.withheld_containers,
            ),
            (
                "metrics_accept_errors_total",
                "counter",
                "Failed accepts of the metrics listener (e.g. out of file descriptors; retried with backoff)",
                &self.metrics_accept_errors,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP sandmine_{name} {help}\n# TYPE sandmine_{name} {kind}\nsandmine_{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        let lm = match self.log_mode.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let [(count, ck, ch), (since, sk, sh)] = ROUND_ROWS;
        out.push_str(&format!(
            "# HELP sandmine_{count} {ch}\n# TYPE sandmine_{count} {ck}\nsandmine_{count} {}\n\
             # HELP sandmine_{since} {sh}\n# TYPE sandmine_{since} {sk}\n",
            lm.images
        ));
        for (image, forced, s) in &lm.listed {
            out.push_str(&format!(
                "sandmine_{since}{{image=\"{}\",forced=\"{forced}\"}} {s}\n",
                label_value(image)
            ));
        }
        let [(denials, dk, dh)] = DENIAL_ROWS;
        let (listed, other) = self.ingest.denials.snapshot();
        out.push_str(&format!(
            "# HELP sandmine_{denials} {dh}\n# TYPE sandmine_{denials} {dk}\n"
        ));
        for (image, n) in &listed {
            out.push_str(&format!(
                "sandmine_{denials}{{image=\"{}\"}} {n}\n",
                label_value(image)
            ));
        }
        out.push_str(&format!(
            "sandmine_{denials}{{image=\"(other)\"}} {other}\n"
        ));
        out
    }
}

impl Metrics {
    /// Records a publishing round's images in log mode.
    pub fn set_log_mode(&self, reports: &[publish::PublishReport]) {
        let lm = LogMode::from_reports(reports);
        match self.log_mode.lock() {
            Ok(mut g) => *g = lm,
            Err(p) => *p.into_inner() = lm,
        }
    }
}

/// Serves `/metrics` on `listen` (empty: not at all), in its own task.
pub fn spawn(listen: &str, metrics: &Arc<Metrics>) {
    if listen.is_empty() {
        return;
    }
    let (listen, m) = (listen.to_string(), metrics.clone());
    tokio::spawn(async move {
        if let Err(e) = serve(&listen, m).await {
            log::error!("{e}");
        }
    });
}

/// Serves `/metrics` on `listen` until the task is dropped.
async fn serve(listen: &str, metrics: Arc<Metrics>) -> anyhow::Result<()> {
    let l = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("metrics: cannot listen on {listen}: {e}"))?;
    log::info!("metrics on http://{listen}/metrics");
    let mut delay = ACCEPT_FIRST_BACKOFF;
    let mut last_warning: Option<std::time::Instant> = None;
    let mut failed_since_warning = 0u64;
    loop {
        match l.accept().await {
            Ok((s, _)) => {
                delay = ACCEPT_FIRST_BACKOFF;
                tokio::spawn(answer(s, metrics.clone()));
            }
            Err(e) => {
                // The pending connection stays in the backlog; accept it
                // once descriptors are free again. Out of descriptors,
                // accepts fail and succeed in turn: one warning a minute.
                metrics
                    .metrics_accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                failed_since_warning += 1;
                if last_warning.is_none_or(|t| t.elapsed() >= ACCEPT_WARN_EVERY) {
                    log::warn!(
                        "metrics listener: accept failed ({failed_since_warning} time(s) since the last warning), retrying with backoff up to {ACCEPT_MAX_BACKOFF:?}: {e}"
                    );
                    last_warning = Some(std::time::Instant::now());
                    failed_since_warning = 0;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(ACCEPT_MAX_BACKOFF);
            }
        }
    }
}

/// Answers one client, giving it [`IO_TIMEOUT`] for the request and again
/// for the answer.
async fn answer(mut s: tokio::net::TcpStream, m: Arc<Metrics>) {
    let mut buf = [0u8; 1024];
    let n = match tokio::time::timeout(IO_TIMEOUT, s.read(&mut buf)).await {
        Ok(Ok(n)) => n,
        Ok(Err(_)) | Err(_) => return,
    };
    let req = String::from_utf8_lossy(&buf[..n]);
    let (status, body) = if req.starts_with("GET /metrics") {
        ("200 OK", m.render())
    } else {
        ("404 Not Found", "not found\n".to_string())
    };
    let resp = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(IO_TIMEOUT, s.write_all(resp.as_bytes())).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use publish::{ImageReport, LeverMark, Levers, Outcome, PublishReport};

    fn report(images: &[(&str, Option<u64>, bool)]) -> PublishReport {
        PublishReport {
            target: "dir:/p".into(),
            pushed: Vec::new(),
            images: images
                .iter()
                .map(|(image, since, forced)| ImageReport {
                    image: image.to_string(),
                    slug: String::new(),
                    outcome: Outcome::Unchanged {
                        version: "sha256:00".into(),
                    },
                    levers: Levers {
                        pinned: None,
                        forced_log: forced.then(|| LeverMark {
                            by: "ops".into(),
                            reason: "r".into(),
                            at_ms: 0,
                        }),
                    },
                    log_since_ms: *since,
                })
                .collect(),
        }
    }

    /// Bounded: 60 images in log mode are all counted, the 50 longest in
    /// it listed, oldest first; per image the earliest time over targets;
    /// label values escaped.
    #[test]
    fn log_mode_is_counted_and_listed_bounded() {
        let mut many: Vec<(String, Option<u64>, bool)> = (0..60)
            .map(|i| (format!("img{i:02}"), Some(1_000_000 + i * 1000), false))
            .collect();
        many.push(("enforced:1".into(), None, false));
        many.push(("odd\"name\\x".into(), Some(5_000), true));
        let first: Vec<(&str, Option<u64>, bool)> =
            many.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
        // The second target has img59 in log mode for longer.
        let second = report(&[("img59", Some(2_000), false)]);
        let m = Metrics::default();
        m.set_log_mode(&[report(&first), second]);
        let lm = m.log_mode.lock().unwrap().clone();
        assert_eq!(lm.images, 61);
        assert_eq!(lm.listed.len(), LOG_MODE_LISTED);
        assert_eq!(lm.listed[0], ("img59".to_string(), false, 2));
        assert_eq!(lm.listed[1], ("odd\"name\\x".to_string(), true, 5));
        assert_eq!(lm.listed[2], ("img00".to_string(), false, 1000));
        assert_eq!(lm.listed[49], ("img47".to_string(), false, 1047));
        let text = m.render();
        assert!(text.contains("\nsandmine_log_mode_images 61\n"), "{text}");
        assert!(
            text.contains(
                "\nsandmine_log_mode_since_seconds{image=\"odd\\\"name\\\\x\",forced=\"true\"} 5\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("sandmine_log_mode_since_seconds{").count(), 50);
    }

    /// Bounded: the first 50 images with denials get a series each, the
    /// rest count under image="(other)"; a listed image keeps its series;
    /// containers without denials count nothing.
    #[test]
    fn denials_are_counted_per_image_bounded() {
        use schemas::wire::{ContainerDelta, ContainerRef, Envelope};
        use schemas::{Abi, DenialKey, DenyAction};
        let ctr = |image: &str, n: u64| ContainerDelta {
            container: ContainerRef {
                image: image.into(),
                id: "c".into(),
                ..ContainerRef::default()
            },
            started_at_ms: 0,
            last_seen_ms: 0,
            exited_at_ms: None,
            syscalls: vec![],
            incomplete: false,
            unverified: false,
            denials: (n > 0)
                .then_some((
                    DenialKey {
                        abi: Abi::X86_64,
                        nr: 155,
                        action: DenyAction::Errno(1),
                    },
                    n,
                ))
                .into_iter()
                .collect(),
            args: Default::default(),
            executed: Default::default(),
        };
        let env = |containers| Envelope {
            host_id: "h".into(),
            boot_id: "b".into(),
            seq: 1,
            interval_start_ms: 0,
            interval_end_ms: 0,
            containers,
        };
        let m = Metrics::default();
        let text = m.render();
        assert!(
            text.contains("# TYPE sandmine_denials_total counter\nsandmine_denials_total{image=\"(other)\"} 0\n"),
            "{text}"
        );
        let first: Vec<ContainerDelta> = (0..55)
            .map(|i| ctr(&format!("img{i:02}"), 2))
            .chain([ctr("quiet:1", 0), ctr("odd\"x", 0)])
            .collect();
        m.ingest.denials.add(&[env(first)]);
        m.ingest
            .denials
            .add(&[env(vec![ctr("img00", 3), ctr("late:1", 7)])]);
        let text = m.render();
        assert_eq!(text.matches("sandmine_denials_total{").count(), 51);
        assert!(
            text.contains("\nsandmine_denials_total{image=\"img00\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("\nsandmine_denials_total{image=\"img49\"} 2\n"),
            "{text}"
        );
        assert!(!text.contains("img50"), "{text}");
        assert!(!text.contains("quiet:1"), "{text}");
        assert!(
            text.contains("\nsandmine_denials_total{image=\"(other)\"} 17\n"),
            "{text}"
        );
    }
}
