//! `sandmine analyze FILE`: the syscalls an ELF file can reach, statically
//! (the `reach` crate), with one chain per syscall and the limits.

use anyhow::{Context, Result};
use reach::{Analysis, Hop, Limits};
use schemas::Abi;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
#[command(
    about = "Print the syscalls an x86_64 ELF file can reach, statically, with the chain to each",
    long_about = "Follows the loader inside ROOT (DT_NEEDED, RUNPATH/RPATH, the root's \
/etc/ld.so.cache, then the standard directories; versioned symbols, PLT/GOT slots, IFUNCs) \
and the direct calls and jumps of every object from the executable's entry and init arrays, \
the libraries' constructors and the interpreter's entry; collects the syscall instructions \
with a constant number and the calls of syscall() with a constant first argument.\n\n\
Nothing is guessed silently: non-constant syscall sites (which make the reachable set \
unknown), indirect calls not followed, imports left unresolved and missing libraries are \
counted and listed.\n\n\
Several files share one analysis of each library they load (an image's binaries): the \
text has one section per file, the JSON an array (one object for one file).\n\n\
Examples:\n  sandmine analyze /usr/bin/ls\n  \
sandmine analyze --root /var/lib/images/nginx/rootfs /usr/sbin/nginx --format json\n  \
sandmine analyze /usr/lib/postgresql/15/bin/postgres /usr/lib/postgresql/15/bin/pg_ctl /bin/sh\n  \
sandmine analyze --image sandmine-paper/nginx:latest\n  \
sandmine analyze --image redis:local /usr/bin/redis-server /usr/bin/redis-cli\n\n\
With --image, the files are read from a local image (through the Engine API: a container \
is created, never started, exported and removed); with no FILE, its command is analysed \
(a script through its interpreter).\n\n\
Each file's analysis is kept in the host's cache (--reach-cache, by the file's sha256, per \
sandmine build): a library analysed once, by analyze or mine-image, is read from there."
)]
pub struct AnalyzeArgs {
    /// The files, as paths inside ROOT (or the image).
    #[arg(value_name = "FILE", required_unless_present = "image")]
    pub files: Vec<String>,
    /// The root file system the file runs in.
    #[arg(long, default_value = "/", conflicts_with = "image")]
    pub root: PathBuf,
    /// Read the files from this local image instead of a root directory.
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// Engine API socket for --image (default: $DOCKER_HOST if unix://,
    /// else /var/run/docker.sock).
    #[arg(long, value_name = "PATH", requires = "image")]
    pub socket: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The host's cache of analysed files (by sha256, per sandmine
    /// build): a file analysed before, by any command, is read from it;
    /// `off` for none. Must be this user's and not writable by others.
    /// Default: /var/lib/sandmine/reach-cache, skipped with a warning when
    /// this user cannot use it.
    #[arg(long, value_name = "DIR|off")]
    pub reach_cache: Option<PathBuf>,
}

fn name(abi: Abi, nr: u32) -> String {
    schemas::syscalls::name(abi, nr)
        .map(str::to_string)
        .unwrap_or_else(|| format!("unknown_{nr}"))
}

fn limits_json(l: &Limits) -> serde_json::Value {
    serde_json::json!({
        "nonconst_syscall_sites": l.nonconst_syscall_sites,
        "indirect_calls": l.indirect_calls,
        "indirect_jumps": l.indirect_jumps,
        "unresolved_imports": l.unresolved_imports,
        "unresolved_weak_imports": l.unresolved_weak_imports,
        "unresolved_ifuncs": l.unresolved_ifuncs,
        "missing_libraries": l.missing_libraries,
        "undecodable_instructions": l.undecodable_instructions,
    })
}

fn hop_json(h: &Hop) -> serde_json::Value {
    match h {
        Hop::Root {
            object,
            kind,
            function,
        } => {
            serde_json::json!({"root": kind, "object": object, "function": function})
        }
        Hop::Call { object, function } => serde_json::json!({"call": function, "object": object}),
        Hop::Import {
            symbol,
            object,
            function,
        } => {
            serde_json::json!({"import": symbol, "object": object, "function": function})
        }
        Hop::Site {
            object,
            function,
            addr,
            via_wrapper,
        } => serde_json::json!({
            "site": format!("0x{addr:x}"), "object": object, "function": function,
            "via_wrapper": via_wrapper,
        }),
    }
}

