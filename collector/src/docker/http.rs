//! HTTP/1.1 over a unix socket: the transport of the Docker Engine API (and
//! of podman's compatible one). It knows nothing of the engine's paths.
//!
//! Blocking std I/O only: one [`UnixStream`] per request, written by hand
//! with `Connection: close`. [`request`] reads one whole response, framed by
//! `Content-Length`, `Transfer-Encoding: chunked`, or the end of the stream
//! (a hijacked connection). [`open_stream`] is for answers that never end
//! (the engine's event stream): it asks in HTTP/1.0, so the body comes
//! unframed, and hands back a reader positioned after the head.
//!
//! The engine is trusted no more than any peer: [`ResponseParser`] bounds
//! the head ([`MAX_HEAD`]) and the body ([`MAX_BODY`]), and checks every
//! size it reads off the wire before using it, so no answer can make it
//! panic, wrap or allocate without bound.
//!
//! Also here: [`demux`], which splits the engine's multiplexed
//! stdout/stderr stream, and [`encode`], percent-encoding for paths and
//! query values.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Response heads (and chunked trailers) larger than this are refused.
pub const MAX_HEAD: usize = 64 * 1024;

/// Response bodies larger than this are refused (64 MiB).
pub const MAX_BODY: usize = 64 << 20;

/// A chunk-size line (hex size plus extensions) longer than this is refused.
const MAX_CHUNK_LINE: usize = 1024;

/// How long one write on the socket may stall.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a request failed. Each variant prints its whole cause.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A socket operation failed.
    #[error("{op}: {error}")]
    Io {
        op: &'static str,
        error: std::io::Error,
    },
    /// The peer stayed silent longer than the request's timeout.
    #[error("no answer within {}s", .0.as_secs())]
    Timeout(Duration),
    /// The answer is not well-formed HTTP/1.x.
    #[error("{0}")]
    Malformed(String),
    /// A stream was refused: the status and what the body says.
    #[error("HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// The answer is larger than this client accepts.
    #[error("{what} larger than {limit} bytes")]
    TooLarge { what: String, limit: usize },
}

fn malformed(m: impl Into<String>) -> HttpError {
    HttpError::Malformed(m.into())
}

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends `method target` (with an optional body of the given content type)
/// on a fresh connection to `socket`, and reads the whole response. A read
/// that stalls longer than `timeout` is [`HttpError::Timeout`].
pub fn request(
    socket: &Path,
    method: &str,
    target: &str,
    body: Option<(&str, &[u8])>,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let mut stream = connect(socket, timeout)?;
    stream
        .write_all(&build_request(method, target, "1.1", body))
        .map_err(|error| HttpError::Io { op: "send", error })?;
    let mut parser = ResponseParser::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(HttpError::Timeout(timeout));
            }
            Err(error) => {
                return Err(HttpError::Io {
                    op: "receive",
                    error,
                })
            }
        };
        if n == 0 {
            return parser.finish();
        }
        if let Some(resp) = parser.feed(&chunk[..n])? {
            return Ok(resp);
        }
    }
}

/// Sends `GET target` in HTTP/1.0 and checks for `200`: the body then
/// streams unframed until the peer closes. Returns a reader positioned
/// after the head; its reads time out after `timeout` (`WouldBlock` or
/// `TimedOut`), which lets a follower check for a stop request.
pub fn open_stream(
    socket: &Path,
    target: &str,
    timeout: Duration,
) -> Result<BufReader<UnixStream>, HttpError> {
    let mut stream = connect(socket, timeout)?;
    stream
        .write_all(&build_request("GET", target, "1.0", None))
        .map_err(|error| HttpError::Io { op: "send", error })?;
    let mut r = BufReader::new(stream);
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let room = (MAX_HEAD + 4).saturating_sub(head.len());
        if room == 0 {
            return Err(HttpError::TooLarge {
                what: "response head".into(),
                limit: MAX_HEAD,
            });
        }
        let n = r
            .by_ref()
            .take(room as u64)
            .read_until(b'\n', &mut head)
            .map_err(|e| match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => HttpError::Timeout(timeout),
                _ => HttpError::Io {
                    op: "receive",
                    error: e,
                },
            })?;
        if n == 0 {
            return Err(malformed(
                "the peer closed the connection inside the response head",
            ));
        }
    }
    let status = parse_head(&head[..head.len() - 4])?.status;
    if status != 200 {
        // The rest is an ordinary (error) response: read it whole.
        let mut parser = ResponseParser::default();
        let mut resp = parser.feed(&head)?;
        while resp.is_none() {
            let got = r.fill_buf().map_err(|error| HttpError::Io {
                op: "receive",
                error,
            })?;
            if got.is_empty() {
                resp = Some(parser.finish()?);
                break;
            }
            let n = got.len();
            resp = parser.feed(got)?;
            r.consume(n);
        }
        let body = resp.map(|r| r.body).unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        return Err(HttpError::Refused {
            status,
            body: text.trim().chars().take(1024).collect(),
        });
    }
    Ok(r)
}

