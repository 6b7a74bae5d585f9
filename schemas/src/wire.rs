//! The collector-to-aggregator wire format: one message per host per
//! publish interval, carrying per-container syscall deltas.
//!
//! Only this module knows the bytes. Everything else uses [`Envelope`], the
//! current in-memory form, and [`encode`] / [`decode`].
//!
//! # Layout
//!
//! ```text
//! offset 0  4 bytes  magic "SMDW"
//! offset 4  2 bytes  wire version, u16 little-endian
//! offset 6  ...      body: bincode 2.0 (pinned =2.0.1), `config::standard()`
//!                    (little-endian, variable-length integers), with a
//!                    16 MiB limit, of the version's body struct
//! v5 and later, after the body (the signature trailer, [`TRAILER`] bytes):
//! end-96    32 bytes  the signing host's ed25519 public key
//! end-64    64 bytes  its ed25519 signature of every byte before it
//!                     (magic, version, body and public key)
//! ```
//!
//! The body structs below are frozen once released: a new field means a new
//! version, a new `WireVN` struct, and an upgrade from the older ones in
//! [`decode`]. The golden fixtures in `schemas/tests/fixtures/wire/` pin
//! the bytes of every version. Enums travel as explicit small integers
//! (`abi` as in [`Abi::code`]), never as Rust enum indexes, so reordering a
//! Rust enum cannot change the wire.
//!
//! # Versions
//!
//! - **1**: host, boot, sequence, interval, and per container: runtime,
//!   id, image, digest, lifetime and syscall deltas.
//! - **2**: adds per container the Kubernetes pod (namespace, pod,
//!   container) when known, and the seccomp filter the container ran
//!   under (the compiler must know what a filter may have hidden).
//! - **3**: adds per container `incomplete`: some of its calls
//!   were lost (the collector was over capacity, or the workload used more
//!   distinct syscalls than its slot holds), so its syscalls are a subset
//!   of what it did. v1 and v2 messages decode with `incomplete = false`
//!   (their senders could not say); a collector that must send v2 (see
//!   `[collector] max_wire_version`) withholds an incomplete container
//!   instead, so it never reaches a v2 aggregator as if it were complete.
//! - **4**: adds per container `unverified`: its cgroup is not
//!   provably its runtime's (a 64-hex name under a delegated parent, an id
//!   the engine does not know; issue 9 item 3), so its calls may be forged
//!   and it must never count toward a threshold. v1 to v3 messages decode
//!   with `unverified = false` (their collectors accepted any 64-hex
//!   cgroup: aggregators cannot tell, see docs/UPGRADING.md); a collector
//!   that must send v3 or older withholds an unverified container.
//! - **5**: the v4 body, signed by the host (issue 9 item 2): a
//!   trailer of the host's ed25519 public key and its signature of the
//!   whole message. [`decode`] checks that the signature is the key's
//!   ([`WireError::BadSignature`] otherwise), and
//!   [`decode_with_signer`] returns the key, which the aggregator looks
//!   up in its registry of enrolled hosts (`[aggregator] enrolled_hosts`):
//!   without that registry `host_id` is only asserted by the sender.
//!   v1 to v4 messages decode as unsigned (no signer). v5 is written by
//!   [`encode_signed`] only; a collector sends it once `[collector]
//!   max_wire_version = 5` (the default stays 4 so that a rolling upgrade
//!   never sends v5 to an aggregator that cannot read it; docs/CONFIG.md).
//! - **6**: the v5 layout (signed the same way) plus per
//!   container its seccomp denials in the interval (issue 11):
//!   `(abi, nr, action, errno, count)`, the calls the container's filter
//!   answered in the kernel's place ([`ContainerDelta::denials`]). Which
//!   profile denied them is the container's `seccomp` (v2's field: the
//!   sha256 of the profile the engine applied, or unconfined, the
//!   runtime's default, unknown). v1 to v5 messages decode with no
//!   denials. Denials are feedback on a profile, not evidence for one, so
//!   a collector limited below 6 drops them (one warning) and sends the
//!   rest as before.
//! - **7**: the v6 layout (signed the same way) plus per
//!   container its recorded argument values (issue 11): per (abi, nr) the
//!   arguments recorded (`fields`: index and mask), the distinct masked
//!   values, and the overflow (values that found the kernel's row full),
//!   cumulative since the container started ([`ContainerDelta::args`]).
//!   A container's set of a syscall is sent whole whenever it grew, so
//!   the stores' merge is a set union (and a max of the overflow), the
//!   same whatever the redelivery. v1 to v6 messages decode with no
//!   arguments, and a collector limited below 7 drops them (one warning):
//!   that is safe because the compiler builds an argument rule for a
//!   syscall only when every verified container that made it recorded a
//!   set for it (`ArgEvidence::recorded`); a container whose values did
//!   not travel keeps the syscall allowed by name alone.
//! - **8** (current): the v7 layout (signed the same way) plus per
//!   container the files its processes ran as code (issue 10): path
//!   inside the container's root, kind (0 executable, 1 executable
//!   mapping), device and inode ([`ContainerDelta::executed`]), each sent
//!   once per container. They tell the fleet compiler which files of the
//!   image to analyse for static reachability. v1 to v7 messages decode
//!   with none, and a collector limited below 8 drops them (one warning):
//!   the compiler then analyses the image's command and declared tools
//!   only, and reports that it does.
//!
//! | Version | Adds per container | Older messages decode as | A collector limited below it |
//! |---|---|---|---|
//! | 1 | runtime, id, image, digest, lifetime, syscalls | - | - |
//! | 2 | `pod`, `seccomp` | no pod, `Unknown` filter | drops them |
//! | 3 | `incomplete` | complete | withholds incomplete containers |
//! | 4 | `unverified` | verified | withholds unverified containers |
//! | 5 | the host's signature (per message) | unsigned | sends unsigned messages, which an aggregator with `enrolled_hosts` dead-letters |
//! | 6 | `denials` | no denials | drops the denials (one warning) |
//! | 7 | `args` | no argument sets | drops the argument sets (one warning) |
//! | 8 | `executed` | no files | drops the files (one warning) |
//!
//! A reader reads every version up to its own; a newer version is
//! rejected with [`WireError::UnknownVersion`] (the aggregator keeps such
//! messages in its dead-letter stream for replay after an upgrade: upgrade
//! aggregators first, then collectors).
//!
//! # Ranges
//!
//! [`decode`] rejects, with [`WireError::OutOfRange`] naming the field, a
//! message whose values a real collector cannot produce, so that one
//! broken or hostile host cannot poison the stores' sums (every version,
//! the same ranges):
//!
//! | Field | Accepted |
//! |---|---|
//! | `seq` | `1..=2^63-1` (SQLite's largest integer) |
//! | `calls` of a syscall | `1..=2^48` ([`MAX_CALLS`]: 1024 CPUs making a call every 50 ns for an hour make 7.4e13, below 2^48 = 2.8e14) |
//! | `count` of a denial (v6) | `1..=2^48` ([`MAX_CALLS`], the same reasoning) |
//! | `action` of a denial (v6) | 0 errno (with its errno), 1 trap, 2 kill (errno 0); each (abi, nr, action, errno) once per container, else [`WireError::Malformed`] |
//! | every `*_ms` timestamp | `[2020-01-01, 2100-01-01)` UTC ([`MIN_TIME_MS`], [`END_TIME_MS`]) |
//! | `interval_start_ms` | at most `interval_end_ms` |
//! | argument sets (v7) | each [`ArgSet::check`] (1 or 2 fields of distinct indices 0-5 and non-zero masks, at most [`crate::args::MAX_VALUES`] values of one element per field, no bit outside its mask), `overflow` `0..=2^48` ([`MAX_CALLS`]); a known ABI code and each (abi, nr) once per container, each value once per set, else [`WireError::Malformed`] |
//! | executed files (v8) | each [`ExecutedFile::check`] (an absolute path of at most 4096 bytes, no NUL, no `..`), at most [`crate::executed::MAX_FILES_PER_MESSAGE`] per container; a known kind code and each file once per container, else [`WireError::Malformed`] |
//! | `incomplete` (v3), `unverified` (v4) | a bincode bool, byte 0 or 1 (anything else is [`WireError::Malformed`]) |
//! | signature (v5) | valid for the trailer's key under `verify_strict` (no small-order key, no malleable signature), else [`WireError::BadSignature`] |
//!
//! A host whose clock is outside the window (an RTC at 1970 before NTP)
//! therefore has its messages dead-lettered, with the reason, rather than
//! stored with a timestamp that would skew first/last-seen times.

