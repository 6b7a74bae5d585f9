//! NATS JetStream tests against real nats-server processes (testsvc).

use std::time::{Duration, Instant};

use testsvc::Nats;
use transport::{BrokerConfig, Consumer, Delivery, NatsConfig, Publisher, TransportError};

fn cfg(n: &Nats) -> NatsConfig {
    NatsConfig {
        url: n.url(),
        timeout: Duration::from_secs(2),
        // Short, so redelivery after a "crash" is quick to observe.
        ack_wait: Duration::from_secs(1),
        ..Default::default()
    }
}

fn broker(c: &NatsConfig) -> BrokerConfig {
    BrokerConfig::Nats(c.clone())
}

/// Fetches until `n` deliveries arrived or 10 s passed.
async fn fetch_n(c: &mut Consumer, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        let got = c
            .fetch(n - out.len(), Duration::from_millis(500))
            .await
            .expect("fetch");
        out.extend(got);
    }
    out
}

fn ids(ds: &[Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| d.msg_id.clone().expect("msg id"))
        .collect()
}

fn payloads(ds: &[Delivery]) -> Vec<Vec<u8>> {
    ds.iter().map(|d| d.payload.to_vec()).collect()
}

#[tokio::test]
async fn publish_n_consume_n_in_order_then_nothing_after_ack() {
    let n = Nats::start();
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let want_ids: Vec<String> = (0..50).map(|i| format!("host-a.boot.{i}")).collect();
    let want_payloads: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 1 + i as usize]).collect();
    for (id, pl) in want_ids.iter().zip(&want_payloads) {
        p.publish(id, pl).await.expect("publish");
    }
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, 50).await;
    assert_eq!(ids(&got), want_ids);
    assert_eq!(payloads(&got), want_payloads);
    assert!(got.iter().all(|d| d.reason.is_none() && d.delivered == 1));
    assert_eq!(
        got.iter().map(|d| d.sequence).collect::<Vec<_>>(),
        (1..=50).collect::<Vec<u64>>()
    );
    cons.ack(&got).await.expect("ack");
    // Acked: nothing more, even after ack_wait has passed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let more = cons
        .fetch(10, Duration::from_millis(300))
        .await
        .expect("fetch");
    assert_eq!(more.len(), 0);
}

#[tokio::test]
async fn publish_many_pipelined_is_stored_in_order() {
    let n = Nats::start();
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let ids_owned: Vec<String> = (0..2000).map(|i| format!("h.b.{i}")).collect();
    let bodies: Vec<Vec<u8>> = (0..2000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let msgs: Vec<(&str, &[u8])> = ids_owned
        .iter()
        .zip(&bodies)
        .map(|(i, b)| (i.as_str(), b.as_slice()))
        .collect();
    p.publish_many(&msgs).await.expect("publish_many");
    // Again: all duplicates, still success, nothing stored twice.
    p.publish_many(&msgs).await.expect("publish_many again");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, 2000).await;
    assert_eq!(ids(&got), ids_owned);
    assert_eq!(payloads(&got), bodies);
    cons.ack(&got).await.expect("ack");
    let more = cons
        .fetch(10, Duration::from_millis(300))
        .await
        .expect("fetch");
    assert_eq!(more.len(), 0);
}

#[tokio::test]
async fn same_msg_id_twice_within_window_is_stored_once() {
    let n = Nats::start();
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    p.publish("host-a.u.1", b"first").await.expect("publish 1");
    // A retry of the same id (even with other bytes) is a confirmed
    // duplicate: success, not stored.
    p.publish("host-a.u.1", b"second")
        .await
        .expect("publish dup");
    p.publish("host-a.u.2", b"third").await.expect("publish 2");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, 2).await;
    assert_eq!(ids(&got), vec!["host-a.u.1", "host-a.u.2"]);
    assert_eq!(payloads(&got), vec![b"first".to_vec(), b"third".to_vec()]);
    cons.ack(&got).await.expect("ack");
    let more = cons
        .fetch(10, Duration::from_millis(300))
        .await
        .expect("fetch");
    assert_eq!(more.len(), 0, "{more:?}");
}

