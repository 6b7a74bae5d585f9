//! `sandmine collect`: the per-host collector daemon.

use crate::collector_loop;
use crate::config::ConfigArgs;
use crate::metrics::Metrics;
use crate::settings::Settings;
use anyhow::{Context, Result};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
#[command(
    about = "Watch every container on this host and publish per-interval syscall deltas",
    long_about = "The per-host daemon. An eBPF program counts every container's syscalls in \
the kernel (per container, per ABI and syscall, split at the moment the runtime installs \
the seccomp filter); the program and its maps are pinned under collector.pin_dir, so \
counting goes on while this process is down or restarting. Every collector.interval \
(10s by default) the daemon cuts a delta per container, resolves the container to its \
runtime, id, image and digest (Docker or podman API; containerd, CRI-O and Kubernetes \
from cgroup names), writes it to a crash-safe spool under collector.state_dir, and \
publishes it to NATS JetStream (or Kafka). When the broker is down, deltas wait in the \
spool (bounded by collector.spool_max_bytes, then in the kernel) and are sent in order \
when it returns. Sequence numbers survive restarts: nothing is lost or sent twice.\n\n\
Privileges: exactly CAP_BPF (load the program, read its maps), CAP_PERFMON (attach it \
to the syscall tracepoints) and CAP_SYS_PTRACE (read other processes' /proc/PID/ns/mnt, \
to tell live containers from exited ones), as root or as any uid with these as ambient \
capabilities; a missing one is an error that names it. No CAP_SYS_ADMIN as long as bpffs \
is mounted on /sys/fs/bpf, no CAP_SYS_RESOURCE (Linux 6.10 or later is needed anyway), \
and no Docker socket to count (it only adds image names and digests). The state \
directory and collector.pin_dir must be writable by the collector's uid; the host's /proc \
may be mounted elsewhere (collector.proc_root). Units: deploy/systemd/."
)]
pub struct CollectArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// On stop, how long to keep trying to publish what is spooled.
    #[arg(long, default_value = "10s", value_parser = sysutil::parse_duration)]
    pub drain_timeout: Duration,
}

pub fn main(args: CollectArgs) -> Result<ExitCode> {
    crate::logging::init();
    let s: Settings = args.config.load()?;
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async {
        let metrics = Arc::new(Metrics::default());
        crate::metrics::spawn(&s.metrics.listen, &metrics);
        let sink = collector_loop::Sink::Broker {
            cfg: Box::new(s.broker.clone()),
            publisher: None,
        };
        let stop = crate::shutdown::stop_signal();
        collector_loop::run(s.collector.clone(), sink, metrics, stop, args.drain_timeout).await?;
        Ok(ExitCode::SUCCESS)
    })
}