use crate::{
    Abi, ArgField, ArgSet, ArgSets, DenialKey, Denials, DenyAction, ExecKind, ExecutedFile,
    ExecutedFiles, PhaseSet, SyscallKey,
};
use serde::{Deserialize, Serialize};

/// First four bytes of every message.
pub const MAGIC: [u8; 4] = *b"SMDW";
/// The newest version: what [`decode`] reads up to, and what
/// [`encode_signed`] writes.
pub const CURRENT_VERSION: u16 = 8;
/// The first signed version (the signature trailer).
pub const SIGNED_VERSION: u16 = 5;
/// The newest unsigned version: what [`encode`] writes.
pub const UNSIGNED_VERSION: u16 = 4;
/// The first version that carries denials.
pub const DENIALS_VERSION: u16 = 6;
/// The first version that carries argument values.
pub const ARGS_VERSION: u16 = 7;
/// The first version that carries the files containers ran.
pub const EXECUTED_VERSION: u16 = 8;
/// Bytes of a signed (v5 and later) message after its body: public key,
/// then signature.
pub const TRAILER: usize = PUBLIC_KEY_BYTES + SIGNATURE_BYTES;
/// An ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;
/// An ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;
/// The oldest version [`decode`] still reads.
pub const OLDEST_VERSION: u16 = 1;
/// Largest body accepted (and produced): a host with thousands of busy
/// containers stays far below it.
pub const MAX_BODY_BYTES: usize = 16 << 20;
const HEADER: usize = 6;
/// Largest `calls` of one syscall in one message (see the module's
/// "Ranges").
pub const MAX_CALLS: u64 = 1 << 48;
/// Largest `seq`: SQLite stores it as a signed 64-bit integer.
pub const MAX_SEQ: u64 = i64::MAX as u64;
/// Earliest timestamp accepted: 2020-01-01T00:00:00Z, in ms.
pub const MIN_TIME_MS: u64 = 1_577_836_800_000;
/// First timestamp refused: 2100-01-01T00:00:00Z, in ms.
pub const END_TIME_MS: u64 = 4_102_444_800_000;

/// One publish of one host: everything its containers did in one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Stable host identity (configured, else `/etc/machine-id`).
    pub host_id: String,
    /// The host's message stream: `/proc/sys/kernel/random/boot_id`
    /// (kernel-side state restarts with a boot), then `-` and the random
    /// epoch of the collector's counting instance (a lost state file
    /// starts a new one). Collectors from before epochs send the boot id
    /// alone. Opaque to readers.
    pub boot_id: String,
    /// Per (host, stream), 1, 2, 3... with no gap and no reuse, persisted
    /// across collector restarts.
    pub seq: u64,
    /// Wall-clock milliseconds since the Unix epoch: the interval this
    /// delta covers is `[interval_start_ms, interval_end_ms)`.
    pub interval_start_ms: u64,
    pub interval_end_ms: u64,
    pub containers: Vec<ContainerDelta>,
}

impl Envelope {
    /// The store's idempotency key, `host.boot.seq`: unique per message
    /// for the life of the fleet. Not the broker's message id: that is
    /// [`message_id`], which adds a hash of the bytes.
    pub fn dedupe_id(&self) -> String {
        format!("{}.{}.{}", self.host_id, self.boot_id, self.seq)
    }
}

/// The broker's message id of `bytes`, the encoding of `e`:
/// `host.boot.seq.` and the first 16 hex digits of the bytes' sha256.
///
/// JetStream drops a message whose `Nats-Msg-Id` it has seen within its
/// duplicate window, and the sender chooses that id. Were it
/// `host.boot.seq` alone, anyone able to publish could send a forgery
/// with a victim's next id first, and the victim's real message would be
/// dropped as its duplicate. With the hash, a forgery has an id of its
/// own (it cannot have the real message's bytes, which carry the host's
/// signature over counts it has not seen), both reach the aggregator, and
/// the forgery is dead-lettered there (`enrolled_hosts`). A retry of the
/// same message has the same bytes (the spool keeps them; ed25519
/// signatures are deterministic), so it is still deduplicated.
pub fn message_id(e: &Envelope, bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(bytes);
    format!("{}.{}", e.dedupe_id(), hex(&h[..8]))
}

/// Bytes as lowercase hex digits (keys, signatures).
pub fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    b.iter()
        .fold(String::with_capacity(b.len() * 2), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })
}

/// A host's ed25519 public key: 64 lowercase hex digits as text (what
/// `sandmine host-key` prints and `enrolled_hosts` lists).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_BYTES]);

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// 2n hex digits (either case) to n bytes; `None` for anything else.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = (digit(s[2 * i])? << 4) | digit(s[2 * i + 1])?;
    }
    Some(out)
}

