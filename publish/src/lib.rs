//! Versioned, gated publishing of compiled per-image seccomp profiles.
//!
//! The policy compiler turns fleet observations into profile files; this
//! crate decides whether such a candidate may replace what is published
//! ([`gate`]), gives it a content-addressed version ([`Version`]), describes
//! what changed ([`SyscallDiff`]) and writes it to a [`Target`]: a directory
//! tree ([`DirTarget`]), a git repository ([`GitTarget`]), an object store
//! ([`ObjectStoreTarget`]) or an OCI registry ([`OciTarget`]). [`publish_all`] runs the whole round for many
//! images and returns a deterministic [`PublishReport`].
//!
//! The rule that shapes everything here: publishing never loosens a
//! profile silently. A syscall that enters the allowed set must have been
//! seen on enough hosts, a must-deny syscall never enters it, and a syscall
//! leaves it only after it has been unused for a while (removing one too
//! early breaks the workload the next time it runs a rare path).

mod candidate;
mod compiled;
mod config;
pub mod denials;
mod diff;
mod error;
mod gate;
pub mod levers;
mod paths;
mod publish;
mod schedule;
pub mod sign;
pub mod sync;
pub mod targets;
mod version;

pub use candidate::{
    AddedAfterDenials, Candidate, GatePolicy, LeverMark, Levers, PublishedMeta, META_FORMAT,
};
pub use compiled::{as_log, candidate, with_log_variant};
pub use config::{OnDenials, PublishConfig};
pub use diff::SyscallDiff;
pub use error::PublishError;
pub use gate::{gate, GateDecision, GateOutcome};
pub use levers::{LeverAction, LeverError, LeverRecord};
pub use publish::{build_publication, publish_all, ImageReport, Outcome, PublishReport};
pub use schedule::{Schedule, ScheduleError};
pub use schemas::slug::image_slug;
pub use sign::{SigFile, SignError, Signing, VerifyError};
pub use sync::{sync_kubelet, SyncReport};
pub use targets::dir::DirTarget;
pub use targets::git::GitTarget;
pub use targets::nats::NatsObjectStore;
pub use targets::object_store::{ObjectStore, ObjectStoreTarget, StoreError, BUCKET};
pub use targets::oci::{OciConfig, OciError, OciLimits, OciTarget};
pub use targets::{Publication, Target};
pub use version::Version;
