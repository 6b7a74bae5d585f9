//! NATS JetStream side: connection, streams, publisher, durable pull
//! consumer.
//!
//! Guarantees kept here:
//! - a publish returns only after the stream's PubAck; a PubAck saying
//!   `duplicate` is success (the message is already stored);
//! - `Nats-Msg-Id` is the caller's dedupe id, so a retry within
//!   `duplicate_window` is stored once;
//! - deliveries are acked only when the caller says so (explicit ack, each
//!   ack confirmed by the server), so a crash before `ack` means redelivery.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer},
    message::Acker,
    message::PublishMessage,
    stream::{self, DeleteMessageErrorKind, DiscardPolicy, RetentionPolicy, StorageType},
    ErrorCode,
};
use async_nats::{connection::State, ConnectErrorKind, HeaderMap, ServerAddr};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::config::NatsConfig;
use crate::{Delivery, Handle, TransportError};

/// Header carrying the original dedupe id on a dead letter (the
/// dead-letter stream's own `Nats-Msg-Id` may be dropped by tools that copy
/// messages; this one is ours).
pub const HEADER_MSG_ID: &str = "Sandmine-Msg-Id";
/// Header carrying why a message was dead-lettered.
pub const HEADER_REASON: &str = "Sandmine-Reason";
/// JetStream's dedupe header.
const HEADER_NATS_MSG_ID: &str = "Nats-Msg-Id";

/// Bytes a message's headers take besides the payload, for messages with
/// only `Nats-Msg-Id`: `NATS/1.0\r\n`, `Nats-Msg-Id: ID\r\n`, `\r\n`.
fn msg_id_header_bytes(msg_id: &str) -> usize {
    27 + msg_id.len()
}

/// Room kept for the headers when telling callers how large a payload may
/// be ([`NatsPublisher::max_message_bytes`]): ids up to 229 bytes.
const HEADER_ROOM: usize = 256;

/// What nats-server's stores add to each message beyond its subject,
/// headers and payload (the file store's record header and hash: 30
/// bytes), rounded up.
const STORED_MSG_OVERHEAD: usize = 64;

/// The most bytes one stored message may take on a server that
/// [`evicts_at_the_edge`]: the stream is then also bounded to
/// `max_bytes / EDGE_SLOT` messages, so that its byte bound is never reached.
const EDGE_SLOT: i64 = 64 * 1024;

/// The same for the dead-letter stream. A dead letter is a delta as it was
/// delivered (payload and id within the delta stream's [`EDGE_SLOT`]) with
/// the id a second time, a reason of at most [`crate::REASON_MAX`] bytes
/// and 65 bytes of header names and framing: at most `2 * EDGE_SLOT +
/// REASON_MAX + 65` bytes of headers and payload, so every dead letter of
/// a delta the delta stream took fits this slot, and the dead-letter stream
/// too is bounded by count before bytes.
const DEAD_LETTER_SLOT: i64 = 2 * EDGE_SLOT + 2048;

/// Whether this nats-server deletes an unconsumed message of a full
/// discard-new stream. Before 2.11, its refusal check counts a new
/// message's payload and headers only, and its store also counts the
/// subject and the record: a message just over the room left is admitted,
/// and the stream, now over `max_bytes`, deletes its OLDEST message as if
/// it were discard-old (nats-server#4771 and #4775, fixed by #4772).
/// Debian 12 ships 2.9.10; `transport/tests/nats.rs::the_edge_of_a_full_stream_*`
/// shows the loss on it and none on 2.15. An unparsable version counts as
/// affected: the guard only costs a message-count bound.
pub fn evicts_at_the_edge(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) < (2, 11),
        _ => true,
    }
}

/// The bounds sandmine gives a stream of `max_bytes`: `(max_msgs,
/// max_msg_size)`, both -1 (none) on a sound server (`slot` None). On one
/// that [`evicts_at_the_edge`], `slot` is the stream's ([`EDGE_SLOT`] for
/// deltas, [`DEAD_LETTER_SLOT`] for dead letters): every message is at
/// most `slot` bytes stored (or the whole stream, if smaller), and the
/// stream holds at most `max_bytes / slot` of them: the count bound, which
/// nats-server checks exactly, always refuses before the byte bound is
/// reached.
fn edge_bounds(slot: Option<i64>, max_bytes: i64, subject: &str) -> (i64, i32) {
    let Some(slot) = slot.filter(|_| max_bytes > 0) else {
        return (-1, -1);
    };
    let slot = slot.min(max_bytes);
    let overhead = (STORED_MSG_OVERHEAD + subject.len()) as i64;
    let msg_size = i32::try_from((slot - overhead).max(1)).unwrap_or(i32::MAX);
    ((max_bytes / slot).max(1), msg_size)
}

