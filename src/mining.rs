//! What `mine` and `mine-image` share on the binary's side: their common
//! flags, the progress line, the summary, the convergence curve, and
//! writing the profile. The session itself is `collector::mining`.

use anyhow::{Context, Result};
use clap::Args;
use collector::mining::{fmt_dur, Convergence, Watcher};
use schemas::{Abi, Observation, SyscallKey};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use sysutil::parse_duration;

/// Options shared by `mine` and `mine-image`.
#[derive(Args, Debug, Clone)]
pub struct RunLimits {
    /// Stop the workload after this long (e.g. 30s, 5m). For services that
    /// never exit on their own.
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub duration: Option<Duration>,

    /// Stop once no new syscall has appeared for this long (e.g. 60s).
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub until_stable: Option<Duration>,

    /// How long processes get after SIGTERM before SIGKILL when the run is
    /// stopped.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DUR")]
    pub grace: Duration,

    /// The summary reports how many syscalls were new within this window
    /// before the end.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DUR")]
    pub new_window: Duration,

    /// Also write the convergence curve (seconds, distinct syscalls) as CSV.
    #[arg(long, value_name = "FILE")]
    pub curve: Option<PathBuf>,

    /// Also write what was observed, as JSON: per (ABI, syscall number) the
    /// calls counted and the phases they were seen in. The profile is a
    /// pure function of this file, so it can be kept, audited or
    /// recompiled later.
    #[arg(long, value_name = "FILE")]
    pub observation: Option<PathBuf>,

    /// No progress line.
    #[arg(short, long)]
    pub quiet: bool,
}

impl RunLimits {
    pub fn stop_rule(&self) -> collector::mining::StopRule {
        collector::mining::StopRule {
            duration: self.duration,
            until_stable: self.until_stable,
        }
    }
}

/// What a mined run is, for the compiler: its name in the report, the
/// filter it ran under (`unconfined` for the allow-all mining filter, which
/// hides nothing), and whether the baseline joins the profile (not when
/// measuring another profile with `mine-image --mining-profile`).
pub struct RunInfo<'a> {
    pub name: &'a str,
    pub filter: &'a str,
    pub baseline: bool,
    /// The static reachability of what ran, and the tier for reachable,
    /// never observed syscalls (`mine-image`).
    pub reach: Option<(
        &'a policy_compiler::reachable::Reachability,
        policy_compiler::reachable::Tier,
    )>,
    /// Also write the compiler's text report here.
    pub report: Option<&'a Path>,
}

/// Compile the run as a fleet of one (the same engine as `sandmine
/// compile`, under the single-host policy), write the profile (and the
/// curve and the observation), print the summary, the state and the
/// confidence figures.
pub fn write_outputs(
    obs: &Observation,
    conv: &Convergence,
    wall: Duration,
    output: Option<&Path>,
    limits: &RunLimits,
    run: &RunInfo,
) -> Result<()> {
    let policy = policy_compiler::Policy {
        baseline: run.baseline,
        reachable: run.reach.map_or(Default::default(), |(_, t)| t),
        ..policy_compiler::Policy::single_host()
    }
    .resolve()
    .context("the single-host policy")?;
    let ended_ms = sysutil::clock::now_ms();
    let started_ms = ended_ms.saturating_sub(u64::try_from(wall.as_millis()).unwrap_or(u64::MAX));
    let first_seen = conv
        .first_seen
        .iter()
        .map(|(k, at)| {
            let at = u64::try_from(at.as_millis()).unwrap_or(u64::MAX);
            (*k, started_ms.saturating_add(at).min(ended_ms))
        })
        .collect();
    let image = schemas::fleet::ImageObservations::single_run(
        run.name,
        run.filter,
        obs,
        &first_seen,
        started_ms,
        ended_ms,
    );
    let compiled = policy_compiler::compile::compile_image_with(
        &image,
        run.reach.map(|(r, _)| r),
        &policy,
        ended_ms,
    )
    .context("compiling the profile")?;
    if compiled.decision.state == policy_compiler::State::NotReady {
        anyhow::bail!("nothing to allow: no syscall was seen after the workload started (only the runtime's set-up, or nothing at all); refusing to write a profile that denies everything");
    }
    let profile = &compiled.profile;
    let json = profile.to_json().context("rendering the profile")?;
    match output {
        Some(path) => sysutil::fs::write_atomic(path, json.as_bytes())?,
        None => {
            std::io::stdout()
                .lock()
                .write_all(json.as_bytes())
                .context("writing the profile to stdout")?;
        }
    }
    if let Some(path) = run.report {
        sysutil::fs::write_atomic(path, compiled.report_text.as_bytes())?;
    }
    if let Some(curve) = &limits.curve {
        sysutil::fs::write_atomic(curve, curve_csv(conv).as_bytes())?;
    }
    if let Some(path) = &limits.observation {
        let mut json = serde_json::to_string_pretty(obs).context("rendering the observation")?;
        json.push('\n');
        sysutil::fs::write_atomic(path, json.as_bytes())?;
    }
    for w in profile.warnings() {
        eprintln!("sandmine: warning: {w}");
    }
    let per_abi = compiled
        .decision
        .allowed_names()
        .iter()
        .map(|(abi, names)| (*abi, names.len()))
        .collect();
    eprint!("{}", summary(obs, &per_abi, conv, wall, limits.new_window));
    eprint!("{}", confidence_summary(&compiled.decision));
    if let Some(r) = &compiled.decision.reach {
        eprint!("{}", reach_summary(&compiled.decision, r));
    }
    Ok(())
}

