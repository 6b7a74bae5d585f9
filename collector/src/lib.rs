//! Syscall capture for sandmine.
//!
//! - [`ebpf`]: the in-kernel aggregator (C program in `bpf/`, loaded with
//!   aya). Per workload key, per-CPU syscall bitmaps and counts; no
//!   per-syscall event ever reaches userspace.
//! - [`ptrace`]: the fallback for hosts without usable eBPF.
//! - [`launch`]: starts a command in a fresh cgroup behind an allow-all
//!   seccomp filter, so that its own `execve` is the first recorded call.
//! - [`cgroup`]: creating and removing the per-run cgroups.
//! - [`docker`]: the Docker Engine API (also podman's compatible API), over
//!   [`docker::http`], HTTP/1.1 on a unix socket.
//! - [`cri`]: a Kubernetes runtime's CRI runtime service (containerd's CRI
//!   plugin, CRI-O) over gRPC on its unix socket: who a pod's container is.
//! - [`mining`]: a mining session (`sandmine mine`, `mine-image`): the
//!   recorder, the container polling loop, stop rules and convergence, the
//!   runtime's measured base.
//!
//! Invariant: the collector never names syscalls and never talks to
//! ClickHouse. It hands `schemas::Observation`s upward.

pub mod cgroup;
pub mod cri;
pub mod daemon;
pub mod docker;
pub mod ebpf;
pub mod executed;
pub mod launch;
pub mod mining;
pub mod ptrace;
pub mod runtime_probe;

/// Errors of the capture layer.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("eBPF capture is unavailable: {0}")]
    EbpfUnavailable(String),
    #[error("eBPF: {0}")]
    Ebpf(String),
    #[error("ptrace: {0}")]
    Ptrace(String),
    #[error("cgroup: {0}")]
    Cgroup(String),
    #[error("docker: {0}")]
    Docker(String),
    #[error("cannot run {cmd:?}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{context}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl CollectError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        CollectError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = CollectError> = std::result::Result<T, E>;
