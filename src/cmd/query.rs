//! `sandmine query`: what the store knows, for people and scripts. The
//! questions and their definitions are in `docs/ANALYTICS.md`.

mod format;

use crate::config::ConfigArgs;
use crate::settings::Settings;
use aggregator::store::analytics::{DriftBase, Window};
use aggregator::store::Store;
use anyhow::{bail, Context, Result};
use format::{Answer, Cell, Format};
use policy_compiler::effective::{outcome_text, runs, VerdictClass};
use policy_compiler::oci::KernelVersion;
use publish::Target;
use schemas::{syscalls, Abi};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Show what the store (ClickHouse or embedded) knows about images and syscalls",
    long_about = "Reads the store named by the configuration ([store.clickhouse] or \
[store.embedded]; e.g. --set store.embedded.path=/var/lib/sandmine/standalone.db). \
Configuration flags come before the question. docs/ANALYTICS.md defines every answer \
and gives the SQL behind it.",
    after_help = "Examples:\n  \
sandmine query images\n  \
sandmine query --config /etc/sandmine/aggregator.toml uses io_uring_setup --since 30d --published /srv/profiles\n  \
sandmine query --config /etc/sandmine/aggregator.toml denials --since 7d\n  \
sandmine query --set store.embedded.path=/var/lib/sandmine/standalone.db totals"
)]
pub struct QueryArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Image names in the store, one per line.
    #[command(after_help = "Example:\n  sandmine query images")]
    Images,
    /// JSON: one image's exposure (hosts, containers, container-seconds),
    /// per syscall hosts, containers, calls, first and last seen, and
    /// per-container incidence.
    #[command(after_help = "Example:\n  sandmine query image nginx:1.27")]
    Image { image: String },
    /// TSV: image, abi, syscall, calls, hosts, containers.
    #[command(after_help = "Example:\n  sandmine query totals")]
    Totals,
    /// Who uses a syscall: per image, hosts, containers, calls, last seen,
    /// and whether its published profile allows it.
    #[command(
        long_about = "Who uses a syscall: per image that used it in the window, the hosts and \
containers whose use of it overlaps the window, its calls in the window, when it was last \
seen, and whether the image's published profile allows it. The window is widened to whole \
hours (the embedded store keeps calls per hour).\n\n\
published: read from a publish folder (--published DIR: the root of a `dir` publish \
target, <DIR>/<slug>/current): yes (in the allowed list), no (denied: enforce mode), \
logged (not in the list, but the profile is in log mode: the call runs and is logged), \
unknown (no --published, no publication for the image, or the number has no name).",
        after_help = "Examples:\n  \
sandmine query uses io_uring_setup\n  \
sandmine query uses keyctl --since 2026-11-01 --until 2026-12-01 --format csv\n  \
sandmine query uses ptrace --since 7d --published /srv/sandmine/profiles --format json\n  \
sandmine query uses 0 --abi i386"
    )]
    Uses {
        /// A syscall name, or its number for --abi.
        syscall: String,
        #[command(flatten)]
        common: UsesArgs,
    },
    /// Drift: the syscalls an image gained and lost since a date, or
    /// between two of its digests.
    #[command(
        long_about = "Drift of one image. With --since: new = first seen at or after that time, \
gone = not seen since (last seen before it). With --since-version V --published DIR: the same, \
since the time version V of the image's profile was published, as its meta.json records it (V as `sandmine lever versions` \
lists it, 12 hex digits or the full sha256:..., or `current` for the version in force), read from \
the dir publish target DIR (<DIR>/<slug>/<version>/meta.json). With --from and --to (two digests of the same \
image name, as IMAGE@DIGEST or just DIGEST): new = used by containers of the --to digest and \
by none of the --from digest, gone = the other way round. Each row gives what the side that \
has the syscall saw: hosts, containers, first and last seen.",
        after_help = "Examples:\n  \
sandmine query drift nginx:1.27 --since 2026-11-01\n  \
sandmine query drift nginx:1.27 --since 7d --format json\n  \
sandmine query drift nginx:1.27 --since-version current --published /srv/sandmine/profiles\n  \
sandmine query drift --from nginx:1.27@sha256:1111... --to nginx:1.27@sha256:2222...\n  \
sandmine query drift nginx:1.27 --from sha256:1111... --to sha256:2222... --format csv"
    )]
    Drift {
        /// The image name (optional when --from and --to are IMAGE@DIGEST).
        image: Option<String>,
        /// New since: a UTC date, an instant or a duration back from now.
        #[arg(long, value_name = "DATE|DURATION", value_parser = parse_when, conflicts_with_all = ["from", "to", "since_version"])]
        since: Option<u64>,
        /// New since version V of the image's published profile was
        /// published (12 hex digits, sha256:..., or `current`); needs
        /// --published.
        #[arg(long, value_name = "VERSION", requires = "published", conflicts_with_all = ["from", "to"])]
        since_version: Option<String>,
        /// The dir publish target that --since-version reads.
        #[arg(long, value_name = "DIR")]
        published: Option<PathBuf>,
        /// The old digest: IMAGE@DIGEST or DIGEST.
        #[arg(long, value_name = "IMAGE@DIGEST", requires = "to")]
        from: Option<String>,
        /// The new digest: IMAGE@DIGEST or DIGEST.
        #[arg(long, value_name = "IMAGE@DIGEST", requires = "from")]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Usage over time: per hour, an image's calls, hosts and new
    /// containers, of one syscall or of all.
    #[command(
        long_about = "Usage over time of one image, per hour (the embedded store's rollup; \
ClickHouse keeps every 10 s interval and is read at the same granularity, so that both stores \
answer alike): calls (in intervals that ended in the hour), hosts (that made them) and \
new_containers (containers whose first use, of SYSCALL or of any syscall, was in the hour: \
the convergence curve). Hours with nothing are left out. On an embedded store upgraded to \
migration 3, the calls from before the upgrade are counted in the hour of their last use.",
        after_help = "Examples:\n  \
sandmine query usage nginx:1.27\n  \
sandmine query usage nginx:1.27 openat --format csv\n  \
sandmine query usage nginx:1.27 socketcall --abi i386 --format json"
    )]
    Usage {
        image: String,
        /// A syscall name or number (all syscalls when left out).
        syscall: Option<String>,
        /// The ABI of SYSCALL.
        #[arg(long, default_value = "x86_64", value_parser = parse_abi)]
        abi: Abi,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Surface: per image, the compiled state, allowed count against
    /// Docker's default, the high-risk syscalls it allows, and the
    /// seccomp denials its containers had; a fleet total.
    #[command(
        long_about = "Attack surface per image, compiled now from the store's observations under \
the policy (--policy, --runtime-base: the same compiler and inputs as `sandmine compile`): \
state (enforce, log, not_ready), allowed (x86_64 names the profile allows), docker_default \
(292: the x86_64 names Docker's default profile allows), beyond_default (allowed names \
Docker's default does not allow), and high_risk (allowed names from the catalogue of \
policy-compiler/src/risk.rs, each with its CVE or advisory; `sandmine query surface --risks` \
lists it), denied (calls the image's containers had denied by a seccomp filter: every \
action and profile version the store holds, as `sandmine query denials` lists them; wire v6 \
collectors) and denied_syscalls (their names, with the ABI when not x86_64). The last row, \
`(fleet)`, totals every image shown: states counted, the union of allowed, beyond_default, \
high_risk and denied_syscalls names, and the sum of denied calls.",
        after_help = "Examples:\n  \
sandmine query surface\n  \
sandmine query surface nginx:1.27 --format json\n  \
sandmine query surface --policy /etc/sandmine/policy.toml --format csv\n  \
sandmine query surface --risks"
    )]
    Surface {
        /// Images (default: every image in the store).
        images: Vec<String>,
        #[command(flatten)]
        policy: crate::compiling::PolicyArgs,
        /// List the high-risk catalogue (name, why, sources) instead.
        #[arg(long)]
        risks: bool,
        #[arg(long, value_name = "MS", hide = true)]
        now_ms: Option<u64>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// What a profile would break: per image, each syscall used in the
    /// window that the profile would deny, or might deny (the arguments
    /// decide), with hosts, containers, calls and last seen. Exit status
    /// 1 when anything would break or is unknown.
    #[command(
        long_about = "What a seccomp profile (sandmine's, Docker's default, a hand-written one) \
would break: per image (or only --image), each syscall observed in the window that the \
profile would deny (verdict `denied`, with the action: errno N, kill_process, kill_thread, \
trap) or might deny (verdict `unknown`: an argument rule decides, and argument values are \
not recorded; the conditions column says which), with the hosts, containers, calls and last \
seen of `query uses`; then one `(total)` row per image: how many syscalls are denied and \
unknown, and the distinct hosts and containers that used any of them. SCMP_ACT_LOG runs the \
call (and logs it): not broken, listed as `logged` with --all.\n\n\
The profile is judged by `sandmine run`'s evaluator, as Docker applies it: argument rules, \
includes/excludes (against --caps, --kernel and --arch: by default this host's, as \
`sandmine run` does), runc's ENOSYS for syscalls newer than the profile, and a kill for \
ABIs the profile does not list.\n\n\
Exit status: 0 when nothing would break, 1 when some syscall is denied or unknown (for CI), \
2 on a usage or input error (a bad profile, an unknown image).",
        after_help = "Examples:\n  \
sandmine query breaks --profile docker-default.json --caps docker --since 7d\n  \
sandmine query breaks --profile profiles/nginx/seccomp.json --image nginx:1.27 --format csv\n  \
sandmine query breaks --profile strict.json --caps docker --cap-add CAP_SYS_PTRACE --kernel 5.10 --all --format json\n  \
sandmine query breaks --profile app.json --image app:1 --since 2026-11-01 || echo 'app:1 would break'"
    )]
    Breaks(BreaksArgs),
    /// Recorded argument values of an image's syscalls: per value, the
    /// hosts and containers that recorded it.
    #[command(
        long_about = "Argument values the collectors recorded in the kernel (wire version 7: collectors with max_wire_version = 7) for one image: per syscall, the arguments recorded (argN&MASK, the mask applied before recording), each distinct value (its elements in hex, in the arguments' order), the distinct hosts and verified containers that recorded it, the verified containers that recorded a set for the syscall at all (recorded), and those whose set overflowed (overflowed: some values were not recorded, so no argument rule is built for the syscall). Unverified containers count nowhere.",
        after_help = "Examples:\n  \
sandmine query args --image nginx:1.27\n  \
sandmine query args --image nginx:1.27 --format csv"
    )]
    Args(ArgsArgs),
    /// Seccomp denials reported by the collectors: per image, syscall,
    /// action and profile version, the denied calls, hosts, containers,
    /// first and last seen.
    #[command(
        long_about = "Seccomp denials the collectors counted in the kernel (wire version 6: collectors with max_wire_version = 6): per image (or only --image), syscall, action (errno N, trap, kill) and profile version, the denied calls, the distinct hosts and containers that had them, and the end of the first and last collector interval that counted one. The profile version is the first 16 hex digits of the sha256 of the profile the engine reported applying (`docker inspect`'s HostConfig.SecurityOpt), or runtime/default, unconfined, unknown. --since is widened to whole hours (both stores keep denials per hour at least).",
        after_help = "Examples:\n  \
sandmine query denials\n  \
sandmine query denials --image nginx:1.27 --since 7d\n  \
sandmine query denials --since 2026-11-01 --format csv\n  \
sandmine query --set store.embedded.path=/var/lib/sandmine/standalone.db denials --format json"
    )]
    Denials {
        /// Only this image (default: every image with denials).
        #[arg(long, value_name = "IMAGE")]
        image: Option<String>,
        /// From: a UTC date (2026-11-01), an instant (2026-11-01T12:00:00Z)
        /// or a duration back from now (7d, 12h); default: everything
        /// stored.
        #[arg(long, value_name = "DATE|DURATION", value_parser = parse_when)]
        since: Option<u64>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(clap::Args, Debug)]
