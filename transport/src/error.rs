//! One error type for both brokers. Every variant names the broker and its
//! address, so an operator reading a collector's log knows which server
//! failed and at what step without a debugger.

use std::time::Duration;

/// What went wrong talking to a broker.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The configuration is contradictory or incomplete (no I/O attempted).
    #[error("invalid broker configuration: {0}")]
    Config(String),

    /// The server rejected our credentials. Retrying will not help.
    #[error("{broker} server {url} refused the connection: authorization violation ({detail}); check user/password, token, nkey seed or creds file")]
    Auth {
        broker: &'static str,
        url: String,
        detail: String,
    },

    /// The server could not be reached (refused, DNS, TLS, ...).
    #[error("cannot connect to {broker} server {url}: {detail}")]
    Connect {
        broker: &'static str,
        url: String,
        detail: String,
    },

    /// The broker did not answer in time; it may be down or partitioned.
    /// The caller should spool and retry.
    #[error("{broker} server {url}: {op} timed out after {after:?}")]
    Timeout {
        broker: &'static str,
        url: String,
        op: String,
        after: Duration,
    },

    /// The broker answered with an error, or the connection broke mid-way.
    #[error("{broker} server {url}: {op} failed: {detail}")]
    Broker {
        broker: &'static str,
        url: String,
        op: String,
        detail: String,
    },

    /// The server lacks a feature we need (e.g. object stores on 2.9).
    #[error("{broker} server {url} (version {version}) does not support {what}")]
    Unsupported {
        broker: &'static str,
        url: String,
        version: String,
        what: String,
    },

    /// A stored object does not exist.
    #[error("{broker} server {url}: object {bucket}/{name} not found")]
    NotFound {
        broker: &'static str,
        url: String,
        bucket: String,
        name: String,
    },

    /// An existing stream has settings sandmine cannot work with, and the
    /// server refused to change them. Retrying will not help.
    #[error("{broker} server {url}: stream {stream}: {detail}")]
    StreamConfig {
        broker: &'static str,
        url: String,
        stream: String,
        detail: String,
    },

    /// The broker refuses this message for good: it is larger than the
    /// broker takes (NATS's announced `max_payload`, Kafka's
    /// `message.max.bytes`). Retrying will not help; other messages still
    /// go through ([`TransportError::refuses_message`]).
    #[error("{broker} server {url} refuses a message of {size} bytes: more than its limit of {limit} bytes")]
    TooLarge {
        broker: &'static str,
        url: String,
        size: usize,
        limit: usize,
    },

    /// A delivery handed to `ack` came from another broker or consumer.
    #[error("delivery was not produced by this consumer: {0}")]
    ForeignDelivery(String),
}

impl TransportError {
    /// True for errors worth retrying later (broker down, slow, broken
    /// connection); false for configuration and authorization problems.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. }
                | TransportError::Connect { .. }
                | TransportError::Broker { .. }
        )
    }

    /// True when the broker refuses this one message for good (it is too
    /// large): the caller should set it aside and go on with the others.
    pub fn refuses_message(&self) -> bool {
        matches!(self, TransportError::TooLarge { .. })
    }

    pub(crate) fn nats(url: &str, op: impl Into<String>, e: impl std::fmt::Display) -> Self {
        TransportError::Broker {
            broker: "NATS",
            url: url.to_string(),
            op: op.into(),
            detail: e.to_string(),
        }
    }

    pub(crate) fn nats_timeout(url: &str, op: impl Into<String>, after: Duration) -> Self {
        TransportError::Timeout {
            broker: "NATS",
            url: url.to_string(),
            op: op.into(),
            after,
        }
    }

    pub(crate) fn kafka(url: &str, op: impl Into<String>, e: impl std::fmt::Display) -> Self {
        TransportError::Broker {
            broker: "Kafka",
            url: url.to_string(),
            op: op.into(),
            detail: e.to_string(),
        }
    }

    pub(crate) fn kafka_timeout(url: &str, op: impl Into<String>, after: Duration) -> Self {
        TransportError::Timeout {
            broker: "Kafka",
            url: url.to_string(),
            op: op.into(),
            after,
        }
    }
}
