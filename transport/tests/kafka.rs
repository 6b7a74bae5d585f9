//! Kafka tests against a real Kafka-protocol broker (tansu, via testsvc).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use testsvc::Kafka;
use transport::{BrokerConfig, Consumer, Delivery, KafkaConfig, Publisher};

fn cfg(k: &Kafka) -> KafkaConfig {
    KafkaConfig {
        brokers: k.bootstrap(),
        timeout: Duration::from_secs(3),
        ..Default::default()
    }
}

fn broker(c: &KafkaConfig) -> BrokerConfig {
    BrokerConfig::Kafka(c.clone())
}

/// Fetches until `n` deliveries arrived or 30 s passed (joining a consumer
/// group takes a few seconds).
async fn fetch_n(c: &mut Consumer, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(30);
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

/// A new member of the group gets `id`, published last, and nothing else:
/// the group committed everything before it.
async fn assert_a_new_member_gets_only(c: &KafkaConfig, id: &str) {
    let mut n = Consumer::connect(&broker(c)).await.expect("member N");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ids(&got).iter().any(|i| i == id) {
        assert!(
            Instant::now() < deadline,
            "{id} never came: {:?}",
            ids(&got)
        );
        got.extend(
            n.fetch(100, Duration::from_millis(500))
                .await
                .expect("fetch"),
        );
    }
    got.extend(n.fetch(100, Duration::from_secs(2)).await.expect("fetch"));
    assert_eq!(
        ids(&got),
        [id],
        "delivered again after the group committed them"
    );
}

fn payloads(ds: &[Delivery]) -> Vec<Vec<u8>> {
    ds.iter().map(|d| d.payload.to_vec()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_publish_n_consume_n_in_order_then_commit() {
    let k = Kafka::start();
    let c = cfg(&k);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let want_ids: Vec<String> = (0..20).map(|i| format!("host-a.boot.{i}")).collect();
    let want_payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 1 + i as usize]).collect();
    for (id, pl) in want_ids.iter().zip(&want_payloads) {
        p.publish(id, pl).await.expect("publish");
    }
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, 20).await;
    assert_eq!(ids(&got), want_ids);
    assert_eq!(payloads(&got), want_payloads);
    assert_eq!(
        got.iter().map(|d| d.sequence).collect::<Vec<_>>(),
        (0..20).collect::<Vec<u64>>()
    );
    assert!(got.iter().all(|d| d.reason.is_none()));
    cons.ack(&got).await.expect("commit");
    drop(cons);
    // Committed: a new group member starts after them.
    p.publish("host-a.boot.20", b"next").await.expect("publish");
    let mut cons = Consumer::connect(&broker(&c))
        .await
        .expect("consumer again");
    let next = fetch_n(&mut cons, 1).await;
    assert_eq!(ids(&next), vec!["host-a.boot.20"]);
    assert_eq!(payloads(&next), vec![b"next".to_vec()]);
    let none = cons.fetch(10, Duration::from_secs(1)).await.expect("fetch");
    assert_eq!(none.len(), 0, "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_pipelined_publish_many_keeps_order() {
    let k = Kafka::start();
    let c = cfg(&k);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let ids_owned: Vec<String> = (0..500).map(|i| format!("h.b.{i}")).collect();
    let bodies: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let msgs: Vec<(&str, &[u8])> = ids_owned
        .iter()
        .zip(&bodies)
        .map(|(i, b)| (i.as_str(), b.as_slice()))
        .collect();
    p.publish_many(&msgs).await.expect("publish_many");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, 500).await;
    assert_eq!(ids(&got), ids_owned);
    assert_eq!(payloads(&got), bodies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_uncommitted_messages_are_redelivered_after_consumer_restart() {
    let k = Kafka::start();
    let c = cfg(&k);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let want: Vec<String> = (0..5).map(|i| format!("h.r.{i}")).collect();
    for id in &want {
        p.publish(id, id.as_bytes()).await.expect("publish");
    }
    {
        let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
        let got = fetch_n(&mut cons, 5).await;
        assert_eq!(ids(&got), want);
        // "Crash": drop without commit.
    }
    let mut cons = Consumer::connect(&broker(&c))
        .await
        .expect("consumer again");
    let again = fetch_n(&mut cons, 5).await;
    assert_eq!(ids(&again), want);
    cons.ack(&again[..3]).await.expect("commit first three");
    drop(cons);
    let mut cons = Consumer::connect(&broker(&c))
        .await
        .expect("consumer third");
    let rest = fetch_n(&mut cons, 2).await;
    assert_eq!(ids(&rest), vec!["h.r.3", "h.r.4"]);
    cons.ack(&rest).await.expect("commit rest");
    drop(cons);
    let mut cons = Consumer::connect(&broker(&c))
        .await
        .expect("consumer fourth");
    let none = cons.fetch(10, Duration::from_secs(4)).await.expect("fetch");
    assert_eq!(none.len(), 0, "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_dead_letters_carry_payload_reason_and_original_id() {
    let k = Kafka::start();
    let c = cfg(&k);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    p.publish_dead_letter(
        "host-b.x.7",
        b"\xff\x00garbage",
        "unknown wire version 9\nboom",
    )
    .await
    .expect("dead letter");
    let mut dl = Consumer::connect_dead_letter(&broker(&c))
        .await
        .expect("dl consumer");
    let got = fetch_n(&mut dl, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].payload.as_ref(), b"\xff\x00garbage");
    assert_eq!(got[0].msg_id.as_deref(), Some("host-b.x.7"));
    assert_eq!(
        got[0].reason.as_deref(),
        Some("unknown wire version 9 boom")
    );
    dl.ack(&got).await.expect("commit");
    // The main topic's group never sees dead letters.
    let mut main = Consumer::connect(&broker(&c)).await.expect("main consumer");
    let none = main.fetch(10, Duration::from_secs(3)).await.expect("fetch");
    assert_eq!(none.len(), 0, "{none:?}");
}

/// What `sandmine replay-dead-letters` does: ack only the dead letters it
/// replayed and keep the others. A kept message must be delivered again,
/// even when a later one was acked: a Kafka commit is one offset per
/// partition, so it may never move past a delivery that was not acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_ack_never_commits_past_a_kept_delivery() {
    let k = Kafka::start();
    let c = cfg(&k);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let all = ["replayed-0", "kept-1", "replayed-2", "kept-3", "replayed-4"];
    for id in all {
        p.publish_dead_letter(id, id.as_bytes(), "test")
            .await
            .expect("dead letter");
    }
    {
        let mut dl = Consumer::connect_dead_letter(&broker(&c))
            .await
            .expect("dl consumer");
        let got = fetch_n(&mut dl, 5).await;
        assert_eq!(ids(&got), all);
        let replayed: Vec<Delivery> = got
            .into_iter()
            .filter(|d| {
                d.msg_id
                    .as_deref()
                    .is_some_and(|i| i.starts_with("replayed"))
            })
            .collect();
        dl.ack(&replayed).await.expect("commit the replayed ones");
    }
    // The next run starts at the first kept message: both kept ones come
    // back (and the replayed ones after the first, which the store
    // dedupes).
    let mut dl = Consumer::connect_dead_letter(&broker(&c))
        .await
        .expect("dl consumer again");
    let again = fetch_n(&mut dl, 4).await;
    let more = dl.fetch(10, Duration::from_secs(3)).await.expect("fetch");
    assert_eq!(
        ids(&again),
        ["kept-1", "replayed-2", "kept-3", "replayed-4"]
    );
    assert_eq!(ids(&more), Vec::<String>::new());
    // Acking everything, in any order, then commits past the end.
    dl.ack(&again[2..])
        .await
        .expect("commit kept-3 and replayed-4");
    dl.ack(&again[..2]).await.expect("commit the rest");
    drop(dl);
    let mut dl = Consumer::connect_dead_letter(&broker(&c))
        .await
        .expect("dl consumer third");
    let none = dl.fetch(10, Duration::from_secs(4)).await.expect("fetch");
    assert_eq!(ids(&none), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_dead_broker_publish_fails_within_seconds_then_recovers() {
    let mut k = Kafka::start();
    let c = cfg(&k);
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    p.publish("m.1", b"one").await.expect("publish before");
    k.stop();
    let t = Instant::now();
    let err = p
        .publish("m.2", b"two")
        .await
        .expect_err("publish while the broker is down");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains(&c.brokers), "{err}");
    k.restart();
    // An idempotent producer whose broker lost its producer state is
    // fenced; the collector (src/fleet/collect.rs) drops a publisher after
    // an error and connects anew, and so does this test.
    drop(p);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = match Publisher::connect(&broker(&c)).await {
            Ok(p) => p.publish("m.2", b"two").await,
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "publisher did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    let got = fetch_n(&mut cons, 2).await;
    assert_eq!(ids(&got), vec!["m.1", "m.2"]);
    let none = cons.fetch(10, Duration::from_secs(1)).await.expect("fetch");
    assert_eq!(none.len(), 0, "{none:?}");
}

/// A message over `message.max.bytes` is refused for good
/// (`TooLarge`, not a transient error the collector would retry forever),
/// and the next one still goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_a_message_over_message_max_bytes_is_refused_for_good() {
    let k = Kafka::start();
    let mut c = cfg(&k);
    c.properties
        .insert("message.max.bytes".into(), "10000".into());
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    assert_eq!(p.max_message_bytes(), 10_000 - 1024);
    let err = p
        .publish("h.b.1", &vec![7u8; 20_000])
        .await
        .expect_err("too large");
    assert!(err.refuses_message() && !err.is_transient(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "Kafka server {} refuses a message of 20000 bytes: more than its limit of 10000 bytes",
            k.bootstrap()
        )
    );
    p.publish("h.b.2", &[1, 2, 3]).await.expect("a small one");
    let mut cons = Consumer::connect(&broker(&c)).await.expect("consumer");
    assert_eq!(ids(&fetch_n(&mut cons, 1).await), ["h.b.2"]);
}

/// What a member fetched of a partition it then lost is left to the new
/// owner: A holds deliveries of both partitions when B joins and is given
/// one of them, and B gets that partition's messages again from the
/// committed offset. `retain_owned` drops exactly A's deliveries of B's
/// partition (B got every one of them), keeps those of A's own, and A's
/// ack of what it kept still commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_a_member_leaves_what_it_holds_of_a_lost_partition_to_its_new_owner() {
    let k = Kafka::start();
    let mut c = cfg(&k);
    c.partitions = 2;
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    for i in 0..20 {
        p.publish(&format!("m-{i}"), b"x").await.expect("publish");
    }
    let mut a = Consumer::connect(&broker(&c)).await.expect("member A");
    let mut held = fetch_n(&mut a, 20).await;
    assert_eq!(held.len(), 20, "A alone gets both partitions");
    let all: BTreeSet<String> = ids(&held).into_iter().collect();
    // Nothing taken over yet: A keeps everything.
    assert_eq!(a.retain_owned(&mut held).await.expect("assignment"), 0);
    assert_eq!(held.len(), 20);
    let mut b = Consumer::connect(&broker(&c)).await.expect("member B");
    // Both poll (a member takes part in a rebalance only while it polls)
    // until each has had its partition's messages again (nothing was
    // committed, so both restart at offset 0).
    let (mut a_new, mut b_got) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ra, rb) = tokio::join!(
            a.fetch(100, Duration::from_millis(300)),
            b.fetch(100, Duration::from_millis(300))
        );
        a_new.extend(ra.expect("A fetch"));
        b_got.extend(rb.expect("B fetch"));
        let seen: BTreeSet<String> = ids(&a_new).into_iter().chain(ids(&b_got)).collect();
        if !b_got.is_empty() && !a_new.is_empty() && seen == all {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no rebalance within 60 s: A got {} again, B got {}",
            a_new.len(),
            b_got.len()
        );
    }
    let b_ids: BTreeSet<String> = ids(&b_got).into_iter().collect();
    let a_ids: BTreeSet<String> = ids(&a_new).into_iter().collect();
    assert!(
        a_ids.is_disjoint(&b_ids),
        "one partition each: A {a_ids:?}, B {b_ids:?}"
    );
    let dropped = a.retain_owned(&mut held).await.expect("assignment");
    let kept: BTreeSet<String> = ids(&held).into_iter().collect();
    let gone: BTreeSet<String> = all.difference(&kept).cloned().collect();
    assert_eq!(dropped, gone.len());
    assert_eq!(gone, b_ids, "exactly B's partition is dropped");
    assert_eq!(kept, a_ids, "exactly A's own partition is kept");
    // What A kept is still its to commit, and B commits its own.
    a.ack(&held).await.expect("A commits what it kept");
    a.ack(&a_new).await.expect("A commits its partition");
    b.ack(&b_got).await.expect("B commits its partition");
    drop(a);
    drop(b);
    // The group committed both partitions to their end: a new member gets
    // only what comes after.
    p.publish("m-20", b"x").await.expect("publish");
    assert_a_new_member_gets_only(&c, "m-20").await;
}