pub struct ArgsArgs {
    /// The image.
    #[arg(long, value_name = "IMAGE")]
    image: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(clap::Args, Debug)]
pub struct BreaksArgs {
    /// The seccomp profile (Docker/OCI JSON).
    #[arg(long, value_name = "FILE")]
    profile: PathBuf,
    /// Only this image (default: every image used in the window).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// From: a UTC date (2026-11-01), an instant (2026-11-01T12:00:00Z) or
    /// a duration back from now (7d, 12h); default: everything stored.
    #[arg(long, value_name = "DATE|DURATION", value_parser = parse_when)]
    since: Option<u64>,
    /// Until (exclusive); the same forms as --since.
    #[arg(long, value_name = "DATE|DURATION", value_parser = parse_when)]
    until: Option<u64>,
    /// Only syscalls of this ABI (default: every ABI).
    #[arg(long, value_parser = parse_abi)]
    abi: Option<Abi>,
    /// The bounding capability set dockerd judges `includes.caps` and
    /// `excludes.caps` against: host (this process's, as `sandmine run`),
    /// docker (Docker's default set, `docker run` without --cap-add), none,
    /// or names separated by commas (CAP_SYS_ADMIN,CAP_NET_ADMIN).
    #[arg(long, value_name = "host|docker|none|CAPS", default_value = "host", value_parser = crate::conditions::parse_cap_set)]
    caps: crate::conditions::CapSet,
    /// A capability added to --caps (repeatable), as `docker run --cap-add`.
    #[arg(long, value_name = "CAP", value_parser = crate::conditions::capability)]
    cap_add: Vec<String>,
    /// The kernel `includes.minKernel`/`excludes.minKernel` are judged
    /// against, as <kernel>.<major> (default: this host's).
    #[arg(long, value_name = "X.Y", value_parser = parse_kernel)]
    kernel: Option<KernelVersion>,
    /// The native architecture dockerd resolves `archMap` and `arches` for
    /// (x86_64 or aarch64; default: this host's).
    #[arg(long, value_name = "ABI", value_parser = parse_abi)]
    arch: Option<Abi>,
    /// Also list the syscalls that run (verdict allowed or logged).
    #[arg(long)]
    all: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(clap::Args, Debug)]
