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
        out
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