#[tokio::test]
async fn unacked_messages_are_redelivered_after_consumer_restart() {
    let n = Nats::start();
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let want: Vec<String> = (0..5).map(|i| format!("h.r.{i}")).collect();
    for id in &want {
        p.publish(id, id.as_bytes()).await.expect("publish");
    }
    {
        let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
        let got = fetch_n(&mut cons, 5).await;
        assert_eq!(ids(&got), want);
        // "Crash": drop without ack.
    }
    let mut cons = Consumer::connect(&broker(&c))
        .await
        .expect("consumer again");
    // Redelivered once ack_wait (1 s) expired.
    let again = fetch_n(&mut cons, 5).await;
    assert_eq!(ids(&again), want);
    assert!(again.iter().all(|d| d.delivered == 2), "{again:?}");
    cons.ack(&again).await.expect("ack");
    drop(cons);
    let mut cons = Consumer::connect(&broker(&c))
        .await
        .expect("consumer third");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let none = cons
        .fetch(10, Duration::from_millis(500))
        .await
        .expect("fetch");
    assert_eq!(none.len(), 0, "{none:?}");
}

/// The stream is bounded (work-queue retention, `stream_max_bytes`,
/// discard-new): a full stream refuses a publish with an error (on which
/// the collector keeps the message spooled) and deletes nothing that was
/// not consumed; acked messages are deleted, which makes room again.
#[tokio::test]
async fn a_full_stream_refuses_publishes_and_deletes_nothing_unconsumed() {
    let n = Nats::start();
    let c = NatsConfig {
        stream_max_bytes: 4096,
        ..cfg(&n)
    };
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let mut stored = Vec::new();
    let err = loop {
        let id = format!("h.b.{}", stored.len() + 1);
        match p.publish(&id, &[7u8; 200]).await {
            Ok(()) => stored.push(id),
            Err(e) => break e,
        }
        assert!(
            stored.len() < 100,
            "a 4 KiB stream took {} messages of 200 bytes",
            stored.len()
        );
    };
    assert!(err.is_transient(), "{err}");
    // nats-server 2.9 evicts at the edge of a full stream: sandmine bounds
    // it by count too, one 4 KiB slot here (see the_edge_of_a_full_stream_*).
    assert!(
        err.to_string().contains("maximum messages exceeded"),
        "{err}"
    );
    assert_eq!(stored.len(), 1, "{stored:?}");
    let again = p.publish("h.b.refused", &[7u8; 200]).await;
    assert!(again.is_err(), "a full stream took another message");
    // Nothing unconsumed was deleted to make room: all are delivered.
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, stored.len()).await;
    assert_eq!(ids(&got), stored);
    // Acked messages are deleted: there is room again. The next delivery
    // is the new message: the refused ones were never stored.
    cons.ack(&got).await.expect("ack");
    p.publish("h.b.after", &[7u8; 200])
        .await
        .expect("room after the acks");
    let after = fetch_n(&mut cons, 1).await;
    assert_eq!(ids(&after), ["h.b.after"]);
}

/// The edge of a full stream: a message whose stored size is just over
/// the room left. nats-server before 2.11 (Debian 12 ships 2.9.10) counts
/// only payload and headers when it decides to refuse, then finds the
/// stream over `max_bytes` and deletes its OLDEST message to make room
/// (nats-server#4771, #4775): an unconsumed delta is lost, silently, while
/// the publisher got an ack for the new one. On such a server sandmine
/// bounds the stream by messages too, so that the byte bound is never
/// reached. Every message acked must be delivered, on both servers.
async fn the_edge_of_a_full_stream_evicts_nothing(n: &Nats) {
    let c = NatsConfig {
        stream_max_bytes: 3 * 65536,
        ..cfg(n)
    };
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let client = async_nats::connect(c.url.as_str()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut acked = Vec::new();
    for i in 1..=2 {
        let id = format!("h.b.{i}");
        p.publish(&id, &vec![7u8; 60_000])
            .await
            .expect("room for two");
        acked.push(id);
    }
    let mut s = js.get_stream(&c.stream).await.expect("stream");
    let held = s.info().await.expect("info").state.bytes as usize;
    // What the store adds to a message besides its payload (id h.b.1).
    let per_msg = held / 2 - 60_000;
    let room = 3 * 65536 - held;
    // Stored sizes room+1 ..= room+100: each just over the room left.
    let mut tried = 0;
    for extra in 1..=100usize {
        let id = format!("h.b.edge{extra}");
        let payload = (room + extra).saturating_sub(per_msg + id.len() - "h.b.1".len());
        tried += 1;
        if p.publish(&id, &vec![7u8; payload]).await.is_ok() {
            acked.push(id);
        }
    }
    assert_eq!(tried, 100);
    let info = s.info().await.expect("info");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, acked.len()).await;
    assert_eq!(
        ids(&got),
        acked,
        "acked messages were deleted unconsumed (stream: {} messages, first seq {}, {} bytes)",
        info.state.messages,
        info.state.first_sequence,
        info.state.bytes
    );
}

