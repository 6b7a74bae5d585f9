//! The daemon's committed state and the file that holds it.
//!
//! The state is what the last committed message was computed from: its
//! seq, where its interval ended, and per workload key the cumulative
//! counts it had published. [`StateFile::store`] replaces the file
//! atomically (temp file, fsync, `rename`, fsync of the directory): the
//! `rename` is the commit point of the crash-safety protocol (see the
//! module documentation of [`super`]).

use super::DaemonError;
use crate::ebpf::WorkloadKey;
use schemas::wire::{ContainerRef, PodRef, SeccompFilter};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const STATE_VERSION: u32 = 1;

/// The state file's content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct State {
    pub version: u32,
    pub host_id: String,
    /// The kernel's boot id when the stream started.
    pub boot_id: String,
    /// The counting instance within the boot: random hex, drawn when the
    /// stream starts afresh (see [`State::stream_id`]). Empty in state
    /// files written before it existed, whose stream keeps its id.
    #[serde(default)]
    pub epoch: String,
    /// Last committed seq of this stream (0: none yet).
    pub seq: u64,
    /// End of the last committed interval (0: none yet).
    pub last_end_ms: u64,
    /// Per workload key ([`key_text`]): the last published cumulative
    /// counts.
    pub keys: BTreeMap<String, KeyState>,
    /// Per container id.
    pub containers: BTreeMap<String, ContainerRecord>,
}

impl State {
    /// The empty state of a new message stream (a new boot, a new host
    /// id, or a lost state file), with a fresh random epoch.
    pub fn new(host_id: &str, boot_id: &str) -> Result<State, DaemonError> {
        Ok(State {
            version: STATE_VERSION,
            host_id: host_id.to_string(),
            boot_id: boot_id.to_string(),
            epoch: random_epoch()?,
            ..State::default()
        })
    }

    /// The message stream's id, sent as the envelope's `boot_id`: the
    /// kernel boot id, then `-` and the epoch. Seqs restart at 1 in each
    /// stream, so a stream that starts afresh within one boot (its state
    /// file was lost while the kernel counters survived) can never reuse
    /// a stored `(host, boot, seq)`.
    pub fn stream_id(&self) -> String {
        if self.epoch.is_empty() {
            self.boot_id.clone()
        } else {
            format!("{}-{}", self.boot_id, self.epoch)
        }
    }
}

/// 64 random bits from the kernel, as 16 hex digits.
fn random_epoch() -> Result<String, DaemonError> {
    use std::io::Read;
    let mut b = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| DaemonError::io("reading /dev/urandom".to_string(), e))?;
    Ok(format!("{:016x}", u64::from_le_bytes(b)))
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KeyState {
    pub container_id: String,
    /// (wire abi code, nr, cumulative calls).
    pub counts: Vec<(u8, u32, u64)>,
    /// (wire abi code, nr, wire action code, errno, cumulative denials):
    /// the kernel's denial counts the last commit had seen (sent at wire
    /// version 6, dropped below it). Absent in state files written before
    /// denials were read (read as none: the next tick sends what the
    /// kernel counted so far).
    #[serde(default)]
    pub denied: Vec<(u8, u32, u8, u16, u64)>,
    /// (wire abi code, nr, distinct values, overflow): the size of each
    /// argument set the last commit had seen (sent whole at wire version
    /// 7 when it changed, dropped below it). Sets only grow while a key
    /// holds its slot, so the size says whether one changed; one entry
    /// per recorded syscall of the key, so the state stays small. Absent
    /// in state files written before argument sets were sent (read as
    /// none: the next tick sends every set, which the stores' union
    /// absorbs).
    #[serde(default)]
    pub args: Vec<(u8, u32, u64, u64)>,
    /// Its final delta is committed: delete it from the kernel.
    pub done: bool,
}

