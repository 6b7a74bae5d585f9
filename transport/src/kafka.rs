//! Kafka side: idempotent producer and a consumer group with manual,
//! synchronous commits.
//!
//! Guarantees kept here:
//! - a publish returns only after the delivery report (`acks=all`,
//!   `enable.idempotence=true`, so librdkafka's own retries never store a
//!   message twice); key = message id;
//! - offsets are committed only by [`KafkaConsumer::ack`]
//!   (`enable.auto.commit=false`), so a consumer that dies before acking
//!   gets the same messages again after rejoining its group.
//!
//! Unlike JetStream, Kafka does not drop a re-publish of the same id: the
//! store's idempotence on the message id is what dedupes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::nats::{HEADER_MSG_ID, HEADER_REASON};
use crate::{Delivery, Handle, TransportError};

/// How many delivery reports [`KafkaPublisher::publish_many`] awaits at once.
const PUBLISH_WINDOW: usize = 512;

/// Room kept below `message.max.bytes` for the key, headers and the
/// record batch's own overhead.
const KAFKA_RECORD_ROOM: usize = 1024;

fn ms(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

fn base_config(cfg: &KafkaConfig) -> ClientConfig {
    if !cfg.uses_tls() {
        let addrs: Vec<&str> = cfg.brokers.split(',').collect();
        sysutil::net::warn_plaintext(
            "Kafka",
            &cfg.brokers,
            &addrs,
            "set the property security.protocol to SSL or SASL_SSL",
        );
    }
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", "sandmine")
        .set(
            "socket.timeout.ms",
            ms(cfg.timeout.max(Duration::from_millis(10))),
        )
        // Log through the `log` crate, not stderr.
        .set("log_level", "4");
    c
}

fn apply_properties(c: &mut ClientConfig, props: &BTreeMap<String, String>) {
    for (k, v) in props {
        c.set(k, v);
    }
}

/// Creates the topics if missing (an "already exists" answer is fine).
async fn ensure_topics(cfg: &KafkaConfig, topics: &[&str]) -> Result<(), TransportError> {
    if !cfg.create_topics {
        return Ok(());
    }
    let mut c = base_config(cfg);
    apply_properties(&mut c, &cfg.properties);
    let admin: AdminClient<DefaultClientContext> = c
        .create()
        .map_err(|e| TransportError::kafka(&cfg.brokers, "create admin client", e))?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, cfg.partitions, TopicReplication::Fixed(cfg.replication)))
        .collect();
    let opts = AdminOptions::new()
        .operation_timeout(Some(cfg.timeout))
        .request_timeout(Some(cfg.timeout));
    let op = format!("create topics {topics:?}");
    let limit = cfg.timeout + Duration::from_secs(1);
    let results = match tokio::time::timeout(limit, admin.create_topics(&new, &opts)).await {
        Err(_) => return Err(TransportError::kafka_timeout(&cfg.brokers, op, limit)),
        Ok(Err(e)) => return Err(connect_error(cfg, &op, e)),
        Ok(Ok(r)) => r,
    };
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(TransportError::kafka(
                    &cfg.brokers,
                    format!("create topic {topic}"),
                    code,
                ))
            }
        }
    }
    Ok(())
}

fn connect_error(cfg: &KafkaConfig, op: &str, e: KafkaError) -> TransportError {
    let auth = matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    );
    if auth {
        TransportError::Auth {
            broker: "Kafka",
            url: cfg.brokers.clone(),
            detail: format!("{op}: {e}"),
        }
    } else if matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageTimedOut | RDKafkaErrorCode::OperationTimedOut)
    ) {
        TransportError::kafka_timeout(&cfg.brokers, op, cfg.timeout)
    } else {
        TransportError::kafka(&cfg.brokers, op, e)
    }
}

/// Idempotent Kafka producer.
#[derive(Clone)]
pub struct KafkaPublisher {
    cfg: KafkaConfig,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPublisher")
            .field("brokers", &self.cfg.brokers)
            .finish()
    }
}