#[tokio::test]
async fn the_edge_of_a_full_stream_evicts_nothing_on_nats_2_9() {
    the_edge_of_a_full_stream_evicts_nothing(&Nats::start()).await;
}

#[tokio::test]
async fn the_edge_of_a_full_stream_evicts_nothing_on_nats_2_15() {
    the_edge_of_a_full_stream_evicts_nothing(&Nats::start_new()).await;
}

/// The same edge on the dead-letter stream, whose messages carry a reason
/// of any length. On nats-server before 2.11 a dead letter just over the
/// room left is admitted and the stream deletes its OLDEST dead letter
/// (nats-server#4771): a dead letter the aggregator was told is stored,
/// and so acked the original of, is gone. sandmine cuts the reason to
/// 1024 bytes (`transport::REASON_MAX`), which bounds a dead letter's
/// stored size, and bounds this stream by count too (slots of 2 x 64 KiB
/// plus 2 KiB). Every dead letter acked must be delivered, on both
/// servers, and the long reason is stored cut, on both.
async fn the_edge_of_a_full_dead_letter_stream_evicts_nothing(n: &Nats) {
    // Three dead-letter slots on nats-server 2.9.
    let max_bytes = 3 * (2 * 65536 + 2048);
    let c = NatsConfig {
        dead_letter_max_bytes: max_bytes as i64,
        ..cfg(n)
    };
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let client = async_nats::connect(c.url.as_str()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut s = js
        .get_stream(&c.dead_letter_stream)
        .await
        .expect("dead-letter stream");
    // A store's error can be long (it may quote a whole statement).
    let huge = "the store refuses this message: ".repeat(625);
    assert_eq!(huge.len(), 20_000);
    p.publish_dead_letter("h.b.1", &vec![7u8; 60_000], &huge)
        .await
        .expect("a dead letter with a huge reason");
    let held1 = s.info().await.expect("info").state.bytes as usize;
    p.publish_dead_letter("h.b.2", &vec![7u8; 60_000], "bad")
        .await
        .expect("room for two");
    let mut acked = vec!["h.b.1".to_string(), "h.b.2".to_string()];
    let held = s.info().await.expect("info").state.bytes as usize;
    // What the store adds to dead letter h.b.2 besides its payload.
    let per_msg = held - held1 - 60_000;
    let room = max_bytes - held;
    // Stored sizes room+1 ..= room+100 (the id is stored twice).
    let mut tried = 0;
    for extra in 1..=100usize {
        let id = format!("h.b.edge{extra}");
        let payload = (room + extra).saturating_sub(per_msg + 2 * (id.len() - "h.b.2".len()));
        tried += 1;
        if p.publish_dead_letter(&id, &vec![7u8; payload], "bad")
            .await
            .is_ok()
        {
            acked.push(id);
        }
    }
    assert_eq!(tried, 100);
    let info = s.info().await.expect("info");
    let mut dl = Consumer::connect_dead_letter(&broker(&c))
        .await
        .expect("dead-letter consumer");
    let got = fetch_n(&mut dl, acked.len()).await;
    assert_eq!(
        ids(&got),
        acked,
        "acked dead letters were deleted unconsumed (stream: {} messages, first seq {}, {} bytes)",
        info.state.messages,
        info.state.first_sequence,
        info.state.bytes
    );
    let cut = " [reason truncated]";
    assert_eq!(
        got[0].reason.as_deref().map(str::len),
        Some(1024),
        "the long reason is stored whole"
    );
    assert_eq!(
        got[0].reason.as_deref(),
        Some(format!("{}{cut}", &huge[..1024 - cut.len()]).as_str())
    );
    assert_eq!(got[1].reason.as_deref(), Some("bad"));
}

#[tokio::test]
async fn the_edge_of_a_full_dead_letter_stream_evicts_nothing_on_nats_2_9() {
    the_edge_of_a_full_dead_letter_stream_evicts_nothing(&Nats::start()).await;
}

#[tokio::test]
async fn the_edge_of_a_full_dead_letter_stream_evicts_nothing_on_nats_2_15() {
    the_edge_of_a_full_dead_letter_stream_evicts_nothing(&Nats::start_new()).await;
}

/// nats-server refuses headers over 64 KiB: a dead letter whose reason
/// were stored whole would be refused on every try, and the aggregator
/// would retry it forever, holding its batch. Its reason is cut instead.
#[tokio::test]
async fn a_reason_over_the_header_limit_is_cut_not_refused() {
    let n = Nats::start_new();
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let huge = "the store refuses this message: ".repeat(6_250);
    assert_eq!(huge.len(), 200_000);
    p.publish_dead_letter("h.b.1", b"payload", &huge)
        .await
        .expect("a dead letter with a 200,000-byte reason");
    let mut dl = Consumer::connect_dead_letter(&broker(&c))
        .await
        .expect("dead-letter consumer");
    let got = fetch_n(&mut dl, 1).await;
    assert_eq!(ids(&got), ["h.b.1"]);
    let cut = " [reason truncated]";
    assert_eq!(
        got[0].reason.as_deref(),
        Some(format!("{}{cut}", &huge[..1024 - cut.len()]).as_str())
    );
}

/// The delta stream's message count and what its consumer will still
/// deliver (never delivered, or delivered and not acked).
async fn stream_and_deliverable(c: &NatsConfig) -> (u64, u64) {
    let client = async_nats::connect(c.url.as_str()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(&c.stream).await.expect("stream");
    let messages = s.info().await.expect("stream info").state.messages;
    let mut cons: async_nats::jetstream::consumer::PullConsumer =
        s.get_consumer(&c.durable).await.expect("consumer");
    let info = cons.info().await.expect("consumer info");
    (messages, info.num_pending + info.num_ack_pending as u64)
}

/// nats-server 2.9 killed with -9 can come back with acked messages still
/// in the work-queue stream, below its consumer's ack floor
/// (`benchmarks/faults/nats_orphans.py`): never delivered again, they keep
/// their bytes and their slot of the count bound. A consumer that connects
/// deletes them; the message that was not acked is still delivered.
#[tokio::test]
async fn acked_messages_a_crashed_nats_2_9_kept_are_deleted_on_connect() {
    let mut n = Nats::start();
    let c = cfg(&n);
    let mut found = None;
    for trial in 1..=5 {
        let p = Publisher::connect(&broker(&c)).await.expect("publisher");
        let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
        for i in 1..=6 {
            p.publish(&format!("h.b.{trial}.{i}"), b"delta")
                .await
                .expect("publish");
        }
        // Everything delivered (a crash that lost the acks of the trial
        // before redelivers its messages too) is acked but this trial's
        // sixth.
        let last = format!("h.b.{trial}.6");
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ids(&got).contains(&last) && Instant::now() < deadline {
            got.extend(
                cons.fetch(100, Duration::from_millis(500))
                    .await
                    .expect("fetch"),
            );
        }
        let (keep, acked): (Vec<_>, Vec<_>) = got
            .into_iter()
            .partition(|d| d.msg_id.as_deref() == Some(last.as_str()));
        assert_eq!(keep.len(), 1, "{last} was not delivered once");
        cons.ack(&acked).await.expect("ack");
        // The crash must come after the server wrote its consumer's state
        // (a crash right after the acks loses them: the messages come
        // again, nothing is left behind); 2.9.10 writes it within 0.2 s
        // and not yet the stream's deletes (nats_orphans.py).
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop((p, cons));
        n.restart();
        let (messages, deliverable) = stream_and_deliverable(&c).await;
        if messages > deliverable {
            found = Some((trial, messages, deliverable));
            break;
        }
    }
    let (trial, messages, deliverable) =
        found.expect("nats-server 2.9 kept no acked message in 5 crashes");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    assert_eq!(
        stream_and_deliverable(&c).await,
        (deliverable, deliverable),
        "after crash {trial} the stream held {messages} messages, {deliverable} of them to deliver"
    );
    // What was not acked comes again (ack_wait 1 s): the crash's sixth.
    let again = fetch_n(&mut cons, deliverable as usize).await;
    assert_eq!(again.len() as u64, deliverable);
    assert!(ids(&again).contains(&format!("h.b.{trial}.6")));
}

/// A delta stream as sandmine created it before streams were bounded:
/// limits retention, no size limit, discard-old.
async fn create_unbounded_stream(c: &NatsConfig) -> async_nats::jetstream::Context {
    use async_nats::jetstream::stream::{Config, StorageType};
    let client = async_nats::connect(c.url.as_str()).await.expect("connect");
    let js = async_nats::jetstream::new(client);
    js.create_stream(Config {
        name: c.stream.clone(),
        subjects: vec![c.subject.clone()],
        duplicate_window: c.duplicate_window,
        storage: StorageType::File,
        ..Default::default()
    })
    .await
    .expect("create the old stream");
    js
}

/// Connecting over an unbounded stream left by an older sandmine: the
/// server will not turn it into a work queue, so the connection fails
/// with one clear error, and the stream keeps every message.
async fn connect_over_an_unbounded_stream(n: &Nats) -> String {
    let c = cfg(n);
    let js = create_unbounded_stream(&c).await;
    // Three deltas stored under the old config.
    for i in 1..=3 {
        js.publish(c.subject.clone(), format!("d{i}").into())
            .await
            .expect("publish")
            .await
            .expect("ack");
    }
    let err = Publisher::connect(&broker(&c))
        .await
        .expect_err("connecting over an unbounded stream");
    assert!(!err.is_transient(), "{err}");
    let mut s = js.get_stream(&c.stream).await.expect("stream");
    let info = s.info().await.expect("info");
    assert_eq!(info.state.messages, 3, "the refused update lost messages");
    err.to_string()
}

fn assert_refusal(err: &str, server_says: &str) {
    let url_and_stream = err.split(": stream SANDMINE_DELTAS: ").collect::<Vec<_>>();
    assert_eq!(url_and_stream.len(), 2, "{err}");
    assert_eq!(
        url_and_stream[1],
        format!(
            "it has retention Limits, discard Old, max_bytes -1, max_msgs -1, max_msg_size -1, \
             and sandmine needs retention \
             WorkQueue, discard New, max_bytes 1073741824; the server refused to change it: \
             jetstream error: {server_says} (code 500, error code 10052). A stream created by \
             an older sandmine (limits retention, no bound: acked deltas are never removed) \
             cannot become a work queue in place: let the aggregators consume it, delete it \
             (`nats stream rm SANDMINE_DELTAS`), and sandmine creates it anew (docs/CONFIG.md, \
             \"Upgrading the streams\")"
        )
    );
}

#[tokio::test]
async fn an_unbounded_stream_from_an_older_sandmine_is_refused_clearly_by_nats_2_9() {
    let n = Nats::start();
    let err = connect_over_an_unbounded_stream(&n).await;
    assert_refusal(
        &err,
        "stream configuration update can not change retention policy",
    );
}

#[tokio::test]
async fn an_unbounded_stream_from_an_older_sandmine_is_refused_clearly_by_nats_2_15() {
    let n = Nats::start_new();
    let err = connect_over_an_unbounded_stream(&n).await;
    assert_refusal(
        &err,
        "stream configuration update can not change retention policy to/from workqueue",
    );
}

/// A new `stream_max_bytes` is applied to the existing work-queue stream,
/// and keeps what it holds.
#[tokio::test]
async fn a_new_bound_is_applied_to_the_existing_stream() {
    use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy};
    let n = Nats::start();
    let small = NatsConfig {
        stream_max_bytes: 3 * 65536,
        ..cfg(&n)
    };
    let p = Publisher::connect(&broker(&small))
        .await
        .expect("publisher");
    p.publish("h.b.1", b"one").await.expect("publish");
    p.publish("h.b.2", b"two").await.expect("publish");
    let big = NatsConfig {
        stream_max_bytes: 4 * 65536,
        ..small.clone()
    };
    Publisher::connect(&broker(&big))
        .await
        .expect("publisher with a new bound");
    let client = async_nats::connect(big.url.as_str())
        .await
        .expect("connect");
    let js = async_nats::jetstream::new(client);
    let mut s = js.get_stream(&big.stream).await.expect("stream");
    let info = s.info().await.expect("info");
    assert_eq!(
        (
            info.config.retention,
            info.config.discard,
            info.config.max_bytes,
            info.config.max_messages,
            info.state.messages
        ),
        // nats-server 2.9: bounded by count too, 64 KiB slots.
        (
            RetentionPolicy::WorkQueue,
            DiscardPolicy::New,
            4 * 65536,
            4,
            2
        )
    );
}

#[tokio::test]
async fn dead_letters_carry_payload_reason_and_original_id() {
    let n = Nats::start();
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    p.publish_dead_letter(
        "host-b.x.7",
        b"\xff\x00garbage",
        "unknown wire version 9\r\nboom",
    )
    .await
    .expect("dead letter");
    // Dead-lettering a redelivered message again is deduped.
    p.publish_dead_letter("host-b.x.7", b"\xff\x00garbage", "unknown wire version 9")
        .await
        .expect("dead letter again");
    let mut dl = Consumer::connect_dead_letter(&broker(&c))
        .await
        .expect("dl consumer");
    let got = fetch_n(&mut dl, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].payload.as_ref(), b"\xff\x00garbage");
    assert_eq!(got[0].msg_id.as_deref(), Some("host-b.x.7"));
    assert_eq!(
        got[0].reason.as_deref(),
        Some("unknown wire version 9  boom")
    );
    dl.ack(&got).await.expect("ack");
    let more = dl
        .fetch(10, Duration::from_millis(300))
        .await
        .expect("fetch");
    assert_eq!(more.len(), 0, "{more:?}");
    // The main stream's consumer never sees dead letters.
    let mut main = Consumer::connect(&broker(&c)).await.expect("main consumer");
    let none = main
        .fetch(10, Duration::from_millis(300))
        .await
        .expect("fetch");
    assert_eq!(none.len(), 0);
    // Replay: re-publish to the main subject, the main consumer sees it.
    p.publish("host-b.x.7.replay", &got[0].payload)
        .await
        .expect("replay");
    let replayed = fetch_n(&mut main, 1).await;
    assert_eq!(ids(&replayed), vec!["host-b.x.7.replay"]);
    assert!(replayed[0].reason.is_none());
}

