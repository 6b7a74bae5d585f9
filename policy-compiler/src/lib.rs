//! Pure functions from observations to seccomp profiles and filters.
//!
//! One engine makes every profile: [`compile_image`] takes what is known of
//! an image (a fleet store's [`schemas::fleet::ImageObservations`], or one
//! `sandmine mine` run as a fleet of one,
//! [`schemas::fleet::ImageObservations::single_run`]), a
//! [`policy::ResolvedPolicy`] and the time, and gives the profile in every
//! format with its report:
//! - [`tally`] counts (per syscall and per image), [`confidence`] estimates
//!   (coverage, Chao2, novelty), [`decide`] applies the rules,
//!   [`reasons`] words them, [`render`] writes the formats, and
//!   [`explain()`] says why for any syscall;
//! - [`policy`]: thresholds, must-allow and must-deny lists, the runtime
//!   base, the mode ([`policy::Policy::default`] for a fleet,
//!   [`policy::Policy::single_host`] for one run);
//! - [`baseline`]: the syscalls every profile allows (exit, signal return);
//! - [`must_deny`]: syscalls denied even when observed (clone3), with their
//!   fallbacks;
//! - [`probes`]: the syscalls that get `ENOSYS` rather than `EPERM`;
//! - [`args`]: argument rules, which allowed syscalls are narrowed to
//!   their recorded argument values and which values;
//! - [`reachable`]: static reachability as evidence, and the tier a
//!   reachable but unobserved syscall gets (`reachable = "log"`);
//! - [`oci`]: the Docker/OCI seccomp profile JSON (parse, validate, emit);
//! - [`filter`]: a classic-BPF compiler, from a profile to the program that
//!   `seccomp(SECCOMP_SET_MODE_FILTER)` installs;
//! - [`bpf`]: a classic-BPF interpreter with the kernel's checks, which
//!   judges compiled programs without installing them.
//!
//! Invariant: this crate does no I/O and makes no syscalls; installing a
//! filter is the binary's job (`src/enforce.rs`).

pub mod args;
pub mod baseline;
pub mod bpf;
pub mod compile;
pub mod confidence;
pub mod decide;
pub mod decimal;
pub mod effective;
pub mod explain;
pub mod filter;
pub mod must_deny;
pub mod oci;
pub mod policy;
pub mod probes;
pub mod reachable;
pub mod reasons;
pub mod render;
pub mod risk;
pub mod tally;

pub use compile::{compile_image, CompileError, Compiled};
pub use decide::{Decision, State};
pub use explain::explain;
pub use filter::{
    build as build_filter, build_for as build_filter_for, lets_through, verdict, DefaultOverride,
    FilterError, SockFilter,
};
pub use oci::{Action, Metadata, OciProfile, ProfileError, ScmpArch, SyscallRule};
pub use policy::{Mode, Policy, PolicyError, ResolvedPolicy};

/// `EPERM`: what a denied syscall returns by default.
pub const EPERM: u32 = 1;
/// `ENOSYS`: what a probed, denied syscall returns (see [`probes`]).
pub const ENOSYS: u32 = 38;
/// Largest errno the kernel passes through (`MAX_ERRNO`); larger
/// `SECCOMP_RET_ERRNO` data is clamped by the kernel, so we reject it.
pub const MAX_ERRNO: u32 = 4095;