/// How many publish acks [`NatsPublisher::publish_many`] keeps in flight.
/// Far below the ~5000 where async-nats' ack bookkeeping stalls
/// (PLATFORM-NOTES), and enough to saturate a local server.
pub const PUBLISH_WINDOW: usize = 512;
/// How many acks [`NatsConsumer::ack`] awaits concurrently.
const ACK_WINDOW: usize = 256;

fn server_addrs(url: &str) -> Result<Vec<ServerAddr>, TransportError> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| TransportError::Config(format!("nats: invalid url {s:?}: {e}")))
        })
        .collect()
}

/// Connects with every timeout set, the configured auth and TLS.
pub(crate) async fn connect(cfg: &NatsConfig) -> Result<async_nats::Client, TransportError> {
    cfg.validate()?;
    let addrs = server_addrs(&cfg.url)?;
    if addrs.is_empty() {
        return Err(TransportError::Config("nats: url is empty".into()));
    }
    let urls: Vec<&str> = cfg.url.split(',').collect();
    let tls_asked = urls
        .iter()
        .all(|u| u.trim().to_ascii_lowercase().starts_with("tls://"));
    if !cfg.require_tls && !tls_asked {
        sysutil::net::warn_plaintext(
            "NATS",
            &cfg.url,
            &urls,
            "use tls:// urls or require_tls = true",
        );
    }
    let mut opts = async_nats::ConnectOptions::new()
        .name("sandmine")
        .connection_timeout(cfg.timeout)
        .request_timeout(Some(cfg.timeout))
        // Reconnect quickly after a broker restart: 1, 2, 4 ... ms, capped
        // at 1 s, forever (the caller decides when to give up).
        .reconnect_delay_callback(|attempts| {
            let exp = u32::try_from(attempts).unwrap_or(u32::MAX).min(10);
            Duration::from_millis(2u64.saturating_pow(exp)).min(Duration::from_secs(1))
        })
        .event_callback(|event| async move {
            log::info!("nats: {event}");
        });
    if let (Some(u), Some(p)) = (&cfg.user, &cfg.password) {
        opts = opts.user_and_password(u.clone(), p.expose().to_string());
    }
    if let Some(t) = &cfg.token {
        opts = opts.token(t.expose().to_string());
    }
    if let Some(seed) = &cfg.nkey_seed {
        opts = opts.nkey(seed.expose().to_string());
    }
    if let Some(path) = &cfg.creds_file {
        opts = opts.credentials_file(path).await.map_err(|e| {
            TransportError::Config(format!(
                "nats: cannot read creds file {}: {e}",
                path.display()
            ))
        })?;
    }
    if let Some(ca) = &cfg.ca_file {
        opts = opts.add_root_certificates(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) {
        opts = opts.add_client_certificate(cert.clone(), key.clone());
    }
    if cfg.require_tls {
        opts = opts.require_tls(true);
    }
    let url = cfg.url.clone();
    let fut = opts.connect(addrs);
    // connection_timeout bounds one attempt; this bounds the whole thing
    // (DNS, TLS, auth round trip) too.
    let limit = cfg.timeout + Duration::from_secs(1);
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(TransportError::nats_timeout(&url, "connect", limit)),
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(match e.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                TransportError::Auth {
                    broker: "NATS",
                    url,
                    detail: e.to_string(),
                }
            }
            ConnectErrorKind::TimedOut => TransportError::nats_timeout(&url, "connect", limit),
            _ => TransportError::Connect {
                broker: "NATS",
                url,
                detail: match tls_failure(cfg, &e) {
                    Some(why) => why,
                    None => e.to_string(),
                },
            },
        }),
    }
}

/// Explains a failed TLS handshake in terms of our settings. async-nats
/// reports handshake failures as bare "IO error"s (a plaintext server
/// under `require_tls` reads as "received corrupt message of type
/// InvalidContentType"); the rustls error inside says what went wrong.
fn tls_failure(cfg: &NatsConfig, e: &async_nats::ConnectError) -> Option<String> {
    use async_nats::rustls::{AlertDescription, CertificateError, Error as TlsError};
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let tls = loop {
        let c = cause?;
        if let Some(t) = c.downcast_ref::<TlsError>() {
            break t;
        }
        // io::Error::source() skips the error it wraps (often another
        // io::Error around the rustls one): descend into it instead.
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => c.source(),
        };
    };
    let hint = match tls {
        TlsError::InvalidMessage(_) => {
            "the server did not answer in TLS: it does not offer TLS on this port, \
             but require_tls (or a tls:// url) insists on it"
                .to_string()
        }
        TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => match &cfg.ca_file {
            Some(ca) => format!(
                "the server's certificate is not signed by the CA in ca_file {}",
                ca.display()
            ),
            None => "the server's certificate is not signed by a CA in the system roots; \
                     set ca_file to the CA that signed it"
                .to_string(),
        },
        TlsError::InvalidCertificate(_) => {
            "the server's certificate is not valid for this address or has expired".to_string()
        }
        TlsError::AlertReceived(
            AlertDescription::BadCertificate
            | AlertDescription::CertificateRequired
            | AlertDescription::UnknownCA
            | AlertDescription::HandshakeFailure,
        ) => {
            if cfg.cert_file.is_some() {
                "the server refused our client certificate (cert_file): is it signed by a CA \
                 the server trusts?"
                    .to_string()
            } else {
                "the server refused the handshake: it probably requires a client \
                 certificate (set cert_file and key_file)"
                    .to_string()
            }
        }
        _ => String::new(),
    };
    Some(if hint.is_empty() {
        format!("TLS handshake failed: {tls}")
    } else {
        format!("TLS handshake failed: {tls}; {hint}")
    })
}

