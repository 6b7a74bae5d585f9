//! A minimal Docker Engine API client over the engine's unix socket.
//!
//! Blocking std I/O only: one [`UnixStream`] per request, HTTP/1.1 written
//! by hand with `Connection: close`, responses framed by `Content-Length`,
//! `Transfer-Encoding: chunked`, or the end of the stream (the hijacked
//! stream of `exec`). Every path is prefixed with API version
//! [`API_VERSION`] (`/v1.41`): dockerd 20.10 as shipped by Debian 12 serves
//! it, and so does podman's Docker-compatible API.
//!
//! The socket is, in order: the path given to [`DockerClient::connect`],
//! `DOCKER_HOST=unix://PATH`, or [`DEFAULT_SOCKET`]. Podman users pass
//! `/run/podman/podman.sock`.
//!
//! No image is ever pulled: [`DockerClient::inspect_image`] and
//! [`DockerClient::create`] fail on an image that is not present locally.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{CollectError, Result};

/// The Engine API version every request names.
pub const API_VERSION: &str = "v1.41";

/// The engine's socket when neither a path nor `DOCKER_HOST` is given.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How long one read or write on the socket may stall.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// How long an `exec`'d command may stay silent before we give up on it.
const EXEC_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Extra time allowed on top of the grace period of [`DockerClient::stop`].
const STOP_MARGIN: Duration = Duration::from_secs(30);

/// Interval of the state polls of [`DockerClient::wait`].
const POLL: Duration = Duration::from_millis(50);

/// Response heads larger than this are refused.
const MAX_HEAD: usize = 64 * 1024;

/// What to create: the parts of `docker run` that sandmine needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Image name or id; must be present locally.
    pub image: String,
    /// The command; `None` keeps the image's default `CMD`.
    pub cmd: Option<Vec<String>>,
    /// The entrypoint; `None` keeps the image's, `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=VALUE` entries.
    pub env: Vec<String>,
    /// `"none"` or `"host"` (there is no bridge on sandmine's hosts).
    pub network_mode: String,
    /// The seccomp profile's JSON content (not a path), sent as
    /// `HostConfig.SecurityOpt: ["seccomp=<json>"]`. `None` keeps the
    /// engine's default profile; `Some("unconfined")` disables seccomp.
    pub seccomp_profile_json: Option<String>,
    /// `HostConfig.CgroupParent`.
    pub cgroup_parent: Option<String>,
    /// Container name; `None` lets the engine pick one.
    pub name: Option<String>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
}

impl ContainerSpec {
    /// A spec for `image` with its default command, no network, and the
    /// engine's default seccomp profile.
    pub fn new(image: impl Into<String>) -> Self {
        ContainerSpec {
            image: image.into(),
            ..Default::default()
        }
    }
}

impl Default for ContainerSpec {
    fn default() -> Self {
        ContainerSpec {
            image: String::new(),
            cmd: None,
            entrypoint: None,
            env: Vec::new(),
            network_mode: "none".to_string(),
            seccomp_profile_json: None,
            cgroup_parent: None,
            name: None,
            labels: BTreeMap::new(),
        }
    }
}

/// What the engine knows about a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id, `sha256:...`.
    pub id: String,
    /// `name:tag` references.
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` references (empty for images never pushed or pulled).
    pub repo_digests: Vec<String>,
}

/// A container's state, from `GET /containers/{id}/json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub running: bool,
    /// The init process's pid in the engine's pid namespace; 0 when not running.
    pub pid: i32,
    pub exit_code: i64,
    /// The engine's error, e.g. why the container failed to start.
    pub error: String,
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    pub status: String,
}

impl ContainerState {
    /// Whether the container ran and is over: its exit code is final.
    pub fn finished(&self) -> bool {
        if self.running {
            return false;
        }
        match self.status.as_str() {
            // Never started, unless the start failed (then the code is final).
            "created" | "configured" | "initialized" => !self.error.is_empty(),
            "restarting" | "paused" => false,
            _ => true,
        }
    }
}

/// A client of one engine socket. Cheap to clone; holds no connection.
#[derive(Debug, Clone)]
pub struct DockerClient {
    socket: PathBuf,
}

impl DockerClient {
    /// Connects to the engine and checks that `GET /_ping` answers `OK`.
    ///
    /// The socket is `socket`, else `DOCKER_HOST` (only `unix://` is
    /// supported), else [`DEFAULT_SOCKET`].
    pub fn connect(socket: Option<&Path>) -> Result<Self> {
        let socket = resolve_socket(socket, std::env::var("DOCKER_HOST").ok().as_deref())?;
        let client = DockerClient { socket };
        let unreachable = |why: String| {
            CollectError::Docker(format!(
                "cannot reach the Docker engine at {}: {why}; is dockerd running?",
                client.socket.display()
            ))
        };
        let resp = client
            .request("GET", "/_ping", None, IO_TIMEOUT)
            .map_err(|e| unreachable(strip_docker_prefix(e)))?;
        let body = String::from_utf8_lossy(&resp.body);
        if resp.status != 200 || body.trim() != "OK" {
            return Err(unreachable(format!(
                "GET /_ping answered HTTP {}: {}",
                resp.status,
                error_message(&resp)
            )));
        }
        Ok(client)
    }

