//! A mining session: run a workload under the allow-all filter, poll its
//! observation until it exits or a stop rule fires, and hand back what it
//! did. `sandmine mine` mines a command ([`command`]), `sandmine
//! mine-image` a container ([`container`]); both add the runtime's
//! measured base ([`runtime_base`]) where a runtime is involved.
//!
//! The session never names syscalls and renders nothing: progress goes to
//! a [`Watcher`] the caller supplies, and the result is a
//! `schemas::Observation` plus the [`Convergence`] record.

pub mod command;
pub mod container;
pub mod convergence;
pub mod runtime_base;

pub use convergence::{fmt_dur, install_interrupt_handler, Convergence, StopRule, INTERRUPTED};

use crate::CollectError;
use schemas::Observation;
use std::time::Duration;

/// How often a session polls the workload's observation.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Sees a session's progress (the binary draws a progress line).
pub trait Watcher {
    /// Called on every poll.
    fn update(&mut self, elapsed: Duration, conv: &Convergence, obs: &Observation);
    /// Called before the session does something that may print (start a
    /// workload, stop the container): clear what `update` drew.
    fn pause(&mut self);
}

/// A watcher that shows nothing.
pub struct Quiet;

impl Watcher for Quiet {
    fn update(&mut self, _: Duration, _: &Convergence, _: &Observation) {}
    fn pause(&mut self) {}
}

/// Why a mining session failed.
#[derive(Debug, thiserror::Error)]
pub enum MiningError {
    #[error(transparent)]
    Collect(#[from] CollectError),
    #[error(transparent)]
    Write(#[from] sysutil::fs::FsError),
    /// A step of the session failed; the cause follows.
    #[error("{context}")]
    Step {
        context: String,
        #[source]
        source: Box<MiningError>,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The session ran but its result cannot be used.
    #[error("{0}")]
    Failed(String),
}

impl MiningError {
    pub(crate) fn step(context: impl Into<String>) -> impl FnOnce(MiningError) -> MiningError {
        let context = context.into();
        move |e| MiningError::Step {
            context,
            source: Box::new(e),
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> MiningError {
        let context = context.into();
        move |source| MiningError::Io { context, source }
    }
}

pub type Result<T, E = MiningError> = std::result::Result<T, E>;