fn connect(socket: &Path, read_timeout: Duration) -> Result<UnixStream, HttpError> {
    let io = |op| move |error| HttpError::Io { op, error };
    let stream = UnixStream::connect(socket).map_err(io("connect"))?;
    stream
        .set_read_timeout(Some(read_timeout))
        .map_err(io("set timeout"))?;
    stream
        .set_write_timeout(Some(WRITE_TIMEOUT))
        .map_err(io("set timeout"))?;
    Ok(stream)
}

/// The bytes of one request. `version` is `"1.1"` or `"1.0"`.
pub fn build_request(
    method: &str,
    target: &str,
    version: &str,
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut req = format!(
        "{method} {target} HTTP/{version}\r\nHost: docker\r\nUser-Agent: sandmine/{}\r\nAccept: */*\r\nConnection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    match body {
        Some((content_type, b)) => req.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            b.len()
        )),
        None if method != "GET" => req.push_str("Content-Length: 0\r\n"),
        None => {}
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some((_, b)) = body {
        bytes.extend_from_slice(b);
    }
    bytes
}

/// Percent-encodes `s` for a URL path segment or query value. With
/// `keep_slash`, `/`, `:` and `@` stay literal (image references).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let literal = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && matches!(b, b'/' | b':' | b'@'));
        if literal {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Splits the engine's multiplexed stream (8-byte frame headers: stream
/// byte, three zero bytes, big-endian length) into the concatenated
/// payloads of stdout and stderr. Stream 3 carries an engine error.
pub fn demux(data: &[u8]) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        let Some((head, tail)) = rest.split_first_chunk::<8>() else {
            return Err(malformed(format!(
                "truncated stream frame header ({} bytes)",
                rest.len()
            )));
        };
        let stream = head[0];
        if stream > 3 || head[1..4] != [0, 0, 0] {
            return Err(malformed(format!(
                "malformed stream frame header {head:02x?}; is the container using a TTY?"
            )));
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if tail.len() < len {
            return Err(malformed(format!(
                "truncated stream frame: {} of {len} bytes",
                tail.len()
            )));
        }
        let (payload, next) = tail.split_at(len);
        if stream == 3 {
            return Err(malformed(format!(
                "engine error: {}",
                String::from_utf8_lossy(payload).trim()
            )));
        }
        out.extend_from_slice(payload);
        rest = next;
    }
    Ok(out)
}

/// A parsed status line and headers, and how the body is framed.
#[derive(Debug)]
struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    framing: Framing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    /// `Content-Length`, at most [`MAX_BODY`].
    Length(usize),
    Chunked,
    UntilEof,
}

/// Incremental parser of one HTTP/1.x response: bytes go in as they
/// arrive, each byte is looked at a bounded number of times, and the
/// memory held stays below [`MAX_HEAD`] plus [`MAX_BODY`] plus one read.
#[derive(Debug, Default)]
pub struct ResponseParser {
    /// Raw bytes not yet consumed (in chunked mode, consumed chunks are
    /// dropped from the front).
    buf: Vec<u8>,
    head: Option<Head>,
    /// Before the head is complete: how far `buf` was searched for its end.
    /// After: where the undecoded body starts.
    pos: usize,
    /// The decoded body of a chunked response.
    body: Vec<u8>,
}