fn context(client: async_nats::Client, cfg: &NatsConfig) -> jetstream::Context {
    jetstream::ContextBuilder::new()
        .timeout(cfg.timeout)
        .max_ack_inflight(PUBLISH_WINDOW * 2)
        .backpressure_on_inflight(true)
        .build(client)
}

/// Runs `fut` with the configured timeout, naming `op` on failure.
async fn bounded<T, E: std::fmt::Display>(
    url: &str,
    op: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, TransportError> {
    match tokio::time::timeout(limit, fut).await {
        Err(_) => Err(TransportError::nats_timeout(url, op, limit)),
        Ok(Err(e)) => Err(TransportError::nats(url, op, e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// Gets the stream, creating it if missing: file storage, one subject,
/// the dedupe window, and bounded retention: work-queue (a message is
/// deleted once acked), at most `max_bytes`, discard-new (a full stream
/// refuses new messages, so publishers spool; discard-old would silently
/// delete deltas no aggregator has consumed yet).
///
/// An existing stream keeps its other settings (an operator may have tuned
/// replicas or the dedupe window), but these three are sandmine's: a
/// stream with another bound or discard policy is updated in place. One
/// with another retention cannot be: nats-server (2.9 and 2.15 alike)
/// refuses to change a stream's retention to or from work-queue. That is
/// what a stream created by an older sandmine has (limits retention, no
/// bound, discard-old: its acked deltas pile up until the disk is full),
/// so connecting to it is a [`TransportError::StreamConfig`] that says
/// what to do; collectors keep spooling meanwhile.
///
/// `edge_slot`: on a server that [`evicts_at_the_edge`], the stream's slot
/// ([`edge_bounds`]); None on a sound one.
async fn ensure_stream(
    js: &jetstream::Context,
    cfg: &NatsConfig,
    name: &str,
    subject: &str,
    max_bytes: i64,
    edge_slot: Option<i64>,
) -> Result<stream::Stream, TransportError> {
    let (max_msgs, max_msg_size) = edge_bounds(edge_slot, max_bytes, subject);
    let config = stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        duplicate_window: cfg.duplicate_window,
        storage: StorageType::File,
        retention: RetentionPolicy::WorkQueue,
        discard: DiscardPolicy::New,
        max_bytes,
        max_messages: max_msgs,
        max_message_size: max_msg_size,
        ..Default::default()
    };
    let stream = bounded(
        &cfg.url,
        &format!("get or create stream {name}"),
        cfg.timeout,
        js.get_or_create_stream(config),
    )
    .await?;
    let have = &stream.cached_info().config;
    if have.retention == RetentionPolicy::WorkQueue
        && have.discard == DiscardPolicy::New
        && have.max_bytes == max_bytes
        && have.max_messages == max_msgs
        && (max_msg_size < 0
            || (0 < have.max_message_size && have.max_message_size <= max_msg_size))
    {
        return Ok(stream);
    }
    let was = format!(
        "retention {:?}, discard {:?}, max_bytes {}, max_msgs {}, max_msg_size {}",
        have.retention, have.discard, have.max_bytes, have.max_messages, have.max_message_size
    );
    let mut update = have.clone();
    update.retention = RetentionPolicy::WorkQueue;
    update.discard = DiscardPolicy::New;
    update.max_bytes = max_bytes;
    update.max_messages = max_msgs;
    if max_msg_size > 0 && !(0 < have.max_message_size && have.max_message_size <= max_msg_size) {
        // An operator's smaller message limit is kept.
        update.max_message_size = max_msg_size;
    }
    let update_size = update.max_message_size;
    let op = format!("update stream {name}");
    match tokio::time::timeout(cfg.timeout, js.update_stream(update)).await {
        Err(_) => return Err(TransportError::nats_timeout(&cfg.url, op, cfg.timeout)),
        Ok(Err(e)) => {
            return Err(TransportError::StreamConfig {
                broker: "NATS",
                url: cfg.url.clone(),
                stream: name.to_string(),
                detail: format!(
                    "it has {was}, and sandmine needs retention WorkQueue, discard New, \
                     max_bytes {max_bytes}; the server refused to change it: {e}. \
                     A stream created by an older sandmine (limits retention, no bound: acked \
                     deltas are never removed) cannot become a work queue in place: let the \
                     aggregators consume it, delete it (`nats stream rm {name}`), and \
                     sandmine creates it anew (docs/CONFIG.md, \"Upgrading the streams\")"
                ),
            })
        }
        Ok(Ok(_)) => {}
    }
    log::warn!(
        "nats: stream {name} had {was}; updated to retention WorkQueue, discard New, max_bytes {max_bytes}, max_msgs {max_msgs}, max_msg_size {}",
        update_size
    );
    bounded(
        &cfg.url,
        &format!("get stream {name}"),
        cfg.timeout,
        js.get_stream(name),
    )
    .await
}

/// [`evicts_at_the_edge`] for the connected server; says so once per
/// process.
fn server_evicts(client: &async_nats::Client, cfg: &NatsConfig) -> bool {
    let version = client.server_info().version;
    let evicts = evicts_at_the_edge(&version);
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if evicts && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        log::info!(
            "nats: server {} is {version}, which can delete the oldest message of a full stream \
             (nats-server#4771): both streams are bounded by message count too \
             (at most {} KiB per delta, {} KiB per dead letter; docs/CONFIG.md)",
            cfg.url,
            EDGE_SLOT / 1024,
            DEAD_LETTER_SLOT / 1024
        );
    }
    evicts
}

fn not_connected(client: &async_nats::Client, url: &str, op: &str) -> Option<TransportError> {
    match client.connection_state() {
        State::Connected => None,
        state => Some(TransportError::Connect {
            broker: "NATS",
            url: url.to_string(),
            detail: format!("{op}: connection is {state:?}, reconnecting in the background"),
        }),
    }
}

/// Publishes to JetStream; see the module docs for the guarantees.
#[derive(Clone)]
pub struct NatsPublisher {
    cfg: NatsConfig,
    client: async_nats::Client,
    js: jetstream::Context,
    /// The delta stream's `max_msg_size`, when an operator set one.
    stream_max_msg_size: Option<usize>,
    /// The delta stream's `max_bytes`: a message larger than the whole
    /// stream is refused ("maximum bytes exceeded") on every try.
    stream_max_bytes: Option<usize>,
}

impl std::fmt::Debug for NatsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsPublisher")
            .field("url", &self.cfg.url)
            .finish()
    }
}

impl NatsPublisher {
    /// Connects and makes sure both streams exist.
    pub async fn connect(cfg: &NatsConfig) -> Result<Self, TransportError> {
        let client = connect(cfg).await?;
        let js = context(client.clone(), cfg);
        let evicts = server_evicts(&client, cfg);
        let deltas = ensure_stream(
            &js,
            cfg,
            &cfg.stream,
            &cfg.subject,
            cfg.stream_max_bytes,
            evicts.then_some(EDGE_SLOT),
        )
        .await?;
        // -1: no limit of the stream's own.
        let stream_max_msg_size = usize::try_from(deltas.cached_info().config.max_message_size)
            .ok()
            .filter(|n| *n > 0);
        let stream_max_bytes = usize::try_from(deltas.cached_info().config.max_bytes)
            .ok()
            .filter(|n| *n > 0);
        ensure_stream(
            &js,
            cfg,
            &cfg.dead_letter_stream,
            &cfg.dead_letter_subject,
            cfg.dead_letter_max_bytes,
            evicts.then_some(DEAD_LETTER_SLOT),
        )
        .await?;
        Ok(NatsPublisher {
            cfg: cfg.clone(),
            client,
            js,
            stream_max_msg_size,
            stream_max_bytes,
        })
    }

    /// Sends one message and returns the future of its PubAck.
    async fn send(
        &self,
        subject: &str,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<jetstream::context::PublishAckFuture, TransportError> {
        if let Some(e) = not_connected(&self.client, &self.cfg.url, "publish") {
            return Err(e);
        }
        bounded(
            &self.cfg.url,
            &format!("publish to {subject}"),
            self.cfg.timeout,
            self.js.send_publish(
                subject.to_string(),
                PublishMessage::build().payload(payload).headers(headers),
            ),
        )
        .await
    }

    async fn confirm(
        &self,
        subject: &str,
        ack: jetstream::context::PublishAckFuture,
    ) -> Result<(), TransportError> {
        // The ack future has its own timeout (the context's); bound it
        // again so no code path can hang.
        let limit = self.cfg.timeout + Duration::from_secs(1);
        let op = format!("publish ack from {subject}");
        let ack = bounded(
            &self.cfg.url,
            &op,
            limit,
            std::future::IntoFuture::into_future(ack),
        )
        .await?;
        if ack.duplicate {
            log::debug!(
                "nats: duplicate publish on {subject} (seq {})",
                ack.sequence
            );
        }
        Ok(())
    }

    fn main_headers(msg_id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER_NATS_MSG_ID, msg_id);
        h
    }

    /// The most bytes (headers and payload) a delta may have: the
    /// server's announced `max_payload`, the delta stream's `max_msg_size`
    /// if an operator set a smaller one, and what fits into the whole
    /// stream (`max_bytes`, less the subject and the store's per-message
    /// overhead): a message the empty stream cannot hold is refused on
    /// every try, and would block the spool behind it.
    fn limit(&self) -> usize {
        let max_payload = self.client.server_info().max_payload;
        let mut limit = self
            .stream_max_msg_size
            .map_or(max_payload, |m| m.min(max_payload));
        if let Some(b) = self.stream_max_bytes {
            limit = limit.min(b.saturating_sub(STORED_MSG_OVERHEAD + self.cfg.subject.len()));
        }
        limit
    }

    /// The largest payload this server takes with sandmine's headers: its
    /// limit less [`HEADER_ROOM`].
    pub fn max_message_bytes(&self) -> usize {
        self.limit().saturating_sub(HEADER_ROOM)
    }

    /// [`TransportError::TooLarge`] for a message over the limit
    /// (headers included): it would be refused on every try.
    fn check_size(&self, msg_id: &str, payload: &[u8]) -> Result<(), TransportError> {
        let limit = self.limit();
        if payload.len() + msg_id_header_bytes(msg_id) > limit {
            return Err(TransportError::TooLarge {
                broker: "NATS",
                url: self.cfg.url.clone(),
                size: payload.len(),
                limit,
            });
        }
        Ok(())
    }

    /// Publishes one delta; returns after JetStream stored it (or said it
    /// already had this `msg_id`).
    pub async fn publish(&self, msg_id: &str, payload: &[u8]) -> Result<(), TransportError> {
        self.check_size(msg_id, payload)?;
        let ack = self
            .send(
                &self.cfg.subject,
                Self::main_headers(msg_id),
                Bytes::copy_from_slice(payload),
            )
            .await?;
        self.confirm(&self.cfg.subject, ack).await
    }

    /// Publishes many deltas with up to [`PUBLISH_WINDOW`] acks in flight;
    /// returns after every one is confirmed, or the first error (some of
    /// the batch may then be stored: republishing it is deduped).
    pub async fn publish_many(&self, msgs: &[(&str, &[u8])]) -> Result<(), TransportError> {
        let mut inflight = futures::stream::FuturesOrdered::new();
        for (id, payload) in msgs {
            if inflight.len() >= PUBLISH_WINDOW {
                if let Some(r) = inflight.next().await {
                    r?;
                }
            }
            self.check_size(id, payload)?;
            let ack = self
                .send(
                    &self.cfg.subject,
                    Self::main_headers(id),
                    Bytes::copy_from_slice(payload),
                )
                .await?;
            inflight.push_back(self.confirm(&self.cfg.subject, ack));
        }
        while let Some(r) = inflight.next().await {
            r?;
        }
        Ok(())
    }

    /// Publishes an undecodable message to the dead-letter stream, with
    /// `reason` (cut to [`crate::REASON_MAX`] bytes:
    /// [`crate::dead_letter_reason`]) and the original id in headers.
    /// Deduped on `msg_id` too, so dead-lettering a redelivered message
    /// twice stores it once.
    pub async fn publish_dead_letter(
        &self,
        msg_id: &str,
        payload: &[u8],
        reason: &str,
    ) -> Result<(), TransportError> {
        let mut h = HeaderMap::new();
        h.insert(HEADER_NATS_MSG_ID, msg_id);
        h.insert(HEADER_MSG_ID, msg_id);
        h.insert(HEADER_REASON, crate::dead_letter_reason(reason).as_str());
        let subject = self.cfg.dead_letter_subject.clone();
        let ack = self
            .send(&subject, h, Bytes::copy_from_slice(payload))
            .await?;
        self.confirm(&subject, ack).await
    }
}

/// Deletes the messages of a work-queue stream at or below its consumer's
/// ack floor. Each of them was acked, so the server should have deleted
/// it; nats-server 2.9 killed with -9 can come back with such messages
/// still stored, having written its consumer's state and not its
/// stream's deletes (`benchmarks/faults/nats_orphans.py`: 8 of 14 kill -9
/// restarts of 2.9.10, none of 2.15.1). They are never delivered again,
/// and they keep their bytes and, on a server that [`evicts_at_the_edge`],
/// their slot of the count bound: enough crashes would fill the stream
/// with them and refuse every delta for good. A sandmine stream has one
/// consumer (a work queue allows one; replicas share it), so what is at
/// or below its ack floor was acked.
///
/// One message at a time, the stream's first each time (gaps are
/// skipped): a purge up to the floor would do it at once, but 2.9's
/// purge also drops the consumer's pending acks, and a message delivered
/// and not acked yet would then never come again.
async fn delete_acked(
    cfg: &NatsConfig,
    name: &str,
    stream: &mut stream::Stream,
    consumer: &mut PullConsumer,
) -> Result<(), TransportError> {
    let floor = bounded(
        &cfg.url,
        &format!("consumer info on {name}"),
        cfg.timeout,
        consumer.info(),
    )
    .await?
    .ack_floor
    .stream_sequence;
    let mut deleted = 0u64;
    let mut last = None;
    loop {
        let state = bounded(
            &cfg.url,
            &format!("stream info of {name}"),
            cfg.timeout,
            stream.info(),
        )
        .await?
        .state
        .clone();
        if state.messages == 0 || state.first_sequence > floor {
            break;
        }
        let seq = state.first_sequence;
        if last == Some(seq) {
            // Not deleted and still first: never spin on it.
            log::warn!(
                "nats: stream {name}: acked message {seq} could not be deleted; left in place"
            );
            break;
        }
        last = Some(seq);
        // Gone meanwhile (another replica connecting, or the server's own
        // work-queue delete of a message acked just now): done, not an error.
        let gone = async {
            match stream.delete_message(seq).await {
                Err(e)
                    if matches!(
                        e.kind(),
                        DeleteMessageErrorKind::JetStream(ref j)
                            if j.error_code() == ErrorCode::NO_MESSAGE_FOUND
                    ) =>
                {
                    Ok(false)
                }
                other => other,
            }
        };
        if bounded(
            &cfg.url,
            &format!("delete acked message {seq} of {name}"),
            cfg.timeout,
            gone,
        )
        .await?
        {
            deleted += 1;
        }
    }
    if deleted > 0 {
        log::warn!(
            "nats: stream {name} still held {deleted} message(s) its consumer had acked (at or \
             below its ack floor, sequence {floor}), as nats-server 2.9 can leave them after an \
             unclean stop (docs/CONFIG.md); deleted them"
        );
    }
    Ok(())
}

/// A durable pull consumer with explicit acks.
pub struct NatsConsumer {
    cfg: NatsConfig,
    client: async_nats::Client,
    consumer: PullConsumer,
    dead_letter: bool,
    /// Pull requests in a row that got no answer at all (not even the
    /// server's 408 at their expiry): see [`UNANSWERED_REBIND`].
    unanswered: u32,
}

/// After this many pull requests in a row went unanswered on a connection
/// the client still calls connected, the consumer connects and binds its
/// durable again. A healthy server answers every pull request, with
/// messages or with a 408 when it expires; silence means the connection
/// or the server's side of this pull subscription is stuck, and retrying
/// on it would wait forever. Deliveries already handed out keep their own
/// connection for their acks.
const UNANSWERED_REBIND: u32 = 2;

impl std::fmt::Debug for NatsConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConsumer")
            .field("url", &self.cfg.url)
            .field("dead_letter", &self.dead_letter)
            .finish()
    }
}

