//! `sandmine`: the one user-facing binary. Each subcommand lives in
//! `src/cmd/<name>.rs`; this file only parses arguments and reports errors.

mod cmd;
mod collector_loop;
mod compiling;
mod conditions;
mod config;
mod enforce;
mod logging;
mod metrics;
mod mining;
mod publishing;
mod reaching;
mod settings;
mod shutdown;

/// The config fuzz target's harness, for the corpus replay in
/// `config.rs`'s tests (fuzz/README.md).
#[cfg(test)]
#[path = "../fuzz/src/harness_config.rs"]
mod harness_config;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "sandmine",
    version,
    about = "Mine seccomp sandboxes for Linux containers from the syscalls they really make",
    long_about = "sandmine records which syscalls a program or a container image makes \
(with eBPF, aggregated in the kernel, or with ptrace where eBPF is unavailable), \
and turns that set into a seccomp profile that allows only those syscalls.\n\n\
Single host, no server:\n  sandmine mine -o app.json -- CMD [ARGS...]\n  sandmine run --profile app.json -- CMD [ARGS...]"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Mine(cmd::mine::MineArgs),
    MineImage(Box<cmd::mine_image::MineImageArgs>),
    Run(cmd::run::RunArgs),
    Collect(cmd::collect::CollectArgs),
    Aggregate(cmd::aggregate::AggregateArgs),
    Standalone(cmd::standalone::StandaloneArgs),
    ReplayDeadLetters(cmd::replay::ReplayArgs),
    HostKey(cmd::host_key::HostKeyArgs),
    Query(cmd::query::QueryArgs),
    Compile(cmd::compile::CompileArgs),
    Explain(cmd::explain::ExplainArgs),
    Publish(cmd::publish::PublishArgs),
    Lever(cmd::lever::LeverArgs),
    Analyze(cmd::analyze::AnalyzeArgs),
    Report(Box<cmd::report::ReportArgs>),
    SyncProfiles(cmd::sync_profiles::SyncArgs),
    SigningKey(cmd::signing_key::SigningKeyArgs),
    Verify(cmd::verify::VerifyArgs),
    Store(cmd::store::StoreArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            {
                e.exit();
            }
            // One line, like every other error.
            // One line, like every other error: clap's message up to its
            // usage and tip lines, joined.
            let text = e.to_string();
            let parts: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
                .collect();
            let joined = parts.join(" ");
            let msg = joined.strip_prefix("error: ").unwrap_or(&joined);
            eprintln!("sandmine: error: {msg} (see --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Mine(a) => cmd::mine::main(a),
        Command::MineImage(a) => cmd::mine_image::main(*a),
        Command::Run(a) => cmd::run::main(a),
        Command::Collect(a) => cmd::collect::main(a),
        Command::Aggregate(a) => cmd::aggregate::main(a),
        Command::Standalone(a) => cmd::standalone::main(a),
        Command::ReplayDeadLetters(a) => cmd::replay::main(a),
        Command::HostKey(a) => cmd::host_key::main(a),
        Command::Query(a) => cmd::query::main(a),
        Command::Compile(a) => cmd::compile::main(a),
        Command::Explain(a) => cmd::explain::main(a),
        Command::Publish(a) => cmd::publish::main(a),
        Command::Lever(a) => cmd::lever::main(a),
        Command::Analyze(a) => cmd::analyze::main(a),
        Command::Report(a) => cmd::report::main(*a),
        Command::SyncProfiles(a) => cmd::sync_profiles::main(a),
        Command::SigningKey(a) => cmd::signing_key::main(a),
        Command::Verify(a) => cmd::verify::main(a),
        Command::Store(a) => cmd::store::main(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // One clear line: the error, then each cause once (no error
            // repeats its cause in its own message).
            eprintln!("sandmine: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