impl std::str::FromStr for PublicKey {
    type Err = String;

    /// 64 hex digits that are a valid ed25519 point.
    fn from_str(s: &str) -> Result<Self, String> {
        let b = unhex::<PUBLIC_KEY_BYTES>(s.trim()).ok_or_else(|| {
            format!(
                "{s:?} is not an ed25519 public key (64 hex digits, as `sandmine host-key` prints)"
            )
        })?;
        ed25519_dalek::VerifyingKey::from_bytes(&b)
            .map_err(|_| format!("{s:?} is not a valid ed25519 public key"))?;
        Ok(PublicKey(b))
    }
}

impl PublicKey {
    /// True when `sig` is this key's ed25519 signature of exactly `msg`
    /// (strict verification: no malleable or small-order forms).
    pub fn verifies(&self, msg: &[u8], sig: &[u8; SIGNATURE_BYTES]) -> bool {
        ed25519_dalek::VerifyingKey::from_bytes(&self.0).is_ok_and(|vk| {
            vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
                .is_ok()
        })
    }
}

/// A host's signing key (its ed25519 seed). `Debug` never shows it.
#[derive(Clone)]
pub struct HostKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostKey(public {})", self.public_key())
    }
}

impl HostKey {
    /// The key of a 32-byte seed (from the kernel's random source).
    pub fn from_seed(seed: [u8; 32]) -> HostKey {
        HostKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The key of a seed file's text: 64 hex digits (surrounding white
    /// space ignored).
    pub fn from_seed_hex(s: &str) -> Option<HostKey> {
        unhex::<32>(s.trim()).map(HostKey::from_seed)
    }

    /// The seed as 64 hex digits (what a seed file holds).
    pub fn seed_hex(&self) -> String {
        hex(self.0.as_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// This key's ed25519 signature of `msg` (deterministic: the same key
    /// and bytes give the same signature).
    pub fn sign(&self, msg: &[u8]) -> [u8; SIGNATURE_BYTES] {
        ed25519_dalek::Signer::sign(&self.0, msg).to_bytes()
    }
}

/// What one container did in one interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerDelta {
    pub container: ContainerRef,
    /// When the collector first saw the container (its creation, to the
    /// interval's precision).
    pub started_at_ms: u64,
    /// Last time a syscall of it was seen, or the interval end if it is
    /// still running.
    pub last_seen_ms: u64,
    /// Set in the interval the container exited.
    pub exited_at_ms: Option<u64>,
    /// Sorted by (abi, nr); only syscalls with calls in this interval.
    pub syscalls: Vec<SyscallDelta>,
    /// Some calls of this container were lost (v3): its syscalls are a
    /// subset of what it did. Once set for a container, the collector
    /// sets it in every later delta of it, and the stores keep it (their
    /// merge is a max), so it can only widen a profile, never narrow one
    /// or count toward enforcement.
    ///
    /// A flag rather than a count of lost calls: the kernel cannot say
    /// which syscalls the lost calls were (a workload with no slot is not
    /// counted at all), so no rule could use a count, and a flag is the
    /// same whatever the grouping or redelivery of messages (a count would
    /// need per-interval deltas and saturating sums in both stores). The
    /// counts stay on the host: `EbpfCollector::lost_calls_of` and the
    /// collector's `lost_calls` metric.
    pub incomplete: bool,
    /// The container's cgroup is not provably its runtime's (v4): a
    /// 64-hex cgroup name under a parent that is delegated, or an id the
    /// engine does not know, so anyone could have made its calls in its
    /// name. Stored, but never counted toward a threshold and never used
    /// to widen or narrow a profile. Sticky like `incomplete`.
    pub unverified: bool,
    /// The calls of this container that its seccomp filter denied in this
    /// interval (v6), exact, per (abi, nr, action): counted in the kernel
    /// at `sys_exit` (errno, trap) and at process exit (kill). The filter
    /// that denied them is `container.seccomp`. Empty below v6.
    pub denials: Denials,
    /// The container's recorded argument values (v7), per syscall: the
    /// whole set since the container started (values and cumulative
    /// overflow), sent for the syscalls whose set changed since the last
    /// message. Sets only grow, so a store merges them by union (values)
    /// and max (overflow). Empty below v7.
    pub args: ArgSets,
    /// Files the container's processes ran as code (v8), first seen since
    /// its last message: each is sent once per container (again only
    /// after a collector crash recomputes a delta), and the stores keep
    /// the union. Empty below v8.
    pub executed: ExecutedFiles,
}

/// Who a container is.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerRef {
    /// "docker", "podman", "containerd", "cri-o", or "unknown".
    pub runtime: String,
    /// The runtime's container id (64 hex for docker), never empty.
    pub id: String,
    /// Image name as the runtime reports it (`nginx:1.25`), "" if unknown.
    pub image: String,
    /// Image digest (`sha256:...`), "" if unknown.
    pub image_digest: String,
    /// Kubernetes identity when the container is a pod's (v2).
    pub pod: Option<PodRef>,
    /// The seccomp filter the container ran under (v2).
    pub seccomp: SeccompFilter,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodRef {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// The seccomp filter a container ran under: a syscall it denies is never
/// observed, so the compiler must know.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeccompFilter {
    /// Not known (a v1 message, or a runtime that does not say).
    #[default]
    Unknown,
    /// No filter, or one that allows everything (what sandmine mines under).
    Unconfined,
    /// The runtime's default profile (Docker's, `RuntimeDefault`).
    RuntimeDefault,
    /// A specific profile, by the sha256 of its JSON (`sha256:...`).
    Profile(String),
}

impl SeccompFilter {
    /// Stable text form, as stored: "unknown", "unconfined",
    /// "runtime/default" or "profile/sha256:...".
    pub fn as_text(&self) -> String {
        match self {
            SeccompFilter::Unknown => "unknown".into(),
            SeccompFilter::Unconfined => "unconfined".into(),
            SeccompFilter::RuntimeDefault => "runtime/default".into(),
            SeccompFilter::Profile(h) => format!("profile/{h}"),
        }
    }

    /// The profile version a denial is stored and shown under: the first
    /// 16 hex digits of a specific profile's sha256, else "unconfined",
    /// "runtime/default" or "unknown".
    pub fn version(&self) -> String {
        match self {
            SeccompFilter::Profile(h) => {
                let hex = h.strip_prefix("sha256:").unwrap_or(h);
                hex.chars().take(16).collect()
            }
            other => other.as_text(),
        }
    }

    pub fn from_text(s: &str) -> SeccompFilter {
        match s {
            "unconfined" => SeccompFilter::Unconfined,
            "runtime/default" => SeccompFilter::RuntimeDefault,
            _ => match s.strip_prefix("profile/") {
                Some(h) => SeccompFilter::Profile(h.to_string()),
                None => SeccompFilter::Unknown,
            },
        }
    }
}

/// The profile version of a seccomp profile file as Docker applies it
/// ([`SeccompFilter::version`] of what `docker inspect` then reports):
/// the docker CLI stores `--security-opt seccomp=FILE` as FILE's JSON
/// compacted (white space outside strings removed, key order kept), and
/// the collector hashes that text. So: the first 16 hex digits of the
/// sha256 of `json` compacted the same way.
pub fn profile_version(json: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut out = Vec::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in json {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    hex(&Sha256::digest(&out)[..8])
}

/// One syscall of one container in one interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallDelta {
    pub abi: Abi,
    pub nr: u32,
    /// Calls in this interval (> 0).
    pub calls: u64,
    /// Phases seen in this interval.
    pub phases: PhaseSet,
    /// When this container first made this syscall (this interval or an
    /// earlier one): lets the store keep per-container incidence with
    /// first and last seen without reading back.
    pub first_seen_ms: u64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message too short ({0} bytes): not a sandmine delta")]
    TooShort(usize),
    #[error("bad magic {0:02x?}: not a sandmine delta")]
    BadMagic([u8; 4]),
    #[error("wire version {version} is newer than this reader (reads {oldest} to {newest}); upgrade the aggregator")]
    UnknownVersion {
        version: u16,
        oldest: u16,
        newest: u16,
    },
    #[error("malformed version-{version} body: {reason}")]
    Malformed { version: u16, reason: String },
    /// Well-formed, but a value is outside the ranges of the module's
    /// "Ranges" table.
    #[error("version-{version} message out of range: {what}")]
    OutOfRange { version: u16, what: String },
    #[error("cannot encode: {0}")]
    Encode(String),
    /// A v5 message whose signature is not its key's: altered on the way,
    /// or forged.
    #[error("version-{version} message: {reason}")]
    BadSignature { version: u16, reason: String },
}

impl WireError {
    /// Kept for a later replay (a newer version) rather than garbage.
    pub fn is_unknown_version(&self) -> bool {
        matches!(self, WireError::UnknownVersion { .. })
    }
}

/// The wire version of a message, from its header alone.
pub fn peek_version(bytes: &[u8]) -> Result<u16, WireError> {
    if bytes.len() < HEADER {
        return Err(WireError::TooShort(bytes.len()));
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic != MAGIC {
        return Err(WireError::BadMagic(magic));
    }
    Ok(u16::from_le_bytes([bytes[4], bytes[5]]))
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_BODY_BYTES>()
}

/// Encodes at [`UNSIGNED_VERSION`] (4), the newest version that needs no
/// key.
pub fn encode(e: &Envelope) -> Result<Vec<u8>, WireError> {
    encode_version(e, UNSIGNED_VERSION)
}

/// Encodes at [`CURRENT_VERSION`] (8), signed with `key`.
pub fn encode_signed(e: &Envelope, key: &HostKey) -> Result<Vec<u8>, WireError> {
    encode_as(e, CURRENT_VERSION, Some(key))
}

/// Encodes at `version`: v5 to v8 need `key` (a [`WireError::Encode`]
/// without one); older versions are unsigned and ignore it. The one
/// writer of every version (the collector calls it with its
/// `max_wire_version`). Below v6, denials are dropped; below v7, argument
/// sets; below v8, executed files.
pub fn encode_as(e: &Envelope, version: u16, key: Option<&HostKey>) -> Result<Vec<u8>, WireError> {
    if version < SIGNED_VERSION {
        return encode_version(e, version);
    }
    if version > CURRENT_VERSION {
        return Err(WireError::Encode(format!("no wire version {version}")));
    }
    let key = key.ok_or_else(|| {
        WireError::Encode(format!(
            "wire version {version} is signed and no host key was given"
        ))
    })?;
    let mut out = encode_signed_body(e, version)?;
    out.extend_from_slice(&key.public_key().0);
    let sig = ed25519_dalek::Signer::sign(&key.0, &out);
    out.extend_from_slice(&sig.to_bytes());
    Ok(out)
}

/// The header and body of a signed version, before its trailer: v5 is
/// the v4 body, v6 adds the denials, v7 the argument sets, v8 the
/// executed files.
fn encode_signed_body(e: &Envelope, version: u16) -> Result<Vec<u8>, WireError> {
    let mut out = match version {
        SIGNED_VERSION => encode_version(e, UNSIGNED_VERSION)?,
        DENIALS_VERSION | ARGS_VERSION | EXECUTED_VERSION => {
            let mut out = Vec::with_capacity(HEADER + 64 + e.containers.len() * 256);
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&version.to_le_bytes());
            match version {
                DENIALS_VERSION => encode_body::<ContainerV6>(e, &mut out),
                ARGS_VERSION => encode_body::<ContainerV7>(e, &mut out),
                _ => encode_body::<ContainerV8>(e, &mut out),
            }
            .map_err(|err| WireError::Encode(err.to_string()))?;
            out
        }
        v => return Err(WireError::Encode(format!("no wire version {v}"))),
    };
    out[4..6].copy_from_slice(&version.to_le_bytes());
    Ok(out)
}

/// The length of `e` encoded at `version`, signed or not (a signed
/// message is its body plus [`TRAILER`]): what the collector measures to
/// split a delta under the broker's limit.
pub fn encoded_len(e: &Envelope, version: u16) -> Result<usize, WireError> {
    if version >= SIGNED_VERSION {
        return Ok(encode_signed_body(e, version)?.len() + TRAILER);
    }
    Ok(encode_version(e, version)?.len())
}

/// Encodes at an unsigned version (a collector held back by
/// `max_wire_version`, tests and fixtures; v5 to v8 are [`encode_as`]'s). Fields
/// the version lacks are dropped, except `incomplete` and `unverified`:
/// below version 3 an incomplete container, below 4 an unverified one, is
/// a [`WireError::Encode`], so it can never travel as complete or verified
/// (the collector leaves such containers out of the message first).
pub fn encode_version(e: &Envelope, version: u16) -> Result<Vec<u8>, WireError> {
    let refused = |what: &str, c: &ContainerDelta| {
        WireError::Encode(format!(
            "container {} is {what} and wire version {version} cannot say so; leave it out of the message",
            c.container.id
        ))
    };
    if version < 3 {
        if let Some(c) = e.containers.iter().find(|c| c.incomplete) {
            return Err(refused("incomplete", c));
        }
    }
    if version < 4 {
        if let Some(c) = e.containers.iter().find(|c| c.unverified) {
            return Err(refused("unverified", c));
        }
    }
    let mut out = Vec::with_capacity(HEADER + 64 + e.containers.len() * 256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    let res = match version {
        1 => encode_body::<ContainerV1>(e, &mut out),
        2 => encode_body::<ContainerV2>(e, &mut out),
        3 => encode_body::<ContainerV3>(e, &mut out),
        4 => encode_body::<ContainerV4>(e, &mut out),
        SIGNED_VERSION | DENIALS_VERSION | ARGS_VERSION | EXECUTED_VERSION => {
            return Err(WireError::Encode(format!(
                "wire version {version} is signed: encode it with a host key (encode_as)"
            )));
        }
        v => {
            return Err(WireError::Encode(format!("no wire version {v}")));
        }
    };
    res.map_err(|err| WireError::Encode(err.to_string()))?;
    Ok(out)
}

/// Decodes any version from [`OLDEST_VERSION`] to [`CURRENT_VERSION`],
/// checks a v5 to v8 signature against its own key, and checks the values
/// against the module's "Ranges". Who signed is [`decode_with_signer`]'s.
pub fn decode(bytes: &[u8]) -> Result<Envelope, WireError> {
    decode_with_signer(bytes).map(|(env, _)| env)
}

/// [`decode`], and the key that signed the message (`None`: a version
/// before 5, unsigned). The signature is valid for that key; whether the
/// key is the host's is the caller's to check (the aggregator's
/// `enrolled_hosts`).
pub fn decode_with_signer(bytes: &[u8]) -> Result<(Envelope, Option<PublicKey>), WireError> {
    let version = peek_version(bytes)?;
    let (env, signer) = decode_unchecked_with_signer(bytes)?;
    check_ranges(&env).map_err(|what| WireError::OutOfRange { version, what })?;
    Ok((env, signer))
}

/// [`decode`] without the range checks: the format alone (the golden
/// fixtures, which pin released bytes whose sample values are extreme).
/// A v5 signature is still checked: it is part of the format.
pub fn decode_unchecked(bytes: &[u8]) -> Result<Envelope, WireError> {
    decode_unchecked_with_signer(bytes).map(|(env, _)| env)
}

fn decode_unchecked_with_signer(bytes: &[u8]) -> Result<(Envelope, Option<PublicKey>), WireError> {
    let version = peek_version(bytes)?;
    let body = &bytes[HEADER..];
    let malformed = |reason: String| WireError::Malformed { version, reason };
    let unsigned = |r: Result<Envelope, String>| r.map(|e| (e, None)).map_err(malformed);
    match version {
        1 => unsigned(decode_body::<ContainerV1>(body)),
        2 => unsigned(decode_body::<ContainerV2>(body)),
        3 => unsigned(decode_body::<ContainerV3>(body)),
        4 => unsigned(decode_body::<ContainerV4>(body)),
        SIGNED_VERSION | DENIALS_VERSION | ARGS_VERSION | EXECUTED_VERSION => {
            let signer = check_signature(bytes, version)?;
            let body = &bytes[HEADER..bytes.len() - TRAILER];
            let env = match version {
                SIGNED_VERSION => decode_body::<ContainerV4>(body),
                DENIALS_VERSION => decode_body::<ContainerV6>(body),
                ARGS_VERSION => decode_body::<ContainerV7>(body),
                _ => decode_body::<ContainerV8>(body),
            }
            .map_err(malformed)?;
            Ok((env, Some(signer)))
        }
        v => Err(WireError::UnknownVersion {
            version: v,
            oldest: OLDEST_VERSION,
            newest: CURRENT_VERSION,
        }),
    }
}

/// The signer of a signed message whose signature is valid for it.
fn check_signature(bytes: &[u8], version: u16) -> Result<PublicKey, WireError> {
    if bytes.len() < HEADER + TRAILER {
        return Err(WireError::Malformed {
            version,
            reason: format!(
                "{} bytes after the header: too short for the {TRAILER}-byte signature trailer",
                bytes.len() - HEADER
            ),
        });
    }
    let bad = |reason: String| WireError::BadSignature { version, reason };
    let sig_at = bytes.len() - SIGNATURE_BYTES;
    let key_at = sig_at - PUBLIC_KEY_BYTES;
    let mut key = [0u8; PUBLIC_KEY_BYTES];
    key.copy_from_slice(&bytes[key_at..sig_at]);
    let mut sig = [0u8; SIGNATURE_BYTES];
    sig.copy_from_slice(&bytes[sig_at..]);
    let signer = PublicKey(key);
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| {
        bad(format!(
            "the signer key {signer} is not a valid ed25519 key"
        ))
    })?;
    vk.verify_strict(
        &bytes[..sig_at],
        &ed25519_dalek::Signature::from_bytes(&sig),
    )
    .map_err(|_| {
        bad(format!(
            "bad signature: the message was not signed by the key it carries ({signer})"
        ))
    })?;
    Ok(signer)
}

fn encode_body<C: WireContainer>(
    e: &Envelope,
    out: &mut Vec<u8>,
) -> Result<usize, bincode::error::EncodeError> {
    bincode::serde::encode_into_std_write(Body::<C>::from(e), out, config())
}

fn decode_body<C: WireContainer>(body: &[u8]) -> Result<Envelope, String> {
    let (v, used) = bincode::serde::decode_from_slice::<Body<C>, _>(body, config())
        .map_err(|e| e.to_string())?;
    if used != body.len() {
        return Err(format!("{} trailing bytes", body.len() - used));
    }
    v.into_envelope()
}

// ---------------------------------------------------------------------------
// Frozen body layouts. Never change a released struct: add a version.

/// The envelope's body, the same in every version so far: only the
/// container layout (`C`) differs. bincode writes a struct as its fields in
/// order, so the generic changes no byte (the golden fixtures prove it).
#[derive(Serialize, Deserialize)]
struct Body<C> {
    host_id: String,
    boot_id: String,
    seq: u64,
    interval_start_ms: u64,
    interval_end_ms: u64,
    containers: Vec<C>,
}

/// One version's container layout, to and from [`ContainerDelta`].
trait WireContainer: Serialize + serde::de::DeserializeOwned {
    fn from_delta(c: &ContainerDelta) -> Self;
    fn into_delta(self) -> Result<ContainerDelta, String>;
}

#[derive(Serialize, Deserialize)]
struct ContainerV1 {
    runtime: String,
    id: String,
    image: String,
    image_digest: String,
    started_at_ms: u64,
    last_seen_ms: u64,
    exited_at_ms: Option<u64>,
    syscalls: Vec<SyscallV1>,
}

/// (abi code, nr, calls, phase bits, first seen): shared by every version.
#[derive(Serialize, Deserialize)]
struct SyscallV1 {
    abi: u8,
    nr: u32,
    calls: u64,
    phases: u8,
    first_seen_ms: u64,
}

/// The container fields of v2 and later, before their flags and syscalls.
/// bincode writes a nested struct as its fields in order, with no framing,
/// so nesting it changes no byte (the golden fixtures prove it).
#[derive(Serialize, Deserialize)]
struct HeadV2 {
    runtime: String,
    id: String,
    image: String,
    image_digest: String,
    /// (namespace, pod, container)
    pod: Option<(String, String, String)>,
    /// `SeccompFilter::as_text`
    seccomp: String,
    started_at_ms: u64,
    last_seen_ms: u64,
    exited_at_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct ContainerV2 {
    head: HeadV2,
    syscalls: Vec<SyscallV1>,
}

#[derive(Serialize, Deserialize)]
struct ContainerV3 {
    head: HeadV2,
    /// Some calls were lost (see [`ContainerDelta::incomplete`]).
    incomplete: bool,
    syscalls: Vec<SyscallV1>,
}

#[derive(Serialize, Deserialize)]
struct ContainerV4 {
    head: HeadV2,
    /// Some calls were lost (see [`ContainerDelta::incomplete`]).
    incomplete: bool,
    /// Its cgroup is not provably its runtime's (see
    /// [`ContainerDelta::unverified`]).
    unverified: bool,
    syscalls: Vec<SyscallV1>,
}

#[derive(Serialize, Deserialize)]
struct ContainerV6 {
    head: HeadV2,
    /// Some calls were lost (see [`ContainerDelta::incomplete`]).
    incomplete: bool,
    /// See [`ContainerDelta::unverified`].
    unverified: bool,
    syscalls: Vec<SyscallV1>,
    /// See [`ContainerDelta::denials`]; sorted by (abi, nr, action, errno).
    denials: Vec<DenialV6>,
}

/// (abi code, nr, action code, errno, count): one kind of denial.
#[derive(Serialize, Deserialize)]
struct DenialV6 {
    abi: u8,
    nr: u32,
    /// 0 errno, 1 trap, 2 kill.
    action: u8,
    /// The errno of action 0; 0 otherwise.
    errno: u16,
    count: u64,
}

#[derive(Serialize, Deserialize)]
struct ContainerV7 {
    head: HeadV2,
    /// Some calls were lost (see [`ContainerDelta::incomplete`]).
    incomplete: bool,
    /// See [`ContainerDelta::unverified`].
    unverified: bool,
    syscalls: Vec<SyscallV1>,
    /// See [`ContainerDelta::denials`]; sorted by (abi, nr, action, errno).
    denials: Vec<DenialV6>,
    /// See [`ContainerDelta::args`]; sorted by (abi, nr).
    args: Vec<ArgSetV7>,
}

/// The v7 layout, then the executed files. bincode writes the nested v7
/// struct as its fields in order, with no framing, so nesting it changes
/// no byte (the golden fixtures prove it).
#[derive(Serialize, Deserialize)]
struct ContainerV8 {
    v7: ContainerV7,
    /// See [`ContainerDelta::executed`]; sorted by (path, kind, dev, ino).
    executed: Vec<ExecutedV8>,
}

/// One file a container ran as code: (path, kind code, dev, ino).
#[derive(Serialize, Deserialize)]
struct ExecutedV8 {
    path: String,
    /// 0 executable, 1 executable mapping ([`ExecKind::code`]).
    kind: u8,
    dev: u64,
    ino: u64,
}

fn executed_out(x: &ExecutedFiles) -> Vec<ExecutedV8> {
    x.iter()
        .map(|f| ExecutedV8 {
            path: f.path.clone(),
            kind: f.kind.code(),
            dev: f.dev,
            ino: f.ino,
        })
        .collect()
}

/// The files of a v8 container: the format alone (a known kind, each
/// file once); what a collector can send is [`check_ranges`]'s.
fn executed_in(v: Vec<ExecutedV8>) -> Result<ExecutedFiles, String> {
    let mut out = ExecutedFiles::new();
    for x in v {
        let kind =
            ExecKind::from_code(x.kind).ok_or_else(|| format!("unknown file kind {}", x.kind))?;
        let f = ExecutedFile {
            path: x.path,
            kind,
            dev: x.dev,
            ino: x.ino,
        };
        if out.contains(&f) {
            return Err(format!(
                "executed file {:?} ({}) listed twice in one container",
                f.path,
                kind.as_str()
            ));
        }
        out.insert(f);
    }
    Ok(out)
}

/// One syscall's recorded arguments in one container: (abi code, nr,
/// fields, values, overflow).
#[derive(Serialize, Deserialize)]
struct ArgSetV7 {
    abi: u8,
    nr: u32,
    /// (argument index, mask), in the values' order.
    fields: Vec<(u8, u32)>,
    /// Sorted, each once; one element per field.
    values: Vec<Vec<u32>>,
    overflow: u64,
}

fn args_out(a: &ArgSets) -> Vec<ArgSetV7> {
    a.iter()
        .map(|(k, s)| ArgSetV7 {
            abi: k.abi.code(),
            nr: k.nr,
            fields: s.fields.iter().map(|f| (f.index, f.mask)).collect(),
            values: s.values.iter().cloned().collect(),
            overflow: s.overflow,
        })
        .collect()
}

/// The sets of a v7 container: the format alone (a known ABI, each
/// syscall and each value once); what a collector can record is
/// [`check_ranges`]'s.
fn args_in(v: Vec<ArgSetV7>) -> Result<ArgSets, String> {
    let mut out = ArgSets::new();
    for a in v {
        let abi = Abi::from_code(a.abi).ok_or_else(|| format!("unknown ABI code {}", a.abi))?;
        let n = a.values.len();
        let set = ArgSet {
            fields: a
                .fields
                .into_iter()
                .map(|(index, mask)| ArgField { index, mask })
                .collect(),
            values: a.values.into_iter().collect(),
            overflow: a.overflow,
        };
        if set.values.len() != n {
            return Err(format!(
                "arguments of syscall ({abi}, {}): a value listed twice",
                a.nr
            ));
        }
        if out.insert(SyscallKey { abi, nr: a.nr }, set).is_some() {
            return Err(format!(
                "arguments of syscall ({abi}, {}) listed twice in one container",
                a.nr
            ));
        }
    }
    Ok(out)
}

/// A deny action's wire code and errno.
pub fn action_code(a: DenyAction) -> (u8, u16) {
    match a {
        DenyAction::Errno(e) => (0, e),
        DenyAction::Trap => (1, 0),
        DenyAction::Kill => (2, 0),
    }
}

/// The deny action of a wire code and errno (`None`: no such action).
pub fn action_from_code(code: u8, errno: u16) -> Option<DenyAction> {
    match (code, errno) {
        (0, e) => Some(DenyAction::Errno(e)),
        (1, 0) => Some(DenyAction::Trap),
        (2, 0) => Some(DenyAction::Kill),
        _ => None,
    }
}

fn denials_out(d: &Denials) -> Vec<DenialV6> {
    d.iter()
        .map(|(k, n)| {
            let (action, errno) = action_code(k.action);
            DenialV6 {
                abi: k.abi.code(),
                nr: k.nr,
                action,
                errno,
                count: *n,
            }
        })
        .collect()
}

fn denials_in(v: Vec<DenialV6>) -> Result<Denials, String> {
    let mut out = Denials::new();
    for d in v {
        let abi = Abi::from_code(d.abi).ok_or_else(|| format!("unknown ABI code {}", d.abi))?;
        let action = action_from_code(d.action, d.errno)
            .ok_or_else(|| format!("bad denial action {} (errno {})", d.action, d.errno))?;
        let key = DenialKey {
            abi,
            nr: d.nr,
            action,
        };
        if out.insert(key, d.count).is_some() {
            return Err(format!(
                "denial ({}, {}, {action}) listed twice in one container",
                abi, d.nr
            ));
        }
    }
    Ok(out)
}

fn syscalls_out(v: &[SyscallDelta]) -> Vec<SyscallV1> {
    v.iter()
        .map(|s| SyscallV1 {
            abi: s.abi.code(),
            nr: s.nr,
            calls: s.calls,
            phases: s.phases.0,
            first_seen_ms: s.first_seen_ms,
        })
        .collect()
}

fn syscalls_in(v: Vec<SyscallV1>) -> Result<Vec<SyscallDelta>, String> {
    v.into_iter()
        .map(|s| {
            let abi = Abi::from_code(s.abi).ok_or_else(|| format!("unknown ABI code {}", s.abi))?;
            if s.phases > 0x0f {
                return Err(format!("bad phase bits {:#x}", s.phases));
            }
            Ok(SyscallDelta {
                abi,
                nr: s.nr,
                calls: s.calls,
                phases: PhaseSet(s.phases),
                first_seen_ms: s.first_seen_ms,
            })
        })
        .collect()
}

fn check_ids(host: &str, boot: &str, seq: u64) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty host id".into());
    }
    if boot.is_empty() {
        return Err("empty boot id".into());
    }
    if seq == 0 {
        return Err("sequence 0 (sequences start at 1)".into());
    }
    Ok(())
}

/// The "Ranges" of the module documentation: `Err(what)` names the first
/// value outside them (containers and syscalls by index: their ids are the
/// sender's text).
fn check_ranges(e: &Envelope) -> Result<(), String> {
    // The field's name is formatted only for an error: formatted for every
    // syscall of every container, it was the aggregator's largest cost
    // after the allocator (benchmarks/fleet, "Where the aggregator's CPU
    // goes").
    fn time(what: impl FnOnce() -> String, v: u64) -> Result<(), String> {
        if (MIN_TIME_MS..END_TIME_MS).contains(&v) {
            Ok(())
        } else {
            Err(format!(
                "{} {v} not in {MIN_TIME_MS}..{END_TIME_MS} (2020-01-01 to 2100-01-01 UTC)",
                what()
            ))
        }
    }
    if !(1..=MAX_SEQ).contains(&e.seq) {
        return Err(format!("seq {} not in 1..={MAX_SEQ}", e.seq));
    }
    time(|| "interval_start_ms".into(), e.interval_start_ms)?;
    time(|| "interval_end_ms".into(), e.interval_end_ms)?;
    if e.interval_start_ms > e.interval_end_ms {
        return Err(format!(
            "interval_start_ms {} after interval_end_ms {}",
            e.interval_start_ms, e.interval_end_ms
        ));
    }
    for (ci, c) in e.containers.iter().enumerate() {
        time(|| format!("container {ci}: started_at_ms"), c.started_at_ms)?;
        time(|| format!("container {ci}: last_seen_ms"), c.last_seen_ms)?;
        if let Some(x) = c.exited_at_ms {
            time(|| format!("container {ci}: exited_at_ms"), x)?;
        }
        for (si, s) in c.syscalls.iter().enumerate() {
            if !(1..=MAX_CALLS).contains(&s.calls) {
                return Err(format!(
                    "container {ci} syscall {si}: calls {} not in 1..={MAX_CALLS}",
                    s.calls
                ));
            }
            time(
                || format!("container {ci} syscall {si}: first_seen_ms"),
                s.first_seen_ms,
            )?;
        }
        for (di, n) in c.denials.values().enumerate() {
            if !(1..=MAX_CALLS).contains(n) {
                return Err(format!(
                    "container {ci} denial {di}: count {n} not in 1..={MAX_CALLS}"
                ));
            }
        }
        for (k, a) in &c.args {
            a.check()
                .map_err(|r| format!("container {ci} args of {} {}: {r}", k.abi, k.nr))?;
            if a.overflow > MAX_CALLS {
                return Err(format!(
                    "container {ci} args of {} {}: overflow {} not in 0..={MAX_CALLS}",
                    k.abi, k.nr, a.overflow
                ));
            }
        }
        if c.executed.len() > crate::executed::MAX_FILES_PER_MESSAGE {
            return Err(format!(
                "container {ci}: {} executed files (at most {} per message)",
                c.executed.len(),
                crate::executed::MAX_FILES_PER_MESSAGE
            ));
        }
        for (fi, f) in c.executed.iter().enumerate() {
            f.check()
                .map_err(|r| format!("container {ci} executed file {fi}: {r}"))?;
        }
    }
    Ok(())
}

impl<C: WireContainer> From<&Envelope> for Body<C> {
    fn from(e: &Envelope) -> Self {
        Body {
            host_id: e.host_id.clone(),
            boot_id: e.boot_id.clone(),
            seq: e.seq,
            interval_start_ms: e.interval_start_ms,
            interval_end_ms: e.interval_end_ms,
            containers: e.containers.iter().map(C::from_delta).collect(),
        }
    }
}

impl<C: WireContainer> Body<C> {
    fn into_envelope(self) -> Result<Envelope, String> {
        check_ids(&self.host_id, &self.boot_id, self.seq)?;
        let containers = self
            .containers
            .into_iter()
            .map(C::into_delta)
            .collect::<Result<_, String>>()?;
        Ok(Envelope {
            host_id: self.host_id,
            boot_id: self.boot_id,
            seq: self.seq,
            interval_start_ms: self.interval_start_ms,
            interval_end_ms: self.interval_end_ms,
            containers,
        })
    }
}

fn pod_out(c: &ContainerRef) -> Option<(String, String, String)> {
    c.pod
        .as_ref()
        .map(|p| (p.namespace.clone(), p.pod.clone(), p.container.clone()))
}

fn pod_in(pod: Option<(String, String, String)>) -> Option<PodRef> {
    pod.map(|(namespace, pod, container)| PodRef {
        namespace,
        pod,
        container,
    })
}

impl WireContainer for ContainerV1 {
    fn from_delta(c: &ContainerDelta) -> Self {
        ContainerV1 {
            runtime: c.container.runtime.clone(),
            id: c.container.id.clone(),
            image: c.container.image.clone(),
            image_digest: c.container.image_digest.clone(),
            started_at_ms: c.started_at_ms,
            last_seen_ms: c.last_seen_ms,
            exited_at_ms: c.exited_at_ms,
            syscalls: syscalls_out(&c.syscalls),
        }
    }

