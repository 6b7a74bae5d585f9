//! An OCI registry (distribution API v2): each profile version is pushed as
//! a seccomp-profile artifact in the format CRI-O (>= v1.30), KEP-6061 and
//! the security-profiles-operator read (publish/README.md, "OCI registry
//! target", cites the sources):
//!
//! ```text
//! <registry>/<repository>/<slug>:<version-short>   one manifest per version, never re-pushed
//! <registry>/<repository>/<slug>:current           the version in force (commit point)
//!
//! manifest  application/vnd.oci.image.manifest.v1+json
//!   artifactType  application/vnd.cncf.seccomp-profile.config.v1+json
//!   config        application/vnd.cncf.seccomp-profile.config.v1+json  ({})
//!   layers[0]     application/json: the publication's seccomp.json (runtime-spec profile)
//!   annotations   dev.sandmine.* (image, version, state, confidence, meta)
//! ```
//!
//! The gate's `previous` is the `dev.sandmine.meta` annotation of the
//! manifest `current` points at. A version's manifest is pushed once: the
//! target asks the registry for the version tag first (HEAD) and re-points
//! `current` at what is there, so the digest nodes pin never changes for a
//! version. Profiles over the runtimes' default limits are refused before
//! anything is uploaded ([`OciLimits`]).

use super::{Publication, Target};
use crate::candidate::PublishedMeta;
use crate::PublishError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `artifactType` and config media type of a seccomp profile artifact.
pub const ARTIFACT_TYPE: &str = "application/vnd.cncf.seccomp-profile.config.v1+json";
/// Media type of the one layer: the runtime-spec profile as JSON.
pub const LAYER_MEDIA_TYPE: &str = "application/json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The publication file pushed as the layer.
pub const PROFILE_FILE: &str = "seccomp.json";
/// The tag of the version in force.
pub const CURRENT_TAG: &str = "current";
/// Manifest annotation holding the [`PublishedMeta`] (compact JSON).
pub const META_ANNOTATION: &str = "dev.sandmine.meta";
/// Layer annotation holding the profile's detached signature file.
pub const SIGNATURE_ANNOTATION: &str = "dev.sandmine.signature";
/// The config blob: an empty JSON object.
const CONFIG_BLOB: &[u8] = b"{}";

/// `[publish.oci]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OciConfig {
    /// `host[:port]` of the registry; always spoken to over HTTPS.
    pub registry: String,
    /// Repository prefix: image `I` goes to `<repository>/<slug of I>`.
    #[serde(default = "default_repository")]
    pub repository: String,
    /// PEM file with the CA that signed the registry's certificate, in
    /// addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Basic-auth user; anonymous without it.
    #[serde(default)]
    pub username: Option<String>,
    /// File whose first line is the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password (when no password_file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Per-request timeout.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    #[serde(default)]
    pub limits: OciLimits,
}

fn default_repository() -> String {
    "sandmine".into()
}

fn default_timeout_secs() -> u64 {
    30
}

/// What a runtime accepts in a pulled profile by default (publish/README.md
/// cites where each comes from). A profile over a limit is not pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OciLimits {
    /// CRI-O reads at most 1 MiB of artifact data.
    pub max_profile_bytes: u64,
    /// Entries of the profile's `syscalls` array.
    pub max_syscall_entries: usize,
}

impl Default for OciLimits {
    fn default() -> Self {
        OciLimits {
            max_profile_bytes: 1024 * 1024,
            max_syscall_entries: 128,
        }
    }
}

/// Why talking to the registry (or preparing a push) failed. One line each.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{0}")]
    Config(String),
    #[error("registry {registry}: TLS handshake failed: {reason}")]
    Tls { registry: String, reason: String },
    #[error("registry {registry} is unreachable: {reason}")]
    Unreachable { registry: String, reason: String },
    #[error("registry {registry} did not answer within {secs} s")]
    Timeout { registry: String, secs: u64 },
    #[error("registry {registry} refused the credentials of user {user:?} (HTTP 401): check username and the password")]
    BadCredentials { registry: String, user: String },
    #[error("registry {registry} needs credentials (HTTP 401): set username and password_file or password_env")]
    NeedsCredentials { registry: String },
    #[error("registry {registry}: {what}: HTTP {status}: {body}")]
    Http {
        registry: String,
        what: String,
        status: u16,
        body: String,
    },
    #[error("{file} of {image} is not pushed: {reason}")]
    Limit {
        image: String,
        file: String,
        reason: String,
    },
}

