//! The metrics listener of the real `sandmine aggregate` (embedded store,
//! real nats-server): a client that connects and sends nothing is cut off
//! and never blocks a scrape, and running out of file descriptors does not
//! stop the listener; and the log-mode gauges follow the scheduled
//! publishing rounds.

mod common;

#[path = "../aggregator/tests/common/mod.rs"]
mod store_common;

use common::fleet::{nats_broker, wait_for_line};
use common::{Fixture, Running};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use testsvc::Nats;

/// `sandmine aggregate` with its metrics on a free port.
fn start(f: &Fixture, nats: &Nats) -> (Running, u16) {
    let port = testsvc::free_port();
    let cfg = f.write(
        "sandmine.toml",
        &format!(
            "[broker]\n{}\n[store.embedded]\npath = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n",
            nats_broker(nats),
            f.arg("store.db")
        ),
    );
    let mut cmd = f.command(&["aggregate", "--config", cfg.to_str().unwrap()]);
    cmd.env("SANDMINE_LOG", "debug");
    let r = f.spawn(cmd);
    wait_for_line(&r, "metrics on http://");
    wait_for_line(&r, "consuming");
    (r, port)
}

/// One scrape; `Err` says what went wrong (nothing answered within 10 s).
fn scrape(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut body = String::new();
    s.read_to_string(&mut body)
        .map_err(|e| format!("no answer within 10 s: {e}"))?;
    Ok(body)
}

fn assert_scrape_answers(port: u16, r: &Running) {
    let body = scrape(port).unwrap_or_else(|e| {
        panic!(
            "scrape failed: {e}; stderr:\n{}",
            std::fs::read_to_string(&r.stderr).unwrap_or_default()
        )
    });
    assert!(body.starts_with("HTTP/1.0 200 OK\r\n"), "{body}");
    assert!(
        body.contains("\nsandmine_messages_stored_total 0\n"),
        "{body}"
    );
}

#[test]
fn a_silent_client_is_cut_off_and_scrapes_still_answer() {
    let nats = Nats::start();
    let f = Fixture::new();
    let (r, port) = start(&f, &nats);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    assert_scrape_answers(port, &r);
    // The listener closes a connection that sends no request within its
    // read timeout (5 s): the client sees end-of-file, not its own 15 s
    // timeout.
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let got = silent.read(&mut buf).map_err(|e| e.kind());
    assert_eq!(got, Ok(0), "after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_scrape_answers(port, &r);
    r.terminate(Duration::from_secs(30));
}

/// The process's open file descriptors.
fn open_fds(pid: i32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count() as u64
}

#[test]
fn the_listener_survives_running_out_of_file_descriptors() {
    let nats = Nats::start();
    let f = Fixture::new();
    let (r, port) = start(&f, &nats);
    // Room for exactly 4 more descriptors, then 12 clients that send
    // nothing: the listener's accept fails with EMFILE.
    let limit = open_fds(r.pid()) + 4;
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: prlimit(2) on our own child, with a valid struct.
    let rc = unsafe { libc::prlimit(r.pid(), libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    // (A listener that stopped refuses the later ones.)
    let clients: Vec<TcpStream> = (0..12)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    wait_for_line(&r, "Too many open files");
    // Descriptors come back: the silent clients leave.
    drop(clients);
    assert_scrape_answers(port, &r);
    let err = std::fs::read_to_string(&r.stderr).unwrap();
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("level=warn") && l.contains("metrics listener"))
            .count(),
        1,
        "{err}"
    );
    assert_scrape_answers(port, &r);
    r.terminate(Duration::from_secs(30));
}

/// An aggregator publishing on its schedule exports, after each round,
/// how many images are in log mode and since when each (from the target's
/// `current` meta, so it survives restarts): web:1 was first published in
/// log mode at T by a `sandmine publish` run, and the aggregator's rounds
/// find it unchanged, still in log mode since T.
#[test]
fn the_log_mode_gauges_follow_the_publish_rounds() {
    use schemas::{Abi, Phase};
    use store_common::{ctr, env, sc, T0};
    let nats = Nats::start();
    let f = Fixture::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = store_common::open_embedded(f.path("").as_path()).await;
        let calls = |first| {
            vec![
                sc(Abi::X86_64, 0, 10, &[Phase::Image], first),
                sc(Abi::X86_64, 1, 10, &[Phase::Image], first),
            ]
        };
        let c = |id| ctr(id, "web:1", T0, T0 + 5_000, None, calls(T0 + 10));
        s.insert(&[
            env("h1", "b1", 1, T0, vec![c("c1"), c("c2")]),
            env("h2", "b1", 1, T0, vec![c("c3")]),
        ])
        .await
        .unwrap();
    });
    let store = format!("store.embedded.path=\"{}\"", f.arg("store.db"));
    let published = f.arg("published");
    // 2027-01-15T08:00:00Z
    let t = 1_800_000_000_000u64;
    let (key, _) = f.signing_key();
    let o = f.sandmine(&[
        "publish",
        "--set",
        &key,
        "--set",
        &store,
        "--dir",
        &published,
        "--runtime-base",
        "none",
        "--now-ms",
        &t.to_string(),
    ]);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(o.stdout.contains("  web:1: published "), "{}", o.stdout);

    let port = testsvc::free_port();
    let cfg = f.write(
        "sandmine.toml",
        &format!(
            "[broker]\n{}\n[store.embedded]\npath = \"{}\"\n\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [publish]\ndir = \"{published}\"\nschedule = \"every 1s\"\nruntime_base = \"none\"\nsigning_key_file = \"{}\"\n",
            common::fleet::nats_broker(&nats),
            f.arg("store.db"),
            f.arg("publish.key")
        ),
    );
    let mut cmd = f.command(&["aggregate", "--config", cfg.to_str().unwrap()]);
    cmd.env("SANDMINE_LOG", "info");
    let r = f.spawn(cmd);
    wait_for_line(&r, "metrics on http://");
    // The gauges are set before the round's report is logged.
    wait_for_line(&r, "publish to dir:");
    let body = scrape(port).unwrap();
    let lines: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("sandmine_log_mode"))
        .collect();
    assert_eq!(
        lines,
        [
            "sandmine_log_mode_images 1",
            "sandmine_log_mode_since_seconds{image=\"web:1\",forced=\"false\"} 1800000000",
        ],
        "{body}"
    );
    assert!(
        body.contains("# TYPE sandmine_log_mode_since_seconds gauge\n"),
        "{body}"
    );
    r.terminate(Duration::from_secs(30));
}