impl ResponseParser {
    /// Adds bytes; returns the response once it is complete.
    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Response>, HttpError> {
        self.buf.extend_from_slice(data);
        if self.head.is_none() {
            let from = self.pos.saturating_sub(3);
            match find(&self.buf[from..], b"\r\n\r\n") {
                None => {
                    if self.buf.len() > MAX_HEAD {
                        return Err(HttpError::TooLarge {
                            what: "response head".into(),
                            limit: MAX_HEAD,
                        });
                    }
                    self.pos = self.buf.len();
                    return Ok(None);
                }
                Some(i) => {
                    let end = from + i + 4;
                    self.head = Some(parse_head(&self.buf[..end - 4])?);
                    self.pos = end;
                }
            }
        }
        let framing = match &self.head {
            Some(h) => h.framing,
            None => return Ok(None),
        };
        let unread = self.buf.len() - self.pos;
        match framing {
            Framing::Empty => Ok(Some(self.take(Vec::new()))),
            Framing::Length(n) if unread >= n => {
                let body = self.buf[self.pos..self.pos + n].to_vec();
                Ok(Some(self.take(body)))
            }
            Framing::Length(_) => Ok(None),
            Framing::Chunked => {
                let done = self.advance_chunks()?;
                // Drop the consumed chunks once they are most of the
                // buffer: amortised linear, and the raw bytes held stay
                // within one chunk of the decoded body.
                if self.pos > self.buf.len() / 2 {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                }
                if done {
                    let body = std::mem::take(&mut self.body);
                    Ok(Some(self.take(body)))
                } else {
                    Ok(None)
                }
            }
            Framing::UntilEof if unread > MAX_BODY => Err(HttpError::TooLarge {
                what: "response body".into(),
                limit: MAX_BODY,
            }),
            Framing::UntilEof => Ok(None),
        }
    }

    /// The peer closed the connection: completes a response framed by the
    /// end of the stream, and reports a truncated one.
    pub fn finish(mut self) -> Result<Response, HttpError> {
        let framing = match &self.head {
            Some(h) => h.framing,
            None if self.buf.is_empty() => {
                return Err(malformed(
                    "the peer closed the connection without answering",
                ))
            }
            None => {
                return Err(malformed(
                    "the peer closed the connection inside the response head",
                ))
            }
        };
        match framing {
            Framing::UntilEof => {
                let body = self.buf[self.pos..].to_vec();
                Ok(self.take(body))
            }
            Framing::Length(n) => Err(malformed(format!(
                "truncated response body: {} of {n} bytes",
                self.buf.len() - self.pos
            ))),
            Framing::Chunked => Err(malformed("truncated chunked response body")),
            // Complete responses were returned by `feed`.
            Framing::Empty => Ok(self.take(Vec::new())),
        }
    }

    fn take(&mut self, body: Vec<u8>) -> Response {
        let Head {
            status,
            reason,
            headers,
            ..
        } = self.head.take().unwrap_or(Head {
            status: 0,
            reason: String::new(),
            headers: Vec::new(),
            framing: Framing::Empty,
        });
        Response {
            status,
            reason,
            headers,
            body,
        }
    }