    fn into_delta(self) -> Result<ContainerDelta, String> {
        Ok(ContainerDelta {
            container: ContainerRef {
                runtime: self.runtime,
                id: self.id,
                image: self.image,
                image_digest: self.image_digest,
                pod: None,
                seccomp: SeccompFilter::Unknown,
            },
            started_at_ms: self.started_at_ms,
            last_seen_ms: self.last_seen_ms,
            exited_at_ms: self.exited_at_ms,
            syscalls: syscalls_in(self.syscalls)?,
            incomplete: false,
            unverified: false,
            denials: Denials::new(),
            args: ArgSets::new(),
            executed: ExecutedFiles::new(),
        })
    }
}

impl HeadV2 {
    fn from_delta(c: &ContainerDelta) -> Self {
        HeadV2 {
            runtime: c.container.runtime.clone(),
            id: c.container.id.clone(),
            image: c.container.image.clone(),
            image_digest: c.container.image_digest.clone(),
            pod: pod_out(&c.container),
            seccomp: c.container.seccomp.as_text(),
            started_at_ms: c.started_at_ms,
            last_seen_ms: c.last_seen_ms,
            exited_at_ms: c.exited_at_ms,
        }
    }

    /// The delta, with what the version's layout adds to the head.
    fn into_delta(
        self,
        syscalls: Vec<SyscallV1>,
        incomplete: bool,
        unverified: bool,
    ) -> Result<ContainerDelta, String> {
        Ok(ContainerDelta {
            container: ContainerRef {
                runtime: self.runtime,
                id: self.id,
                image: self.image,
                image_digest: self.image_digest,
                pod: pod_in(self.pod),
                seccomp: SeccompFilter::from_text(&self.seccomp),
            },
            started_at_ms: self.started_at_ms,
            last_seen_ms: self.last_seen_ms,
            exited_at_ms: self.exited_at_ms,
            syscalls: syscalls_in(syscalls)?,
            incomplete,
            unverified,
            denials: Denials::new(),
            args: ArgSets::new(),
            executed: ExecutedFiles::new(),
        })
    }
}

impl WireContainer for ContainerV2 {
    fn from_delta(c: &ContainerDelta) -> Self {
        ContainerV2 {
            head: HeadV2::from_delta(c),
            syscalls: syscalls_out(&c.syscalls),
        }
    }

