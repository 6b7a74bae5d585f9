//! `[publish]`: where, how often and under which gate compiled profiles
//! are published. The one definition of the section (docs/CONFIG.md).

use crate::candidate::GatePolicy;
use crate::schedule::{Schedule, ScheduleError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// A new syscall enters a published profile only once seen on this
    /// many hosts (see [`GatePolicy::min_hosts`]).
    pub min_hosts: u64,
    /// A syscall leaves a published profile only after it has been unused
    /// this long (`7d`; see [`GatePolicy::shrink_after`]).
    #[serde(with = "sysutil::duration")]
    pub shrink_after: Duration,
    /// How often `aggregate` / `standalone` publish (`every 1h`); they
    /// publish only when a target is configured.
    pub schedule: String,
    /// Directory target: `<dir>/<image-slug>/<version>/...`.
    pub dir: Option<PathBuf>,
    /// Git target: a work tree (created with `git init` if missing); one
    /// commit per changed image.
    pub git: Option<PathBuf>,
    /// Also publish to the NATS object store bucket `sandmine-profiles`,
    /// on the `[broker]` NATS server (nats-server 2.10 or newer).
    pub object_store: bool,
    /// OCI registry target (`[publish.oci]`): every profile version pushed
    /// as a seccomp-profile artifact (publish/README.md).
    pub oci: Option<crate::OciConfig>,
    /// Policy file (TOML); the documented defaults without it.
    pub policy: Option<PathBuf>,
    /// The runtime's must-allow base: `auto`, `none` or a FILE (see
    /// `sandmine compile --help`).
    pub runtime_base: String,
    /// What a round does when an enforced profile version is followed by
    /// seccomp denials (wire v6) of a syscall the fleet had seen, on at
    /// least `min_hosts` hosts: `log` (default) forces the image back into
    /// log mode, a force-log lever by `sandmine` whose reason names the
    /// denials; `add` adds the denied syscalls to the image's profile
    /// (recorded in its meta, compiled in by every later round); `off`
    /// does nothing.
    pub on_denials: OnDenials,
    /// The ed25519 key (a seed file, mode 0600, `sandmine signing-key`)
    /// that signs every published profile file: `F.sig` beside each `F`
    /// (`crate::sign`). Publishing refuses to run without it unless
    /// `allow_unsigned` is set.
    pub signing_key_file: Option<PathBuf>,
    /// The same key's seed (64 hex digits) given as a value, for where a
    /// private file cannot be had (a Kubernetes Secret as the environment
    /// variable `SANDMINE_PUBLISH__SIGNING_KEY`: Secret volumes are
    /// group-readable under a pod's fsGroup). Not with `signing_key_file`.
    /// `Debug` never shows it.
    pub signing_key: Option<sysutil::Secret>,
    /// Publish unsigned profiles when no `signing_key_file` is set (a
    /// warning each round). Nodes that check signatures refuse them.
    pub allow_unsigned: bool,
    /// Static reachability for every round: the Engine API socket each
    /// image is read from (`sandmine compile --help`, `--reach-engine`).
    /// None: no analysis.
    pub reach_engine: Option<PathBuf>,
    /// Declared tools (paths or names in the image's PATH) analysed in
    /// every image, with `reach_engine`.
    pub tools: Vec<String>,
    /// The analysis cache directory (`off`: none; default
    /// /var/lib/sandmine/reach-cache).
    pub reach_cache: Option<PathBuf>,
}

/// `[publish] on_denials`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDenials {
    Log,
    Add,
    Off,
}

impl Default for PublishConfig {
    fn default() -> Self {
        let gate = GatePolicy::default();
        PublishConfig {
            min_hosts: gate.min_hosts,
            shrink_after: gate.shrink_after,
            schedule: "every 1h".into(),
            dir: None,
            git: None,
            object_store: false,
            oci: None,
            policy: None,
            runtime_base: "auto".into(),
            on_denials: OnDenials::Log,
            signing_key_file: None,
            signing_key: None,
            allow_unsigned: false,
            reach_engine: None,
            tools: Vec::new(),
            reach_cache: None,
        }
    }
}

impl PublishConfig {
    /// True when some target is set: only then do `aggregate` and
    /// `standalone` publish.
    pub fn has_target(&self) -> bool {
        self.dir.is_some() || self.git.is_some() || self.object_store || self.oci.is_some()
    }

    pub fn gate_policy(&self) -> GatePolicy {
        GatePolicy {
            min_hosts: self.min_hosts,
            shrink_after: self.shrink_after,
        }
    }

    pub fn schedule(&self) -> Result<Schedule, ScheduleError> {
        Schedule::parse(&self.schedule)
    }

    /// The targets, for logs: `dir D, git G, NATS object store`.
    pub fn describe_targets(&self) -> String {
        let mut t = Vec::new();
        if let Some(d) = &self.dir {
            t.push(format!("dir {}", d.display()));
        }
        if let Some(g) = &self.git {
            t.push(format!("git {}", g.display()));
        }
        if self.object_store {
            t.push("NATS object store".to_string());
        }
        if let Some(o) = &self.oci {
            t.push(format!("OCI registry {}/{}", o.registry, o.repository));
        }
        t.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<PublishConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn parse_and_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, PublishConfig::default());
        assert_eq!(c.gate_policy(), GatePolicy::default());
        assert!(!c.has_target());
        let c =
            parse("min_hosts = 3\nshrink_after = \"2d\"\nschedule = \"every 15m\"\ndir = \"/p\"\n")
                .unwrap();
        assert_eq!(
            c.gate_policy(),
            GatePolicy {
                min_hosts: 3,
                shrink_after: Duration::from_secs(2 * 86_400)
            }
        );
        assert_eq!(c.schedule().unwrap().interval(), Duration::from_secs(900));
        assert_eq!(c.describe_targets(), "dir /p");
        let e = parse("min_host = 3\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `min_host`"), "{e}");
        assert_eq!(
            parse("on_denials = \"off\"\n").unwrap().on_denials,
            OnDenials::Off
        );
        assert_eq!(
            parse("on_denials = \"add\"\n").unwrap().on_denials,
            OnDenials::Add
        );
        let e = parse("on_denials = \"allow\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown variant `allow`, expected one of `log`, `add`, `off`"),
            "{e}"
        );
        let e = parse("shrink_after = \"7 days\"\n").unwrap_err();
        assert!(e.to_string().contains("invalid duration \"7 days\""), "{e}");
    }
}