#[tokio::test]
async fn broker_outage_errors_fast_then_same_clients_recover_without_loss() {
    let mut n = Nats::start();
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    p.publish("m.1", b"one").await.expect("publish before");
    let first = fetch_n(&mut cons, 1).await;
    assert_eq!(ids(&first), vec!["m.1"]);
    cons.ack(&first).await.expect("ack");

    n.stop();
    let t = Instant::now();
    let err = p
        .publish("m.2", b"two")
        .await
        .expect_err("publish while the server is down");
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains(&c.url), "{err}");
    // Fetch fails too, within the same bound.
    let t = Instant::now();
    let ferr = cons.fetch(10, Duration::from_millis(500)).await;
    assert!(ferr.is_err(), "{ferr:?}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // And connecting anew fails fast.
    let t = Instant::now();
    let cerr = Publisher::connect(&broker(&c))
        .await
        .expect_err("connect while down");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(cerr.to_string().contains(&c.url), "{cerr}");

    n.restart();
    // The same publisher recovers by itself once the client reconnected;
    // the collector retries "m.2" from its spool (same id: deduped if the
    // failed attempt did reach the stream).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match p.publish("m.2", b"two").await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "publisher did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    p.publish("m.3", b"three").await.expect("publish after");
    // The consumer resumes where it was (acked state survived the restart).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while got.len() < 2 && Instant::now() < deadline {
        match cons.fetch(2 - got.len(), Duration::from_millis(500)).await {
            Ok(d) => got.extend(d),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(ids(&got), vec!["m.2", "m.3"]);
    assert_eq!(payloads(&got), vec![b"two".to_vec(), b"three".to_vec()]);
    cons.ack(&got).await.expect("ack after restart");
}

#[tokio::test]
async fn wrong_password_is_a_quick_authorization_error_naming_the_server() {
    let n = Nats::start_with_conf("authorization { user: a, password: b }");
    let good = NatsConfig {
        user: Some("a".into()),
        password: Some("b".into()),
        ..cfg(&n)
    };
    let bad = NatsConfig {
        password: Some("wrong".into()),
        ..good.clone()
    };
    let t = Instant::now();
    let err = Publisher::connect(&broker(&bad))
        .await
        .expect_err("wrong password must fail");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        matches!(&err, TransportError::Auth { url, .. } if *url == n.url()),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("authorization violation"), "{msg}");
    assert!(msg.contains(&n.url()), "{msg}");
    assert!(!err.is_transient());
    // No credentials at all: the same clear error.
    let none = Publisher::connect(&broker(&cfg(&n)))
        .await
        .expect_err("no credentials");
    assert!(matches!(none, TransportError::Auth { .. }), "{none:?}");
    // The right password works end to end.
    let p = Publisher::connect(&broker(&good))
        .await
        .expect("good creds");
    p.publish("x.1", b"ok").await.expect("publish");
}

