//! Broker configuration, shared by the collector (publisher), the
//! aggregator (consumer) and the replay command.
//!
//! TOML shape (the `kind` tag picks the broker; every other key has a
//! default, unknown keys are errors):
//!
//! ```toml
//! [broker]
//! kind = "nats"
//! url = "nats://127.0.0.1:4222"
//! duplicate_window = "2m"
//! user = "collector"
//! password = "..."
//!
//! # or
//! [broker]
//! kind = "kafka"
//! brokers = "127.0.0.1:9092"
//! [broker.properties]
//! "security.protocol" = "SASL_SSL"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sysutil::Secret;

use crate::TransportError;

/// Which broker carries the fleet deltas. Internally tagged by `kind` so a
/// config file reads `[broker] kind = "nats"` followed by that broker's keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
// Built once per process from the config file; boxing would only make
// matching on it clumsier for callers.
#[allow(clippy::large_enum_variant)]
pub enum BrokerConfig {
    /// NATS JetStream (the default transport).
    Nats(NatsConfig),
    /// Kafka (any Kafka-protocol broker).
    Kafka(KafkaConfig),
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig::Nats(NatsConfig::default())
    }
}

impl BrokerConfig {
    /// Where the broker is, for error messages and logs.
    pub fn endpoint(&self) -> &str {
        match self {
            BrokerConfig::Nats(c) => &c.url,
            BrokerConfig::Kafka(c) => &c.brokers,
        }
    }
}

/// NATS JetStream settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URL(s), comma separated (`nats://` or `tls://`).
    pub url: String,
    /// Stream holding the deltas; created on first use if missing.
    pub stream: String,
    /// Subject the deltas are published to (the stream's only subject).
    pub subject: String,
    /// Stream holding dead letters. A separate stream so the main stream's
    /// consumer never sees them and their retention can differ.
    pub dead_letter_stream: String,
    /// Subject of the dead-letter stream.
    pub dead_letter_subject: String,
    /// Durable consumer name of the aggregator on the main stream. Every
    /// aggregator replica shares it, so they split the work.
    pub durable: String,
    /// Durable consumer name of the replay command on the dead-letter stream.
    pub dead_letter_durable: String,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a re-publish.
    /// Must exceed the longest time a collector retries one message without
    /// spooling it (a spooled replay is deduped by the store instead).
    #[serde(with = "sysutil::duration")]
    pub duplicate_window: Duration,
    /// How long an unacked delivery waits before JetStream redelivers it.
    /// Longer than the slowest store insert, or batches get delivered twice.
    #[serde(with = "sysutil::duration")]
    pub ack_wait: Duration,
    /// Most deliveries outstanding without ack, per consumer. Must be at
    /// least the aggregator's batch size or fetches stall.
    pub max_ack_pending: i64,
    /// Most bytes the delta stream holds. Both streams use work-queue
    /// retention (a message is deleted once acked) and discard-new: when
    /// the unconsumed deltas reach this size, publishing fails and the
    /// collectors keep them in their spools; nothing unconsumed is ever
    /// deleted to make room.
    pub stream_max_bytes: i64,
    /// Most bytes the dead-letter stream holds (same policy: when full,
    /// dead-lettering fails and the aggregator retries until an operator
    /// replays or purges the dead letters).
    pub dead_letter_max_bytes: i64,
    /// Upper bound on every broker round trip (connect, publish ack,
    /// stream lookup). A dead broker becomes an error after this long, so
    /// the collector can spool instead of hanging.
    #[serde(with = "sysutil::duration")]
    pub timeout: Duration,
    /// User for user/password authentication.
    pub user: Option<String>,
    /// Password for `user`. (`Debug` of a [`Secret`] never shows it.)
    pub password: Option<Secret>,
    /// Token authentication.
    pub token: Option<Secret>,
    /// NKey seed (`SU...`) authentication.
    pub nkey_seed: Option<Secret>,
    /// Path to a `.creds` file (JWT + NKey seed), the decentralized-auth way.
    pub creds_file: Option<PathBuf>,
    /// CA bundle (PEM) to verify the server with, instead of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Refuse plaintext connections.
    pub require_tls: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".into(),
            stream: "SANDMINE_DELTAS".into(),
            subject: "sandmine.deltas".into(),
            dead_letter_stream: "SANDMINE_DEADLETTER".into(),
            dead_letter_subject: "sandmine.deadletter".into(),
            durable: "sandmine-aggregator".into(),
            dead_letter_durable: "sandmine-replay".into(),
            duplicate_window: Duration::from_secs(120),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 20_000,
            stream_max_bytes: 1 << 30,
            dead_letter_max_bytes: 256 << 20,
            timeout: Duration::from_secs(5),
            user: None,
            password: None,
            token: None,
            nkey_seed: None,
            creds_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            require_tls: false,
        }
    }
}