    /// Decodes the complete chunks after `pos`; true once the last chunk
    /// and the trailers are in.
    fn advance_chunks(&mut self) -> Result<bool, HttpError> {
        loop {
            let rest = &self.buf[self.pos..];
            let Some(eol) = find(rest, b"\r\n") else {
                if rest.len() > MAX_CHUNK_LINE {
                    return Err(malformed("chunk size line too long"));
                }
                return Ok(false);
            };
            if eol > MAX_CHUNK_LINE {
                return Err(malformed("chunk size line too long"));
            }
            let size = chunk_size(&rest[..eol])?;
            let data = eol + 2;
            if size == 0 {
                // Trailers, each ending in CRLF, then an empty line.
                let mut at = data;
                loop {
                    let Some(end) = find(&rest[at..], b"\r\n") else {
                        if rest.len() - data > MAX_HEAD {
                            return Err(HttpError::TooLarge {
                                what: "chunked trailers".into(),
                                limit: MAX_HEAD,
                            });
                        }
                        return Ok(false);
                    };
                    if end == 0 {
                        return Ok(true);
                    }
                    at += end + 2;
                }
            }
            // `body.len() <= MAX_BODY` always holds, so this cannot wrap.
            let room = MAX_BODY - self.body.len();
            if size > room {
                return Err(HttpError::TooLarge {
                    what: format!(
                        "chunked body (a chunk of {size} bytes after {} bytes)",
                        self.body.len()
                    ),
                    limit: MAX_BODY,
                });
            }
            // Bounded by MAX_CHUNK_LINE + MAX_BODY + 4: no overflow.
            let end = data + size;
            if rest.len() < end + 2 {
                return Ok(false);
            }
            if &rest[end..end + 2] != b"\r\n" {
                return Err(malformed("chunk data not followed by CRLF"));
            }
            self.body.extend_from_slice(&rest[data..end]);
            self.pos += end + 2;
        }
    }
}