/// Two members of one group (two aggregator replicas): A holds
/// deliveries of both partitions when B joins and is given one of them; B
/// stores and acks it further than A ever fetched. A's late ack of what it
/// held must not commit that partition: its commit would land behind B's,
/// and the group would get B's messages again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_a_member_never_commits_a_partition_it_lost() {
    let k = Kafka::start();
    let mut c = cfg(&k);
    c.partitions = 2;
    let p = Publisher::connect(&broker(&c)).await.expect("publisher");
    let publish = |from: usize, to: usize| {
        let p = &p;
        async move {
            for i in from..to {
                p.publish(&format!("m-{i}"), b"x").await.expect("publish");
            }
        }
    };
    publish(0, 20).await;
    let mut a = Consumer::connect(&broker(&c)).await.expect("member A");
    let held = fetch_n(&mut a, 20).await;
    assert_eq!(held.len(), 20, "A alone gets both partitions");
    let mut b = Consumer::connect(&broker(&c)).await.expect("member B");
    // Both poll (a member takes part in a rebalance only while it polls)
    // until B has a partition: it gets that partition's first messages
    // again (nothing was committed). Then more messages come, to A or B.
    let (mut a_new, mut b_got) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut published = false;
    loop {
        let (ra, rb) = tokio::join!(
            a.fetch(100, Duration::from_millis(300)),
            b.fetch(100, Duration::from_millis(300))
        );
        a_new.extend(ra.expect("A fetch"));
        b_got.extend(rb.expect("B fetch"));
        if !published && !b_got.is_empty() {
            publish(20, 60).await;
            published = true;
        }
        let seen: std::collections::BTreeSet<String> =
            ids(&a_new).into_iter().chain(ids(&b_got)).collect();
        if published && (20..60).all(|i| seen.contains(&format!("m-{i}"))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no rebalance within 60 s: A got {} more, B got {}",
            a_new.len(),
            b_got.len()
        );
    }
    // B stores and acks its partition to the end; A acks what it fetched
    // since, then, last, what it held from before B joined.
    b.ack(&b_got).await.expect("B commits");
    a.ack(&a_new).await.expect("A commits its new deliveries");
    a.ack(&held).await.expect("A's late ack");
    drop(a);
    drop(b);
    // A new member starts where the group committed: only what comes
    // after.
    publish(60, 61).await;
    assert_a_new_member_gets_only(&c, "m-60").await;
}