    /// The socket this client talks to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /version`, as the engine's JSON.
    pub fn version(&self) -> Result<Value> {
        let resp = self.request("GET", "/version", None, IO_TIMEOUT)?;
        expect_status(&resp, &[200], "engine version")?;
        parse_json(&resp, "engine version")
    }

    /// Looks up a local image by name or id.
    pub fn inspect_image(&self, name: &str) -> Result<ImageInfo> {
        let path = format!("/images/{}/json", encode(name, true));
        let resp = self.request("GET", &path, None, IO_TIMEOUT)?;
        if resp.status == 404 {
            return Err(CollectError::Docker(format!(
                "image {name} not found locally (no registry is pulled from)"
            )));
        }
        expect_status(&resp, &[200], &format!("inspect image {name}"))?;
        let v = parse_json(&resp, &format!("inspect image {name}"))?;
        let id = v
            .get("Id")
            .and_then(Value::as_str)
            .ok_or_else(|| CollectError::Docker(format!("inspect image {name}: no Id in answer")))?
            .to_string();
        Ok(ImageInfo {
            id,
            repo_tags: string_list(&v["RepoTags"]),
            repo_digests: string_list(&v["RepoDigests"]),
        })
    }

    /// Imports a root filesystem tarball as image `repo:tag` (`docker
    /// import`), applying Dockerfile `changes` such as `CMD ["/probe"]`;
    /// returns the new image's id (`sha256:...`).
    pub fn import_image(
        &self,
        tar: &[u8],
        repo: &str,
        tag: &str,
        changes: &[&str],
    ) -> Result<String> {
        let mut path = format!(
            "/images/create?fromSrc=-&repo={}&tag={}",
            encode(repo, false),
            encode(tag, false)
        );
        for change in changes {
            path.push_str("&changes=");
            path.push_str(&encode(change, false));
        }
        let what = format!("import image {repo}:{tag}");
        let resp =
            self.request_bytes("POST", &path, Some(("application/x-tar", tar)), IO_TIMEOUT)?;
        expect_status(&resp, &[200, 201], &what)?;
        // A stream of JSON progress messages; an error can come with 200.
        let mut id = None;
        for msg in serde_json::Deserializer::from_slice(&resp.body).into_iter::<Value>() {
            let msg = msg.map_err(|e| {
                CollectError::Docker(format!("{what}: the engine's answer is not JSON: {e}"))
            })?;
            if let Some(err) = msg.get("error").and_then(Value::as_str) {
                return Err(CollectError::Docker(format!("{what}: {err}")));
            }
            if let Some(status) = msg.get("status").and_then(Value::as_str) {
                if status.starts_with("sha256:") {
                    id = Some(status.trim().to_string());
                }
            }
        }
        match id {
            Some(id) => Ok(id),
            None => Ok(self.inspect_image(&format!("{repo}:{tag}"))?.id),
        }
    }

    /// Removes an image (by name or id), even if containers use it. An image
    /// that does not exist is fine.
    pub fn remove_image(&self, name: &str) -> Result<()> {
        let path = format!("/images/{}?force=1", encode(name, true));
        let resp = self.request("DELETE", &path, None, IO_TIMEOUT)?;
        if resp.status == 404 {
            return Ok(());
        }
        expect_status(&resp, &[200], &format!("remove image {name}"))
    }