/// The size of a chunk-size line (`HEX[;extensions]`). Only hex digits
/// are accepted (no sign, no spaces inside), and at most what a `u64`
/// holds; the caller checks it against the body limit.
fn chunk_size(line: &[u8]) -> Result<usize, HttpError> {
    let bad = || {
        malformed(format!(
            "bad chunk size line {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    let hex = line.split(|&b| b == b';').next().unwrap_or_default();
    let hex = hex.trim_ascii();
    if hex.is_empty() || hex.len() > 16 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let text = std::str::from_utf8(hex).map_err(|_| bad())?;
    let size = u64::from_str_radix(text, 16).map_err(|_| bad())?;
    // On a 32-bit target a size beyond usize is too large anyway.
    Ok(usize::try_from(size).unwrap_or(usize::MAX))
}

/// Parses the status line and headers (without the final blank line).
fn parse_head(head: &[u8]) -> Result<Head, HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| malformed("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(malformed(format!(
            "not an HTTP/1.x response: {status_line:?}"
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| malformed(format!("bad status line {status_line:?}")))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let framing = if status == 101 {
        Framing::UntilEof
    } else if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"))
    {
        Framing::Chunked
    } else if let Some(cl) = header("content-length") {
        let n: u64 = cl
            .parse()
            .map_err(|_| malformed(format!("bad Content-Length {cl:?}")))?;
        match usize::try_from(n) {
            Ok(n) if n <= MAX_BODY => Framing::Length(n),
            _ => {
                return Err(HttpError::TooLarge {
                    what: format!("response body (Content-Length {n})"),
                    limit: MAX_BODY,
                })
            }
        }
    } else {
        Framing::UntilEof
    };
    Ok(Head {
        status,
        reason,
        headers,
        framing,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a whole fixture, fed `step` bytes at a time, then EOF.
    fn parse(fixture: &[u8], step: usize) -> Result<Response, HttpError> {
        let mut p = ResponseParser::default();
        for piece in fixture.chunks(step.max(1)) {
            if let Some(r) = p.feed(piece)? {
                return Ok(r);
            }
        }
        p.finish()
    }

    fn parse_all_steps(fixture: &[u8]) -> Response {
        let whole = parse(fixture, fixture.len()).expect("whole fixture parses");
        for step in [1, 2, 3, 5, 7, 64] {
            assert_eq!(parse(fixture, step).expect("split fixture parses"), whole);
        }
        whole
    }

    /// The error of a fixture, which must be the same whatever the split.
    fn parse_error(fixture: &[u8]) -> String {
        let whole = parse(fixture, fixture.len())
            .expect_err("the fixture is refused")
            .to_string();
        for step in [1, 2, 3, 5, 7, 64] {
            let e = parse(fixture, step).expect_err("the split fixture is refused");
            assert_eq!(e.to_string(), whole, "step {step}");
        }
        whole
    }

    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

    fn chunked(rest: &[u8]) -> Vec<u8> {
        let mut v = CHUNKED.to_vec();
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn content_length_response() {
        let r = parse_all_steps(
            b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nOK",
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.reason, "OK");
        assert_eq!(r.body, b"OK");
        assert!(r
            .headers
            .contains(&("api-version".to_string(), "1.41".to_string())));
    }

    #[test]
    fn content_length_stops_without_eof() {
        // The body is complete before the connection closes: no waiting.
        let mut p = ResponseParser::default();
        let r = p
            .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
            .expect("parses")
            .expect("complete");
        assert_eq!(r.body, b"abc");
    }

    #[test]
    fn chunked_response_with_extensions_and_trailers() {
        let r = parse_all_steps(&chunked(
            b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n",
        ));
        assert_eq!(r.body, b"hello, world");
    }

    #[test]
    fn chunked_binary_payload_with_crlf_inside() {
        let r = parse_all_steps(&chunked(b"4\r\n\r\n\r\n\r\n0\r\n\r\n"));
        assert_eq!(r.body, b"\r\n\r\n");
    }

    #[test]
    fn many_small_chunks_decode_in_order() {
        let mut raw = Vec::new();
        let mut want = Vec::new();
        for i in 0..2000u32 {
            let piece = format!("<{i}>");
            raw.extend_from_slice(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes());
            want.extend_from_slice(piece.as_bytes());
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        let r = parse_all_steps(&chunked(&raw));
        assert_eq!(r.body, want);
    }

    #[test]
    fn a_huge_chunk_size_is_a_clear_error_not_a_wrap() {
        // 2^64 - 2: `eol + 2 + size + 2` used to wrap to a small number
        // and the body slice then panicked.
        let e = parse_error(&chunked(b"fffffffffffffffe\r\nab\r\n0\r\n\r\n"));
        assert_eq!(
            e,
            "chunked body (a chunk of 18446744073709551614 bytes after 0 bytes) larger than 67108864 bytes"
        );
        let e = parse_error(&chunked(b"ffffffffffffffff\r\n"));
        assert!(
            e.starts_with("chunked body (a chunk of 18446744073709551615 bytes"),
            "{e}"
        );
        // More digits than a u64 holds.
        let e = parse_error(&chunked(b"10000000000000000\r\n"));
        assert_eq!(e, "bad chunk size line \"10000000000000000\"");
    }

    #[test]
    fn chunks_past_the_body_cap_are_refused() {
        // Two chunks that each fit, but not together.
        let half = MAX_BODY / 2 + 1;
        let mut raw = Vec::new();
        for _ in 0..2 {
            raw.extend_from_slice(format!("{half:x}\r\n").as_bytes());
            raw.resize(raw.len() + half, b'x');
            raw.extend_from_slice(b"\r\n");
        }
        let mut p = ResponseParser::default();
        let e = p.feed(&chunked(&raw)).expect_err("over the cap");
        assert_eq!(
            e.to_string(),
            format!(
                "chunked body (a chunk of {half} bytes after {half} bytes) larger than {MAX_BODY} bytes"
            )
        );
    }

    #[test]
    fn chunk_size_lines_are_strict() {
        for line in [&b"+5"[..], b"-1", b" ", b"", b"5 5", b"0x5", b"g"] {
            let mut raw = line.to_vec();
            raw.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            let e = parse_error(&chunked(&raw));
            assert!(e.starts_with("bad chunk size line"), "{line:?}: {e}");
        }
        let long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "x".repeat(MAX_CHUNK_LINE));
        assert_eq!(
            parse_error(&chunked(long.as_bytes())),
            "chunk size line too long"
        );
        let e = parse_error(&chunked(b"5\r\nhelloXX0\r\n\r\n"));
        assert_eq!(e, "chunk data not followed by CRLF");
    }

    #[test]
    fn oversized_heads_and_bodies_are_refused() {
        let e = parse_error(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY + 1
            )
            .as_bytes(),
        );
        assert_eq!(
            e,
            format!(
                "response body (Content-Length {}) larger than {MAX_BODY} bytes",
                MAX_BODY + 1
            )
        );
        let e = parse_error(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n");
        assert!(e.starts_with("bad Content-Length"), "{e}");
        let mut head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        head.resize(MAX_HEAD + 10, b'a');
        let mut p = ResponseParser::default();
        let e = p.feed(&head).expect_err("head too long");
        assert_eq!(
            e.to_string(),
            format!("response head larger than {MAX_HEAD} bytes")
        );
        let mut raw = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        raw.resize(raw.len() + MAX_BODY + 1, b'x');
        let mut p = ResponseParser::default();
        let e = p.feed(&raw).expect_err("body without length too long");
        assert_eq!(
            e.to_string(),
            format!("response body larger than {MAX_BODY} bytes")
        );
    }

    #[test]
    fn no_content_and_not_modified_have_no_body() {
        let r = parse_all_steps(b"HTTP/1.1 204 No Content\r\nServer: Docker\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (204, 0));
        let r = parse_all_steps(b"HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (304, 0));
    }

    #[test]
    fn hijacked_stream_runs_until_eof() {
        let mut fixture =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n".to_vec();
        fixture.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 3]);
        fixture.extend_from_slice(b"hi\n");
        let r = parse_all_steps(&fixture);
        assert_eq!(demux(&r.body).expect("demuxes"), b"hi\n");
    }

    #[test]
    fn truncated_responses_are_errors() {
        let e = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 4).expect_err("short");
        assert_eq!(e.to_string(), "truncated response body: 3 of 10 bytes");
        let e = parse(&chunked(b"5\r\nab"), 4).expect_err("short");
        assert_eq!(e.to_string(), "truncated chunked response body");
        let e = parse(b"HTTP/1.1 200 OK\r\nContent-Le", 4).expect_err("short head");
        assert_eq!(
            e.to_string(),
            "the peer closed the connection inside the response head"
        );
        let e = parse(b"", 4).expect_err("nothing");
        assert_eq!(
            e.to_string(),
            "the peer closed the connection without answering"
        );
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", 4).is_err());
        assert!(parse(&chunked(b"zz\r\n"), 4).is_err());
    }

    #[test]
    fn demux_interleaves_stdout_and_stderr() {
        let mut data = vec![1, 0, 0, 0, 0, 0, 0, 4];
        data.extend_from_slice(b"out\n");
        data.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        data.extend_from_slice(b"err\n");
        data.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(demux(&data).expect("demuxes"), b"out\nerr\n");
        assert_eq!(demux(&[]).expect("empty"), b"");
        assert!(demux(&[1, 0, 0]).is_err());
        assert!(demux(&[1, 0, 0, 0, 0, 0, 0, 9, b'x']).is_err());
        assert!(demux(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, b'x']).is_err());
        assert!(demux(b"hello world").is_err());
        let mut sys = vec![3, 0, 0, 0, 0, 0, 0, 4];
        sys.extend_from_slice(b"bad!");
        let e = demux(&sys).expect_err("system error").to_string();
        assert!(e.contains("bad!"), "{e}");
    }

    #[test]
    fn requests_are_well_formed() {
        let req = build_request(
            "POST",
            "/v1.41/containers/create?name=a",
            "1.1",
            Some(("application/json", b"{}")),
        );
        assert_eq!(
            String::from_utf8(req).expect("ascii"),
            format!(
                "POST /v1.41/containers/create?name=a HTTP/1.1\r\nHost: docker\r\nUser-Agent: sandmine/{}\r\nAccept: */*\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
                env!("CARGO_PKG_VERSION")
            )
        );
        let req = String::from_utf8(build_request("POST", "/x/start", "1.1", None)).expect("ascii");
        assert!(req.ends_with("Content-Length: 0\r\n\r\n"));
        let req = String::from_utf8(build_request("GET", "/_ping", "1.0", None)).expect("ascii");
        assert!(req.starts_with("GET /_ping HTTP/1.0\r\n"));
        assert!(!req.contains("Content-Length"));
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(
            encode("sandmine-test/busybox:1", true),
            "sandmine-test/busybox:1"
        );
        assert_eq!(encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(
            encode(r#"{"a":["b c"]}"#, false),
            "%7B%22a%22%3A%5B%22b%20c%22%5D%7D"
        );
    }
}