/// The state and confidence figures `sandmine compile` would give this one
/// run under the single-host policy: how thin the evidence of one run is.
pub fn confidence_summary(d: &policy_compiler::decide::Decision) -> String {
    let c = &d.confidence;
    let mut s = format!(
        "sandmine: state: {} (what `sandmine compile` would decide from this evidence under the single-host policy; the profile written enforces regardless)\n",
        d.state.as_str()
    );
    for r in &d.reasons {
        s.push_str(&format!("sandmine:   - {r}\n"));
    }
    for n in &d.notes {
        s.push_str(&format!("sandmine: note: {n}\n"));
    }
    s.push_str(&format!(
        "sandmine: confidence: {} container(s) on {} host(s), {:.2} container-hours; sample coverage {:.4}, Chao2 estimate {:.1} syscalls ({} observed); last new syscall {} before the end\n",
        c.containers,
        c.hosts,
        c.container_hours,
        c.coverage,
        c.chao2,
        c.incidence.s_obs,
        c.quiet_ms
            .map(|q| fmt_dur(Duration::from_millis(q)))
            .unwrap_or_else(|| "-".into())
    ));
    s
}

/// The reachability lines of the summary: what the tier added, and what
/// was observed but not reached (the soundness check).
fn reach_summary(
    d: &policy_compiler::decide::Decision,
    r: &policy_compiler::reachable::ReachSummary,
) -> String {
    let names = |keys: &std::collections::BTreeSet<SyscallKey>| {
        keys.iter()
            .filter_map(|k| schemas::syscalls::name(k.abi, k.nr))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut s = format!(
        "sandmine: reachability: {} syscalls reachable ({} observed); reachable but never observed -> {}: {} syscall(s){}\n",
        r.reachable,
        r.reachable_observed,
        r.tier.as_str(),
        r.tiered,
        if d.logged.is_empty() {
            String::new()
        } else {
            format!(" logged: {}", names(&d.logged))
        }
    );
    if !r.known {
        s.push_str("sandmine: reachability: the reachable set is UNKNOWN; see the report (--report) for the files and gaps\n");
    }
    for o in &r.observed_not_reachable {
        s.push_str(&format!(
            "sandmine: reachability: observed, not reachable: {o}\n"
        ));
    }
    s
}

/// Fail before any work if `path` cannot be written: its directory must
/// exist.
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        anyhow::bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// The curve as CSV, one row per syscall in the order first seen:
/// seconds, distinct syscalls by then, the syscall (ABI and name, or
/// number when the table has no name), and `run` or `stop` (first seen
/// while the workload was being stopped).
pub fn curve_csv(conv: &Convergence) -> String {
    let mut rows: Vec<(Duration, SyscallKey)> =
        conv.first_seen.iter().map(|(k, t)| (*t, *k)).collect();
    rows.sort();
    let mut out = String::from("seconds,distinct_syscalls,abi,syscall,during\n");
    for (i, (t, k)) in rows.iter().enumerate() {
        let name =
            schemas::syscalls::name(k.abi, k.nr).map_or_else(|| k.nr.to_string(), str::to_string);
        let during = if conv.after_stop(*t) { "stop" } else { "run" };
        out.push_str(&format!(
            "{:.3},{},{},{},{}\n",
            t.as_secs_f64(),
            i + 1,
            k.abi,
            name,
            during
        ));
    }
    out
}

/// A one-line progress display, redrawn in place, only on a terminal.
pub struct Progress {
    enabled: bool,
    drawn: bool,
    window: Duration,
}

impl Progress {
    pub fn new(quiet: bool, window: Duration) -> Progress {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            drawn: false,
            window,
        }
    }
}