#[tokio::test]
async fn token_auth_works_and_bad_token_is_rejected() {
    let n = Nats::start_with_conf("authorization { token: s3cr3t }");
    let good = NatsConfig {
        token: Some("s3cr3t".into()),
        ..cfg(&n)
    };
    let bad = NatsConfig {
        token: Some("nope".into()),
        ..cfg(&n)
    };
    let err = Consumer::connect(&broker(&bad))
        .await
        .expect_err("bad token");
    assert!(matches!(err, TransportError::Auth { .. }), "{err:?}");
    let p = Publisher::connect(&broker(&good))
        .await
        .expect("good token");
    p.publish("t.1", b"ok").await.expect("publish");
    let mut cons = Consumer::connect(&broker(&good)).await.expect("consumer");
    let got = fetch_n(&mut cons, 1).await;
    assert_eq!(ids(&got), vec!["t.1"]);
}

#[tokio::test]
async fn contradictory_auth_config_is_refused_before_connecting() {
    let c = NatsConfig {
        url: "nats://127.0.0.1:1".into(),
        token: Some("t".into()),
        user: Some("u".into()),
        password: Some("p".into()),
        ..Default::default()
    };
    let err = Publisher::connect(&BrokerConfig::Nats(c))
        .await
        .expect_err("two auth methods");
    assert!(matches!(err, TransportError::Config(_)), "{err:?}");
}