/// `name` as an OCI distribution repository name: path components of
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, at most 255
/// characters with the registry host.
pub fn valid_repository(name: &str) -> bool {
    fn component(c: &str) -> bool {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            // A separator run: `.`, `_`, `__` or `-+`, then an alnum.
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
            if !ok {
                return false;
            }
        }
        true
    }
    !name.is_empty() && name.len() <= 255 && name.split('/').all(component)
}

/// `tag` as an OCI distribution tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-'))
}

/// Checks `profile` (a runtime-spec seccomp profile, JSON) against the
/// limits: size, number of `syscalls` entries, no `SCMP_ACT_NOTIFY` and no
/// listener (a pulled profile cannot name a node's seccomp agent).
pub fn check_limits(profile: &[u8], limits: &OciLimits) -> Result<(), String> {
    if profile.len() as u64 > limits.max_profile_bytes {
        return Err(format!(
            "{} bytes, over the limit of {} bytes (CRI-O reads at most 1 MiB of an artifact)",
            profile.len(),
            limits.max_profile_bytes
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(profile).map_err(|e| format!("not a JSON seccomp profile: {e}"))?;
    let syscalls = v
        .get("syscalls")
        .and_then(|s| s.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    if syscalls.len() > limits.max_syscall_entries {
        return Err(format!(
            "{} syscall entries, over the limit of {}",
            syscalls.len(),
            limits.max_syscall_entries
        ));
    }
    let notify =
        |a: Option<&serde_json::Value>| a.and_then(|a| a.as_str()) == Some("SCMP_ACT_NOTIFY");
    if notify(v.get("defaultAction")) || syscalls.iter().any(|s| notify(s.get("action"))) {
        return Err("uses SCMP_ACT_NOTIFY, which runtimes refuse in a pulled profile".into());
    }
    for f in ["listenerPath", "listenerMetadata"] {
        if v.get(f).is_some() {
            return Err(format!(
                "sets {f}, which runtimes refuse in a pulled profile"
            ));
        }
    }
    Ok(())
}

fn sha256_digest(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let mut s = String::from("sha256:");
    for b in h {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The manifest of one publication: config `{}`, one layer
/// (`seccomp.json`), annotations with the meta and confidence figures.
/// `signature`: the profile's detached signature, as an annotation on
/// the layer, when the publication has one.
pub fn manifest(p: &Publication, profile: &[u8], signature: Option<&[u8]>) -> Vec<u8> {
    let meta_json = serde_json::to_string(&p.meta).unwrap_or_default();
    let mut layer_ann = BTreeMap::new();
    layer_ann.insert(
        "org.opencontainers.image.title".to_string(),
        PROFILE_FILE.to_string(),
    );
    if let Some(sig) = signature {
        // The detached signature file (`seccomp.json.sig`, one line of
        // JSON), verbatim: written back next to the pulled layer it is
        // what `sandmine verify` checks.
        layer_ann.insert(
            SIGNATURE_ANNOTATION.to_string(),
            String::from_utf8_lossy(sig).trim_end().to_string(),
        );
    }
    let mut ann = BTreeMap::new();
    ann.insert(
        "org.opencontainers.image.created".to_string(),
        sysutil::clock::rfc3339_s(p.meta.published_at_ms),
    );
    ann.insert("dev.sandmine.image".to_string(), p.meta.image.clone());
    ann.insert("dev.sandmine.version".to_string(), p.meta.version.clone());
    ann.insert("dev.sandmine.state".to_string(), p.meta.state.clone());
    ann.insert(
        "dev.sandmine.confidence".to_string(),
        p.meta.confidence_summary.clone(),
    );
    if let Some(c) = confidence_json(p) {
        ann.insert("dev.sandmine.confidence.json".to_string(), c);
    }
    ann.insert(META_ANNOTATION.to_string(), meta_json);
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": ARTIFACT_TYPE,
        "config": {
            "mediaType": ARTIFACT_TYPE,
            "digest": sha256_digest(CONFIG_BLOB),
            "size": CONFIG_BLOB.len(),
        },
        "layers": [{
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": sha256_digest(profile),
            "size": profile.len(),
            "annotations": layer_ann,
        }],
        "annotations": ann,
    });
    serde_json::to_vec(&m).unwrap_or_default()
}

/// The `confidence` object of the publication's `report.json`, compact.
fn confidence_json(p: &Publication) -> Option<String> {
    let r: serde_json::Value = serde_json::from_slice(p.files.get("report.json")?).ok()?;
    let c = r.get("confidence")?;
    serde_json::to_string(c).ok()
}

struct Resp {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Vec<u8>,
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// An OCI registry target. [`OciTarget::connect`] checks the registry, its
/// certificate and the credentials once, up front.
pub struct OciTarget {
    cfg: OciConfig,
    auth: Option<String>,
    client: Client<Https, Full<Bytes>>,
    /// `registry/repo@sha256:...` of every push of this process, in order.
    pushed: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for OciTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OciTarget")
            .field("cfg", &self.cfg)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

fn tls_config(cfg: &OciConfig) -> Result<rustls::ClientConfig, OciError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let tls = |reason: String| OciError::Tls {
        registry: cfg.registry.clone(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_native_certs::load_native_certs().certs {
        // A broken system certificate must not stop a private-CA setup.
        let _ = roots.add(c);
    }
    if let Some(path) = &cfg.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|i| i.collect::<Result<_, _>>())
            .map_err(|e| tls(format!("CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(tls(format!(
                "CA file {}: no PEM certificate in it",
                path.display()
            )));
        }
        for c in certs {
            roots
                .add(c)
                .map_err(|e| tls(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The rustls error inside a connector failure, if TLS is the cause.
fn find_tls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(t) = c.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        cause = match c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner),
            None => c.source(),
        };
    }
    None
}

/// The innermost cause's text, for "unreachable".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        last = c.to_string();
        cause = c.source();
    }
    last
}

impl OciTarget {
    /// Builds the client, reads the password, and checks `/v2/` (reachable,
    /// TLS, credentials). Also validates the repository prefix.
    pub async fn connect(cfg: OciConfig) -> Result<OciTarget, OciError> {
        if cfg.registry.is_empty() || cfg.registry.contains('/') || cfg.registry.contains("://") {
            return Err(OciError::Config(format!(
                "publish.oci.registry {:?} is not host[:port]",
                cfg.registry
            )));
        }
        if !valid_repository(&cfg.repository) {
            return Err(OciError::Config(format!(
                "publish.oci.repository {:?} is not an OCI repository name (lower-case path components of [a-z0-9] separated by '.', '_', '__' or '-', joined by '/')",
                cfg.repository
            )));
        }
        let auth = match &cfg.username {
            None => None,
            Some(user) => {
                let password = read_password(&cfg)?;
                use base64::Engine as _;
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{}", password.expose()))
                ))
            }
        };
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(cfg.timeout_secs.max(1))));
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&cfg)?)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        let t = OciTarget {
            cfg,
            auth,
            client,
            pushed: Arc::default(),
        };
        let r = t.send(Method::GET, "/v2/", &[], Vec::new()).await?;
        if r.status != StatusCode::OK {
            return Err(t.http_error("GET /v2/", &r));
        }
        Ok(t)
    }

    pub fn config(&self) -> &OciConfig {
        &self.cfg
    }

    /// `registry/repository/slug@sha256:...` of every push so far.
    pub fn pushed_refs(&self) -> Vec<String> {
        self.pushed.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The repository of `slug`.
    pub fn repository(&self, slug: &str) -> Result<String, OciError> {
        let r = format!("{}/{slug}", self.cfg.repository);
        if !valid_repository(&r) || self.cfg.registry.len() + 1 + r.len() > 255 {
            return Err(OciError::Config(format!(
                "repository {r:?} is not a legal OCI repository name"
            )));
        }
        Ok(r)
    }

    async fn send(
        &self,
        method: Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Resp, OciError> {
        let url = if path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("https://{}{path_or_url}", self.cfg.registry)
        };
        let mut req = Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a.as_str());
        }
        req = req.header("User-Agent", "sandmine");
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| OciError::Config(format!("bad request for {url}: {e}")))?;
        let registry = self.cfg.registry.clone();
        let secs = self.cfg.timeout_secs.max(1);
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| match find_tls(&e) {
                    Some(t) => OciError::Tls {
                        registry: registry.clone(),
                        reason: tls_hint(t, &self.cfg),
                    },
                    None => OciError::Unreachable {
                        registry: registry.clone(),
                        reason: root_cause(&e),
                    },
                })?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| OciError::Unreachable {
                    registry: registry.clone(),
                    reason: root_cause(&e),
                })?
                .to_bytes()
                .to_vec();
            Ok(Resp {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        let r: Resp = tokio::time::timeout(Duration::from_secs(secs), fut)
            .await
            .map_err(|_| OciError::Timeout {
                registry: registry.clone(),
                secs,
            })??;
        if r.status == StatusCode::UNAUTHORIZED {
            return Err(match &self.cfg.username {
                Some(user) => OciError::BadCredentials {
                    registry,
                    user: user.clone(),
                },
                None => OciError::NeedsCredentials { registry },
            });
        }
        Ok(r)
    }

    fn http_error(&self, what: &str, r: &Resp) -> OciError {
        let mut body = String::from_utf8_lossy(&r.body).trim().replace('\n', " ");
        body.truncate(300);
        OciError::Http {
            registry: self.cfg.registry.clone(),
            what: what.to_string(),
            status: r.status.as_u16(),
            body,
        }
    }

    /// The digest of `repo:reference`'s manifest, `None` if absent.
    async fn head_manifest(&self, repo: &str, reference: &str) -> Result<Option<String>, OciError> {
        let what = format!("HEAD {repo}:{reference}");
        let r = self
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", MANIFEST_MEDIA_TYPE)],
                Vec::new(),
            )
            .await?;
        match r.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => match r
                .headers
                .get("Docker-Content-Digest")
                .and_then(|v| v.to_str().ok())
            {
                Some(d) => Ok(Some(d.to_string())),
                None => Err(OciError::Http {
                    registry: self.cfg.registry.clone(),
                    what,
                    status: s.as_u16(),
                    body: "no Docker-Content-Digest header".into(),
                }),
            },
            _ => Err(self.http_error(&what, &r)),
        }
    }

    /// The manifest bytes of `repo:reference`, `None` if absent.
    async fn get_manifest(&self, repo: &str, reference: &str) -> Result<Option<Vec<u8>>, OciError> {
        let r = self
            .send(
                Method::GET,
                &format!("/v2/{repo}/manifests/{reference}"),
                &[("Accept", MANIFEST_MEDIA_TYPE)],
                Vec::new(),
            )
            .await?;
        match r.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(r.body)),
            _ => Err(self.http_error(&format!("GET {repo}:{reference}"), &r)),
        }
    }

    async fn put_manifest(&self, repo: &str, tag: &str, bytes: &[u8]) -> Result<(), OciError> {
        let r = self
            .send(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Content-Type", MANIFEST_MEDIA_TYPE)],
                bytes.to_vec(),
            )
            .await?;
        if r.status != StatusCode::CREATED {
            return Err(self.http_error(&format!("PUT {repo}:{tag}"), &r));
        }
        let want = sha256_digest(bytes);
        match r
            .headers
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(d) if d != want => Err(OciError::Http {
                registry: self.cfg.registry.clone(),
                what: format!("PUT {repo}:{tag}"),
                status: r.status.as_u16(),
                body: format!("registry says digest {d}, we sent {want}"),
            }),
            _ => Ok(()),
        }
    }

    /// Uploads `bytes` unless the registry has the blob (HEAD first);
    /// monolithic: POST an upload, PUT it whole with `?digest=`.
    async fn put_blob(&self, repo: &str, bytes: &[u8]) -> Result<(), OciError> {
        let digest = sha256_digest(bytes);
        let r = self
            .send(
                Method::HEAD,
                &format!("/v2/{repo}/blobs/{digest}"),
                &[],
                Vec::new(),
            )
            .await?;
        if r.status.is_success() {
            return Ok(());
        }
        let r = self
            .send(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/"),
                &[],
                Vec::new(),
            )
            .await?;
        let loc = match (
            r.status,
            r.headers.get("Location").and_then(|v| v.to_str().ok()),
        ) {
            (StatusCode::ACCEPTED, Some(l)) => l.to_string(),
            _ => return Err(self.http_error(&format!("POST {repo} blob upload"), &r)),
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = format!("{loc}{sep}digest={digest}");
        let len = bytes.len().to_string();
        let r = self
            .send(
                Method::PUT,
                &url,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", &len),
                ],
                bytes.to_vec(),
            )
            .await?;
        if r.status != StatusCode::CREATED {
            return Err(self.http_error(&format!("PUT {repo} blob {digest}"), &r));
        }
        Ok(())
    }

    /// Pushes one publication (no aliases): the version manifest unless
    /// the version tag exists, then `current`.
    async fn push(&self, p: &Publication) -> Result<(), PublishError> {
        let image = p.meta.image.clone();
        let profile = p.files.get(PROFILE_FILE).ok_or_else(|| OciError::Limit {
            image: image.clone(),
            file: PROFILE_FILE.into(),
            reason: "the publication has no such file".into(),
        })?;
        check_limits(profile, &self.cfg.limits).map_err(|reason| OciError::Limit {
            image: image.clone(),
            file: PROFILE_FILE.into(),
            reason,
        })?;
        let repo = self.repository(&p.meta.slug)?;
        let tag = p.meta.version_short.clone();
        if !valid_tag(&tag) {
            return Err(OciError::Config(format!("tag {tag:?} is not a legal OCI tag")).into());
        }
        let signature = p
            .files
            .get(&format!("{PROFILE_FILE}.sig"))
            .map(Vec::as_slice);
        let (digest, bytes) = match self.head_manifest(&repo, &tag).await? {
            Some(d) => {
                // Pushed before (an earlier round, or one interrupted
                // before `current`): never re-push a version.
                let bytes = self
                    .get_manifest(&repo, &d)
                    .await?
                    .ok_or_else(|| OciError::Http {
                        registry: self.cfg.registry.clone(),
                        what: format!("GET {repo}@{d}"),
                        status: 404,
                        body: "manifest vanished after HEAD".into(),
                    })?;
                (d, bytes)
            }
            None => {
                let bytes = manifest(p, profile, signature);
                self.put_blob(&repo, CONFIG_BLOB).await?;
                self.put_blob(&repo, profile).await?;
                self.put_manifest(&repo, &tag, &bytes).await?;
                (sha256_digest(&bytes), bytes)
            }
        };
        if self.head_manifest(&repo, CURRENT_TAG).await?.as_deref() != Some(digest.as_str()) {
            self.put_manifest(&repo, CURRENT_TAG, &bytes).await?;
        }
        if let Ok(mut v) = self.pushed.lock() {
            v.push(format!("{}/{repo}@{digest}", self.cfg.registry));
        }
        Ok(())
    }
}