pub struct UsesArgs {
    /// The ABI the name or number is of.
    #[arg(long, default_value = "x86_64", value_parser = parse_abi)]
    abi: Abi,
    /// From: a UTC date (2026-11-01), an instant (2026-11-01T12:00:00Z) or
    /// a duration back from now (7d, 12h).
    #[arg(long, value_name = "DATE|DURATION", value_parser = parse_when)]
    since: Option<u64>,
    /// Until (exclusive); the same forms as --since.
    #[arg(long, value_name = "DATE|DURATION", value_parser = parse_when)]
    until: Option<u64>,
    /// The root of a `dir` publish target, to tell whether each image's
    /// published profile allows the syscall.
    #[arg(long, value_name = "DIR")]
    published: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

fn parse_abi(s: &str) -> Result<Abi, String> {
    s.parse::<Abi>().map_err(|e| e.to_string())
}

fn parse_kernel(s: &str) -> Result<KernelVersion, String> {
    match KernelVersion::parse_min(s) {
        Some(k) => Ok(k),
        None => Err(format!(
            "{s:?} is not a kernel version <kernel>.<major> (e.g. 5.10)"
        )),
    }
}

/// A UTC date or instant, or a duration back from now, as ms.
fn parse_when(s: &str) -> Result<u64, String> {
    if let Some(ms) = sysutil::clock::parse_utc_ms(s) {
        return Ok(ms);
    }
    match sysutil::parse_duration(s) {
        Ok(d) => Ok(sysutil::clock::now_ms()
            .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        Err(_) => Err(format!(
            "{s:?} is neither a UTC date (2026-11-01), an instant (2026-11-01T12:00:00Z) \
             nor a duration (7d, 12h)"
        )),
    }
}

/// A syscall given by name or number, as (number, name if known).
fn resolve_syscall(abi: Abi, s: &str) -> Result<(u32, Option<&'static str>)> {
    if let Ok(nr) = s.parse::<u32>() {
        return Ok((nr, syscalls::name(abi, nr)));
    }
    match syscalls::number(abi, s) {
        Some(nr) => Ok((nr, syscalls::name(abi, nr))),
        None => bail!("{s:?} is not a {abi} syscall name (Linux v6.18's table)"),
    }
}

pub fn main(args: QueryArgs) -> Result<ExitCode> {
    let s: Settings = args.config.load()?;
    crate::compiling::with_store(&s.store, |store| async move {
        let mut out = std::io::stdout().lock();
        match args.what {
            What::Images => {
                for i in store.images().await? {
                    writeln!(out, "{i}")?;
                }
            }
            What::Image { image } => {
                let Some(obs) = store.image_observations(&image).await? else {
                    bail!("image {image:?} is not in the store (see `sandmine query images`)");
                };
                let mut v = serde_json::to_value(&obs)?;
                // Names next to numbers, for people; numbers stay the key.
                if let Some(list) = v.get_mut("syscalls").and_then(|s| s.as_array_mut()) {
                    for (j, s) in list.iter_mut().enumerate() {
                        let t = &obs.syscalls[j];
                        let name = syscalls::name(t.abi, t.nr).unwrap_or("?");
                        s["name"] = serde_json::Value::from(name);
                    }
                }
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            }
            What::Totals => {
                writeln!(out, "image\tabi\tsyscall\tcalls\thosts\tcontainers")?;
                for (image, abi, nr, calls, hosts, containers) in store.syscall_totals().await? {
                    let name = syscalls::name(abi, nr)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("#{nr}"));
                    writeln!(
                        out,
                        "{image}\t{abi}\t{name}\t{calls}\t{hosts}\t{containers}"
                    )?;
                }
            }
            What::Uses { syscall, common } => {
                let a = uses(&store, &syscall, &common).await?;
                a.write(common.format, &mut out)?;
            }
            What::Usage {
                image,
                syscall,
                abi,
                format,
            } => {
                let a = usage(&store, &image, syscall.as_deref(), abi).await?;
                a.write(format, &mut out)?;
            }
            What::Surface {
                images,
                policy,
                risks,
                now_ms,
                format,
            } => {
                let a = if risks {
                    risk_catalogue()
                } else {
                    let now = now_ms.unwrap_or_else(sysutil::clock::now_ms);
                    surface(&store, &images, &policy, now).await?
                };
                a.write(format, &mut out)?;
            }
            What::Drift {
                image,
                since,
                since_version,
                published,
                from,
                to,
                format,
            } => {
                let since = match (&since_version, &published, &image) {
                    (Some(v), Some(dir), Some(img)) => Some(version_time(dir, img, v).await?),
                    (Some(_), _, None) => bail!("drift --since-version needs an IMAGE"),
                    _ => since,
                };
                let a = drift(&store, image, since, from, to).await?;
                a.write(format, &mut out)?;
            }
            What::Denials {
                image,
                since,
                format,
            } => {
                let a = denials(&store, image.as_deref(), since).await?;
                a.write(format, &mut out)?;
            }
            What::Args(a) => {
                let Some(obs) = store.image_observations(&a.image).await? else {
                    bail!(
                        "image {:?} is not in the store (see `sandmine query images`)",
                        a.image
                    );
                };
                arg_values(&obs.args).write(a.format, &mut out)?;
            }
            What::Breaks(b) => {
                let (a, broken) = breaks(&store, &b).await?;
                a.write(b.format, &mut out)?;
                if broken {
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// When version `v` of `image`'s profile was published to the dir target
/// `dir`, as its `meta.json` records it (`current`: the version in force).
async fn version_time(dir: &std::path::Path, image: &str, v: &str) -> Result<u64> {
    if !dir.is_dir() {
        bail!("--published {}: not a directory", dir.display());
    }
    let t = publish::DirTarget::new(dir);
    let slug = publish::image_slug(image);
    let what = || {
        format!(
            "cannot read the publications of {image:?} in {}",
            dir.display()
        )
    };
    if v == "current" {
        return match t.current(&slug).await.with_context(what)? {
            Some(m) => Ok(m.published_at_ms),
            None => bail!("{image:?} has no publication in force in {}", dir.display()),
        };
    }
    let versions = t.versions(&slug).await.with_context(what)?;
    // The time that version's meta.json records (a rollback that published
    // it again records the later time).
    versions
        .iter()
        .filter(|m| m.version == v || m.version_short == v)
        .map(|m| m.published_at_ms)
        .max()
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{image:?} has no version {v} in {} (it has: {})",
                dir.display(),
                versions
                    .iter()
                    .map(|m| m.version_short.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Whether the published profile of `image` allows a syscall: yes, no,
/// logged, unknown (see `What::Uses`).
async fn published_allows(
    target: Option<&publish::DirTarget>,
    image: &str,
    abi: Abi,
    name: Option<&str>,
) -> Result<&'static str> {
    let (Some(t), Some(name)) = (target, name) else {
        return Ok("unknown");
    };
    let slug = publish::image_slug(image);
    let Some(meta) = t
        .current(&slug)
        .await
        .with_context(|| format!("cannot read the publication of {image:?}"))?
    else {
        return Ok("unknown");
    };
    let listed = meta
        .allowed
        .get(abi.as_str())
        .is_some_and(|s| s.contains(name));
    Ok(if listed {
        "yes"
    } else if meta.state == "log" {
        "logged"
    } else {
        "no"
    })
}

async fn usage(store: &Store, image: &str, syscall: Option<&str>, abi: Abi) -> Result<Answer> {
    let key = match syscall {
        Some(s) => Some((abi, resolve_syscall(abi, s)?.0)),
        None => None,
    };
    if !store
        .images()
        .await
        .context("cannot read the store")?
        .iter()
        .any(|i| i == image)
    {
        bail!("image {image:?} is not in the store (see `sandmine query images`)");
    }
    let rows = store
        .usage(image, key)
        .await
        .context("cannot read the store")?;
    let mut ans = Answer::new(&["hour", "calls", "hosts", "new_containers"]);
    for r in rows {
        ans.push(vec![
            Cell::Time(r.hour_ms),
            Cell::Int(r.calls),
            Cell::Int(r.hosts),
            Cell::Int(r.new_containers),
        ]);
    }
    Ok(ans)
}

async fn denials(store: &Store, image: Option<&str>, since: Option<u64>) -> Result<Answer> {
    let rows = store
        .denials(image, since)
        .await
        .context("cannot read the store")?;
    let mut ans = Answer::new(&[
        "image",
        "abi",
        "syscall",
        "action",
        "profile",
        "denials",
        "hosts",
        "containers",
        "first_seen",
        "last_seen",
    ]);
    for r in rows {
        let name = syscalls::name(r.abi, r.nr)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{}", r.nr));
        ans.push(vec![
            Cell::text(r.image),
            Cell::text(r.abi.as_str()),
            Cell::text(name),
            Cell::text(r.action.to_string()),
            Cell::text(r.profile),
            Cell::Int(r.denials),
            Cell::Int(r.hosts),
            Cell::Int(r.containers),
            Cell::Time(r.first_seen_ms),
            Cell::Time(r.last_seen_ms),
        ]);
    }
    Ok(ans)
}

/// `query args`: one row per recorded value, with its syscall's recorded
/// and overflowed containers.
fn arg_values(e: &schemas::ArgEvidence) -> Answer {
    let mut ans = Answer::new(&[
        "abi",
        "syscall",
        "args",
        "value",
        "hosts",
        "containers",
        "recorded",
        "overflowed",
    ]);
    let recorded = |abi, nr| {
        e.recorded
            .iter()
            .find(|r| (r.abi, r.nr) == (abi, nr))
            .map_or(0, |r| r.containers)
    };
    let overflowed = |abi, nr| {
        e.overflow
            .iter()
            .find(|r| (r.abi, r.nr) == (abi, nr))
            .map_or(0, |r| r.containers)
    };
    for v in &e.values {
        let name = syscalls::name(v.abi, v.nr)
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{}", v.nr));
        let args: Vec<String> = v
            .fields
            .iter()
            .map(|f| format!("arg{}&{:#x}", f.index, f.mask))
            .collect();
        let value: Vec<String> = v.value.iter().map(|x| format!("{x:#x}")).collect();
        ans.push(vec![
            Cell::text(v.abi.as_str()),
            Cell::text(name),
            Cell::text(args.join(",")),
            Cell::text(value.join(",")),
            Cell::Int(v.hosts),
            Cell::Int(v.containers),
            Cell::Int(recorded(v.abi, v.nr)),
            Cell::Int(overflowed(v.abi, v.nr)),
        ]);
    }
    ans
}

fn risk_catalogue() -> Answer {
    let mut ans = Answer::new(&["syscall", "why", "sources"]);
    for r in policy_compiler::risk::CATALOGUE {
        ans.push(vec![
            Cell::text(r.name),
            Cell::text(r.why),
            Cell::List(r.sources.iter().map(|s| s.to_string()).collect()),
        ]);
    }
    ans
}

async fn surface(
    store: &Store,
    wanted: &[String],
    policy: &crate::compiling::PolicyArgs,
    now: u64,
) -> Result<Answer> {
    let images = crate::compiling::select_images(store, wanted).await?;
    let mut compiler = policy.load()?;
    compiler.read_observed(store).await?;
    let docker = policy_compiler::risk::docker_default_x86_64();
    let mut ans = Answer::new(&[
        "image",
        "state",
        "allowed",
        "docker_default",
        "beyond_default",
        "high_risk",
        "denied",
        "denied_syscalls",
    ]);
    let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut all, mut beyond_all, mut risky_all) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let (mut denied_all, mut denied_names) = (0u64, BTreeSet::new());
    for image in &images {
        let s = compiler.surface(store, image, now).await?;
        *states.entry(s.state.as_str()).or_default() += 1;
        ans.push(vec![
            Cell::text(s.image.as_str()),
            Cell::text(s.state.as_str()),
            Cell::Int(s.allowed.len() as u64),
            Cell::Int(docker.len() as u64),
            Cell::Int(s.beyond_default.len() as u64),
            Cell::List(s.high_risk.iter().map(|n| n.to_string()).collect()),
            Cell::Int(s.denied_calls()),
            Cell::List(s.denied_syscalls().into_iter().collect()),
        ]);
        denied_all = denied_all.saturating_add(s.denied_calls());
        denied_names.extend(s.denied_syscalls());
        beyond_all.extend(s.beyond_default.iter().copied());
        risky_all.extend(s.high_risk.iter().copied());
        all.extend(s.allowed.iter().copied());
    }
    let risky_all: Vec<String> = policy_compiler::risk::CATALOGUE
        .iter()
        .filter(|r| risky_all.contains(r.name))
        .map(|r| r.name.to_string())
        .collect();
    ans.push(vec![
        Cell::text("(fleet)"),
        Cell::text(
            states
                .iter()
                .map(|(s, n)| format!("{s}={n}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Cell::Int(all.len() as u64),
        Cell::Int(docker.len() as u64),
        Cell::Int(beyond_all.len() as u64),
        Cell::List(risky_all),
        Cell::Int(denied_all),
        Cell::List(denied_names.into_iter().collect()),
    ]);
    Ok(ans)
}

/// `IMAGE@DIGEST` or `DIGEST` as (image if given, digest).
fn split_ref(r: &str) -> (Option<&str>, &str) {
    match r.rsplit_once('@') {
        Some((i, d)) if !i.is_empty() => (Some(i), d),
        _ => (None, r),
    }
}

async fn drift(
    store: &Store,
    image: Option<String>,
    since: Option<u64>,
    from: Option<String>,
    to: Option<String>,
) -> Result<Answer> {
    let (image, base) = match (since, from, to) {
        (Some(ms), None, None) => {
            let Some(image) = image else {
                bail!("drift --since needs an IMAGE");
            };
            (image, DriftBase::Since(ms))
        }
        (None, Some(from), Some(to)) => {
            let (fi, fd) = split_ref(&from);
            let (ti, td) = split_ref(&to);
            let names: BTreeSet<&str> = [image.as_deref(), fi, ti].into_iter().flatten().collect();
            let image = match names.len() {
                0 => bail!("drift --from/--to needs an IMAGE (or IMAGE@DIGEST references)"),
                1 => names.into_iter().collect::<String>(),
                _ => bail!(
                    "drift compares two digests of one image name; got {}",
                    names.into_iter().collect::<Vec<_>>().join(", ")
                ),
            };
            let base = DriftBase::Digests {
                from: fd.to_string(),
                to: td.to_string(),
            };
            (image, base)
        }
        _ => bail!("drift needs --since, or --from and --to"),
    };
    if let DriftBase::Digests { from, to } = &base {
        let obs = store
            .image_observations(&image)
            .await
            .context("cannot read the store")?
            .with_context(|| {
                format!("image {image:?} is not in the store (see `sandmine query images`)")
            })?;
        for d in [from, to] {
            if !obs.digests.contains(d) {
                bail!(
                    "image {image:?} has no container of digest {d:?} (its digests: {})",
                    if obs.digests.is_empty() {
                        "none recorded".to_string()
                    } else {
                        obs.digests.join(", ")
                    }
                );
            }
        }
    }
    let Some(d) = store
        .drift(&image, &base)
        .await
        .context("cannot read the store")?
    else {
        bail!("image {image:?} is not in the store (see `sandmine query images`)");
    };
    let mut ans = Answer::new(&[
        "change",
        "abi",
        "syscall",
        "nr",
        "hosts",
        "containers",
        "first_seen",
        "last_seen",
    ]);
    for (change, rows) in [("new", d.new), ("gone", d.gone)] {
        for r in rows {
            ans.push(vec![
                Cell::text(change),
                Cell::text(r.abi.as_str()),
                Cell::text(syscalls::name(r.abi, r.nr).unwrap_or("?")),
                Cell::Int(u64::from(r.nr)),
                Cell::Int(r.hosts),
                Cell::Int(r.containers),
                Cell::Time(r.first_seen_ms),
                Cell::Time(r.last_seen_ms),
            ]);
        }
    }
    Ok(ans)
}

async fn uses(store: &Store, syscall: &str, a: &UsesArgs) -> Result<Answer> {
    let (nr, name) = resolve_syscall(a.abi, syscall)?;
    if let (Some(s), Some(u)) = (a.since, a.until) {
        if s >= u {
            bail!("--since must be before --until");
        }
    }
    let window = Window {
        since_ms: a.since,
        until_ms: a.until,
    };
    let rows = store
        .syscall_uses(a.abi, nr, window)
        .await
        .context("cannot read the store")?;
    let target = a.published.as_ref().map(publish::DirTarget::new);
    let mut ans = Answer::new(&[
        "image",
        "hosts",
        "containers",
        "calls",
        "last_seen",
        "published",
    ]);
    for r in rows {
        let published = published_allows(target.as_ref(), &r.image, a.abi, name).await?;
        ans.push(vec![
            Cell::text(r.image),
            Cell::Int(r.hosts),
            Cell::Int(r.containers),
            Cell::Int(r.calls),
            Cell::Time(r.last_seen_ms),
            Cell::text(published),
        ]);
    }
    Ok(ans)
}

/// `query breaks`: the answer, and whether anything would break (denied
/// or unknown).
async fn breaks(store: &Store, a: &BreaksArgs) -> Result<(Answer, bool)> {
    let shown = a.profile.display();
    let text = std::fs::read_to_string(&a.profile).map_err(|e| {
        anyhow::anyhow!(
            "cannot read profile {shown}: {}",
            crate::enforce::os_error_text(&e)
        )
    })?;
    let profile =
        policy_compiler::oci::parse(&text).with_context(|| format!("invalid profile {shown}"))?;
    let native = match a.arch {
        Some(abi) => abi,
        None => crate::conditions::host_native()?,
    };
    if !matches!(native, Abi::X86_64 | Abi::Aarch64) {
        bail!("--arch {native} is not a native architecture (x86_64 or aarch64)");
    }
    let conditions = crate::conditions::chosen(&a.caps, &a.cap_add, a.kernel, native)?;
    let eff = profile
        .resolve(&conditions)
        .with_context(|| format!("invalid profile {shown}"))?;
    if let (Some(s), Some(u)) = (a.since, a.until) {
        if s >= u {
            bail!("--since must be before --until");
        }
    }
    let window = Window {
        since_ms: a.since,
        until_ms: a.until,
    };
    if let Some(image) = &a.image {
        if !store
            .images()
            .await
            .context("cannot read the store")?
            .iter()
            .any(|i| i == image)
        {
            bail!("image {image:?} is not in the store (see `sandmine query images`)");
        }
    }
    let rows: Vec<_> = store
        .window_syscalls(a.image.as_deref(), window)
        .await
        .context("cannot read the store")?
        .into_iter()
        .filter(|r| a.abi.is_none_or(|abi| abi == r.abi))
        .collect();
    let verdicts: BTreeMap<(Abi, u32), policy_compiler::effective::SyscallVerdict> = rows
        .iter()
        .map(|r| ((r.abi, r.nr), eff.judge(r.abi, r.nr)))
        .collect();
    let broken: BTreeSet<(Abi, u32)> = verdicts
        .iter()
        .filter(|(_, v)| v.class() != VerdictClass::Runs)
        .map(|(k, _)| *k)
        .collect();
    let reach: BTreeMap<String, (u64, u64)> = store
        .reach(a.image.as_deref(), &broken, window)
        .await
        .context("cannot read the store")?
        .into_iter()
        .map(|r| (r.image, (r.hosts, r.containers)))
        .collect();
    let mut images: BTreeSet<&str> = rows.iter().map(|r| r.image.as_str()).collect();
    images.extend(a.image.as_deref());

    let mut ans = Answer::new(&[
        "image",
        "abi",
        "syscall",
        "verdict",
        "action",
        "hosts",
        "containers",
        "calls",
        "last_seen",
        "conditions",
    ]);
    for image in images {
        let (mut denied, mut unknown, mut calls, mut last) = (0u64, 0u64, 0u64, 0u64);
        for r in rows.iter().filter(|r| r.image == image) {
            let v = &verdicts[&(r.abi, r.nr)];
            let class = v.class();
            let outcomes = v.outcomes();
            let word = match class {
                VerdictClass::Denied => "denied",
                VerdictClass::Unknown => "unknown",
                VerdictClass::Runs
                    if outcomes
                        .iter()
                        .all(|o| o.0 == policy_compiler::Action::Allow) =>
                {
                    "allowed"
                }
                VerdictClass::Runs => "logged",
            };
            if class == VerdictClass::Runs {
                if !a.all {
                    continue;
                }
            } else {
                if class == VerdictClass::Denied {
                    denied += 1;
                } else {
                    unknown += 1;
                }
                calls = calls.saturating_add(r.calls);
                last = last.max(r.last_seen_ms);
            }
            // The action that breaks the call; for calls that run, what
            // they get.
            let shown: Vec<String> = outcomes
                .iter()
                .filter(|o| class == VerdictClass::Runs || !runs(**o))
                .map(|o| outcome_text(*o))
                .collect();
            ans.push(vec![
                Cell::text(image),
                Cell::text(r.abi.as_str()),
                Cell::text(
                    syscalls::name(r.abi, r.nr)
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("#{}", r.nr)),
                ),
                Cell::text(word),
                Cell::text(shown.join(" or ")),
                Cell::Int(r.hosts),
                Cell::Int(r.containers),
                Cell::Int(r.calls),
                Cell::Time(r.last_seen_ms),
                Cell::text(v.conditions_text()),
            ]);
        }
        let (hosts, containers) = reach.get(image).copied().unwrap_or_default();
        ans.push(vec![
            Cell::text(image),
            Cell::text(""),
            Cell::text("(total)"),
            Cell::text(format!("denied={denied} unknown={unknown}")),
            Cell::text(""),
            Cell::Int(hosts),
            Cell::Int(containers),
            Cell::Int(calls),
            Cell::Time(last),
            Cell::text(""),
        ]);
    }
    // Warned once the answer stands, so that an error stays one line.
    if !eff.ignored.is_empty() {
        eprintln!(
            "sandmine: warning: profile {shown} names syscalls no architecture has, ignored as runc ignores them: {}",
            eff.ignored.join(", ")
        );
    }
    Ok((ans, !broken.is_empty()))
}
