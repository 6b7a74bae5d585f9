//! Pure functions from observations to seccomp profiles and filters.
//!
//! - [`oci`]: the Docker/OCI seccomp profile JSON (parse, validate, emit).
//! - [`generate()`]: the mining core, from an [`schemas::Observation`] to a
//!   profile.
//! - [`baseline`]: the syscalls every profile allows (exit, signal return).
//! - [`must_deny`]: syscalls denied even when observed (clone3), with their fallbacks.
//! - [`probes`]: the syscalls that get `ENOSYS` rather than `EPERM`.
//! - [`filter`]: a classic-BPF compiler, from a profile to the program that
//!   `seccomp(SECCOMP_SET_MODE_FILTER)` installs.
//!
//! - [`fleet`]: the fleet compiler, from an image's fleet observations, a
//!   [`policy::Policy`] and the time to its profile in every format
//!   ([`render`]), under confidence thresholds ([`confidence`],
//!   [`decide`]), with [`explain()`] for any syscall.
//!
//! Invariant: this crate does no I/O and makes no syscalls; installing a
//! filter is the binary's job (`src/enforce.rs`).

pub mod baseline;
pub mod confidence;
pub mod decide;
pub mod explain;
pub mod filter;
pub mod fixed;
pub mod fleet;
pub mod generate;
pub mod must_deny;
pub mod names;
pub mod oci;
pub mod policy;
pub mod probes;
pub mod render;

pub use decide::{Decision, State};
pub use explain::explain;
pub use filter::{
    compile, compile_for, lets_through, verdict, DefaultOverride, FilterError, SockFilter,
};
pub use fleet::{compile as compile_image, diff, CompileError, Compiled, ProfileDiff};
pub use generate::{generate, GenerateError, GenerateOptions};
pub use oci::{Action, Metadata, OciProfile, ProfileError, ScmpArch, SyscallRule};
pub use policy::{Policy, PolicyError};

/// `EPERM`: what a denied syscall returns by default.
pub const EPERM: u32 = 1;
/// `ENOSYS`: what a probed, denied syscall returns (see [`probes`]).
pub const ENOSYS: u32 = 38;
/// Largest errno the kernel passes through (`MAX_ERRNO`); larger
/// `SECCOMP_RET_ERRNO` data is clamped by the kernel, so we reject it.
pub const MAX_ERRNO: u32 = 4095;