impl NatsConsumer {
    /// Binds to (creating if missing) the durable consumer on the main
    /// stream (`dead_letter == false`) or on the dead-letter stream.
    pub async fn connect(cfg: &NatsConfig, dead_letter: bool) -> Result<Self, TransportError> {
        let client = connect(cfg).await?;
        let js = context(client.clone(), cfg);
        let (stream_name, subject, durable, max_bytes, slot) = if dead_letter {
            (
                &cfg.dead_letter_stream,
                &cfg.dead_letter_subject,
                &cfg.dead_letter_durable,
                cfg.dead_letter_max_bytes,
                DEAD_LETTER_SLOT,
            )
        } else {
            (
                &cfg.stream,
                &cfg.subject,
                &cfg.durable,
                cfg.stream_max_bytes,
                EDGE_SLOT,
            )
        };
        let edge_slot = server_evicts(&client, cfg).then_some(slot);
        let mut stream =
            ensure_stream(&js, cfg, stream_name, subject, max_bytes, edge_slot).await?;
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: cfg.ack_wait,
            max_ack_pending: cfg.max_ack_pending,
            ..Default::default()
        };
        let mut consumer = bounded(
            &cfg.url,
            &format!("get or create consumer {durable} on {stream_name}"),
            cfg.timeout,
            stream.get_or_create_consumer(durable, config),
        )
        .await?;
        delete_acked(cfg, stream_name, &mut stream, &mut consumer).await?;
        Ok(NatsConsumer {
            cfg: cfg.clone(),
            client,
            consumer,
            dead_letter,
            unanswered: 0,
        })
    }

    /// Up to `max` deliveries; waits up to `wait` for a full batch.
    pub async fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, TransportError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        if let Some(e) = not_connected(&self.client, &self.cfg.url, "fetch") {
            return Err(e);
        }
        let url = self.cfg.url.clone();
        let deadline = tokio::time::Instant::now() + wait + self.cfg.timeout;
        // JetStream treats a zero expiry as "wait forever"; a short wait
        // becomes a no-wait fetch instead.
        let request = async {
            if wait < Duration::from_millis(10) {
                self.consumer.fetch().max_messages(max).messages().await
            } else {
                self.consumer
                    .batch()
                    .max_messages(max)
                    .expires(wait)
                    .messages()
                    .await
            }
        };
        let batch = match tokio::time::timeout_at(deadline, request).await {
            Ok(b) => b,
            Err(_) => return Err(self.unanswered(wait).await),
        };
        let mut batch = batch.map_err(|e| TransportError::nats(&url, "fetch", e))?;
        let mut out = Vec::with_capacity(max.min(4096));
        loop {
            match tokio::time::timeout_at(deadline, batch.next()).await {
                Err(_) => {
                    if out.is_empty() {
                        return Err(self.unanswered(wait).await);
                    }
                    self.unanswered = 0;
                    break;
                }
                Ok(None) => {
                    self.unanswered = 0;
                    break;
                }
                Ok(Some(Err(e))) => {
                    // An error status is an answer: the subscription works.
                    self.unanswered = 0;
                    if out.is_empty() {
                        return Err(TransportError::nats(&url, "fetch", e));
                    }
                    // Return what we have; the rest is redelivered.
                    log::warn!("nats: fetch from {url} ended early: {e}");
                    break;
                }
                Ok(Some(Ok(msg))) => out.push(self.delivery(msg)),
            }
        }
        Ok(out)
    }

    /// A pull request got no answer within its expiry and the request
    /// timeout: the error to return, after binding again once
    /// [`UNANSWERED_REBIND`] of them came in a row (a failed rebind is
    /// retried by the next one).
    async fn unanswered(&mut self, wait: Duration) -> TransportError {
        let url = self.cfg.url.clone();
        let timeout = TransportError::nats_timeout(&url, "fetch", wait + self.cfg.timeout);
        self.unanswered += 1;
        if self.unanswered < UNANSWERED_REBIND {
            return timeout;
        }
        log::warn!(
            "nats: {} pull requests in a row to {url} went unanswered: connecting and binding the durable consumer again",
            self.unanswered
        );
        match NatsConsumer::connect(&self.cfg, self.dead_letter).await {
            Ok(fresh) => {
                *self = fresh;
                timeout
            }
            Err(e) => e,
        }
    }

    fn delivery(&self, msg: jetstream::Message) -> Delivery {
        let (delivered, sequence) = match msg.info() {
            Ok(i) => (u64::try_from(i.delivered).unwrap_or(1), i.stream_sequence),
            Err(_) => (1, 0),
        };
        let (msg, acker): (async_nats::Message, Acker) = msg.split();
        let header = |name: &str| -> Option<String> {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        let (msg_id, reason) = if self.dead_letter {
            (
                header(HEADER_MSG_ID).or_else(|| header(HEADER_NATS_MSG_ID)),
                header(HEADER_REASON),
            )
        } else {
            (header(HEADER_NATS_MSG_ID), None)
        };
        Delivery {
            payload: msg.payload,
            msg_id,
            reason,
            delivered,
            sequence,
            handle: Handle::Nats(Box::new(acker)),
        }
    }

    /// Acks each delivery and waits for the server to confirm each ack.
    pub async fn ack(&mut self, deliveries: &[Delivery]) -> Result<(), TransportError> {
        let url = self.cfg.url.clone();
        let limit = self.cfg.timeout + Duration::from_secs(1);
        let mut ackers = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            match &d.handle {
                Handle::Nats(a) => ackers.push(a.as_ref()),
                _ => {
                    return Err(TransportError::ForeignDelivery(
                        "a Kafka delivery was passed to a NATS consumer".into(),
                    ))
                }
            }
        }
        futures::stream::iter(ackers)
            .map(|a| {
                let url = url.clone();
                async move { bounded(&url, "ack", limit, a.double_ack()).await }
            })
            .buffer_unordered(ACK_WINDOW)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }
}

