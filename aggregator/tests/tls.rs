//! The ClickHouse store over HTTPS (ClickHouse 18.16 with a certificate
//! from a throwaway CA made at test time): `ca_file` trusted, migrations,
//! inserts and answers; the wrong CA is a clear TLS error.

mod common;

use aggregator::store::{ClickHouseConfig, InsertStats, Store, StoreConfig, StoreError};
use common::*;
use testsvc::{ClickHouse, TestPki};

fn https_config(ch: &ClickHouse, pki: &TestPki) -> ClickHouseConfig {
    ClickHouseConfig {
        url: ch.https_url(),
        user: ClickHouse::USER.into(),
        password: ClickHouse::PASSWORD.into(),
        ca_file: Some(pki.ca_cert.clone()),
        ..ch_config(ch)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_ca_file_migrates_inserts_and_answers() {
    let pki = TestPki::generate();
    let ch = ClickHouse::start_https(&pki);
    let s = match Store::open(&StoreConfig::ClickHouse(https_config(&ch, &pki))).await {
        Ok(s) => s,
        Err(e) => panic!("open over https: {e}"),
    };
    assert_eq!(
        s.applied_migrations().await.unwrap(),
        vec![1, 2, 4, 5, 6, 7]
    );
    let stats = s.insert(&hand_made()).await.unwrap();
    assert_eq!(
        stats,
        InsertStats {
            calls: 7,
            incidence: 8,
            containers: 7,
            duplicates: 0
        }
    );
    assert_eq!(s.images().await.unwrap(), vec!["nginx:1", "redis:7"]);
    let redis = s.image_observations("redis:7").await.unwrap().unwrap();
    assert_eq!(
        (redis.hosts, redis.containers, redis.container_seconds),
        (1, 1, 20)
    );
    // The rows really are in the server (read back over plain HTTP).
    assert_eq!(
        ch.query("SELECT name FROM system.tables WHERE database = 'sandmine' ORDER BY name"),
        "arg_sets\narg_values\ncalls\ncontainers\ndenials\nexecuted_files\nincidence\nincomplete_containers\nschema_migrations\nunverified_containers\n"
    );
    // Over https the same answers as over http.
    let plain = open_ch(&ch).await;
    assert_eq!(
        plain.syscall_totals().await.unwrap(),
        s.syscall_totals().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_wrong_ca_or_none_is_a_clear_tls_error() {
    let pki = TestPki::generate();
    let ch = ClickHouse::start_https(&pki);
    let other = TestPki::generate();
    let url = ch.https_url();
    for (what, ca_file) in [
        ("another CA", Some(other.ca_cert.clone())),
        ("system roots only", None),
    ] {
        let cfg_ca = ca_file.clone();
        let cfg = ClickHouseConfig {
            ca_file,
            ..https_config(&ch, &pki)
        };
        let err = Store::open(&StoreConfig::ClickHouse(cfg))
            .await
            .expect_err(what);
        match &err {
            StoreError::Tls { url: u, .. } => assert_eq!(u, &url, "{what}"),
            other => panic!("{what}: expected a TLS error, got {other:?}"),
        }
        let msg = err.to_string();
        let hint = match &cfg_ca {
            Some(ca) => format!(
                "the server's certificate is not signed by the system roots or the CA in \
                 ca_file {}",
                ca.display()
            ),
            None => "the server's certificate is not signed by a CA in the system roots: set \
                     ca_file to the CA that signed it"
                .to_string(),
        };
        assert_eq!(
            msg,
            format!(
                "TLS setup for {url}: TLS handshake failed: invalid peer certificate: \
                 UnknownIssuer; {hint}"
            ),
            "{what}"
        );
        assert!(!err.is_transient(), "{what}");
    }

    // https:// pointed at the plain HTTP port.
    let cfg = ClickHouseConfig {
        url: format!("https://127.0.0.1:{}", ch.http_port),
        ..https_config(&ch, &pki)
    };
    let err = Store::open(&StoreConfig::ClickHouse(cfg.clone()))
        .await
        .expect_err("https to the http port");
    // ClickHouse 18.16's HTTP server either answers the ClientHello with a
    // plain-text error at once (a clear TLS error here) or waits for a
    // request line until our timeout: both are errors naming the server,
    // never a hang or a success.
    let tls = format!(
        "TLS setup for {}: TLS handshake failed: received corrupt message of type \
         InvalidContentType; the server did not answer in TLS: is this its https_port (not \
         http_port)?",
        cfg.url
    );
    let timeout = format!("ClickHouse at {} did not answer within 10 s", cfg.url);
    let msg = err.to_string();
    assert!(msg == tls || msg == timeout, "{msg}");
}