impl KafkaPublisher {
    /// Creates the producer (and the topics, if configured to).
    pub async fn connect(cfg: &KafkaConfig) -> Result<Self, TransportError> {
        cfg.validate()?;
        ensure_topics(cfg, &[&cfg.topic, &cfg.dead_letter_topic]).await?;
        let mut c = base_config(cfg);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            // A message not delivered within the timeout fails, so the
            // collector spools it.
            .set("message.timeout.ms", ms(cfg.timeout))
            .set("request.timeout.ms", ms(cfg.timeout));
        apply_properties(&mut c, &cfg.properties);
        c.set("enable.idempotence", "true");
        let producer: FutureProducer = c
            .create()
            .map_err(|e| TransportError::kafka(&cfg.brokers, "create producer", e))?;
        Ok(KafkaPublisher {
            cfg: cfg.clone(),
            producer,
        })
    }

    async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<(), TransportError> {
        let mut record = FutureRecord::to(topic).key(key).payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        let op = format!("publish to {topic}");
        let limit = self.cfg.timeout + Duration::from_secs(1);
        let fut = self.producer.send(record, Timeout::After(self.cfg.timeout));
        match tokio::time::timeout(limit, fut).await {
            Err(_) => Err(TransportError::kafka_timeout(&self.cfg.brokers, op, limit)),
            // Over the producer's message.max.bytes, or the broker's or
            // topic's limit: refused on every try.
            Ok(Err((e, _msg)))
                if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) =>
            {
                Err(TransportError::TooLarge {
                    broker: "Kafka",
                    url: self.cfg.brokers.clone(),
                    size: payload.len(),
                    limit: self.cfg.message_max_bytes(),
                })
            }
            Ok(Err((e, _msg))) => Err(connect_error(&self.cfg, &op, e)),
            Ok(Ok(_delivery)) => Ok(()),
        }
    }

    /// The largest payload to send: `message.max.bytes` (the property, or
    /// librdkafka's default 1,000,000) less room for the key, headers and
    /// record overhead.
    pub fn max_message_bytes(&self) -> usize {
        self.cfg
            .message_max_bytes()
            .saturating_sub(KAFKA_RECORD_ROOM)
    }

    /// Publishes one delta (key = `msg_id`); returns after the delivery
    /// report.
    pub async fn publish(&self, msg_id: &str, payload: &[u8]) -> Result<(), TransportError> {
        self.send(&self.cfg.topic, msg_id, payload, None).await
    }

    /// Publishes many deltas with up to 512 delivery reports pending.
    pub async fn publish_many(&self, msgs: &[(&str, &[u8])]) -> Result<(), TransportError> {
        use futures::{StreamExt, TryStreamExt};
        futures::stream::iter(msgs.iter())
            .map(|(id, p)| self.send(&self.cfg.topic, id, p, None))
            .buffered(PUBLISH_WINDOW)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Publishes to the dead-letter topic with the reason and the original
    /// id as headers (key = `msg_id` too).
    pub async fn publish_dead_letter(
        &self,
        msg_id: &str,
        payload: &[u8],
        reason: &str,
    ) -> Result<(), TransportError> {
        let reason = crate::dead_letter_reason(reason);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: HEADER_MSG_ID,
                value: Some(msg_id),
            })
            .insert(Header {
                key: HEADER_REASON,
                value: Some(reason.as_str()),
            });
        self.send(&self.cfg.dead_letter_topic, msg_id, payload, Some(headers))
            .await
    }
}

/// A consumer-group member with manual commits.
pub struct KafkaConsumer {
    cfg: KafkaConfig,
    consumer: Arc<StreamConsumer>,
    dead_letter: bool,
    /// Per partition, what [`KafkaConsumer::ack`] may commit: see
    /// [`Pending`].
    pending: BTreeMap<(String, i32), Pending>,
}