#[tokio::test]
async fn object_store_round_trip_on_nats_2_15() {
    let n = Nats::start_new();
    let c = cfg(&n);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    transport::object_store::put(&c, "profiles", "nginx/v1.json", b"{\"a\":1}")
        .await
        .expect("put");
    transport::object_store::put(&c, "profiles", "big", &big)
        .await
        .expect("put big");
    assert_eq!(
        transport::object_store::get(&c, "profiles", "nginx/v1.json")
            .await
            .expect("get"),
        b"{\"a\":1}"
    );
    assert_eq!(
        transport::object_store::get(&c, "profiles", "big")
            .await
            .expect("get big"),
        big
    );
    // Overwrite replaces.
    transport::object_store::put(&c, "profiles", "nginx/v1.json", b"{}")
        .await
        .expect("put again");
    assert_eq!(
        transport::object_store::get(&c, "profiles", "nginx/v1.json")
            .await
            .expect("get again"),
        b"{}"
    );
    let missing = transport::object_store::get(&c, "profiles", "nope")
        .await
        .expect_err("missing object");
    assert!(
        matches!(missing, TransportError::NotFound { .. }),
        "{missing:?}"
    );
    let missing_bucket = transport::object_store::get(&c, "nobucket", "x")
        .await
        .expect_err("missing bucket");
    assert!(
        matches!(missing_bucket, TransportError::NotFound { .. }),
        "{missing_bucket:?}"
    );
}