impl NatsConfig {
    /// Rejects contradictory settings before any connection attempt.
    pub fn validate(&self) -> Result<(), TransportError> {
        let methods = [
            self.user.is_some() || self.password.is_some(),
            self.token.is_some(),
            self.nkey_seed.is_some(),
            self.creds_file.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if methods > 1 {
            return Err(TransportError::Config(
                "nats: set only one of user/password, token, nkey_seed, creds_file".into(),
            ));
        }
        if self.user.is_some() != self.password.is_some() {
            return Err(TransportError::Config(
                "nats: user and password must be set together".into(),
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(TransportError::Config(
                "nats: cert_file and key_file must be set together".into(),
            ));
        }
        if self.subject == self.dead_letter_subject || self.stream == self.dead_letter_stream {
            return Err(TransportError::Config(
                "nats: the dead-letter stream and subject must differ from the main ones".into(),
            ));
        }
        if self.stream_max_bytes < 1 || self.dead_letter_max_bytes < 1 {
            return Err(TransportError::Config(
                "nats: stream_max_bytes and dead_letter_max_bytes must be positive".into(),
            ));
        }
        if self.max_ack_pending < 1 {
            return Err(TransportError::Config(
                "nats: max_ack_pending must be at least 1".into(),
            ));
        }
        if self.timeout.is_zero() || self.duplicate_window.is_zero() || self.ack_wait.is_zero() {
            return Err(TransportError::Config(
                "nats: timeout, duplicate_window and ack_wait must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Kafka settings. `Debug` redacts the values of [`secret_property`]s.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic holding the deltas.
    pub topic: String,
    /// Topic holding dead letters.
    pub dead_letter_topic: String,
    /// Consumer group of the aggregator.
    pub group_id: String,
    /// Consumer group of the replay command on the dead-letter topic.
    pub dead_letter_group_id: String,
    /// Create missing topics on connect (with `partitions` partitions and
    /// replication factor `replication`). Off where topics are managed.
    pub create_topics: bool,
    /// Partitions of a topic created by `create_topics`.
    pub partitions: i32,
    /// Replication factor of a topic created by `create_topics`.
    pub replication: i32,
    /// Upper bound on every broker round trip (delivery report, commit,
    /// metadata). A dead broker becomes an error after this long.
    #[serde(with = "sysutil::duration")]
    pub timeout: Duration,
    /// Passed verbatim to librdkafka (SASL, TLS, tuning), e.g.
    /// `"security.protocol" = "SASL_SSL"`. Applied last, so they override
    /// sandmine's defaults, except the ones correctness depends on
    /// (`enable.idempotence`, `enable.auto.commit`), which are refused.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: "sandmine.deltas".into(),
            dead_letter_topic: "sandmine.deadletter".into(),
            group_id: "sandmine-aggregator".into(),
            dead_letter_group_id: "sandmine-replay".into(),
            create_topics: true,
            partitions: 1,
            replication: 1,
            timeout: Duration::from_secs(5),
            properties: BTreeMap::new(),
        }
    }
}

/// True for librdkafka properties that hold a secret (`sasl.password`,
/// `ssl.key.password`, `ssl.key.pem`, `sasl.jaas.config`,
/// `sasl.oauthbearer.client.secret`, ...).
pub fn secret_property(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "jaas",
        "oauthbearer.config",
        ".pem",
    ]
    .iter()
    .any(|s| k.contains(s))
}

impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Props<'a>(&'a BTreeMap<String, String>);
        impl std::fmt::Debug for Props<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut m = f.debug_map();
                for (k, v) in self.0 {
                    if secret_property(k) {
                        m.entry(k, &Secret::from(v.as_str()));
                    } else {
                        m.entry(k, v);
                    }
                }
                m.finish()
            }
        }
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("group_id", &self.group_id)
            .field("dead_letter_group_id", &self.dead_letter_group_id)
            .field("create_topics", &self.create_topics)
            .field("partitions", &self.partitions)
            .field("replication", &self.replication)
            .field("timeout", &self.timeout)
            .field("properties", &Props(&self.properties))
            .finish()
    }
}