    fn into_delta(self) -> Result<ContainerDelta, String> {
        self.head.into_delta(self.syscalls, false, false)
    }
}

impl WireContainer for ContainerV3 {
    fn from_delta(c: &ContainerDelta) -> Self {
        ContainerV3 {
            head: HeadV2::from_delta(c),
            incomplete: c.incomplete,
            syscalls: syscalls_out(&c.syscalls),
        }
    }

    fn into_delta(self) -> Result<ContainerDelta, String> {
        self.head.into_delta(self.syscalls, self.incomplete, false)
    }
}

impl WireContainer for ContainerV4 {
    fn from_delta(c: &ContainerDelta) -> Self {
        ContainerV4 {
            head: HeadV2::from_delta(c),
            incomplete: c.incomplete,
            unverified: c.unverified,
            syscalls: syscalls_out(&c.syscalls),
        }
    }

    fn into_delta(self) -> Result<ContainerDelta, String> {
        self.head
            .into_delta(self.syscalls, self.incomplete, self.unverified)
    }
}

impl WireContainer for ContainerV6 {
    fn from_delta(c: &ContainerDelta) -> Self {
        ContainerV6 {
            head: HeadV2::from_delta(c),
            incomplete: c.incomplete,
            unverified: c.unverified,
            syscalls: syscalls_out(&c.syscalls),
            denials: denials_out(&c.denials),
        }
    }

