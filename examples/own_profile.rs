//! sandmine's own seccomp profiles, one per long-running role: what the
//! tests observed each role do (`sandmine mine` around every role a test
//! starts, `tests/common`), joined with the static reach of the release
//! binary (the `reach` crate), compiled by the policy compiler under the
//! single-host policy with the reachable tier `allow`.
//!
//! The container profile (`sandmine-ROLE.json`, for Docker, podman and the
//! kubelet) also allows the runtime's post-filter calls: runc makes them
//! after it installs the filter and before it execs sandmine (runc 1.1.5's
//! CVE-2024-21626 fix calls `fstatfs` on /proc/self/fd), so without them
//! the container never starts. They come from a measured runtime base
//! (`--runtime-base`, the file `sandmine mine-image` caches after starting
//! its probe container under the mining filter). The systemd drop-in is
//! compiled without them: no runtime stands between systemd and sandmine.
//!
//! `deploy/own-profile/build.sh` runs it; deploy/README.md says why the
//! tier is `allow` and what EPERM means for a rare path.
//!
//! ```text
//! cargo run --release --example own_profile -- \
//!     --mined deploy/own-profile/mined --binary target/release/sandmine \
//!     --out deploy/own-profile --units deploy/systemd \
//!     --runtime-base deploy/own-profile/mined/runtime-base.json
//! ```

use anyhow::{bail, Context, Result};
use policy_compiler::reachable::{AnalysedFile, Reachability, Tier};
use schemas::{Abi, Observation, SyscallKey};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Each role, and the systemd unit that runs it (if any).
const ROLES: &[(&str, Option<&str>)] = &[
    ("collect", Some("sandmine-collect.service")),
    ("aggregate", Some("sandmine-aggregate.service")),
    ("publish", Some("sandmine-publish.service")),
    ("sync-profiles", None),
];

/// The block of a unit this tool owns.
const BEGIN: &str = "# BEGIN own profile (deploy/own-profile/build.sh writes this block)";
const END: &str = "# END own profile";

/// A fixed time, so that the outputs are byte-identical for identical
/// observations.
const AT_MS: u64 = 0;

struct Args {
    mined: PathBuf,
    binary: PathBuf,
    out: PathBuf,
    units: Option<PathBuf>,
    runtime_base: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let (mut mined, mut binary, mut out, mut units, mut runtime_base) =
        (None, None, None, None, None);
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--mined" => mined = Some(PathBuf::from(val()?)),
            "--binary" => binary = Some(PathBuf::from(val()?)),
            "--out" => out = Some(PathBuf::from(val()?)),
            "--units" => units = Some(PathBuf::from(val()?)),
            "--runtime-base" => runtime_base = Some(PathBuf::from(val()?)),
            _ => bail!("unknown argument {a}; usage: own_profile --mined DIR --binary FILE --out DIR [--units DIR] [--runtime-base FILE]"),
        }
    }
    Ok(Args {
        mined: mined.context("--mined DIR is required")?,
        binary: binary.context("--binary FILE is required")?,
        out: out.context("--out DIR is required")?,
        units,
        runtime_base,
    })
}

/// Every `ROLE-*.obs.json` in `dir`, merged; and how many runs.
fn observed(dir: &Path, role: &str) -> Result<(Observation, usize)> {
    let mut obs = Observation::default();
    let mut runs = 0;
    let prefix = format!("{role}-");
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for p in names {
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // `sync-profiles-` must not count as a `sync-` run, nor
        // `publish-` of another role: the rest is PID-N.obs.json.
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        if !rest.ends_with(".obs.json") || !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
        let one: Observation = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an observation", p.display()))?;
        obs.merge(&one);
        runs += 1;
    }
    if runs == 0 {
        bail!(
            "no observation of `sandmine {role}` in {}: run the tests with SANDMINE_TEST_MINE_ROLES",
            dir.display()
        );
    }
    Ok((obs, runs))
}

/// The static reach of `binary` (and the libraries it loads from `/`).
fn reachability(binary: &Path) -> Result<Reachability> {
    let path = binary
        .canonicalize()
        .with_context(|| format!("cannot find {}", binary.display()))?;
    let path = path.to_str().context("the binary's path is not UTF-8")?;
    let mut analyzer = reach::Analyzer::new(Path::new("/"));
    let a = analyzer
        .analyse(path)
        .with_context(|| format!("analysing {path}"))?;
    let syscalls = a
        .syscalls
        .iter()
        .map(|((abi, nr), r)| {
            (
                SyscallKey { abi: *abi, nr: *nr },
                format!("sandmine: {}", r.render()),
            )
        })
        .collect();
    Ok(Reachability {
        syscalls,
        files: vec![AnalysedFile {
            // The deployed path, so the report does not name this build's.
            path: "/usr/local/bin/sandmine".into(),
            ran: true,
            known: a.reach_known(),
            nonconst_sites: a.limits.nonconst_syscall_sites,
            syscalls: a.syscalls.len(),
        }],
        gaps: Vec::new(),
        arg_sites: Default::default(),
    })
}