fn to_json(a: &Analysis) -> serde_json::Value {
    let syscalls: Vec<_> = a
        .syscalls
        .iter()
        .map(|(&(abi, nr), r)| {
            serde_json::json!({
                "abi": abi, "nr": nr, "name": name(abi, nr),
                "provenance": r.render(),
                "chain": r.chain.iter().map(hop_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    let objects: Vec<_> = a
        .objects
        .iter()
        .map(|o| {
            serde_json::json!({
                "path": o.path, "sha256": o.sha256, "role": o.role,
                "functions": o.functions, "reached_functions": o.reached_functions,
                "limits": limits_json(&o.limits),
            })
        })
        .collect();
    serde_json::json!({
        "file": a.file,
        "root": a.root,
        "reach_known": a.reach_known(),
        "ld_so_cache": a.ld_so_cache,
        "syscalls": syscalls,
        "limits": limits_json(&a.limits),
        "objects": objects,
        "missing_libraries": a.missing_libraries,
        "unresolved_imports": a.unresolved_imports,
        "nonconst_sites": a.nonconst_sites,
        "arg_sites": a.arg_sites.iter().map(|(&(abi, nr), t)| serde_json::json!({
            "abi": abi, "nr": nr, "name": name(abi, nr),
            "over_cap": a.arg_sites_over_cap.contains(&(abi, nr)),
            "sites": t,
        })).collect::<Vec<_>>(),
    })
}

/// One argument tuple: `(2, 1, 0)`, `?` where not a constant, large
/// values in hex.
fn tuple_text(t: &reach::ArgTuple) -> String {
    let v: Vec<String> = t
        .iter()
        .map(|x| match x {
            None => "?".to_string(),
            Some(v) if *v < 0x1000 => v.to_string(),
            Some(v) => format!("0x{v:x}"),
        })
        .collect();
    format!("({})", v.join(", "))
}

fn text(a: &Analysis) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut per_abi: std::collections::BTreeMap<Abi, usize> = Default::default();
    for &(abi, _) in a.syscalls.keys() {
        *per_abi.entry(abi).or_default() += 1;
    }
    let counts: Vec<String> = per_abi
        .iter()
        .map(|(abi, n)| format!("{n} {abi}"))
        .collect();
    let _ = writeln!(
        out,
        "{} (root {}): {} reachable syscalls ({})",
        a.file,
        a.root.display(),
        a.syscalls.len(),
        counts.join(", ")
    );
    if a.reach_known() {
        let _ = writeln!(
            out,
            "reach: known (every syscall site reached has a constant number)"
        );
    } else {
        let _ = writeln!(out,
            "reach: UNKNOWN ({} syscall sites with a non-constant number; the set below is a lower bound)",
            a.limits.nonconst_syscall_sites
        );
    }
    let _ = writeln!(out);
    for (&(abi, nr), r) in &a.syscalls {
        let _ = writeln!(
            out,
            "{:<24} {:>4} {abi:<7} {}",
            name(abi, nr),
            nr,
            r.render()
        );
    }
    if !a.arg_sites.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "argument values at the sites (first three arguments, ? = not a constant):"
        );
        for (&(abi, nr), t) in &a.arg_sites {
            let over = if a.arg_sites_over_cap.contains(&(abi, nr)) {
                format!(" (over the cap of {}: any value)", reach::ARG_SITES_CAP)
            } else {
                String::new()
            };
            let ts: Vec<String> = t.iter().map(tuple_text).collect();
            let _ = writeln!(
                out,
                "{:<24} {:>4} {abi:<7} {}{over}",
                name(abi, nr),
                nr,
                ts.join(" ")
            );
        }
    }
    let _ = writeln!(out);
    let l = &a.limits;
    let _ = writeln!(out, "limits:");
    let _ = writeln!(
        out,
        "  non-constant syscall sites  {}",
        l.nonconst_syscall_sites
    );
    let _ = writeln!(out, "  indirect calls not followed {}", l.indirect_calls);
    let _ = writeln!(out, "  indirect jumps not followed {}", l.indirect_jumps);
    let _ = writeln!(
        out,
        "  unresolved imports          {} (weak: {})",
        l.unresolved_imports, l.unresolved_weak_imports
    );
    let _ = writeln!(out, "  unresolved IFUNCs           {}", l.unresolved_ifuncs);
    let _ = writeln!(out, "  missing libraries           {}", l.missing_libraries);
    let _ = writeln!(
        out,
        "  undecodable instructions    {}",
        l.undecodable_instructions
    );
    for s in &a.nonconst_sites {
        let _ = writeln!(out, "  non-constant site: {s}");
    }
    for s in &a.missing_libraries {
        let _ = writeln!(out, "  missing library: {s}");
    }
    for s in &a.unresolved_imports {
        let _ = writeln!(out, "  unresolved import: {s}");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "objects ({}; library search: RPATH/RUNPATH, {}, then the standard directories):",
        a.objects.len(),
        if a.ld_so_cache {
            "the root's /etc/ld.so.cache"
        } else {
            "no ld.so.cache in the root"
        }
    );
    for o in &a.objects {
        let _ = writeln!(
            out,
            "  {} [{}] {}/{} functions reached, sha256 {}",
            o.path,
            o.role,
            o.reached_functions,
            o.functions,
            &o.sha256[..16]
        );
        let l = &o.limits;
        let parts: Vec<String> = [
            ("non-constant sites", l.nonconst_syscall_sites),
            ("indirect calls", l.indirect_calls),
            ("indirect jumps", l.indirect_jumps),
            ("unresolved imports", l.unresolved_imports),
            ("weak unresolved", l.unresolved_weak_imports),
            ("unresolved IFUNCs", l.unresolved_ifuncs),
            ("missing libraries", l.missing_libraries),
            ("undecodable", l.undecodable_instructions),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
        if !parts.is_empty() {
            let _ = writeln!(out, "      limits: {}", parts.join(", "));
        }
    }
    out
}

pub fn main(args: AnalyzeArgs) -> Result<ExitCode> {
    // With --image: the image's tree in a scratch directory (removed on
    // return), and its command when no file is named.
    let scratch;
    let (root, files) = match &args.image {
        Some(image) => {
            let docker = collector::docker::DockerClient::connect(args.socket.as_deref())?;
            scratch = tempfile::Builder::new()
                .prefix("sandmine-analyze.")
                .tempdir()
                .context("creating a scratch directory for the image's files")?;
            let (root, command) = crate::reaching::image_root(&docker, image, scratch.path())?;
            let files = if args.files.is_empty() {
                let f = crate::reaching::command_files(&root, &command);
                if f.is_empty() {
                    anyhow::bail!(
                        "the command of {image} ({}) is not a file in the image; name the files to analyse",
                        if command.is_empty() { "none".to_string() } else { command.join(" ") }
                    );
                }
                f
            } else {
                args.files.clone()
            };
            (root, files)
        }
        None => (args.root.clone(), args.files.clone()),
    };
    let mut an = crate::reaching::analyzer(&root, args.reach_cache.as_deref())?;
    let mut all = Vec::new();
    for f in &files {
        // On the host's root, a relative path is relative to the current
        // directory; inside another root, to its `/`.
        let file =
            if args.image.is_none() && root == std::path::Path::new("/") && !f.starts_with('/') {
                std::env::current_dir()
                    .context("reading the current directory")?
                    .join(f)
                    .to_string_lossy()
                    .into_owned()
            } else {
                f.clone()
            };
        let mut a = an
            .analyse(&file)
            .with_context(|| format!("analysing {f}"))?;
        if let Some(image) = &args.image {
            // The scratch directory is gone once we return: name the image.
            a.root = PathBuf::from(format!("image {image}"));
        }
        all.push(a);
    }
    if let Some(line) = crate::reaching::cache_line(&an) {
        eprintln!("sandmine: {line}");
    }
    let mut out = match (args.format, all.as_slice()) {
        (Format::Json, [one]) => serde_json::to_string_pretty(&to_json(one))?,
        (Format::Json, many) => {
            serde_json::to_string_pretty(&many.iter().map(to_json).collect::<Vec<_>>())?
        }
        (Format::Text, many) => many.iter().map(text).collect::<Vec<_>>().join("\n"),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.context("writing to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}
