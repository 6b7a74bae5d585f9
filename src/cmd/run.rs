//! `sandmine run --profile FILE -- CMD [ARGS...]`: run a command under a
//! seccomp profile.

use crate::enforce::{self, Exec, FailurePath, InstallOptions};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};
use policy_compiler::{filter, oci, DefaultOverride};
use schemas::Abi;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// What a syscall the profile does not allow gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ActionArg {
    /// The profile's own default action (for a mined profile: fail with
    /// EPERM, "Operation not permitted").
    Errno,
    /// Kill the whole process with SIGSYS (SECCOMP_RET_KILL_PROCESS).
    Kill,
    /// Allow the call but log it to the audit log (SECCOMP_RET_LOG): a
    /// complain mode to find what a profile is missing.
    Log,
}

impl From<ActionArg> for DefaultOverride {
    fn from(a: ActionArg) -> Self {
        match a {
            ActionArg::Errno => DefaultOverride::Errno,
            ActionArg::Kill => DefaultOverride::Kill,
            ActionArg::Log => DefaultOverride::Log,
        }
    }
}

/// Run a command under a seccomp profile (Docker/OCI JSON, e.g. one written
/// by `sandmine mine`).
///
/// sandmine compiles the profile to a seccomp filter, sets no_new_privs
/// (so no privileges are needed, and setuid programs cannot escape), installs
/// the filter and execs CMD in its place: CMD and everything it starts run
/// under the filter, and CMD's exit status is sandmine's.
///
/// The filter covers every architecture in the profile that this host can
/// run (on x86_64: x86_64, i386 and x32), each judged by its own syscall
/// numbers. A call of an ABI the profile does not list (an `int 0x80` call
/// under a profile without SCMP_ARCH_X86, an x32 call without
/// SCMP_ARCH_X32) kills the process, whatever the default action or
/// --action, as libseccomp does; so does a call of any other architecture.
///
/// Everything that can fail is checked before the filter is installed: the
/// profile, the filter, and CMD (looked up on PATH; a missing command exits
/// 127, a non-executable one 126, as in a shell).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
sandmine run --profile app.json -- ./app --port 8080\n  \
sandmine run --profile app.json --action log --log-denials -- ./app   # complain mode")]
pub struct RunArgs {
    /// The seccomp profile (Docker/OCI JSON), as Docker applies it:
    /// argument rules ("args", every SCMP_CMP_* operator), conditional rules
    /// ("includes"/"excludes": judged against this process's bounding
    /// capabilities, the native architecture and the kernel, as dockerd
    /// does), and runc's ENOSYS for syscalls newer than the profile.
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,

    /// What a syscall the profile does not allow gets. Rules of the profile
    /// (e.g. ENOSYS for probed syscalls) keep their own action, and calls
    /// of ABIs the profile does not list are killed in every mode.
    #[arg(long, value_enum, default_value_t = ActionArg::Errno)]
    pub action: ActionArg,

    /// Also report denials to the audit log (SECCOMP_FILTER_FLAG_LOG; see
    /// `dmesg` or `ausearch -m SECCOMP`).
    #[arg(long)]
    pub log_denials: bool,

    /// The command to run, and its arguments (after `--`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

pub fn main(args: RunArgs) -> Result<ExitCode> {
    let shown = args.profile.display();
    let text = std::fs::read_to_string(&args.profile).map_err(|e| {
        anyhow!(
            "cannot read profile {shown}: {}",
            enforce::os_error_text(&e)
        )
    })?;
    let profile = oci::parse(&text).with_context(|| format!("invalid profile {shown}"))?;
    let over = DefaultOverride::from(args.action);

    let host = Abi::host_abis();
    let native = crate::conditions::host_native()?;
    let conditions = crate::conditions::host(native)?;
    let eff = profile
        .resolve_with(&conditions, over)
        .with_context(|| format!("invalid profile {shown}"))?;
    if !eff.ignored.is_empty() {
        eprintln!(
            "sandmine: warning: profile {shown} names syscalls no architecture has, ignored as runc ignores them: {}",
            eff.ignored.join(", ")
        );
    }
    let prog = filter::build_effective(&eff, host)
        .with_context(|| format!("cannot compile profile {shown}"))?;

    let lets_through = |name: &str| eff.may_let_through(native, name);
    // Without execve the command could never start: say so now rather than
    // after the filter, where the only report left is an exit status.
    if !lets_through("execve") {
        bail!(
            "profile {shown} does not allow execve (for {native}), so no command can start under it"
        );
    }
    let failure = FailurePath {
        can_write: lets_through("write"),
        can_exit_group: lets_through("exit_group"),
    };

    let Some(cmd) = args.command.first() else {
        bail!("no command given");
    };
    let path = match enforce::resolve(cmd) {
        Ok(p) => p,
        Err(e) => {
            // A shell's status (127/126), not main's 2; same line format.
            eprintln!("sandmine: error: {}", e.message());
            return Ok(ExitCode::from(e.exit_code()));
        }
    };
    let exec = Exec::prepare(&path, &args.command, failure)?;

    enforce::install(
        &prog,
        InstallOptions {
            log_denials: args.log_denials,
        },
    )?;
    exec.exec()
}