/// Replaces the own-profile block of `unit` with the drop-in's filter.
fn apply_to_unit(unit: &Path, role: &str, dropin: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(unit).with_context(|| format!("cannot read {}", unit.display()))?;
    let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END)) else {
        bail!("{} has no `{BEGIN}` ... `{END}` block", unit.display());
    };
    let mut block = format!(
        "{BEGIN}\n# sandmine's own profile of `sandmine {role}` (deploy/own-profile/sandmine-{role}.json):\n\
         # observed in the tests, joined with the binary's static reach. A call\n\
         # outside it fails with EPERM; nothing is ever killed for a syscall.\n"
    );
    for line in dropin.lines() {
        if line.starts_with("SystemCallFilter=")
            || line.starts_with("SystemCallLog=")
            || line.starts_with("SystemCallErrorNumber=")
            || line.starts_with("# answered with ENOSYS")
        {
            block.push_str(line);
            block.push('\n');
        }
    }
    let new = format!("{}{block}{}", &text[..b], &text[e..]);
    if new != text {
        std::fs::write(unit, new).with_context(|| format!("cannot write {}", unit.display()))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = args()?;
    let reach = reachability(&args.binary)?;
    let reachable_x86_64 = reach
        .syscalls
        .keys()
        .filter(|k| k.abi == Abi::X86_64)
        .count();
    let policy = policy_compiler::Policy {
        reachable: Tier::Allow,
        ..policy_compiler::Policy::single_host()
    }
    .resolve()
    .context("the single-host policy")?;
    let base = match &args.runtime_base {
        None => None,
        Some(p) => Some(
            collector::mining::runtime_base::load_file(p)
                .with_context(|| format!("the runtime base {}", p.display()))?,
        ),
    };
    let mut table = String::from(
        "role\truns\tobserved\treachable\treachable_not_observed_allowed\theld_back\tallowed\n",
    );
    for (role, unit) in ROLES {
        let (obs, runs) = observed(&args.mined, role)?;
        let name = format!("sandmine-{role}");
        // An enforcing profile of `obs`, under the single-host policy.
        let compile = |obs: &Observation, what: &str| -> Result<_> {
            let image = schemas::fleet::ImageObservations::single_run(
                &name,
                "unconfined",
                obs,
                &BTreeMap::new(),
                AT_MS,
                AT_MS,
            );
            let c =
                policy_compiler::compile::compile_image_with(&image, Some(&reach), &policy, AT_MS)
                    .with_context(|| format!("compiling {name}{what}"))?;
            if !c.decision.enforcing() {
                bail!("{name}{what}: the profile would not enforce");
            }
            Ok(c)
        };
        let c = compile(&obs, "")?;
        // The container profile: the same, plus the runtime's post-filter
        // calls (as runtime-phase observations, which the compiler allows).
        let container = match &base {
            None => None,
            Some(b) => {
                let mut with_base = obs.clone();
                b.apply(&mut with_base);
                Some(compile(&with_base, " with the runtime base")?)
            }
        };
        let json = container
            .as_ref()
            .unwrap_or(&c)
            .profile
            .to_json()
            .context("rendering the profile")?;
        let dropin = c
            .files
            .get("systemd.conf")
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .context("no systemd drop-in rendered")?;
        let write = |file: String, bytes: &[u8]| -> Result<()> {
            let p = args.out.join(file);
            std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))
        };
        write(format!("{name}.json"), json.as_bytes())?;
        write(format!("{name}.systemd.conf"), dropin.as_bytes())?;
        // The report of the container profile: the systemd drop-in is the
        // same less the runtime base's lines.
        let report = &container.as_ref().unwrap_or(&c).report_text;
        write(format!("{name}.report.txt"), report.as_bytes())?;
        if let (Some(dir), Some(unit)) = (&args.units, unit) {
            apply_to_unit(&dir.join(unit), role, &dropin)?;
        }
        let observed_x86_64 = obs.syscalls.keys().filter(|k| k.abi == Abi::X86_64).count();
        let allowed = c.decision.allowed_union().len() + c.decision.logged_union().len();
        let (tiered, held_back) = c
            .decision
            .reach
            .as_ref()
            .map_or((0, 0), |r| (r.tiered, r.held_back.len()));
        let _ = writeln!(
            table,
            "{role}\t{runs}\t{observed_x86_64}\t{reachable_x86_64}\t{tiered}\t{held_back}\t{allowed}"
        );
    }
    print!("{table}");
    std::fs::write(args.out.join("counts.tsv"), table.as_bytes())
        .context("cannot write counts.tsv")?;
    Ok(())
}