    /// Creates a container; returns its id. Errors carry the engine's
    /// message verbatim.
    pub fn create(&self, spec: &ContainerSpec) -> Result<String> {
        let mut path = "/containers/create".to_string();
        if let Some(name) = &spec.name {
            path.push_str("?name=");
            path.push_str(&encode(name, false));
        }
        let body = create_body(spec);
        let resp = self.request("POST", &path, Some(&body), IO_TIMEOUT)?;
        let what = format!("create container from image {}", spec.image);
        if resp.status == 404 {
            return Err(CollectError::Docker(format!(
                "{what}: {} (the image must be present locally; no registry is pulled from)",
                error_message(&resp)
            )));
        }
        expect_status(&resp, &[201, 200], &what)?;
        let v = parse_json(&resp, &what)?;
        v.get("Id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| CollectError::Docker(format!("{what}: no Id in answer")))
    }

    /// Starts a created container. An already running container is fine.
    /// Errors (for example a seccomp profile that stops the runtime itself:
    /// "operation not permitted") carry the engine's message verbatim.
    pub fn start(&self, id: &str) -> Result<()> {
        let path = format!("/containers/{}/start", encode(id, false));
        let resp = self.request("POST", &path, None, IO_TIMEOUT)?;
        expect_status(&resp, &[204, 304, 200], &format!("start container {id}"))
    }

    /// The container's state.
    pub fn inspect(&self, id: &str) -> Result<ContainerState> {
        let v = self.inspect_json(id)?;
        Ok(container_state(&v))
    }

    /// The engine's whole `GET /containers/{id}/json` answer.
    pub fn inspect_json(&self, id: &str) -> Result<Value> {
        let path = format!("/containers/{}/json", encode(id, false));
        let resp = self.request("GET", &path, None, IO_TIMEOUT)?;
        let what = format!("inspect container {id}");
        expect_status(&resp, &[200], &what)?;
        parse_json(&resp, &what)
    }

    /// Waits for the container to finish: `Some(exit code)`, or `None` when
    /// `timeout` passes first. Polls the state every 50 ms.
    pub fn wait(&self, id: &str, timeout: Duration) -> Result<Option<i64>> {
        let deadline = Instant::now() + timeout;
        loop {
            let state = self.inspect(id)?;
            if state.finished() {
                return Ok(Some(state.exit_code));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(POLL.min(deadline - now));
        }
    }

    /// Stops the container: SIGTERM, then SIGKILL after `grace` (whole
    /// seconds, rounded up). A container that is not running is fine.
    pub fn stop(&self, id: &str, grace: Duration) -> Result<()> {
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let path = format!("/containers/{}/stop?t={secs}", encode(id, false));
        let timeout = Duration::from_secs(secs) + STOP_MARGIN;
        let resp = self.request("POST", &path, None, timeout)?;
        expect_status(&resp, &[204, 304, 200], &format!("stop container {id}"))
    }

    /// Removes the container and its anonymous volumes, killing it if it
    /// runs. A container that does not exist is fine.
    pub fn remove(&self, id: &str) -> Result<()> {
        let path = format!("/containers/{}?force=1&v=1", encode(id, false));
        let resp = self.request("DELETE", &path, None, IO_TIMEOUT)?;
        if resp.status == 404 {
            return Ok(());
        }
        expect_status(&resp, &[204, 200], &format!("remove container {id}"))
    }

    /// The container's output so far: stdout and stderr, interleaved in the
    /// order the engine recorded them, decoded as UTF-8 (lossily).
    pub fn logs(&self, id: &str) -> Result<String> {
        let tty = self.inspect_json(id)?["Config"]["Tty"]
            .as_bool()
            .unwrap_or(false);
        let path = format!("/containers/{}/logs?stdout=1&stderr=1", encode(id, false));
        let resp = self.request("GET", &path, None, IO_TIMEOUT)?;
        let what = format!("logs of container {id}");
        expect_status(&resp, &[200], &what)?;
        let out = if tty {
            resp.body
        } else {
            demux(&resp.body).map_err(|e| CollectError::Docker(format!("{what}: {e}")))?
        };
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Runs `cmd` in the running container and waits for it: its exit code
    /// and its output (stdout and stderr interleaved).
    pub fn exec(&self, id: &str, cmd: &[String]) -> Result<(i64, String)> {
        let what = format!("exec {cmd:?} in container {id}");
        let body = json!({
            "AttachStdin": false,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": false,
            "Cmd": cmd,
        });
        let path = format!("/containers/{}/exec", encode(id, false));
        let resp = self.request("POST", &path, Some(&body), IO_TIMEOUT)?;
        expect_status(&resp, &[201, 200], &what)?;
        let exec_id = parse_json(&resp, &what)?
            .get("Id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| CollectError::Docker(format!("{what}: no exec Id in answer")))?;

        // Not detached: the engine hijacks the connection and streams the
        // multiplexed output until the command exits.
        let path = format!("/exec/{}/start", encode(&exec_id, false));
        let body = json!({ "Detach": false, "Tty": false });
        let resp = self.request("POST", &path, Some(&body), EXEC_IDLE_TIMEOUT)?;
        expect_status(&resp, &[200, 101], &what)?;
        let out = demux(&resp.body).map_err(|e| CollectError::Docker(format!("{what}: {e}")))?;
        let output = String::from_utf8_lossy(&out).into_owned();

        // The exit code may lag the end of the stream by a moment.
        let path = format!("/exec/{}/json", encode(&exec_id, false));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let resp = self.request("GET", &path, None, IO_TIMEOUT)?;
            expect_status(&resp, &[200], &what)?;
            let v = parse_json(&resp, &what)?;
            let running = v["Running"].as_bool().unwrap_or(false);
            if let (false, Some(code)) = (running, v["ExitCode"].as_i64()) {
                return Ok((code, output));
            }
            if Instant::now() >= deadline {
                return Err(CollectError::Docker(format!(
                    "{what}: output ended but the engine reports no exit code"
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// One request with an optional JSON body on a fresh connection.
    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Response> {
        let body = body.map(|b| b.to_string().into_bytes());
        let body = body.as_deref().map(|b| ("application/json", b));
        self.request_bytes(method, path, body, timeout)
    }

    /// One request with an optional body of the given content type on a
    /// fresh connection.
    fn request_bytes(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        timeout: Duration,
    ) -> Result<Response> {
        let target = format!("{method} {path}");
        let ctx = |what: &str, e: std::io::Error| {
            CollectError::Docker(format!(
                "{target} on {}: {what}: {e}",
                self.socket.display()
            ))
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| ctx("connect", e))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| ctx("set timeout", e))?;
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .map_err(|e| ctx("set timeout", e))?;
        let req = build_request(method, path, body);
        stream.write_all(&req).map_err(|e| ctx("send", e))?;

        let mut parser = ResponseParser::default();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(CollectError::Docker(format!(
                        "{target} on {}: no answer within {}s",
                        self.socket.display(),
                        timeout.as_secs()
                    )));
                }
                Err(e) => return Err(ctx("receive", e)),
            };
            if n == 0 {
                return parser
                    .finish()
                    .map_err(|e| CollectError::Docker(format!("{target}: {e}")));
            }
            if let Some(resp) = parser
                .feed(&chunk[..n])
                .map_err(|e| CollectError::Docker(format!("{target}: {e}")))?
            {
                return Ok(resp);
            }
        }
    }
}

/// Picks the socket: explicit path, else `DOCKER_HOST`, else the default.
fn resolve_socket(explicit: Option<&Path>, docker_host: Option<&str>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    match docker_host.map(str::trim).filter(|h| !h.is_empty()) {
        None => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(host) => match host.strip_prefix("unix://") {
            Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
            _ => Err(CollectError::Docker(format!(
                "DOCKER_HOST={host} is not supported: only unix://PATH sockets are"
            ))),
        },
    }
}

/// The JSON body of `POST /containers/create`.
fn create_body(spec: &ContainerSpec) -> Value {
    let mut host = serde_json::Map::new();
    host.insert("NetworkMode".into(), json!(spec.network_mode));
    if let Some(profile) = &spec.seccomp_profile_json {
        host.insert("SecurityOpt".into(), json!([format!("seccomp={profile}")]));
    }
    if let Some(parent) = &spec.cgroup_parent {
        host.insert("CgroupParent".into(), json!(parent));
    }
    let mut body = serde_json::Map::new();
    body.insert("Image".into(), json!(spec.image));
    if let Some(cmd) = &spec.cmd {
        body.insert("Cmd".into(), json!(cmd));
    }
    if let Some(ep) = &spec.entrypoint {
        body.insert("Entrypoint".into(), json!(ep));
    }
    body.insert("Env".into(), json!(spec.env));
    body.insert("Labels".into(), json!(spec.labels));
    body.insert("AttachStdin".into(), json!(false));
    body.insert("AttachStdout".into(), json!(false));
    body.insert("AttachStderr".into(), json!(false));
    body.insert("OpenStdin".into(), json!(false));
    body.insert("Tty".into(), json!(false));
    body.insert("HostConfig".into(), Value::Object(host));
    Value::Object(body)
}

fn container_state(v: &Value) -> ContainerState {
    let s = &v["State"];
    ContainerState {
        running: s["Running"].as_bool().unwrap_or(false),
        pid: s["Pid"]
            .as_i64()
            .and_then(|p| i32::try_from(p).ok())
            .unwrap_or(0),
        exit_code: s["ExitCode"].as_i64().unwrap_or(0),
        error: s["Error"].as_str().unwrap_or("").to_string(),
        status: s["Status"].as_str().unwrap_or("").to_string(),
    }
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn strip_docker_prefix(e: CollectError) -> String {
    match e {
        CollectError::Docker(m) => m,
        other => other.to_string(),
    }
}

/// Percent-encodes `s` for a URL path segment or query value. With
/// `keep_slash`, `/`, `:` and `@` stay literal (image references).
fn encode(s: &str, keep_slash: bool) -> String {
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

fn build_request(method: &str, path: &str, body: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut req = format!(
        "{method} /{API_VERSION}{path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: sandmine/{}\r\nAccept: */*\r\nConnection: close\r\n",
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

fn expect_status(resp: &Response, ok: &[u16], what: &str) -> Result<()> {
    if ok.contains(&resp.status) {
        Ok(())
    } else {
        Err(CollectError::Docker(format!(
            "{what}: {} (HTTP {})",
            error_message(resp),
            resp.status
        )))
    }
}

/// The engine's error text: the `message` of its JSON error body, else the
/// body itself, else the reason phrase.
fn error_message(resp: &Response) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(&resp.body) {
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return m.to_string();
        }
    }
    let text = String::from_utf8_lossy(&resp.body).trim().to_string();
    if text.is_empty() {
        resp.reason.clone()
    } else {
        text
    }
}

fn parse_json(resp: &Response, what: &str) -> Result<Value> {
    serde_json::from_slice(&resp.body)
        .map_err(|e| CollectError::Docker(format!("{what}: the engine's answer is not JSON: {e}")))
}

/// Splits the engine's multiplexed stream (8-byte frame headers: stream
/// byte, three zero bytes, big-endian length) into the concatenated payloads
/// of stdout and stderr. Stream 3 carries an engine error.
fn demux(data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while !rest.is_empty() {
        let Some((head, tail)) = rest.split_first_chunk::<8>() else {
            return Err(format!(
                "truncated stream frame header ({} bytes)",
                rest.len()
            ));
        };
        let stream = head[0];
        if stream > 3 || head[1..4] != [0, 0, 0] {
            return Err(format!(
                "malformed stream frame header {head:02x?}; is the container using a TTY?"
            ));
        }
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if tail.len() < len {
            return Err(format!(
                "truncated stream frame: {} of {len} bytes",
                tail.len()
            ));
        }
        let (payload, next) = tail.split_at(len);
        if stream == 3 {
            return Err(format!(
                "engine error: {}",
                String::from_utf8_lossy(payload).trim()
            ));
        }
        out.extend_from_slice(payload);
        rest = next;
    }
    Ok(out)
}

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Response {
    status: u16,
    reason: String,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
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
    Length(usize),
    Chunked,
    UntilEof,
}

/// Incremental parser of one HTTP/1.1 response: bytes go in as they
/// arrive, and each byte is looked at a bounded number of times.
#[derive(Debug, Default)]
struct ResponseParser {
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
    fn feed(&mut self, data: &[u8]) -> std::result::Result<Option<Response>, String> {
        self.buf.extend_from_slice(data);
        if self.head.is_none() {
            let from = self.pos.saturating_sub(3);
            match find(&self.buf[from..], b"\r\n\r\n") {
                None => {
                    if self.buf.len() > MAX_HEAD {
                        return Err(format!("response head longer than {MAX_HEAD} bytes"));
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
        match framing {
            Framing::Empty => Ok(Some(self.take(Vec::new()))),
            Framing::Length(n) => {
                if self.buf.len() - self.pos >= n {
                    let body = self.buf[self.pos..self.pos + n].to_vec();
                    Ok(Some(self.take(body)))
                } else {
                    Ok(None)
                }
            }
            Framing::Chunked => {
                if self.advance_chunks()? {
                    let body = std::mem::take(&mut self.body);
                    Ok(Some(self.take(body)))
                } else {
                    Ok(None)
                }
            }
            Framing::UntilEof => Ok(None),
        }
    }

    /// The peer closed the connection: completes a response framed by the
    /// end of the stream, and reports a truncated one.
    fn finish(mut self) -> std::result::Result<Response, String> {
        let framing = match &self.head {
            Some(h) => h.framing,
            None if self.buf.is_empty() => {
                return Err("the engine closed the connection without answering".into())
            }
            None => return Err("the engine closed the connection inside the response head".into()),
        };
        match framing {
            Framing::UntilEof => {
                let body = self.buf[self.pos..].to_vec();
                Ok(self.take(body))
            }
            Framing::Length(n) => Err(format!(
                "truncated response body: {} of {n} bytes",
                self.buf.len() - self.pos
            )),
            Framing::Chunked => Err("truncated chunked response body".into()),
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
    fn advance_chunks(&mut self) -> std::result::Result<bool, String> {
        loop {
            let rest = &self.buf[self.pos..];
            let Some(eol) = find(rest, b"\r\n") else {
                if rest.len() > 1024 {
                    return Err("chunk size line too long".into());
                }
                return Ok(false);
            };
            let line = std::str::from_utf8(&rest[..eol])
                .map_err(|_| "chunk size line is not ASCII".to_string())?;
            let hex = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16)
                .map_err(|_| format!("bad chunk size line {line:?}"))?;
            if size == 0 {
                // Trailers, each ending in CRLF, then an empty line.
                let mut at = eol + 2;
                loop {
                    let Some(end) = find(&rest[at..], b"\r\n") else {
                        return Ok(false);
                    };
                    if end == 0 {
                        return Ok(true);
                    }
                    at += end + 2;
                }
            }
            let need = eol + 2 + size + 2;
            if rest.len() < need {
                return Ok(false);
            }
            if &rest[eol + 2 + size..need] != b"\r\n" {
                return Err("chunk data not followed by CRLF".into());
            }
            self.body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            self.pos += need;
        }
    }
}

/// Parses the status line and headers (without the final blank line).
fn parse_head(head: &[u8]) -> std::result::Result<Head, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_string())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {status_line:?}"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let reason = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
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
        Framing::Length(
            cl.parse()
                .map_err(|_| format!("bad Content-Length {cl:?}"))?,
        )
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
    fn parse(fixture: &[u8], step: usize) -> std::result::Result<Response, String> {
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
        let r = parse_all_steps(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n",
        );
        assert_eq!(r.body, b"hello, world");
    }

    #[test]
    fn chunked_binary_payload_with_crlf_inside() {
        let r = parse_all_steps(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n",
        );
        assert_eq!(r.body, b"\r\n\r\n");
    }

    #[test]
    fn error_json_message_is_surfaced() {
        let r = parse_all_steps(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n{\"message\":\"No such container: 0123456789ab\"}",
        );
        assert_eq!(r.status, 404);
        assert_eq!(error_message(&r), "No such container: 0123456789ab");
        let e = expect_status(&r, &[200], "inspect container x").expect_err("404 is an error");
        assert_eq!(
            e.to_string(),
            "docker: inspect container x: No such container: 0123456789ab (HTTP 404)"
        );
    }

    #[test]
    fn chunked_error_json() {
        let body = br#"{"message":"OCI runtime start failed: write exec fifo: operation not permitted: unknown"}"#;
        let mut fixture =
            b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        fixture.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        fixture.extend_from_slice(body);
        fixture.extend_from_slice(b"\r\n0\r\n\r\n");
        let r = parse_all_steps(&fixture);
        assert_eq!(r.status, 500);
        assert!(error_message(&r).ends_with("operation not permitted: unknown"));
    }

    #[test]
    fn non_json_error_body_and_empty_body() {
        let r = parse_all_steps(b"HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\nboom\n");
        assert_eq!(error_message(&r), "boom");
        let r = parse_all_steps(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(error_message(&r), "Oops");
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
        assert!(e.contains("3 of 10"), "{e}");
        let e = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
            4,
        )
        .expect_err("short");
        assert!(e.contains("chunked"), "{e}");
        let e = parse(b"HTTP/1.1 200 OK\r\nContent-Le", 4).expect_err("short head");
        assert!(e.contains("head"), "{e}");
        let e = parse(b"", 4).expect_err("nothing");
        assert!(e.contains("without answering"), "{e}");
        assert!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", 4).is_err());
        assert!(parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            4
        )
        .is_err());
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
        assert!(demux(b"hello world").is_err());
        let mut sys = vec![3, 0, 0, 0, 0, 0, 0, 4];
        sys.extend_from_slice(b"bad!");
        assert!(demux(&sys).expect_err("system error").contains("bad!"));
    }

    #[test]
    fn requests_are_well_formed() {
        let req = build_request(
            "POST",
            "/containers/create?name=a",
            Some(("application/json", b"{}")),
        );
        assert_eq!(
            String::from_utf8(req).expect("ascii"),
            format!(
                "POST /v1.41/containers/create?name=a HTTP/1.1\r\nHost: docker\r\nUser-Agent: sandmine/{}\r\nAccept: */*\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
                env!("CARGO_PKG_VERSION")
            )
        );
        let req = String::from_utf8(build_request("POST", "/x/start", None)).expect("ascii");
        assert!(req.ends_with("Content-Length: 0\r\n\r\n"));
        let req = String::from_utf8(build_request("GET", "/_ping", None)).expect("ascii");
        assert!(req.starts_with("GET /v1.41/_ping HTTP/1.1\r\n"));
        assert!(!req.contains("Content-Length"));
    }

    #[test]
    fn encoding_and_socket_choice() {
        assert_eq!(
            encode("sandmine-test/busybox:1", true),
            "sandmine-test/busybox:1"
        );
        assert_eq!(encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(
            resolve_socket(Some(Path::new("/x.sock")), Some("unix:///y.sock")).expect("ok"),
            PathBuf::from("/x.sock")
        );
        assert_eq!(
            resolve_socket(None, Some("unix:///run/podman/podman.sock")).expect("ok"),
            PathBuf::from("/run/podman/podman.sock")
        );
        assert_eq!(
            resolve_socket(None, None).expect("ok"),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert_eq!(
            resolve_socket(None, Some("")).expect("ok"),
            PathBuf::from(DEFAULT_SOCKET)
        );
        assert!(resolve_socket(None, Some("tcp://1.2.3.4:2375")).is_err());
    }

    #[test]
    fn create_body_shape() {
        let mut spec = ContainerSpec::new("img:1");
        spec.cmd = Some(vec!["echo".into(), "hi".into()]);
        spec.seccomp_profile_json = Some(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.into());
        spec.labels.insert("org.sandmine.run".into(), "1".into());
        spec.cgroup_parent = Some("/sandmine".into());
        let b = create_body(&spec);
        assert_eq!(b["Image"], "img:1");
        assert_eq!(b["Cmd"], json!(["echo", "hi"]));
        assert!(b.get("Entrypoint").is_none());
        assert_eq!(b["Labels"]["org.sandmine.run"], "1");
        assert_eq!(b["HostConfig"]["NetworkMode"], "none");
        assert_eq!(b["HostConfig"]["CgroupParent"], "/sandmine");
        assert_eq!(
            b["HostConfig"]["SecurityOpt"],
            json!([r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#])
        );
        let b = create_body(&ContainerSpec::new("img:1"));
        assert!(b.get("Cmd").is_none());
        assert!(b["HostConfig"].get("SecurityOpt").is_none());
    }

    #[test]
    fn finished_states() {
        let st = |running: bool, status: &str, error: &str| ContainerState {
            running,
            pid: 0,
            exit_code: 0,
            error: error.into(),
            status: status.into(),
        };
        assert!(st(false, "exited", "").finished());
        assert!(st(false, "dead", "").finished());
        assert!(!st(true, "running", "").finished());
        assert!(!st(false, "created", "").finished());
        assert!(st(false, "created", "start failed").finished());
    }

    // ---- Against the real engine --------------------------------------
    //
    // These need dockerd (scripts/start-dockerd.sh) and the test images
    // (tests/images/build.sh). They fail, never skip, when either is missing.

    const TEST_IMAGE: &str = "sandmine-test/busybox:1";

    fn engine() -> DockerClient {
        match DockerClient::connect(None) {
            Ok(c) => c,
            Err(e) => panic!(
                "these tests need a running Docker engine: {e}\n\
                 start it with scripts/start-dockerd.sh (or run scripts/test.sh)"
            ),
        }
    }

    fn test_image(c: &DockerClient) -> ImageInfo {
        match c.inspect_image(TEST_IMAGE) {
            Ok(i) => i,
            Err(e) => panic!("{e}\nbuild the test images with tests/images/build.sh"),
        }
    }

    /// Removes the container when dropped, so failing tests leave nothing.
    struct Cleanup<'a>(&'a DockerClient, String);

    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = self.0.remove(&self.1);
        }
    }

    fn spec(cmd: &[&str]) -> ContainerSpec {
        let mut s = ContainerSpec::new(TEST_IMAGE);
        s.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
        s.labels
            .insert("org.sandmine.test".into(), "docker.rs".into());
        s
    }

    #[test]
    fn engine_runs_echo() {
        let c = engine();
        test_image(&c);
        let id = c.create(&spec(&["echo", "hi"])).expect("create");
        let _guard = Cleanup(&c, id.clone());
        c.start(&id).expect("start");
        let code = c.wait(&id, Duration::from_secs(30)).expect("wait");
        assert_eq!(code, Some(0));
        assert_eq!(c.logs(&id).expect("logs"), "hi\n");
        let st = c.inspect(&id).expect("inspect");
        assert!(!st.running);
        assert_eq!(st.status, "exited");
        c.remove(&id).expect("remove");
        c.remove(&id).expect("removing twice is fine");
        let e = c.inspect(&id).expect_err("removed");
        assert!(e.to_string().contains("No such container"), "{e}");
    }

    #[test]
    fn engine_logs_stdout_and_stderr_and_exit_code() {
        let c = engine();
        test_image(&c);
        let mut s = spec(&["sh", "-c", "echo out; echo err >&2; echo $GREETING; exit 3"]);
        s.env.push("GREETING=hello env".into());
        s.name = Some(format!("sandmine-test-{}", std::process::id()));
        let id = c.create(&s).expect("create");
        let _guard = Cleanup(&c, id.clone());
        c.start(&id).expect("start");
        assert_eq!(c.wait(&id, Duration::from_secs(30)).expect("wait"), Some(3));
        let logs = c.logs(&id).expect("logs");
        let mut lines: Vec<&str> = logs.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["err", "hello env", "out"]);
        let v = c.inspect_json(&id).expect("inspect");
        assert_eq!(v["Name"], format!("/sandmine-test-{}", std::process::id()));
        assert_eq!(v["Config"]["Labels"]["org.sandmine.test"], "docker.rs");
        assert_eq!(v["HostConfig"]["NetworkMode"], "none");
    }

    #[test]
    fn engine_seccomp_profile_denying_write_is_enforced() {
        let c = engine();
        test_image(&c);
        let mut s = spec(&["echo", "hi"]);
        s.seccomp_profile_json = Some(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["write"],"action":"SCMP_ACT_ERRNO"}]}"#
                .into(),
        );
        let id = c.create(&s).expect("create with a seccomp profile");
        let _guard = Cleanup(&c, id.clone());
        match c.start(&id) {
            // runc installs the filter before its own last write (to the
            // exec fifo), so the start itself fails; dockerd 20.10 with
            // runc 1.1 says "OCI runtime start failed: cannot start an
            // already running container". The engine's reason must come
            // through.
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("start container {id}")), "{msg}");
                assert!(
                    msg.contains("OCI runtime") || msg.contains("operation not permitted"),
                    "{msg}"
                );
                let st = c.inspect(&id).expect("inspect");
                assert!(!st.running && !st.error.is_empty(), "{st:?}");
                // A failed start is final: wait reports its non-zero code.
                let code = c.wait(&id, Duration::from_secs(5)).expect("wait");
                assert!(matches!(code, Some(c) if c != 0), "{code:?} {st:?}");
            }
            Ok(()) => {
                let code = c.wait(&id, Duration::from_secs(30)).expect("wait");
                assert!(
                    matches!(code, Some(c) if c != 0),
                    "echo must fail: {code:?}"
                );
                assert_eq!(c.logs(&id).expect("logs"), "");
            }
        }
    }

    #[test]
    fn engine_exec_and_stop() {
        let c = engine();
        test_image(&c);
        let id = c.create(&spec(&["sleep", "300"])).expect("create");
        let _guard = Cleanup(&c, id.clone());
        c.start(&id).expect("start");
        let st = c.inspect(&id).expect("inspect");
        assert!(st.running && st.pid > 0, "{st:?}");
        assert_eq!(c.wait(&id, Duration::from_millis(120)).expect("wait"), None);
        let cmd: Vec<String> = ["sh", "-c", "cat /www/index.html; echo oops >&2; exit 7"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (code, out) = c.exec(&id, &cmd).expect("exec");
        assert_eq!(code, 7);
        // The engine copies stdout and stderr concurrently: no order between them.
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["oops", "sandmine-ok"]);
        let (code, out) = c
            .exec(&id, &["cat".to_string(), "/www/index.html".to_string()])
            .expect("exec");
        assert_eq!((code, out.as_str()), (0, "sandmine-ok\n"));
        let (code, out) = c.exec(&id, &["true".to_string()]).expect("exec");
        assert_eq!((code, out.as_str()), (0, ""));
        // sleep as pid 1 ignores SIGTERM: the grace period runs out.
        c.stop(&id, Duration::from_secs(1)).expect("stop");
        let code = c.wait(&id, Duration::from_secs(10)).expect("wait");
        assert_eq!(code, Some(137));
        c.stop(&id, Duration::from_secs(1))
            .expect("stopping twice is fine");
    }

    #[test]
    fn engine_image_inspect() {
        let c = engine();
        let info = test_image(&c);
        assert!(info.id.starts_with("sha256:"), "{info:?}");
        assert_eq!(info.id.len(), "sha256:".len() + 64);
        assert!(info.repo_tags.iter().any(|t| t == TEST_IMAGE), "{info:?}");
        let by_id = c.inspect_image(&info.id).expect("inspect by id");
        assert_eq!(by_id.id, info.id);
        let v = c.version().expect("version");
        assert!(v["ApiVersion"].is_string(), "{v}");
    }

    #[test]
    fn engine_import_image() {
        let c = engine();
        let dir = std::env::temp_dir().join(format!("sandmine-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("hello.txt"), b"hello\n").expect("write");
        let out = std::process::Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .args(["-cf", "-", "."])
            .output()
            .expect("tar");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success());
        let repo = "sandmine-test/import";
        let tag = format!("t{}", std::process::id());
        let name = format!("{repo}:{tag}");
        let id = c
            .import_image(
                &out.stdout,
                repo,
                &tag,
                &[r#"CMD ["/hello", "a b"]"#, "ENV X=1"],
            )
            .expect("import");
        let info = c.inspect_image(&name);
        let raw = c.request("GET", &format!("/images/{name}/json"), None, IO_TIMEOUT);
        c.remove_image(&name).expect("remove image");
        c.remove_image(&name).expect("removing twice is fine");
        let info = info.expect("inspect imported");
        assert!(id.starts_with("sha256:"), "{id}");
        assert_eq!(info.id, id);
        assert_eq!(info.repo_tags, vec![name.clone()]);
        let v = parse_json(&raw.expect("raw inspect"), "inspect").expect("json");
        assert_eq!(v["Config"]["Cmd"], json!(["/hello", "a b"]));
        assert_eq!(v["Config"]["Env"], json!(["X=1"]));
        let e = c
            .import_image(b"not a tarball", repo, &tag, &["NOSUCHINSTRUCTION x"])
            .expect_err("bad change");
        assert!(
            e.to_string()
                .starts_with(&format!("docker: import image {name}: ")),
            "{e}"
        );
        c.remove_image(&name).expect("cleanup");
    }

    #[test]
    fn engine_missing_image_is_a_clear_error() {
        let c = engine();
        let e = c
            .inspect_image("sandmine-test/does-not-exist:0")
            .expect_err("missing image");
        assert_eq!(
            e.to_string(),
            "docker: image sandmine-test/does-not-exist:0 not found locally (no registry is pulled from)"
        );
        let e = c
            .create(&ContainerSpec::new("sandmine-test/does-not-exist:0"))
            .expect_err("create from a missing image");
        let msg = e.to_string();
        assert!(msg.contains("No such image"), "{msg}");
        assert!(msg.contains("no registry is pulled from"), "{msg}");
    }

    #[test]
    fn engine_errors_are_verbatim() {
        let c = engine();
        test_image(&c);
        // Rejected at create.
        let mut s = spec(&["true"]);
        s.name = Some("bad name!".into());
        let res = c.create(&s);
        if let Ok(id) = &res {
            let _ = c.remove(id);
        }
        let msg = res.expect_err("an invalid container name").to_string();
        assert_eq!(
            msg,
            "docker: create container from image sandmine-test/busybox:1: Invalid container name \
             (bad name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (HTTP 400)"
        );
        // dockerd parses the seccomp profile only at start.
        let mut s = spec(&["true"]);
        s.seccomp_profile_json = Some("{this is not json".into());
        let id = c.create(&s).expect("create");
        let _guard = Cleanup(&c, id.clone());
        let msg = c.start(&id).expect_err("a malformed profile").to_string();
        assert!(
            msg.starts_with(&format!("docker: start container {id}: ")),
            "{msg}"
        );
        assert!(msg.contains("seccomp"), "{msg}");
    }

    #[test]
    fn unreachable_engine_is_a_clear_error() {
        let e = DockerClient::connect(Some(Path::new("/nonexistent/sandmine.sock")))
            .expect_err("no engine there");
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "docker: cannot reach the Docker engine at /nonexistent/sandmine.sock: "
            ),
            "{msg}"
        );
        assert!(msg.ends_with("; is dockerd running?"), "{msg}");
    }
}
