//! TLS and NKey settings of `NatsConfig` against real nats-server
//! processes (testsvc) with a throwaway CA made at test time.

use std::time::{Duration, Instant};

use testsvc::{Nats, TestPki};
use transport::{BrokerConfig, Consumer, Delivery, NatsConfig, Publisher, TransportError};

fn cfg(url: String) -> NatsConfig {
    NatsConfig {
        url,
        timeout: Duration::from_secs(2),
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

/// Publishes three messages (ids `{tag}.0..2`) and consumes exactly
/// them, acked.
async fn round_trip(c: &NatsConfig, tag: &str) {
    let p = Publisher::connect(&broker(c)).await.expect("publisher");
    let want: Vec<(String, Vec<u8>)> = (0..3u8)
        .map(|i| (format!("{tag}.{i}"), vec![i; 4]))
        .collect();
    for (id, payload) in &want {
        p.publish(id, payload).await.expect("publish");
    }
    let mut cons = Consumer::connect(&broker(c)).await.expect("consumer");
    let got = fetch_n(&mut cons, 3).await;
    let got_pairs: Vec<(String, Vec<u8>)> = got
        .iter()
        .map(|d| (d.msg_id.clone().expect("msg id"), d.payload.to_vec()))
        .collect();
    assert_eq!(got_pairs, want);
    cons.ack(&got).await.expect("ack");
}

/// The connect error's text, asserting it is a connection error for `url`.
fn connect_error(err: &TransportError, url: &str) -> String {
    match err {
        TransportError::Connect { url: u, .. } => assert_eq!(u, url),
        other => panic!("expected a connect error for {url}, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("cannot connect to NATS server {url}: ")),
        "{msg}"
    );
    msg
}

#[tokio::test]
async fn tls_with_ca_file_round_trips_and_system_roots_reject_the_private_ca() {
    let pki = TestPki::generate();
    let n = Nats::start_tls(&pki, false, "");
    // nats:// upgrades because the server requires TLS; tls:// insists.
    for (tag, url) in [("nats", n.url()), ("tls", n.tls_url())] {
        let c = NatsConfig {
            ca_file: Some(pki.ca_cert.clone()),
            ..cfg(url)
        };
        round_trip(&c, tag).await;
    }

    // No ca_file: only the system roots, which do not know our CA.
    let t = Instant::now();
    let err = Publisher::connect(&broker(&cfg(n.url())))
        .await
        .expect_err("private CA must not verify against the system roots");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let msg = connect_error(&err, &n.url());
    assert!(
        msg.ends_with(
            ": TLS handshake failed: invalid peer certificate: UnknownIssuer; the server's \
             certificate is not signed by a CA in the system roots; set ca_file to the CA \
             that signed it"
        ),
        "{msg}"
    );

    // A CA that did not sign the server's certificate: the same.
    let other = TestPki::generate();
    let wrong = NatsConfig {
        ca_file: Some(other.ca_cert.clone()),
        ..cfg(n.url())
    };
    let err = Consumer::connect(&broker(&wrong))
        .await
        .expect_err("wrong CA");
    let msg = connect_error(&err, &n.url());
    assert!(
        msg.ends_with(&format!(
            ": TLS handshake failed: invalid peer certificate: UnknownIssuer; the server's \
             certificate is not signed by the CA in ca_file {}",
            other.ca_cert.display()
        )),
        "{msg}"
    );

    // A CA file that is not there: an error naming the server and why.
    let missing = NatsConfig {
        ca_file: Some(pki.dir().join("nope.pem")),
        ..cfg(n.url())
    };
    let err = Publisher::connect(&broker(&missing))
        .await
        .expect_err("missing CA file");
    let msg = err.to_string();
    assert!(msg.contains(&n.url()), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let pki = TestPki::generate();
    let n = Nats::start_tls(&pki, true, "");
    let with_cert = NatsConfig {
        ca_file: Some(pki.ca_cert.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        ..cfg(n.url())
    };
    round_trip(&with_cert, "mtls").await;

    let without = NatsConfig {
        cert_file: None,
        key_file: None,
        ..with_cert.clone()
    };
    let t = Instant::now();
    let err = Publisher::connect(&broker(&without))
        .await
        .expect_err("no client certificate");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let msg = connect_error(&err, &n.url());
    assert!(
        msg.ends_with(
            ": TLS handshake failed: received fatal alert: BadCertificate; the server refused \
             the handshake: it probably requires a client certificate (set cert_file and \
             key_file)"
        ),
        "{msg}"
    );

    // A client certificate from another CA is refused too.
    let other = TestPki::generate();
    let foreign = NatsConfig {
        cert_file: Some(other.client_cert.clone()),
        key_file: Some(other.client_key.clone()),
        ..with_cert.clone()
    };
    let err = Publisher::connect(&broker(&foreign))
        .await
        .expect_err("foreign client certificate");
    let msg = connect_error(&err, &n.url());
    assert!(
        msg.ends_with(
            ": TLS handshake failed: received fatal alert: BadCertificate; the server refused \
             our client certificate (cert_file): is it signed by a CA the server trusts?"
        ),
        "{msg}"
    );

    // Half a client identity is refused before any I/O.
    let half = NatsConfig {
        key_file: None,
        ..with_cert
    };
    let err = Publisher::connect(&broker(&half))
        .await
        .expect_err("cert without key");
    assert!(
        matches!(&err, TransportError::Config(m) if m == "nats: cert_file and key_file must be set together"),
        "{err:?}"
    );
}

#[tokio::test]
async fn require_tls_against_a_plaintext_server_fails_clearly() {
    let n = Nats::start();
    let c = NatsConfig {
        require_tls: true,
        ..cfg(n.url())
    };
    let t = Instant::now();
    let err = Publisher::connect(&broker(&c))
        .await
        .expect_err("plaintext server with require_tls");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let msg = connect_error(&err, &n.url());
    assert!(
        msg.ends_with(
            ": TLS handshake failed: received corrupt message of type InvalidContentType; the \
             server did not answer in TLS: it does not offer TLS on this port, but require_tls \
             (or a tls:// url) insists on it"
        ),
        "{msg}"
    );
    // Without require_tls the same server works.
    round_trip(&cfg(n.url()), "plain").await;
}

#[tokio::test]
async fn nkey_auth_works_and_another_seed_is_rejected() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("seed");
    let n = Nats::start_with_conf(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}",
        user.public_key()
    ));
    let good = NatsConfig {
        nkey_seed: Some(seed.into()),
        ..cfg(n.url())
    };
    round_trip(&good, "nkey").await;

    let stranger = nkeys::KeyPair::new_user();
    let bad = NatsConfig {
        nkey_seed: Some(stranger.seed().expect("seed").into()),
        ..cfg(n.url())
    };
    let t = Instant::now();
    let err = Publisher::connect(&broker(&bad))
        .await
        .expect_err("unknown nkey");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        matches!(&err, TransportError::Auth { url, .. } if *url == n.url()),
        "{err:?}"
    );
    assert!(err.to_string().contains("authorization violation"), "{err}");
    assert!(!err.is_transient());

    // Not a seed at all: refused without a usable connection.
    let garbage = NatsConfig {
        nkey_seed: Some("SUnotaseed".into()),
        ..cfg(n.url())
    };
    let err = Publisher::connect(&broker(&garbage))
        .await
        .expect_err("garbage seed");
    assert!(err.to_string().contains(&n.url()), "{err}");
}

#[tokio::test]
async fn nkey_over_mutual_tls_together() {
    let pki = TestPki::generate();
    let user = nkeys::KeyPair::new_user();
    let n = Nats::start_tls(
        &pki,
        true,
        &format!(
            "authorization {{ users: [ {{ nkey: {} }} ] }}",
            user.public_key()
        ),
    );
    let c = NatsConfig {
        ca_file: Some(pki.ca_cert.clone()),
        cert_file: Some(pki.client_cert.clone()),
        key_file: Some(pki.client_key.clone()),
        nkey_seed: Some(user.seed().expect("seed").into()),
        require_tls: true,
        ..cfg(n.tls_url())
    };
    round_trip(&c, "nkey-mtls").await;
}