/// The deliveries of one partition that were fetched and not acked yet.
/// A Kafka commit is one offset per partition ("everything before it is
/// done"), so it may never pass one of them: the replay command keeps the
/// dead letters it cannot decode, unacked, and they must come back on its
/// next run even when later ones were acked.
#[derive(Debug, Default)]
struct Pending {
    unacked: BTreeSet<i64>,
    /// One past the highest offset fetched.
    end: i64,
}

impl Pending {
    /// The offset to commit: the first unacked delivery, else the end.
    fn commit_offset(&self) -> i64 {
        self.unacked.first().copied().unwrap_or(self.end)
    }
}

impl std::fmt::Debug for KafkaConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumer")
            .field("brokers", &self.cfg.brokers)
            .field("dead_letter", &self.dead_letter)
            .finish()
    }
}

impl KafkaConsumer {
    /// Joins the aggregator's group on the main topic (`dead_letter ==
    /// false`) or the replay group on the dead-letter topic.
    pub async fn connect(cfg: &KafkaConfig, dead_letter: bool) -> Result<Self, TransportError> {
        cfg.validate()?;
        let (topic, group) = if dead_letter {
            (&cfg.dead_letter_topic, &cfg.dead_letter_group_id)
        } else {
            (&cfg.topic, &cfg.group_id)
        };
        ensure_topics(cfg, &[topic]).await?;
        let mut c = base_config(cfg);
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("enable.partition.eof", "false");
        apply_properties(&mut c, &cfg.properties);
        let consumer: StreamConsumer = c
            .create()
            .map_err(|e| TransportError::kafka(&cfg.brokers, "create consumer", e))?;
        consumer
            .subscribe(&[topic.as_str()])
            .map_err(|e| connect_error(cfg, &format!("subscribe to {topic}"), e))?;
        Ok(KafkaConsumer {
            cfg: cfg.clone(),
            consumer: Arc::new(consumer),
            dead_letter,
            pending: BTreeMap::new(),
        })
    }