#[tokio::test]
async fn object_store_on_nats_2_9_fails_clearly() {
    let n = Nats::start();
    let err = transport::object_store::put(&cfg(&n), "profiles", "x", b"y")
        .await
        .expect_err("2.9 has no usable object store");
    assert!(
        matches!(&err, TransportError::Unsupported { version, .. } if version.starts_with("2.9")),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("2.10"), "{msg}");
    assert!(msg.contains(&n.url()), "{msg}");
}

/// The server's announced `max_payload` is the limit: a larger message is
/// refused for good before it is sent (not a transient error), one at the
/// limit goes through, and `max_message_bytes` leaves room for headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_max_payload_is_refused_for_good() {
    let n = Nats::start_with_conf("max_payload: 8192");
    let c = cfg(&n);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    assert_eq!(p.max_message_bytes(), 8192 - 256);
    let err = p
        .publish("h.b.1", &vec![7u8; 8192])
        .await
        .expect_err("too large");
    assert!(err.refuses_message() && !err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "NATS server {} refuses a message of 8192 bytes: more than its limit of 8192 bytes",
            n.url()
        )
    );
    // 8192 - 27 - len("h.b.2"): exactly the room there is.
    p.publish("h.b.2", &vec![1u8; 8192 - 27 - 5])
        .await
        .expect("at the limit");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    assert_eq!(ids(&fetch_n(&mut cons, 1).await), ["h.b.2"]);
}

