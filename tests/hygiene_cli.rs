//! Hygiene through the real binary: a connection without TLS to a broker
//! or store on another host is named in exactly one warning; loopback and
//! TLS connections are not.

mod common;

use common::Fixture;

/// This host's own non-loopback address, where nothing listens on the
/// ports used here: a connection is refused at once, after the config
/// (and so the warning) was acted on.
fn remote_ip() -> String {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname -I");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ip = text
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| !a.is_loopback())
        })
        .expect("a non-loopback IPv4 address");
    ip.to_string()
}

/// The lines of `o`'s stderr that warn about plaintext.
fn plaintext_warnings(o: &common::Out) -> Vec<String> {
    o.stderr
        .lines()
        .filter(|l| l.contains("level=warn") && l.contains("without TLS"))
        .map(str::to_string)
        .collect()
}

/// `aggregate --migrate-only` against the ClickHouse at `url`.
fn migrate(f: &Fixture, url: &str) -> common::Out {
    f.sandmine(&[
        "aggregate",
        "--migrate-only",
        "--set",
        &format!("store.clickhouse.url={url}"),
        "--set",
        "store.clickhouse.connect_timeout_secs=1",
    ])
}

fn replay(f: &Fixture, broker: &str) -> common::Out {
    let cfg = f.write("broker.toml", broker);
    f.sandmine(&[
        "replay-dead-letters",
        "--dry-run",
        "--config",
        cfg.to_str().unwrap(),
    ])
}

#[test]
fn plaintext_to_a_remote_broker_or_store_warns_once() {
    let f = Fixture::new();
    let ip = remote_ip();

    let o = migrate(&f, &format!("http://{ip}:9"));
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let w = plaintext_warnings(&o);
    assert_eq!(w.len(), 1, "{}", o.describe());
    assert!(
        w[0].contains(&format!("ClickHouse at http://{ip}:9 without TLS")),
        "{}",
        o.describe()
    );
    for url in [
        "http://127.0.0.1:9",
        "http://localhost:9",
        &format!("https://{ip}:9"),
    ] {
        let o = migrate(&f, url);
        assert_eq!(
            plaintext_warnings(&o),
            Vec::<String>::new(),
            "{url}: {}",
            o.describe()
        );
    }

    let nats =
        |url: &str| format!("[broker]\nkind = \"nats\"\nurl = \"{url}\"\ntimeout = \"1s\"\n");
    let o = replay(&f, &nats(&format!("nats://{ip}:9")));
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let w = plaintext_warnings(&o);
    assert_eq!(w.len(), 1, "{}", o.describe());
    assert!(
        w[0].contains(&format!("NATS at nats://{ip}:9 without TLS")),
        "{}",
        o.describe()
    );
    for url in ["nats://127.0.0.1:9", &format!("tls://{ip}:9")] {
        let o = replay(&f, &nats(url));
        assert_eq!(
            plaintext_warnings(&o),
            Vec::<String>::new(),
            "{url}: {}",
            o.describe()
        );
    }

    let kafka = |brokers: &str, props: &str| {
        format!("[broker]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntimeout = \"1s\"\ncreate_topics = false\n[broker.properties]\n{props}")
    };
    let o = replay(&f, &kafka(&format!("127.0.0.1:9,{ip}:9"), ""));
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    let w = plaintext_warnings(&o);
    assert_eq!(w.len(), 1, "{}", o.describe());
    assert!(
        w[0].contains(&format!("Kafka at 127.0.0.1:9,{ip}:9 without TLS")),
        "{}",
        o.describe()
    );
    for (brokers, props) in [
        ("127.0.0.1:9".to_string(), ""),
        (format!("{ip}:9"), "\"security.protocol\" = \"SASL_SSL\"\n"),
        (format!("{ip}:9"), "\"security.protocol\" = \"ssl\"\n"),
    ] {
        let o = replay(&f, &kafka(&brokers, props));
        assert_eq!(
            plaintext_warnings(&o),
            Vec::<String>::new(),
            "{brokers}: {}",
            o.describe()
        );
    }
}
