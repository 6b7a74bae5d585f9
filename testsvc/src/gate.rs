//! A TCP gate in front of a service, for fault tests that must land at a
//! known point of a protocol rather than after a sleep.
//!
//! The gate forwards bytes both ways until a request (client to server)
//! contains a chosen byte string for the n-th time: those bytes are then
//! held, never forwarded, and so is everything the client sends after
//! them. The test waits until the gate has tripped ([`Gate::wait_tripped`]),
//! injects its fault (kills the client, stops the server), and then
//! [`Gate::cut`]s every connection: what was held is dropped, as a crash
//! or an outage would drop it. The gate's own record (it tripped, on which
//! request) is the proof that the fault hit the window.
//!
//! Two uses in the fleet tests:
//! - NATS, in front of the aggregator: hold its n-th `$JS.ACK`. The
//!   aggregator acks only after its insert, so a tripped gate means: the
//!   rows are in the store, the broker never got the ack.
//! - ClickHouse, in front of the aggregator: hold its n-th `INSERT INTO`,
//!   then stop ClickHouse: the outage hits an insert in flight.
//!
//! A needle split across two reads is still found (each direction keeps
//! the last `needle.len() - 1` bytes it saw). The reads before the one that
//! completes it were already forwarded: the server may get the start of
//! the held request, never all of it (a protocol line it never finishes).
//!
//! Kafka is binary, so a gate made by [`Gate::start_kafka`] matches
//! requests, not strings: it cuts the client's bytes into Kafka request
//! frames (a big-endian i32 size, then the header: i16 api_key, i16
//! api_version, i32 correlation_id, ...) and forwards whole frames only.
//! [`Gate::trip_on_kafka_request`] holds the n-th request with a given
//! api_key (OffsetCommit is 8), and with it every later frame: the server
//! gets none of the held request's bytes. A frame split across reads waits
//! for its last byte before it is matched or forwarded. With tansu
//! advertising the gate's address (`--advertised-listener-url`), every
//! client connection, bootstrap or metadata-directed, goes through it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// See the module documentation.
pub struct Gate {
    port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    upstream: u16,
    /// Client bytes are Kafka request frames ([`Gate::start_kafka`]).
    kafka: bool,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The request bytes to hold, and at which occurrence (1-based).
    needle: Option<(Vec<u8>, usize)>,
    /// The Kafka api_key to hold, and at which occurrence (1-based).
    api_key: Option<(i16, usize)>,
    /// Occurrences of the needle seen so far.
    seen: usize,
    /// The gate tripped: requests are held from then on.
    tripped: bool,
    /// Every connection's two sockets, to cut them all.
    sockets: Vec<TcpStream>,
    /// Connections accepted (for the test's own checks).
    accepted: usize,
    /// Connections accepted from this count on are never held
    /// ([`Gate::pass_new_connections`]).
    exempt_from: Option<usize>,
}

impl Gate {
    /// A gate on a free local port, forwarding to `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> Gate {
        Self::start_inner(upstream, false)
    }

    /// A gate for a Kafka broker: forwards the client's bytes as whole
    /// request frames, for [`Gate::trip_on_kafka_request`].
    pub fn start_kafka(upstream: u16) -> Gate {
        Self::start_inner(upstream, true)
    }

    fn start_inner(upstream: u16, kafka: bool) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the gate");
        let port = listener.local_addr().expect("gate address").port();
        let shared = Arc::new(Shared {
            upstream,
            kafka,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let s = s.clone();
                std::thread::spawn(move || connect(s, client));
            }
        });
        Gate { port, shared }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Trip at the `nth` (1-based) request that contains `needle`: those
    /// bytes and every later request are held.
    pub fn trip_on_request(&self, needle: &[u8], nth: usize) {
        assert!(!needle.is_empty() && nth >= 1, "a needle and nth >= 1");
        assert!(!self.shared.kafka, "a Kafka gate matches api keys");
        let mut st = self.lock();
        st.needle = Some((needle.to_vec(), nth));
        st.seen = 0;
        st.tripped = false;
    }

    /// Trip at the `nth` (1-based) Kafka request whose api_key is
    /// `api_key` (8: OffsetCommit): that frame and every later one are
    /// held. Only for a gate made by [`Gate::start_kafka`].
    pub fn trip_on_kafka_request(&self, api_key: i16, nth: usize) {
        assert!(nth >= 1, "nth >= 1");
        assert!(
            self.shared.kafka,
            "trip_on_kafka_request needs Gate::start_kafka"
        );
        let mut st = self.lock();
        st.api_key = Some((api_key, nth));
        st.seen = 0;
        st.tripped = false;
    }

    /// Waits until the gate has tripped; false after `timeout`.
    pub fn wait_tripped(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        while !st.tripped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .expect("gate lock")
                .0;
        }
        true
    }

    /// Whether the gate has tripped.
    pub fn tripped(&self) -> bool {
        self.lock().tripped
    }

    /// How many times the needle (or api_key) has been seen (held or not).
    pub fn seen(&self) -> usize {
        self.lock().seen
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.lock().accepted
    }

    /// From now on, new connections are forwarded as they come, tripped
    /// or not; those already open stay as they are (held, if tripped). A
    /// client whose connection is stuck can then get a working one by
    /// connecting again.
    pub fn pass_new_connections(&self) {
        let mut st = self.lock();
        st.exempt_from = Some(st.accepted);
    }

    /// Closes every connection; whatever was held is dropped. The gate
    /// then forwards new connections again, untripped and with no needle.
    pub fn cut(&self) {
        let mut st = self.lock();
        for s in st.sockets.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        st.needle = None;
        st.api_key = None;
        st.tripped = false;
        st.exempt_from = None;
        self.shared.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().expect("gate lock")
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.cut();
    }
}

