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