impl Watcher for Progress {
    fn update(&mut self, elapsed: Duration, conv: &Convergence, obs: &Observation) {
        if !self.enabled {
            return;
        }
        let calls: u64 = obs.syscalls.values().map(|u| u.calls).sum();
        let line = format!(
            "mining {:>7}  {} syscalls seen, {} new in the last {}, {} calls",
            fmt_dur(elapsed),
            conv.first_seen.len(),
            conv.new_within(elapsed, self.window),
            fmt_dur(self.window),
            calls
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    fn pause(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

/// The summary printed on stderr at the end of a run.
pub fn summary(
    obs: &Observation,
    allowed_per_abi: &BTreeMap<Abi, usize>,
    conv: &Convergence,
    wall: Duration,
    window: Duration,
) -> String {
    let mut s = String::new();
    let per_abi: Vec<String> = allowed_per_abi
        .iter()
        .map(|(a, n)| format!("{a} {n}"))
        .collect();
    let total: usize = allowed_per_abi.values().sum();
    s.push_str(&format!(
        "sandmine: {} syscalls allowed ({})\n",
        total,
        if per_abi.is_empty() {
            "none".to_string()
        } else {
            per_abi.join(", ")
        }
    ));
    let calls: u64 = obs.syscalls.values().map(|u| u.calls).sum();
    let at_stop = match conv.new_at_stop() {
        0 => String::new(),
        n => format!(" (+{n} first seen while stopping)"),
    };
    s.push_str(&format!(
        "sandmine: {} new in the last {}; last new syscall at {}{}; {} calls; wall time {}\n",
        conv.new_within(wall, window),
        fmt_dur(window),
        conv.last_new().map(fmt_dur).unwrap_or_else(|| "-".into()),
        at_stop,
        calls,
        fmt_dur(wall)
    ));
    if obs.out_of_range > 0 {
        s.push_str(&format!(
            "sandmine: warning: {} calls had syscall numbers beyond this build's tables\n",
            obs.out_of_range
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_names_syscalls_and_marks_the_stop() {
        let mut c = Convergence::default();
        let mut o = Observation::default();
        o.record(Abi::X86_64, 0, schemas::Phase::Image, 1);
        c.update(&o, Duration::from_secs(1));
        o.record(Abi::X86_64, 1, schemas::Phase::Image, 1);
        c.update(&o, Duration::from_secs(3));
        assert_eq!(
            curve_csv(&c),
            "seconds,distinct_syscalls,abi,syscall,during\n1.000,1,x86_64,read,run\n3.000,2,x86_64,write,run\n"
        );
        c.stop_at = Some(Duration::from_secs(5));
        o.record(Abi::X86_64, 60, schemas::Phase::Image, 1);
        c.update(&o, Duration::from_secs(6));
        assert!(curve_csv(&c).ends_with("6.000,3,x86_64,exit,stop\n"));
    }
}