/// What the state remembers of a container (serialised as
/// `containers.<id>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ContainerRecord {
    pub runtime: String,
    pub image: String,
    pub image_digest: String,
    pub pod: Option<(String, String, String)>,
    pub seccomp: String,
    pub started_at_ms: u64,
    /// (wire abi code, nr, first seen ms).
    pub first_seen: Vec<(u8, u32, u64)>,
    pub exited: bool,
    /// Some of its calls were lost: sent with `incomplete` from then on
    /// (or withheld below wire version 3), for the rest of its life and
    /// across restarts. Absent in state files written before it (read as
    /// `false`; the kernel's lost counts, which outlive a restart, mark it
    /// again at the next tick).
    #[serde(default)]
    pub incomplete: bool,
    /// A key of it failed verification (its cgroup is not provably its
    /// runtime's, [`super::verify`]): sent with `unverified` from then on
    /// (or withheld below wire version 4), for the rest of its life and
    /// across restarts. Absent in state files written before it (read as
    /// `false`; the daemon verifies every key again after a restart).
    #[serde(default)]
    pub unverified: bool,
    /// The files it ran as code that a committed message has carried (or
    /// dropped, below wire version 8), by
    /// [`crate::executed::fingerprint`], sorted: each is sent once.
    /// Absent in state files written before them (read as none: the next
    /// tick sends what its processes run, which the stores' union
    /// absorbs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub executed: Vec<u64>,
}

impl ContainerRecord {
    /// A container first met now, from what the engine said of it.
    pub fn new(r: ContainerRef, started_at_ms: u64) -> ContainerRecord {
        ContainerRecord {
            runtime: r.runtime,
            image: r.image,
            image_digest: r.image_digest,
            pod: r.pod.map(|p| (p.namespace, p.pod, p.container)),
            seccomp: r.seccomp.as_text(),
            started_at_ms,
            first_seen: Vec::new(),
            exited: false,
            incomplete: false,
            unverified: false,
            executed: Vec::new(),
        }
    }

    pub fn to_ref(&self, id: &str) -> ContainerRef {
        ContainerRef {
            runtime: self.runtime.clone(),
            id: id.to_string(),
            image: self.image.clone(),
            image_digest: self.image_digest.clone(),
            pod: self.pod.clone().map(|(namespace, pod, container)| PodRef {
                namespace,
                pod,
                container,
            }),
            seccomp: SeccompFilter::from_text(&self.seccomp),
        }
    }
}

/// A workload key as the state spells it: `cgroup_id:mntns_id`.
pub(super) fn key_text(k: &WorkloadKey) -> String {
    format!("{}:{}", k.cgroup_id, k.mntns_id)
}

pub(super) fn key_from_text(s: &str) -> Option<WorkloadKey> {
    let (a, b) = s.split_once(':')?;
    Some(WorkloadKey {
        cgroup_id: a.parse().ok()?,
        mntns_id: b.parse().ok()?,
    })
}