fn tls_hint(t: &rustls::Error, cfg: &OciConfig) -> String {
    let hint = match t {
        rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature,
        ) => match &cfg.ca_file {
            Some(ca) => format!(
                "; the registry's certificate is not signed by the system roots or the CA in ca_file {}",
                ca.display()
            ),
            None => "; the registry's certificate is not signed by a CA in the system roots: set publish.oci.ca_file to the CA that signed it".to_string(),
        },
        rustls::Error::InvalidMessage(_) => {
            "; the registry did not answer in TLS (it must serve HTTPS)".to_string()
        }
        _ => String::new(),
    };
    format!("{t}{hint}")
}

fn read_password(cfg: &OciConfig) -> Result<sysutil::secret::Secret, OciError> {
    if let Some(path) = &cfg.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            OciError::Config(format!("publish.oci.password_file {}: {e}", path.display()))
        })?;
        return Ok(text.lines().next().unwrap_or_default().to_string().into());
    }
    if let Some(var) = &cfg.password_env {
        return std::env::var(var).map(Into::into).map_err(|_| {
            OciError::Config(format!(
                "publish.oci.password_env: environment variable {var} is not set"
            ))
        });
    }
    Err(OciError::Config(
        "publish.oci.username is set but neither password_file nor password_env".into(),
    ))
}