/// Parses "2.10.3" (or "2.9.10-beta") into (major, minor).
pub(crate) fn version_major_minor(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Connects for object-store use, refusing servers older than 2.10 whose
/// buckets async-nats cannot use (PLATFORM-NOTES).
pub(crate) async fn connect_object_store(
    cfg: &NatsConfig,
) -> Result<(async_nats::Client, jetstream::Context), TransportError> {
    let client = connect(cfg).await?;
    let version = client.server_info().version;
    match version_major_minor(&version) {
        Some(v) if v >= (2, 10) => {}
        _ => {
            return Err(TransportError::Unsupported {
                broker: "NATS",
                url: cfg.url.clone(),
                version,
                what: "object store buckets as used by async-nats (need nats-server 2.10 or newer)"
                    .into(),
            })
        }
    }
    let js = context(client.clone(), cfg);
    Ok((client, js))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(version_major_minor("2.9.10"), Some((2, 9)));
        assert_eq!(version_major_minor("2.15.1"), Some((2, 15)));
        assert_eq!(version_major_minor("2.10.0-beta.1"), Some((2, 10)));
        assert_eq!(version_major_minor("x"), None);
    }

    #[test]
    fn header_values_lose_control_chars() {
        assert_eq!(
            crate::dead_letter_reason("bad\r\nversion 9"),
            "bad  version 9"
        );
    }

    #[test]
    fn a_long_reason_is_cut_on_a_char_boundary() {
        let max = crate::REASON_MAX;
        let exact = "r".repeat(max);
        assert_eq!(crate::dead_letter_reason(&exact), exact);
        // A 3-byte char straddles the cut in every position.
        for pad in 0..3 {
            let long = format!("{}{}", "r".repeat(pad), "\u{20ac}".repeat(max));
            let cut = crate::dead_letter_reason(&long);
            assert!(cut.len() <= max, "{}", cut.len());
            assert!(
                cut.len() > max - 3 - crate::REASON_CUT.len(),
                "{}",
                cut.len()
            );
            assert!(cut.ends_with(crate::REASON_CUT), "{cut}");
            assert!(long.starts_with(cut.trim_end_matches(crate::REASON_CUT)));
        }
    }

    #[test]
    fn urls_split_on_commas() {
        assert_eq!(
            server_addrs("nats://a:1, nats://b:2").map(|v| v.len()).ok(),
            Some(2)
        );
    }
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    #[test]
    fn servers_before_2_11_evict_at_the_edge() {
        for v in ["2.9.10", "v2.9.25", "2.10.4", "2.10.29", "garbage", ""] {
            assert!(evicts_at_the_edge(v), "{v}");
        }
        for v in ["2.11.0", "2.15.1", "v2.12.0-beta.1", "3.0.0"] {
            assert!(!evicts_at_the_edge(v), "{v}");
        }
    }

    #[test]
    fn the_count_bound_is_reached_before_the_byte_bound() {
        assert_eq!(edge_bounds(None, 1 << 30, "sandmine.deltas"), (-1, -1));
        for slot in [EDGE_SLOT, DEAD_LETTER_SLOT] {
            for max_bytes in [4096i64, 65536, 3 * 65536 + 17, 1 << 30] {
                let (n, size) = edge_bounds(Some(slot), max_bytes, "sandmine.deltas");
                let stored = i64::from(size) + (STORED_MSG_OVERHEAD + 15) as i64;
                assert!(
                    n >= 1 && n * stored <= max_bytes,
                    "{max_bytes}: {n} x {stored}"
                );
            }
        }
        assert_eq!(
            edge_bounds(Some(EDGE_SLOT), 1 << 30, "sandmine.deltas").0,
            16384
        );
        // The default dead-letter bound, 256 MiB.
        assert_eq!(
            edge_bounds(Some(DEAD_LETTER_SLOT), 256 << 20, "sandmine.deadletter").0,
            2016
        );
    }

    /// The largest dead letter: a delta that fills the delta stream's
    /// `max_msg_size` with its id alone (a hostile publisher's id), the
    /// id twice and the longest reason. It fits the dead-letter stream's
    /// `max_msg_size`, so dead-lettering never fails on size.
    #[test]
    fn every_dead_letter_of_a_stored_delta_fits_its_slot() {
        let subject = "sandmine.deltas";
        let dl_subject = "sandmine.deadletter";
        let (_, delta_max) = edge_bounds(Some(EDGE_SLOT), 1 << 30, subject);
        let (_, dl_max) = edge_bounds(Some(DEAD_LETTER_SLOT), 256 << 20, dl_subject);
        let delta_max = usize::try_from(delta_max).expect("positive");
        // `NATS/1.0\r\n`, `Nats-Msg-Id: ID\r\n`, `\r\n`, no payload.
        let id_len = delta_max - msg_id_header_bytes("");
        // `NATS/1.0\r\n`, the id twice, the reason, `\r\n`, the payload.
        let dead_letter = 10
            + ("Nats-Msg-Id: \r\n".len() + id_len)
            + ("Sandmine-Msg-Id: \r\n".len() + id_len)
            + ("Sandmine-Reason: \r\n".len() + crate::REASON_MAX)
            + 2;
        assert!(
            dead_letter <= usize::try_from(dl_max).expect("positive"),
            "{dead_letter} > {dl_max}"
        );
    }
}
