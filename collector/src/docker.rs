//! A minimal Docker Engine API client over the engine's unix socket.
//!
//! The transport is [`http`] (HTTP/1.1 over a unix socket, bounded
//! response parsing, the multiplexed stream demux); this module knows the
//! engine's paths and JSON. Every path is prefixed with API version
//! [`API_VERSION`] (`/v1.41`): dockerd 20.10 as shipped by Debian 12 serves
//! it, and so does podman's Docker-compatible API.
//!
//! The socket is, in order: the path given to [`DockerClient::connect`],
//! `DOCKER_HOST=unix://PATH`, or [`DEFAULT_SOCKET`]. Podman users pass
//! `/run/podman/podman.sock`.
//!
//! No image is ever pulled: [`DockerClient::inspect_image`] and
//! [`DockerClient::create`] fail on an image that is not present locally.

pub mod http;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use self::http::{demux, encode, HttpError, Response};
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
    /// The image's command: its entrypoint, then its default arguments
    /// (`Config.Entrypoint` + `Config.Cmd`); empty when it has none.
    pub command: Vec<String>,
}

impl ImageInfo {
    /// The digest the fleet knows the image by: its registry digest
    /// (`RepoDigests`, the same on every host) when it has one, else its
    /// local id (`sha256:...`, the config digest). What the collector
    /// stores as a container's `image_digest`, and what the fleet's
    /// compiler checks an engine's image against.
    pub fn fleet_digest(&self) -> String {
        self.repo_digests
            .iter()
            .find_map(|d| d.split_once('@').map(|(_, h)| h.to_string()))
            .unwrap_or_else(|| self.id.clone())
    }
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
    /// The engine is podman (its `/version` names "Podman Engine"): its
    /// compatible API reads `seccomp=` as a path on the server, not as the
    /// profile's JSON (podman 4.3), so [`DockerClient::create`] hands it a
    /// file.
    podman: bool,
}

impl DockerClient {
    /// Connects to the engine and checks that `GET /_ping` answers `OK`.
    ///
    /// The socket is `socket`, else `DOCKER_HOST` (only `unix://` is
    /// supported), else [`DEFAULT_SOCKET`].
    pub fn connect(socket: Option<&Path>) -> Result<Self> {
        let socket = resolve_socket(socket, std::env::var("DOCKER_HOST").ok().as_deref())?;
        let mut client = DockerClient {
            socket,
            podman: false,
        };
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
        client.podman = client.version().is_ok_and(|v| is_podman(&v));
        Ok(client)
    }

    /// Whether the engine is podman.
    pub fn is_podman(&self) -> bool {
        self.podman
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
            command: string_list(&v["Config"]["Entrypoint"])
                .into_iter()
                .chain(string_list(&v["Config"]["Cmd"]))
                .collect(),
        })
    }

    /// Imports a root filesystem tarball as image `reference` (`docker
    /// import`, `name:tag`), applying Dockerfile `changes` such as
    /// `CMD ["/probe"]`; returns the new image's id (`sha256:...`).
    ///
    /// The tag travels inside `repo`, which the Engine API allows: podman's
    /// compatible API (4.3) ignores a separate `tag` parameter and would
    /// tag the image `latest`.
    pub fn import_image(&self, tar: &[u8], reference: &str, changes: &[&str]) -> Result<String> {
        let mut path = format!("/images/create?fromSrc=-&repo={}", encode(reference, false));
        for change in changes {
            path.push_str("&changes=");
            path.push_str(&encode(change, false));
        }
        let what = format!("import image {reference}");
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
            None => Ok(self.inspect_image(reference)?.id),
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
        // podman reads the profile from a path while it creates the
        // container; the file is removed when `profile_file` drops, after
        // the answer.
        let profile_file = match &spec.seccomp_profile_json {
            Some(p) if self.podman && p != "unconfined" => Some(ProfileFile::write(p)?),
            _ => None,
        };
        let body = create_body(spec, profile_file.as_ref().map(|f| f.path.as_path()));
        let resp = self.request("POST", &path, Some(&body), IO_TIMEOUT)?;
        drop(profile_file);
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
        self.find_container(id)?.ok_or_else(|| {
            CollectError::Docker(format!(
                "inspect container {id}: No such container: {id} (HTTP 404)"
            ))
        })
    }

    /// Like [`DockerClient::inspect_json`], but `Ok(None)` when the engine
    /// does not know the container (any more).
    pub fn find_container(&self, id: &str) -> Result<Option<Value>> {
        let path = format!("/containers/{}/json", encode(id, false));
        let resp = self.request("GET", &path, None, IO_TIMEOUT)?;
        if resp.status == 404 {
            return Ok(None);
        }
        let what = format!("inspect container {id}");
        expect_status(&resp, &[200], &what)?;
        parse_json(&resp, &what).map(Some)
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

    /// The engine's events matching `filters` (the engine's filter JSON),
    /// one JSON value per event, from `since` (unix seconds; `None`: from
    /// now) until `until` (`None`: endlessly). Reads time out after
    /// `timeout`, so a follower can check for a stop request.
    pub fn events(
        &self,
        filters: &Value,
        since: Option<u64>,
        until: Option<u64>,
        timeout: Duration,
    ) -> Result<EventStream> {
        let mut path = format!("/events?filters={}", encode(&filters.to_string(), false));
        if let Some(s) = since {
            path.push_str(&format!("&since={s}"));
        }
        if let Some(u) = until {
            path.push_str(&format!("&until={u}"));
        }
        let target = format!("/{API_VERSION}{path}");
        let reader = http::open_stream(&self.socket, &target, timeout)
            .map_err(|e| self.failed("GET", &path, e))?;
        Ok(EventStream {
            reader,
            line: Vec::new(),
        })
    }

    /// Streams the container's file system as a tar archive (`docker
    /// export`) into `out`; returns the bytes written. Works on a stopped
    /// container. The engine ends the stream by closing the connection.
    pub fn export(&self, id: &str, out: &mut dyn std::io::Write) -> Result<u64> {
        let path = format!("/containers/{}/export", encode(id, false));
        let target = format!("/{API_VERSION}{path}");
        let mut reader = http::open_stream(&self.socket, &target, IO_TIMEOUT)
            .map_err(|e| self.failed("GET", &path, e))?;
        std::io::copy(&mut reader, out).map_err(|e| {
            CollectError::Docker(format!(
                "GET {path} on {}: copying the export: {e}",
                self.socket.display()
            ))
        })
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
        let target = format!("/{API_VERSION}{path}");
        http::request(&self.socket, method, &target, body, timeout)
            .map_err(|e| self.failed(method, path, e))
    }

    fn failed(&self, method: &str, path: &str, e: HttpError) -> CollectError {
        CollectError::Docker(format!("{method} {path} on {}: {e}", self.socket.display()))
    }
}