impl Target for OciTarget {
    fn describe(&self) -> String {
        format!("oci:{}/{}", self.cfg.registry, self.cfg.repository)
    }

    async fn current(&self, slug: &str) -> Result<Option<PublishedMeta>, PublishError> {
        let repo = self.repository(slug)?;
        let Some(bytes) = self.get_manifest(&repo, CURRENT_TAG).await? else {
            return Ok(None);
        };
        let what = format!("{}/{repo}:{CURRENT_TAG}", self.cfg.registry);
        let m: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| PublishError::Meta {
                what: what.clone(),
                source,
            })?;
        let meta = m
            .get("annotations")
            .and_then(|a| a.get(META_ANNOTATION))
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        super::parse_meta(
            meta.as_bytes(),
            &format!("{what} annotation {META_ANNOTATION}"),
        )
        .map(Some)
    }

    /// `p.also_under` (the folders of releases before the slug changed)
    /// is not pushed: no release before this target existed pushed there.
    async fn publish(&self, p: &Publication) -> Result<(), PublishError> {
        self.push(p).await
    }

    fn pushed(&self) -> Vec<String> {
        self.pushed_refs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_distribution_grammar() {
        for ok in [
            "sandmine",
            "a/b",
            "a.b/c_d/e__f/g-h/i---j",
            "web-1-0123456789abcdef",
        ] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a//b",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a/",
            "a:b",
            &"a".repeat(256),
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
        let slug = schemas::slug::image_slug("Registry.Example:5000/Team/Web:1.25@sha256:00");
        assert!(valid_repository(&format!("sandmine/{slug}")), "{slug}");
        for ok in ["current", "0123456789ab", "_x", "v1.2-rc_3"] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn limits_refuse_size_entries_notify_and_listeners() {
        let l = OciLimits::default();
        assert_eq!(
            (l.max_profile_bytes, l.max_syscall_entries),
            (1_048_576, 128)
        );
        let entries = |n: usize| {
            let s: Vec<_> = (0..n)
                .map(
                    |i| serde_json::json!({"names": [format!("s{i}")], "action": "SCMP_ACT_ALLOW"}),
                )
                .collect();
            serde_json::to_vec(
                &serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": s}),
            )
            .unwrap()
        };
        assert_eq!(check_limits(&entries(128), &l), Ok(()));
        assert_eq!(
            check_limits(&entries(129), &l),
            Err("129 syscall entries, over the limit of 128".into())
        );
        let small = OciLimits {
            max_profile_bytes: 10,
            ..l
        };
        assert_eq!(
            check_limits(&entries(1), &small),
            Err(format!(
                "{} bytes, over the limit of 10 bytes (CRI-O reads at most 1 MiB of an artifact)",
                entries(1).len()
            ))
        );
        let notify = br#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["mount"],"action":"SCMP_ACT_NOTIFY"}]}"#;
        assert_eq!(
            check_limits(notify, &l),
            Err("uses SCMP_ACT_NOTIFY, which runtimes refuse in a pulled profile".into())
        );
        let dflt = br#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#;
        assert!(check_limits(dflt, &l).is_err());
        let listener = br#"{"defaultAction":"SCMP_ACT_ERRNO","listenerPath":"/run/agent.sock"}"#;
        assert_eq!(
            check_limits(listener, &l),
            Err("sets listenerPath, which runtimes refuse in a pulled profile".into())
        );
        assert!(check_limits(b"not json", &l)
            .unwrap_err()
            .starts_with("not a JSON seccomp profile"));
    }

    #[test]
    fn config_parses_strictly() {
        let c: OciConfig = toml::from_str("registry = \"r:5000\"\n").unwrap();
        assert_eq!(c.repository, "sandmine");
        assert_eq!(c.limits, OciLimits::default());
        assert_eq!(c.timeout_secs, 30);
        let e = toml::from_str::<OciConfig>("registry = \"r\"\npassword = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `password`"), "{e}");
        let e =
            toml::from_str::<OciConfig>("registry = \"r\"\n[limits]\nmax_bytes = 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `max_bytes`"), "{e}");
    }
}
