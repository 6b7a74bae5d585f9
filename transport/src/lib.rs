//! Broker clients for the fleet pipeline.
//!
//! The collector publishes one message per host per interval (bytes from
//! `schemas::wire::encode`, opaque here) with its dedupe id
//! (`Envelope::dedupe_id()`); the aggregator fetches, stores, and only then
//! acks; undecodable messages go to a dead-letter stream/topic with a
//! reason, and the replay command reads them back.
//!
//! Two brokers behind one API:
//! - NATS JetStream ([`nats`]): file-backed streams created on demand,
//!   `Nats-Msg-Id` dedupe within `duplicate_window`, durable pull consumers
//!   with explicit, server-confirmed acks.
//! - Kafka ([`kafka`]): idempotent producer (key = message id, `acks=all`),
//!   consumer groups with manual, synchronous commits.
//!
//! Delivery is at-least-once on both: a message may arrive again after a
//! consumer crash or an ack lost in flight, so the store must be idempotent
//! on the message id. Kafka never drops a re-publish of the same id; NATS
//! drops it only within the duplicate window.
//!
//! Every call is bounded by the configured `timeout`: a dead broker gives
//! an error within seconds (so the collector can spool), never a hang.
//!
//! Replaying dead letters: JetStream drops a publish whose `Nats-Msg-Id`
//! it saw within `duplicate_window`, and the dead letter's original id was
//! seen on the main stream. The replay command should therefore publish
//! with a derived id (e.g. `<id>.replay`), relying on the store's
//! idempotence on the envelope's own dedupe id.
//!
//! After a NATS server restart the same [`Publisher`] and [`Consumer`]
//! recover on their own (the client reconnects in the background; calls
//! made while it is disconnected fail fast with a transient error).

pub mod config;
pub mod error;
pub mod kafka;
pub mod nats;
pub mod object_store;

use std::time::Duration;

use bytes::Bytes;

pub use config::{BrokerConfig, KafkaConfig, NatsConfig};
pub use error::TransportError;

/// The most bytes a dead letter's reason header keeps
/// ([`dead_letter_reason`]).
pub const REASON_MAX: usize = 1024;

/// What ends a reason cut to [`REASON_MAX`].
pub const REASON_CUT: &str = " [reason truncated]";

/// A dead letter's reason as its header stores it, on both brokers: control
/// characters become spaces (a header value holds no CR/LF), and a reason
/// over [`REASON_MAX`] bytes is cut on a char boundary and ends with
/// [`REASON_CUT`]. A reason is free text (a store's error can quote a whole
/// statement); a bounded one bounds a dead letter's stored size, which the
/// NATS dead-letter stream's message-count bound relies on
/// ([`nats::evicts_at_the_edge`]).
pub fn dead_letter_reason(reason: &str) -> String {
    let mut s: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.len() > REASON_MAX {
        let mut end = REASON_MAX - REASON_CUT.len();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str(REASON_CUT);
    }
    s
}

/// One received message. Pass it back to [`Consumer::ack`] once its
/// effects are durable.
pub struct Delivery {
    /// The message body, as published.
    pub payload: Bytes,
    /// The publisher's message id (`Nats-Msg-Id` / Kafka key; on a dead
    /// letter, the original message's id).
    pub msg_id: Option<String>,
    /// Why the message was dead-lettered; `None` on the main stream.
    pub reason: Option<String>,
    /// How many times this message has been delivered, 1 the first time.
    /// On Kafka always 1 (the broker does not count).
    pub delivered: u64,
    /// Position in the stream (JetStream stream sequence, Kafka offset).
    pub sequence: u64,
    pub(crate) handle: Handle,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("payload_len", &self.payload.len())
            .field("msg_id", &self.msg_id)
            .field("reason", &self.reason)
            .field("delivered", &self.delivered)
            .field("sequence", &self.sequence)
            .finish()
    }
}

/// What `ack` needs to acknowledge a delivery on its broker.
pub(crate) enum Handle {
    Nats(Box<async_nats::jetstream::message::Acker>),
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

/// Publishes deltas and dead letters to the configured broker.
#[derive(Debug)]
pub enum Publisher {
    Nats(Box<nats::NatsPublisher>),
    Kafka(kafka::KafkaPublisher),
}

impl Publisher {
    /// Connects (bounded by the config's timeout) and prepares the
    /// streams/topics.
    pub async fn connect(cfg: &BrokerConfig) -> Result<Publisher, TransportError> {
        Ok(match cfg {
            BrokerConfig::Nats(c) => {
                Publisher::Nats(Box::new(nats::NatsPublisher::connect(c).await?))
            }
            BrokerConfig::Kafka(c) => Publisher::Kafka(kafka::KafkaPublisher::connect(c).await?),
        })
    }