/// The engine's event stream ([`DockerClient::events`]).
pub struct EventStream {
    reader: BufReader<UnixStream>,
    line: Vec<u8>,
}

/// What one read of an [`EventStream`] gave.
#[derive(Debug, PartialEq)]
pub enum Event {
    /// One event.
    Event(Value),
    /// Nothing within the stream's timeout; read again.
    Idle,
    /// The engine closed the stream (or it broke).
    End,
}

impl EventStream {
    /// The next event. Lines that are not JSON (none expected) are skipped;
    /// a line is never longer than [`http::MAX_HEAD`] (longer ones end the
    /// stream).
    pub fn next_event(&mut self) -> Event {
        loop {
            let room = (http::MAX_HEAD as u64).saturating_sub(self.line.len() as u64);
            if room == 0 {
                return Event::End;
            }
            match (&mut self.reader)
                .take(room)
                .read_until(b'\n', &mut self.line)
            {
                Ok(0) => return Event::End,
                Ok(_) if self.line.ends_with(b"\n") => {
                    let parsed = serde_json::from_slice::<Value>(&self.line);
                    self.line.clear();
                    if let Ok(v) = parsed {
                        return Event::Event(v);
                    }
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Event::Idle
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Event::End,
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

/// Whether a `/version` answer is podman's.
fn is_podman(v: &Value) -> bool {
    v["Components"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["Name"] == "Podman Engine"))
}

/// A seccomp profile in a file of its own for podman: a fresh 0700
/// directory under the temporary directory, the file 0600; both removed
/// on drop.
struct ProfileFile {
    dir: PathBuf,
    path: PathBuf,
}

impl ProfileFile {
    fn write(profile: &str) -> Result<ProfileFile> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!(".sandmine-seccomp-{}-{n}", std::process::id()));
        let io = |what: &str, e: std::io::Error| {
            CollectError::Docker(format!(
                "writing the seccomp profile for podman ({what}): {e}"
            ))
        };
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io(&dir.display().to_string(), e))?;
        let f = ProfileFile {
            path: dir.join("seccomp.json"),
            dir,
        };
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&f.path)
            .map_err(|e| io(&f.path.display().to_string(), e))?;
        file.write_all(profile.as_bytes())
            .map_err(|e| io(&f.path.display().to_string(), e))?;
        Ok(f)
    }
}

impl Drop for ProfileFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The JSON body of `POST /containers/create`: the profile as JSON, or as
/// the path of a file holding it (`profile_path`, for podman).
fn create_body(spec: &ContainerSpec, profile_path: Option<&Path>) -> Value {
    let mut host = serde_json::Map::new();
    host.insert("NetworkMode".into(), json!(spec.network_mode));
    if let Some(profile) = &spec.seccomp_profile_json {
        let opt = match profile_path {
            Some(p) => format!("seccomp={}", p.display()),
            None => format!("seccomp={profile}"),
        };
        host.insert("SecurityOpt".into(), json!([opt]));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_digest_is_the_registry_digest_else_the_id() {
        let mut info = ImageInfo {
            id: "sha256:11".into(),
            repo_tags: vec!["app:1".into()],
            repo_digests: Vec::new(),
            command: Vec::new(),
        };
        assert_eq!(info.fleet_digest(), "sha256:11");
        info.repo_digests = vec!["registry.internal/app@sha256:22".into()];
        assert_eq!(info.fleet_digest(), "sha256:22");
    }

    /// A response as the engine sends it, through the real parser.
    fn response(raw: &[u8]) -> Response {
        let mut p = http::ResponseParser::default();
        match p.feed(raw).expect("parses") {
            Some(r) => r,
            None => p.finish().expect("complete"),
        }
    }

    #[test]
    fn error_json_message_is_surfaced() {
        let r = response(
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
        let r = response(&fixture);
        assert_eq!(r.status, 500);
        assert!(error_message(&r).ends_with("operation not permitted: unknown"));
    }

    #[test]
    fn non_json_error_body_and_empty_body() {
        let r = response(b"HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\nboom\n");
        assert_eq!(error_message(&r), "boom");
        let r = response(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(error_message(&r), "Oops");
    }

    #[test]
    fn socket_choice() {
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
        let b = create_body(&spec, None);
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
        let b = create_body(&ContainerSpec::new("img:1"), None);
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