/// `state.json` in the daemon's state directory.
#[derive(Clone, Debug)]
pub(super) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn in_dir(dir: &Path) -> StateFile {
        StateFile {
            path: dir.join("state.json"),
        }
    }

    /// The committed state of this host's stream in boot `boot_id`. A
    /// missing file, or one of another boot or host id, starts a new
    /// stream (seq 0, a new epoch; the second value is then true); a file
    /// that does not parse is an error, never silently replaced.
    pub fn load(&self, host_id: &str, boot_id: &str) -> Result<(State, bool), DaemonError> {
        let state = match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice::<State>(&b).map_err(|e| {
                DaemonError::State(format!("{} is corrupt: {e}", self.path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((State::new(host_id, boot_id)?, true))
            }
            Err(e) => {
                return Err(DaemonError::io(
                    format!("reading {}", self.path.display()),
                    e,
                ))
            }
        };
        if state.boot_id != boot_id || state.host_id != host_id {
            // New boot: new kernel counters, seq restarts at 1. (A changed
            // host id starts a new message stream too.)
            return Ok((State::new(host_id, boot_id)?, true));
        }
        Ok((state, false))
    }

    /// Replaces the file atomically: after a crash it holds either the
    /// old state or `state`, whole.
    pub fn store(&self, state: &State) -> Result<(), DaemonError> {
        let bytes = serde_json::to_vec(state)
            .map_err(|e| DaemonError::State(format!("encoding the state: {e}")))?;
        write_atomic(&self.path, &bytes)
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DaemonError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let io = |e| DaemonError::io(format!("writing {}", tmp.display()), e);
    let mut f = sysutil::fs::create_private_file(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path)
        .map_err(|e| DaemonError::io(format!("renaming {}", tmp.display()), e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DaemonError::io(format!("fsync {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state file names every container and its counts: the owner's
    /// only, even over a leftover temp file of a looser mode.
    #[test]
    fn the_state_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::in_dir(dir.path());
        let tmp = dir.path().join("state.tmp");
        std::fs::write(&tmp, b"leftover").expect("write");
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        f.store(&State::new("h", "b").expect("state"))
            .expect("store");
        let mode = std::fs::metadata(dir.path().join("state.json"))
            .expect("state.json")
            .permissions()
            .mode();
        assert_eq!(format!("{:o}", mode & 0o777), "600");
    }

    #[test]
    fn key_text_round_trip() {
        let k = WorkloadKey {
            cgroup_id: 12,
            mntns_id: 345,
        };
        assert_eq!(key_from_text(&key_text(&k)), Some(k));
        assert_eq!(key_from_text("12"), None);
        assert_eq!(key_from_text("a:1"), None);
    }

    /// A state file written before `incomplete` existed still loads (the
    /// flag reads as false), and one with it round-trips.
    #[test]
    fn a_state_file_without_incomplete_still_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::in_dir(dir.path());
        let old = br#"{"version":1,"host_id":"h","boot_id":"b","seq":3,"last_end_ms":99,"keys":{"1:2":{"container_id":"c","counts":[[0,39,5]],"done":false}},"containers":{"c":{"runtime":"docker","image":"img:1","image_digest":"","pod":null,"seccomp":"unknown","started_at_ms":7,"first_seen":[[0,39,8]],"exited":false}}}"#;
        std::fs::write(dir.path().join("state.json"), old).expect("write");
        let (mut s, new) = f.load("h", "b").expect("old format");
        assert_eq!((s.seq, new), (3, false));
        // Nor denials nor argument sets: read as none sent.
        assert!(s.keys["1:2"].denied.is_empty() && s.keys["1:2"].args.is_empty());
        let c = &s.containers["c"];
        assert_eq!(
            (c.image.as_str(), c.incomplete, c.unverified),
            ("img:1", false, false)
        );
        s.containers.get_mut("c").expect("c").incomplete = true;
        s.containers.get_mut("c").expect("c").unverified = true;
        f.store(&s).expect("store");
        assert!(std::fs::read_to_string(dir.path().join("state.json"))
            .expect("read")
            .contains(r#""exited":false,"incomplete":true,"unverified":true}"#));
        assert_eq!(f.load("h", "b").expect("load"), (s, false));
    }

    #[test]
    fn load_store_and_stream_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::in_dir(dir.path());
        let assert_new = |(s, new): (State, bool), host: &str, boot: &str| {
            assert!(new && s.seq == 0 && s.keys.is_empty(), "{s:?}");
            assert_eq!((s.host_id.as_str(), s.boot_id.as_str()), (host, boot));
            assert_eq!(s.epoch.len(), 16, "{s:?}");
            assert_eq!(s.stream_id(), format!("{boot}-{}", s.epoch));
            s.epoch
        };
        let first = assert_new(f.load("h", "b1").expect("missing"), "h", "b1");
        // A lost state file starts another stream: never the same epoch.
        let again = assert_new(f.load("h", "b1").expect("missing"), "h", "b1");
        assert_ne!(first, again);
        let mut s = State::new("h", "b1").expect("new");
        s.seq = 7;
        s.last_end_ms = 1234;
        s.keys.insert(
            "1:2".into(),
            KeyState {
                container_id: "c".into(),
                counts: vec![(0, 39, 5)],
                denied: vec![(0, 155, 0, 1, 3)],
                args: vec![(0, 41, 2, 0)],
                done: false,
            },
        );
        f.store(&s).expect("store");
        assert_eq!(f.load("h", "b1").expect("load"), (s, false));
        // A new boot or another host id: a new stream from seq 0.
        assert_new(f.load("h", "b2").expect("load"), "h", "b2");
        assert_new(f.load("g", "b1").expect("load"), "g", "b1");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["state.json"]);
        std::fs::write(dir.path().join("state.json"), b"{\"version\":1,").expect("write");
        let e = f.load("h", "b1").expect_err("corrupt");
        assert!(e.to_string().contains("is corrupt"), "{e}");
    }

    /// A state file written before epochs existed keeps its stream: the
    /// same id, the same seqs.
    #[test]
    fn a_state_without_an_epoch_keeps_its_stream_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = StateFile::in_dir(dir.path());
        std::fs::write(
            dir.path().join("state.json"),
            br#"{"version":1,"host_id":"h","boot_id":"b1","seq":7,"last_end_ms":1234,"keys":{},"containers":{}}"#,
        )
        .expect("write");
        let (s, new) = f.load("h", "b1").expect("load");
        assert!(!new);
        assert_eq!(
            (s.seq, s.epoch.as_str(), s.stream_id()),
            (7, "", "b1".to_string())
        );
    }
}