/// An operator's `max_msg_size` on the delta stream is a limit too: a
/// larger message is refused for good (JetStream would refuse it on every
/// try), and `max_message_bytes` is under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_max_msg_size_is_a_limit_too() {
    use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};
    let n = Nats::start();
    let c = cfg(&n);
    let client = async_nats::connect(n.url()).await.expect("connect");
    async_nats::jetstream::new(client)
        .create_stream(Config {
            name: c.stream.clone(),
            subjects: vec![c.subject.clone()],
            duplicate_window: c.duplicate_window,
            storage: StorageType::File,
            retention: RetentionPolicy::WorkQueue,
            discard: DiscardPolicy::New,
            max_bytes: c.stream_max_bytes,
            max_message_size: 2000,
            ..Default::default()
        })
        .await
        .expect("the operator's stream");
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    assert_eq!(p.max_message_bytes(), 2000 - 256);
    let err = p
        .publish("h.b.1", &vec![7u8; 3000])
        .await
        .expect_err("too large");
    assert!(err.refuses_message() && !err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "NATS server {} refuses a message of 3000 bytes: more than its limit of 2000 bytes",
            n.url()
        )
    );
    p.publish("h.b.2", &vec![1u8; 2000 - 27 - 5])
        .await
        .expect("at the limit");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    assert_eq!(ids(&fetch_n(&mut cons, 1).await), ["h.b.2"]);
}

/// A pull subscription whose requests go unanswered (here: a gate holds
/// every byte the consumer sends from its first pull request on, while
/// the connection stays open, so the client still calls itself
/// connected): the first two fetches time out, the second one binds the
/// durable again on a new connection, and the third gets every message.
/// Before the rebind, every later fetch waited on the stuck connection.
#[tokio::test]
async fn unanswered_pull_requests_rebind_the_consumer_on_a_new_connection() {
    let n = Nats::start();
    let gate = testsvc::gate::Gate::start(n.port);
    let direct = cfg(&n);
    let mut via_gate = direct.clone();
    via_gate.url = format!("nats://127.0.0.1:{}", gate.port());
    let p = Publisher::connect(&broker(&direct))
        .await
        .expect("publisher");
    let mut cons = Consumer::connect(&broker(&via_gate))
        .await
        .expect("consumer");
    assert_eq!(gate.accepted(), 1);
    gate.trip_on_request(b"CONSUMER.MSG.NEXT", 1);
    for i in 0..3 {
        p.publish(&format!("m-{i}"), b"x").await.expect("publish");
    }
    let wait = Duration::from_millis(200);
    let first = cons.fetch(10, wait).await;
    assert!(gate.tripped(), "the pull request was not held");
    assert!(
        matches!(first, Err(TransportError::Timeout { .. })),
        "first fetch: {first:?}"
    );
    // The stuck connection stays open; a new one would get through.
    gate.pass_new_connections();
    let second = cons.fetch(10, wait).await;
    assert!(
        matches!(second, Err(TransportError::Timeout { .. })),
        "second fetch: {second:?}"
    );
    assert_eq!(
        gate.accepted(),
        2,
        "the second unanswered fetch connects again"
    );
    let got = fetch_n(&mut cons, 3).await;
    assert_eq!(ids(&got), ["m-0", "m-1", "m-2"]);
    cons.ack(&got).await.expect("ack on the new connection");
    let more = cons.fetch(10, wait).await.expect("fetch");
    assert!(
        more.is_empty(),
        "acked, yet delivered again: {:?}",
        ids(&more)
    );
}
