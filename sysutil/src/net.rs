//! Network hygiene shared by the broker and store clients: one warning
//! per process for each endpoint reached without TLS on another host.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Mutex;

/// The host of one address: `nats://user:pw@host:4222`, `host:9092`,
/// `[::1]:4222`, `http://host:8123/path` all give `host` (`::1`).
pub fn host_of(addr: &str) -> &str {
    let a = addr.trim();
    let a = a.split_once("://").map_or(a, |(_, rest)| rest);
    let a = a.split(['/', '?']).next().unwrap_or(a);
    let a = a.rsplit_once('@').map_or(a, |(_, host)| host);
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    // A bare IPv6 address has several colons and no port.
    if a.matches(':').count() > 1 {
        return a;
    }
    a.split(':').next().unwrap_or(a)
}

/// True for `localhost`, 127.0.0.0/8 and `::1`. Any other name is taken
/// as remote (names are not resolved here).
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Logs, once per process for each `what` and `endpoint`, that a
/// connection without TLS goes to a host that is not this one. `addrs`
/// are the endpoint's addresses (a comma list split); `hint` says how to
/// turn TLS on. Returns whether it warned now.
pub fn warn_plaintext(what: &str, endpoint: &str, addrs: &[&str], hint: &str) -> bool {
    let remote: Vec<&str> = addrs
        .iter()
        .map(|a| host_of(a))
        .filter(|h| !h.is_empty() && !is_loopback(h))
        .collect();
    if remote.is_empty() {
        return false;
    }
    let key = format!("{what} {endpoint}");
    let first = match WARNED.lock() {
        Ok(mut w) => w.insert(key),
        Err(poisoned) => poisoned.into_inner().insert(key),
    };
    if first {
        log::warn!(
            "connecting to {what} at {endpoint} without TLS: credentials and data cross the network to {} in plaintext; {hint}",
            remote.join(", ")
        );
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_loopback() {
        for (addr, host, lo) in [
            ("nats://u:p@127.0.0.1:4222", "127.0.0.1", true),
            ("tls://nats.example:4222", "nats.example", false),
            ("127.0.0.2:9092", "127.0.0.2", true),
            ("[::1]:4222", "::1", true),
            ("::1", "::1", true),
            ("http://localhost:8123/", "localhost", true),
            ("http://LOCALHOST.:8123", "LOCALHOST.", true),
            ("https://192.0.2.2:8443?x", "192.0.2.2", false),
            ("fd00::2", "fd00::2", false),
            ("kafka-1", "kafka-1", false),
        ] {
            assert_eq!(
                (host_of(addr), is_loopback(host_of(addr))),
                (host, lo),
                "{addr}"
            );
        }
    }

    #[test]
    fn warns_once_per_endpoint_and_never_for_loopback() {
        let w = |e: &str| warn_plaintext("T", e, &e.split(',').collect::<Vec<_>>(), "hint");
        assert_eq!(
            [
                w("127.0.0.1:1,localhost:2"),
                w("198.51.100.1:1"),
                w("198.51.100.1:1"),
                w("127.0.0.1:1,198.51.100.2:1"),
            ],
            [false, true, false, true]
        );
    }
}
