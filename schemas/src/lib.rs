//! Types shared by every sandmine crate.
//!
//! Invariants (see `docs/ARCHITECTURE.md`):
//! - Syscalls travel as `(Abi, number)`, never by name. Names exist only at
//!   the edges, through [`syscalls`], whose tables are generated from one
//!   pinned source.
//! - Only [`wire`] knows the bytes that cross the wire between collector
//!   and aggregator; [`fleet`] is what the stores answer.
//! - This crate does no I/O.

pub mod abi;
pub mod args;
pub mod executed;
pub mod fleet;
pub mod observation;
pub mod slug;
pub mod syscalls;
pub mod wire;

pub use abi::Abi;
pub use args::{ArgEvidence, ArgField, ArgOverflow, ArgRecorded, ArgSet, ArgSets, ArgTotals};
pub use executed::{ExecKind, ExecutedFile, ExecutedFiles, RanFiles};
pub use observation::{
    DenialKey, Denials, DenyAction, Observation, Phase, PhaseSet, SyscallKey, SyscallUse,
};