/// One client connection: connect upstream (a refused upstream closes
/// the client, as the service's own outage would), then pump both ways.
fn connect(s: Arc<Shared>, client: TcpStream) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", s.upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    ) else {
        return;
    };
    let exempt = {
        let mut st = s.state.lock().expect("gate lock");
        let exempt = st.exempt_from.is_some_and(|from| st.accepted >= from);
        st.accepted += 1;
        st.sockets.push(c3);
        st.sockets.push(s3);
        exempt
    };
    // Replies: forwarded as they come.
    std::thread::spawn(move || {
        let (mut from, mut to) = (s2, c2);
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
    if exempt {
        let (mut from, mut to) = (client, server);
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    } else if s.kafka {
        kafka_requests(&s, client, server);
    } else {
        requests(&s, client, server);
    }
}

/// The size of the first Kafka frame in `buf` (its i32 size field and what
/// follows), once all of it is there. A negative size (no Kafka client
/// sends one) counts as 0, so the bytes still flow.
fn kafka_frame_len(buf: &[u8]) -> Option<usize> {
    let size: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let len = 4 + usize::try_from(i32::from_be_bytes(size)).unwrap_or(0);
    (buf.len() >= len).then_some(len)
}

/// A request frame's api_key (the first i16 after the size).
fn kafka_api_key(frame: &[u8]) -> Option<i16> {
    let key: [u8; 2] = frame.get(4..6)?.try_into().ok()?;
    Some(i16::from_be_bytes(key))
}

/// Client to server as whole Kafka frames, watching for the api_key.
fn kafka_requests(s: &Shared, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes read and not forwarded yet: whole frames, then a partial one.
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let (ready, hold) = {
            let mut st = s.state.lock().expect("gate lock");
            let mut ready = 0;
            while !st.tripped {
                let Some(len) = kafka_frame_len(&pending[ready..]) else {
                    break;
                };
                let frame = &pending[ready..ready + len];
                if let Some((key, nth)) = st.api_key {
                    if kafka_api_key(frame) == Some(key) {
                        st.seen += 1;
                        if st.seen >= nth {
                            st.tripped = true;
                            s.changed.notify_all();
                            break;
                        }
                    }
                }
                ready += len;
            }
            (ready, st.tripped)
        };
        if to.write_all(&pending[..ready]).is_err() {
            break;
        }
        pending.drain(..ready);
        if hold {
            let mut st = s.state.lock().expect("gate lock");
            while st.tripped {
                st = s.changed.wait(st).expect("gate lock");
            }
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Client to server, watching for the needle.
fn requests(s: &Shared, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let hold = {
            let mut st = s.state.lock().expect("gate lock");
            if !st.tripped {
                if let Some((needle, nth)) = st.needle.clone() {
                    let mut window = std::mem::take(&mut tail);
                    window.extend_from_slice(chunk);
                    st.seen += count(&window, &needle);
                    let keep = needle.len().saturating_sub(1).min(window.len());
                    tail = window[window.len() - keep..].to_vec();
                    if st.seen >= nth {
                        st.tripped = true;
                        s.changed.notify_all();
                    }
                }
            }
            st.tripped
        };
        if hold {
            // Held for good: wait for the cut, which closes both sockets.
            let mut st = s.state.lock().expect("gate lock");
            while st.tripped {
                st = s.changed.wait(st).expect("gate lock");
            }
            break;
        }
        if to.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if hay.len() < needle.len() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// An echo server, a client through the gate: the second "ACK" is
    /// held, and nothing after it reaches the server.
    #[test]
    fn holds_the_nth_request_and_everything_after_it() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = echo.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::<String>::new()));
        let g2 = got.clone();
        std::thread::spawn(move || {
            for c in echo.incoming() {
                let c = c.unwrap();
                let g = g2.clone();
                std::thread::spawn(move || {
                    let mut w = c.try_clone().unwrap();
                    // Whole lines only: a cut may leave the start of a
                    // split needle ("AC"), forwarded before the rest came,
                    // as a partial last line (see the module docs).
                    let mut r = std::io::BufReader::new(c);
                    let mut buf = Vec::new();
                    while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                        if buf.last() == Some(&b'\n') {
                            let line = String::from_utf8_lossy(&buf[..buf.len() - 1]).into_owned();
                            g.lock().unwrap().push(line.clone());
                            let _ = writeln!(w, "ok {line}");
                        }
                        buf.clear();
                    }
                });
            }
        });
        let gate = Gate::start(port);
        gate.trip_on_request(b"ACK", 2);
        let mut c = TcpStream::connect(("127.0.0.1", gate.port())).unwrap();
        let mut r = std::io::BufReader::new(c.try_clone().unwrap());
        let mut line = String::new();
        for msg in ["hello", "ACK 1"] {
            writeln!(c, "{msg}").unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert_eq!(line.trim(), format!("ok {msg}"));
        }
        // The needle split over two writes is still found.
        c.write_all(b"AC").unwrap();
        c.flush().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        c.write_all(b"K 2\nafter\n").unwrap();
        assert!(gate.wait_tripped(Duration::from_secs(5)));
        assert_eq!(gate.seen(), 2);
        gate.cut();
        line.clear();
        assert_eq!(r.read_line(&mut line).unwrap(), 0, "cut closes the client");
        assert_eq!(*got.lock().unwrap(), ["hello", "ACK 1"]);
        // Afterwards the gate forwards again.
        let mut c = TcpStream::connect(("127.0.0.1", gate.port())).unwrap();
        writeln!(c, "ACK again").unwrap();
        let mut r = std::io::BufReader::new(c);
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ok ACK again");
        assert_eq!(gate.accepted(), 2);
    }

    /// A Kafka request frame: size, api_key, api_version, correlation_id,
    /// client_id (i16 length + bytes), then a body.
    fn kafka_frame(api_key: i16, correlation: i32, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&api_key.to_be_bytes());
        f.extend_from_slice(&2i16.to_be_bytes());
        f.extend_from_slice(&correlation.to_be_bytes());
        f.extend_from_slice(&4i16.to_be_bytes());
        f.extend_from_slice(b"test");
        f.extend_from_slice(body);
        let mut out = (f.len() as i32).to_be_bytes().to_vec();
        out.extend(f);
        out
    }

    /// Fed one byte at a time, frames are found only once whole, each at
    /// its own size, with its api_key.
    #[test]
    fn kafka_frames_are_cut_at_their_size() {
        let frames = [
            kafka_frame(18, 1, b""),
            kafka_frame(8, 2, &[0xAB; 300]),
            kafka_frame(1, 3, b"x"),
        ];
        let all: Vec<u8> = frames.concat();
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for b in &all {
            buf.push(*b);
            while let Some(len) = kafka_frame_len(&buf) {
                let frame: Vec<u8> = buf.drain(..len).collect();
                got.push((kafka_api_key(&frame), frame));
            }
        }
        assert!(buf.is_empty());
        let want: Vec<_> = frames
            .iter()
            .zip([18, 8, 1])
            .map(|(f, k)| (Some(k), f.clone()))
            .collect();
        assert_eq!(got, want);
        assert_eq!(kafka_frame_len(&[0, 0, 0]), None, "no size yet");
        assert_eq!(kafka_frame_len(&[0, 0, 0, 2, 0]), None, "half a frame");
        assert_eq!(kafka_frame_len(&[0xff; 5]), Some(4), "a negative size");
        assert_eq!(kafka_api_key(&[0, 0, 0, 1, 0]), None, "no api_key");
    }

    /// A Kafka gate holds the second OffsetCommit (split across writes),
    /// and the server gets whole frames only: none of the held one's bytes,
    /// nothing after it.
    #[test]
    fn a_kafka_gate_holds_the_nth_request_of_an_api_key() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (mut c, _) = server.accept().unwrap();
            let mut bytes = Vec::new();
            let _ = c.read_to_end(&mut bytes);
            tx.send(bytes).unwrap();
        });
        let gate = Gate::start_kafka(port);
        gate.trip_on_kafka_request(8, 2);
        let mut c = TcpStream::connect(("127.0.0.1", gate.port())).unwrap();
        c.set_nodelay(true).unwrap();
        let first = [
            kafka_frame(18, 1, b""),
            kafka_frame(8, 2, b"commit one"),
            kafka_frame(1, 3, b"fetch"),
        ];
        // The first OffsetCommit split inside its size field.
        c.write_all(&first[0]).unwrap();
        c.write_all(&first[1][..2]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        c.write_all(&first[1][2..]).unwrap();
        c.write_all(&first[2]).unwrap();
        // The second, split inside its header, then another request.
        let held = kafka_frame(8, 4, b"commit two");
        c.write_all(&held[..5]).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut rest = held[5..].to_vec();
        rest.extend(kafka_frame(3, 5, b"metadata"));
        c.write_all(&rest).unwrap();
        assert!(gate.wait_tripped(Duration::from_secs(5)));
        assert_eq!(gate.seen(), 2);
        gate.cut();
        let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got, first.concat(), "whole frames up to the held one");
        // Afterwards the gate forwards again, unarmed.
        assert!(!gate.tripped());
    }
}