    /// Up to `max` messages, waiting at most `wait` in total.
    pub async fn fetch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, TransportError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < max {
            let msg = match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    if out.is_empty() {
                        return Err(connect_error(&self.cfg, "fetch", e));
                    }
                    log::warn!("kafka: fetch from {} ended early: {e}", self.cfg.brokers);
                    break;
                }
                Ok(Ok(m)) => m,
            };
            let header = |name: &str| -> Option<String> {
                msg.headers().and_then(|hs| {
                    hs.iter()
                        .find(|h| h.key == name)
                        .and_then(|h| h.value)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                })
            };
            let p = self
                .pending
                .entry((msg.topic().to_string(), msg.partition()))
                .or_default();
            p.unacked.insert(msg.offset());
            p.end = p.end.max(msg.offset() + 1);
            let key = msg.key().map(|k| String::from_utf8_lossy(k).into_owned());
            let (msg_id, reason) = if self.dead_letter {
                (header(HEADER_MSG_ID).or(key), header(HEADER_REASON))
            } else {
                (key, None)
            };
            out.push(Delivery {
                payload: Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
                msg_id,
                reason,
                delivered: 1,
                sequence: u64::try_from(msg.offset()).unwrap_or(0),
                handle: Handle::Kafka {
                    topic: msg.topic().to_string(),
                    partition: msg.partition(),
                    offset: msg.offset(),
                },
            });
        }
        Ok(out)
    }

    /// Drops from `deliveries` those of partitions no longer assigned to
    /// this member, and forgets what it fetched of those partitions;
    /// returns how many were dropped.
    ///
    /// A rebalance can revoke a partition between the fetch of a batch and
    /// its turn to be stored (the aggregator fetches its next batch while
    /// it stores one). The new owner starts that partition at the group's
    /// committed offset, which never passed these deliveries, so it gets
    /// them too: storing them here as well would only be duplicate work
    /// (the store ignores the copy, but both pay for it). Nothing is lost:
    /// under the eager protocol a partition assigned again, to this member
    /// or another, restarts at the committed offset as well.
    pub async fn retain_owned(
        &mut self,
        deliveries: &mut Vec<Delivery>,
    ) -> Result<usize, TransportError> {
        let consumer = Arc::clone(&self.consumer);
        let read = tokio::task::spawn_blocking(move || consumer.assignment());
        let limit = self.cfg.timeout + Duration::from_secs(1);
        let owned = match tokio::time::timeout(limit, read).await {
            Err(_) => {
                return Err(TransportError::kafka_timeout(
                    &self.cfg.brokers,
                    "read the assignment",
                    limit,
                ))
            }
            Ok(Err(join)) => {
                return Err(TransportError::kafka(
                    &self.cfg.brokers,
                    "read the assignment",
                    join,
                ))
            }
            Ok(Ok(Err(e))) => return Err(connect_error(&self.cfg, "read the assignment", e)),
            Ok(Ok(Ok(owned))) => owned,
        };
        let is_owned =
            |topic: &str, partition: i32| owned.find_partition(topic, partition).is_some();
        self.pending
            .retain(|(topic, partition), _| is_owned(topic, *partition));
        let before = deliveries.len();
        deliveries.retain(|d| match &d.handle {
            Handle::Kafka {
                topic, partition, ..
            } => is_owned(topic, *partition),
            Handle::Nats(_) => true,
        });
        Ok(before - deliveries.len())
    }

    /// Commits, synchronously, for each partition of `deliveries`, the
    /// first offset fetched and not acked yet (past the highest fetched
    /// once all are acked): never past a delivery that was not acked, and
    /// only for partitions still assigned to this member (one lost in a
    /// rebalance is its new owner's to commit).
    pub async fn ack(&mut self, deliveries: &[Delivery]) -> Result<(), TransportError> {
        let mut commits: BTreeMap<(String, i32), i64> = BTreeMap::new();
        for d in deliveries {
            match &d.handle {
                Handle::Kafka {
                    topic,
                    partition,
                    offset,
                } => {
                    let key = (topic.clone(), *partition);
                    let p = self.pending.entry(key.clone()).or_default();
                    p.unacked.remove(offset);
                    p.end = p.end.max(offset + 1);
                    commits.insert(key, p.commit_offset());
                }
                Handle::Nats(_) => {
                    return Err(TransportError::ForeignDelivery(
                        "a NATS delivery was passed to a Kafka consumer".into(),
                    ))
                }
            }
        }
        if commits.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in &commits {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|e| TransportError::kafka(&self.cfg.brokers, "commit", e))?;
        }
        let consumer = Arc::clone(&self.consumer);
        // A partition this member lost in a rebalance is not committed
        // here: its new owner starts at the group's committed offset and
        // commits its own progress, which this commit, landing after it,
        // could move back (the group would get those messages again).
        // What is not committed here is delivered again, never lost.
        // (Reading the assignment waits on librdkafka's thread: off the
        // runtime, within the commit's time limit.)
        let commit = tokio::task::spawn_blocking(move || {
            let owned = consumer.assignment()?;
            let mut mine = TopicPartitionList::new();
            for e in tpl.elements() {
                if owned.find_partition(e.topic(), e.partition()).is_some() {
                    mine.add_partition_offset(e.topic(), e.partition(), e.offset())?;
                } else {
                    log::debug!(
                        "kafka: not committing {}[{}]: no longer assigned to this member",
                        e.topic(),
                        e.partition()
                    );
                }
            }
            if mine.count() == 0 {
                return Ok(());
            }
            consumer.commit(&mine, CommitMode::Sync)
        });
        let limit = self.cfg.timeout + Duration::from_secs(1);
        match tokio::time::timeout(limit, commit).await {
            Err(_) => Err(TransportError::kafka_timeout(
                &self.cfg.brokers,
                "commit",
                limit,
            )),
            Ok(Err(join)) => Err(TransportError::kafka(&self.cfg.brokers, "commit", join)),
            Ok(Ok(Err(e))) => Err(connect_error(&self.cfg, "commit", e)),
            Ok(Ok(Ok(()))) => Ok(()),
        }
    }
}