    fn into_delta(self) -> Result<ContainerDelta, String> {
        let mut d = self
            .head
            .into_delta(self.syscalls, self.incomplete, self.unverified)?;
        d.denials = denials_in(self.denials)?;
        Ok(d)
    }
}

impl WireContainer for ContainerV7 {
    fn from_delta(c: &ContainerDelta) -> Self {
        ContainerV7 {
            head: HeadV2::from_delta(c),
            incomplete: c.incomplete,
            unverified: c.unverified,
            syscalls: syscalls_out(&c.syscalls),
            denials: denials_out(&c.denials),
            args: args_out(&c.args),
        }
    }

    fn into_delta(self) -> Result<ContainerDelta, String> {
        let mut d = self
            .head
            .into_delta(self.syscalls, self.incomplete, self.unverified)?;
        d.denials = denials_in(self.denials)?;
        d.args = args_in(self.args)?;
        Ok(d)
    }
}

impl WireContainer for ContainerV8 {
    fn from_delta(c: &ContainerDelta) -> Self {
        ContainerV8 {
            v7: ContainerV7::from_delta(c),
            executed: executed_out(&c.executed),
        }
    }

    fn into_delta(self) -> Result<ContainerDelta, String> {
        let mut d = self.v7.into_delta()?;
        d.executed = executed_in(self.executed)?;
        Ok(d)
    }
}