impl KafkaConfig {
    /// The producer's `message.max.bytes`: the property when set, else
    /// librdkafka's default, 1,000,000.
    pub fn message_max_bytes(&self) -> usize {
        self.properties
            .get("message.max.bytes")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1_000_000)
    }

    /// True when `security.protocol` is `SSL` or `SASL_SSL`.
    pub fn uses_tls(&self) -> bool {
        self.properties
            .get("security.protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case("ssl") || p.eq_ignore_ascii_case("sasl_ssl"))
    }

    /// Rejects properties that would break delivery guarantees.
    pub fn validate(&self) -> Result<(), TransportError> {
        for key in [
            "enable.idempotence",
            "enable.auto.commit",
            "bootstrap.servers",
            "group.id",
        ] {
            if self.properties.contains_key(key) {
                return Err(TransportError::Config(format!(
                    "kafka: property {key:?} is managed by sandmine and may not be overridden"
                )));
            }
        }
        if self.topic == self.dead_letter_topic {
            return Err(TransportError::Config(
                "kafka: dead_letter_topic must differ from topic".into(),
            ));
        }
        if self.timeout.is_zero() || self.partitions < 1 || self.replication < 1 {
            return Err(TransportError::Config(
                "kafka: timeout, partitions and replication must be positive".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        broker: BrokerConfig,
    }

    #[test]
    fn nats_defaults_and_overrides_from_toml() {
        let f: File = toml::from_str(
            r#"
[broker]
kind = "nats"
url = "tls://nats.example:4222"
duplicate_window = "5m"
ack_wait = 45
user = "collector"
password = "pw"
ca_file = "/etc/sandmine/ca.pem"
require_tls = true
"#,
        )
        .expect("parse");
        let BrokerConfig::Nats(n) = f.broker else {
            panic!("not nats: {:?}", f.broker)
        };
        assert_eq!(n.url, "tls://nats.example:4222");
        assert_eq!(n.duplicate_window, Duration::from_secs(300));
        assert_eq!(n.ack_wait, Duration::from_secs(45));
        assert_eq!(n.user.as_deref(), Some("collector"));
        assert_eq!(n.ca_file, Some(PathBuf::from("/etc/sandmine/ca.pem")));
        assert!(n.require_tls);
        // Untouched keys keep their defaults.
        assert_eq!(n.stream, "SANDMINE_DELTAS");
        assert_eq!(n.subject, "sandmine.deltas");
        assert_eq!(n.dead_letter_stream, "SANDMINE_DEADLETTER");
        assert_eq!(n.dead_letter_subject, "sandmine.deadletter");
        assert_eq!(n.durable, "sandmine-aggregator");
        assert_eq!(n.timeout, Duration::from_secs(5));
        assert!(n.validate().is_ok());
    }

    #[test]
    fn kafka_with_properties_from_toml() {
        let f: File = toml::from_str(
            r#"
[broker]
kind = "kafka"
brokers = "k1:9092,k2:9092"
topic = "deltas"
[broker.properties]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "PLAIN"
"#,
        )
        .expect("parse");
        let BrokerConfig::Kafka(k) = f.broker else {
            panic!("not kafka")
        };
        assert_eq!(k.brokers, "k1:9092,k2:9092");
        assert_eq!(k.topic, "deltas");
        assert_eq!(k.dead_letter_topic, "sandmine.deadletter");
        assert_eq!(k.group_id, "sandmine-aggregator");
        assert_eq!(
            k.properties.get("security.protocol").map(String::as_str),
            Some("SASL_SSL")
        );
        assert!(k.validate().is_ok());
    }

    #[test]
    fn unknown_keys_and_kinds_are_errors() {
        let e = toml::from_str::<File>("[broker]\nkind = \"nats\"\nurll = \"x\"\n")
            .expect_err("unknown key");
        assert!(e.to_string().contains("urll"), "{e}");
        let e = toml::from_str::<File>("[broker]\nkind = \"kafka\"\ntopik = \"x\"\n")
            .expect_err("unknown key");
        assert!(e.to_string().contains("topik"), "{e}");
        let e = toml::from_str::<File>("[broker]\nkind = \"amqp\"\n").expect_err("kind");
        assert!(e.to_string().contains("amqp"), "{e}");
        let e = toml::from_str::<File>("[broker]\nkind = \"nats\"\nack_wait = \"3 fortnights\"\n")
            .expect_err("bad duration");
        assert!(e.to_string().contains("fortnights"), "{e}");
    }

    #[test]
    fn validation_rejects_contradictions() {
        let both = NatsConfig {
            token: Some("t".into()),
            nkey_seed: Some("SU...".into()),
            ..Default::default()
        };
        assert!(matches!(both.validate(), Err(TransportError::Config(_))));
        let half = NatsConfig {
            user: Some("u".into()),
            ..Default::default()
        };
        assert!(matches!(half.validate(), Err(TransportError::Config(_))));
        let same = NatsConfig {
            dead_letter_subject: "sandmine.deltas".into(),
            ..Default::default()
        };
        assert!(matches!(same.validate(), Err(TransportError::Config(_))));
        let mut k = KafkaConfig::default();
        k.properties
            .insert("enable.auto.commit".into(), "true".into());
        assert!(matches!(k.validate(), Err(TransportError::Config(_))));
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let back: NatsConfig =
            toml::from_str(&toml::to_string(&NatsConfig::default()).expect("ser")).expect("de");
        assert_eq!(back, NatsConfig::default());
    }

    /// `Debug` (logs, panics, `{:?}` of the whole config) shows that a
    /// secret is set, never the secret.
    #[test]
    fn debug_never_shows_a_secret() {
        let secrets = [
            "pw-hunter2",
            "tok-hunter2",
            "SUAhunter2seed",
            "sasl-hunter2",
            "key-hunter2",
        ];
        let n = |p: Option<&str>, t: Option<&str>, s: Option<&str>| NatsConfig {
            user: p.map(|_| "u".into()),
            password: p.map(Into::into),
            token: t.map(Into::into),
            nkey_seed: s.map(Into::into),
            ..Default::default()
        };
        let mut k = KafkaConfig::default();
        for (key, v) in [
            ("sasl.password", secrets[3]),
            ("ssl.key.password", secrets[4]),
            ("sasl.username", "collector"),
        ] {
            k.properties.insert(key.into(), v.into());
        }
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            BrokerConfig::Nats(n(Some(secrets[0]), None, None)),
            n(None, Some(secrets[1]), None),
            n(None, None, Some(secrets[2])),
            BrokerConfig::Kafka(k)
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown.matches("\"<redacted>\"").count(), 5, "{shown}");
        assert!(
            shown.contains("\"sasl.username\": \"collector\""),
            "{shown}"
        );
    }
}