    /// The largest payload the broker takes from this publisher, headers
    /// and key left room for: NATS's announced `max_payload`, Kafka's
    /// `message.max.bytes`. A larger one fails with
    /// [`TransportError::TooLarge`].
    pub fn max_message_bytes(&self) -> usize {
        match self {
            Publisher::Nats(p) => p.max_message_bytes(),
            Publisher::Kafka(p) => p.max_message_bytes(),
        }
    }

    /// Publishes one message; returns once the broker confirmed it is
    /// stored (JetStream PubAck, including "duplicate"; Kafka delivery
    /// report).
    pub async fn publish(&self, msg_id: &str, payload: &[u8]) -> Result<(), TransportError> {
        match self {
            Publisher::Nats(p) => p.publish(msg_id, payload).await,
            Publisher::Kafka(p) => p.publish(msg_id, payload).await,
        }
    }

    /// Publishes many messages with acks pipelined (bounded window);
    /// returns once all are confirmed, or on the first error.
    pub async fn publish_many(&self, msgs: &[(&str, &[u8])]) -> Result<(), TransportError> {
        match self {
            Publisher::Nats(p) => p.publish_many(msgs).await,
            Publisher::Kafka(p) => p.publish_many(msgs).await,
        }
    }

    /// Publishes to the dead-letter stream/topic with `reason`; the
    /// original id travels in a header.
    pub async fn publish_dead_letter(
        &self,
        msg_id: &str,
        payload: &[u8],
        reason: &str,
    ) -> Result<(), TransportError> {
        match self {
            Publisher::Nats(p) => p.publish_dead_letter(msg_id, payload, reason).await,
            Publisher::Kafka(p) => p.publish_dead_letter(msg_id, payload, reason).await,
        }
    }
}

/// Reads the main (or dead-letter) stream/topic with explicit acks.
#[derive(Debug)]
pub enum Consumer {
    Nats(Box<nats::NatsConsumer>),
    Kafka(Box<kafka::KafkaConsumer>),
}

impl Consumer {
    /// The aggregator's durable consumer on the main stream/topic.
    pub async fn connect(cfg: &BrokerConfig) -> Result<Consumer, TransportError> {
        Ok(match cfg {
            BrokerConfig::Nats(c) => {
                Consumer::Nats(Box::new(nats::NatsConsumer::connect(c, false).await?))
            }
            BrokerConfig::Kafka(c) => {
                Consumer::Kafka(Box::new(kafka::KafkaConsumer::connect(c, false).await?))
            }
        })
    }

    /// The replay command's durable consumer on the dead-letter
    /// stream/topic (its own durable name / group id).
    pub async fn connect_dead_letter(cfg: &BrokerConfig) -> Result<Consumer, TransportError> {
        Ok(match cfg {
            BrokerConfig::Nats(c) => {
                Consumer::Nats(Box::new(nats::NatsConsumer::connect(c, true).await?))
            }
            BrokerConfig::Kafka(c) => {
                Consumer::Kafka(Box::new(kafka::KafkaConsumer::connect(c, true).await?))
            }
        })
    }

    /// Up to `max` messages; may return fewer (or none) after `wait`.
    pub async fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, TransportError> {
        match self {
            Consumer::Nats(c) => c.fetch(max, wait).await,
            Consumer::Kafka(c) => c.fetch(max, wait).await,
        }
    }

    /// Drops from `deliveries` those this consumer may no longer store
    /// because another has taken them over since they were fetched (a
    /// Kafka partition revoked in a rebalance: its new owner gets them
    /// again from the committed offset); returns how many. NATS hands a
    /// message to one consumer at a time: always 0.
    pub async fn retain_owned(
        &mut self,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<usize, TransportError> {
        match self {
            Consumer::Nats(_) => Ok(0),
            Consumer::Kafka(c) => c.retain_owned(deliveries).await,
        }
    }

    /// Acknowledges deliveries; after this returns they are not
    /// redelivered. NATS: each ack confirmed by the server. Kafka: a
    /// synchronous commit of max offset + 1 per partition.
    pub async fn ack(&mut self, deliveries: &[Delivery]) -> Result<(), TransportError> {
        match self {
            Consumer::Nats(c) => c.ack(deliveries).await,
            Consumer::Kafka(c) => c.ack(deliveries).await,
        }
    }
}
