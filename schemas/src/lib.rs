//! Types shared by every sandmine crate.
//!
//! Invariants (see `docs/ARCHITECTURE.md`):
//! - Syscalls travel as `(Abi, number)`, never by name. Names exist only at
//!   the edges, through [`syscalls`], whose tables are generated from one
//!   pinned source.
//! - This crate does no I/O.

pub mod abi;
pub mod observation;
pub mod syscalls;

pub use abi::Abi;
pub use observation::{Observation, Phase, PhaseSet, SyscallKey, SyscallUse};
