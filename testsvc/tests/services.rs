//! The services start, answer, and restart on the same port.

use testsvc::{ClickHouse, Nats};

#[test]
fn clickhouse_starts_answers_and_restarts() {
    let mut ch = ClickHouse::start();
    assert_eq!(ch.query("SELECT version()").trim(), "18.16.1");
    ch.query("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x");
    ch.query("INSERT INTO t VALUES (7)");
    ch.restart();
    assert_eq!(ch.query("SELECT sum(x) FROM t").trim(), "7");
}

#[test]
fn nats_starts_and_restarts() {
    let mut n = Nats::start();
    let port = n.port;
    n.restart();
    assert_eq!(n.port, port);
    assert!(testsvc::http_ok(
        n.monitor_port,
        "/healthz?js-enabled-only=true"
    ));
}
