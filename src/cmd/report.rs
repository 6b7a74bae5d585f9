//! `sandmine report`: the fleet in one self-contained HTML page (images
//! with state and surface, convergence curves, a heatmap of syscall usage,
//! high-risk syscalls in use, what changed since the last report). Every
//! figure comes from an existing store method or from the compiler, as
//! `sandmine query` and `compile` answer it; `docs/ANALYTICS.md`, "The
//! fleet report", defines each section.

mod html;
mod svg;

use crate::compiling::{select_images, shown, with_store, PolicyArgs};
use crate::config::ConfigArgs;
use crate::settings::Settings;
use aggregator::store::analytics::{self, DriftBase};
use aggregator::store::Store;
use anyhow::{bail, Context, Result};
use schemas::{syscalls, Abi, SyscallKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    about = "Write the fleet report: one self-contained HTML page with charts",
    long_about = "Writes one HTML file (no script, no font, nothing fetched: its \
Content-Security-Policy is default-src 'none' plus its own inline style) that shows, from the \
store (ClickHouse or embedded) and the compiler:\n\n\
  images       each image's state and surface (`sandmine query surface`), hosts, containers\n\
  convergence  per image, distinct syscalls over its containers and over time\n\
  heatmap      syscall usage by image: the share of each image's containers using each syscall\n\
  risks        high-risk syscalls (`query surface --risks`) in use, and what each profile does\n\
  changes      what changed since the last report\n\n\
Since the last report: each run writes its state (time, and per image the state, allowed and \
high-risk names) to OUT with the extension .state.json (fleet.html: fleet.state.json) after \
the page, and compares with the state found there before (or with --since-report FILE). New \
syscalls are those first used at or after the last report's time (`query drift --since`).\n\n\
This is not `compile`'s report.txt / report.json (one image's decision).",
    after_help = "Examples:\n  \
sandmine report -o fleet.html\n  \
sandmine report --set store.embedded.path=/var/lib/sandmine/standalone.db -o /srv/www/fleet.html\n  \
sandmine report --config /etc/sandmine/aggregator.toml --policy /etc/sandmine/policy.toml -o fleet.html --image nginx:1.27 --image redis:7\n  \
sandmine report -o fleet.html --since-report last-week.state.json"
)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The HTML file to write (its state file goes beside it).
    #[arg(short, long, value_name = "FILE.html")]
    pub out: PathBuf,
    /// Only these images (default: every image in the store).
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Compare with this report state instead of the one beside OUT (it
    /// must exist).
    #[arg(long, value_name = "FILE")]
    pub since_report: Option<PathBuf>,
    /// Report as of this time (ms since the epoch) instead of now, for
    /// reproducible runs.
    #[arg(long, value_name = "MS", hide = true)]
    pub now_ms: Option<u64>,
}

/// How many syscalls the heatmap shows at most (the most widely used).
const HEATMAP_COLUMNS: usize = 120;

/// The state a report leaves for the next one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportState {
    pub format: u32,
    pub generated_at_ms: u64,
    pub images: BTreeMap<String, ImageState>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageState {
    pub state: String,
    /// Allowed x86_64 names.
    pub allowed: BTreeSet<String>,
    /// Allowed names of the high-risk catalogue, in its order.
    pub high_risk: Vec<String>,
}

const STATE_FORMAT: u32 = 1;

/// `fleet.html` -> `fleet.state.json`.
pub fn state_path(out: &Path) -> PathBuf {
    out.with_extension("state.json")
}

fn read_state(path: &Path, required: bool) -> Result<Option<ReportState>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "cannot read the last report's state {}: {}",
                path.display(),
                crate::enforce::os_error_text(&e)
            ))
        }
    };
    let state: ReportState = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a report state file", path.display()))?;
    if state.format != STATE_FORMAT {
        bail!(
            "{} is a report state of format {}; this sandmine reads format {STATE_FORMAT}",
            path.display(),
            state.format
        );
    }
    Ok(Some(state))
}

pub fn main(args: ReportArgs) -> Result<ExitCode> {
    let s: Settings = args.config.load()?;
    let now = args.now_ms.unwrap_or_else(sysutil::clock::now_ms);
    let state_file = state_path(&args.out);
    let (previous, compared_with) = match &args.since_report {
        Some(p) => (read_state(p, true)?, p.clone()),
        None => (read_state(&state_file, false)?, state_file.clone()),
    };
    let mut compiler = args.policy.load()?;
    let wanted = args.images.clone();
    let (page, state) = with_store(&s.store, |store| async move {
        let images = select_images(&store, &wanted).await?;
        compiler.read_observed(&store).await?;
        gather(&store, &compiler, &images, now, previous, &compared_with).await
    })?;
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    sysutil::fs::write_atomic(&args.out, html::render(&page).as_bytes())?;
    let json = serde_json::to_string_pretty(&state)?;
    sysutil::fs::write_atomic(&state_file, format!("{json}\n").as_bytes())?;
    eprintln!(
        "sandmine: report of {} image(s) -> {} (state: {})",
        page.images.len(),
        args.out.display(),
        state_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What the profile compiled for an image does with a syscall.
fn profile_verdict(c: &policy_compiler::Compiled, key: SyscallKey) -> &'static str {
    let d = &c.decision;
    if d.state == policy_compiler::State::NotReady {
        "no profile"
    } else if d.allowed.contains(&key) {
        "allows"
    } else if !d.enforcing() || d.logged.contains(&key) {
        "logs"
    } else {
        "denies"
    }
}

async fn gather(
    store: &Store,
    compiler: &crate::compiling::Compiler,
    images: &[String],
    now: u64,
    previous: Option<ReportState>,
    compared_with: &Path,
) -> Result<(html::Page, ReportState)> {
    let read = |e| anyhow::Error::new(e).context("cannot read the store");
    let docker = policy_compiler::risk::docker_default_x86_64();
    let mut rows = Vec::new();
    let mut risks = Vec::new();
    let mut denials = Vec::new();
    let mut denied_all = 0u64;
    let mut state = ReportState {
        format: STATE_FORMAT,
        generated_at_ms: now,
        images: BTreeMap::new(),
    };
    let mut states: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut all, mut beyond_all, mut risky_all) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for image in images {
        let sf = compiler.surface(store, image, now).await?;
        let obs = &sf.observations;
        let conv = analytics::convergence(obs);
        let mut seen = 0;
        let containers_by_hour = store
            .usage(image, None)
            .await
            .map_err(read)?
            .into_iter()
            .filter(|u| u.new_containers > 0)
            .map(|u| {
                seen += u.new_containers;
                (u.hour_ms, seen)
            })
            .collect();
        for t in &obs.syscalls {
            let Some(name) = syscalls::name(t.abi, t.nr) else {
                continue;
            };
            if let Some(r) = policy_compiler::risk::get(name) {
                risks.push(html::RiskRow {
                    image: image.clone(),
                    syscall: r.name,
                    abi: t.abi.as_str(),
                    hosts: t.hosts,
                    containers: t.containers,
                    calls: t.calls,
                    last_seen_ms: t.last_seen_ms,
                    profile: profile_verdict(
                        &sf.compiled,
                        SyscallKey {
                            abi: t.abi,
                            nr: t.nr,
                        },
                    ),
                    sources: r.sources,
                });
            }
        }
        denials.extend(sf.denials.iter().map(|d| html::DenialRow {
            image: image.clone(),
            syscall: shown(d.abi, d.nr),
            action: d.action.to_string(),
            profile: d.profile.clone(),
            denials: d.denials,
            hosts: d.hosts,
            containers: d.containers,
            last_seen_ms: d.last_seen_ms,
        }));
        denied_all = denied_all.saturating_add(sf.denied_calls());
        *states.entry(sf.state.as_str()).or_default() += 1;
        all.extend(sf.allowed.iter().copied());
        beyond_all.extend(sf.beyond_default.iter().copied());
        risky_all.extend(sf.high_risk.iter().copied());
        state.images.insert(
            image.clone(),
            ImageState {
                state: sf.state.as_str().to_string(),
                allowed: sf.allowed.iter().map(|n| n.to_string()).collect(),
                high_risk: sf.high_risk.iter().map(|n| n.to_string()).collect(),
            },
        );
        rows.push(html::ImageRow {
            image: image.clone(),
            state: sf.state.as_str(),
            digests: obs.digests.len(),
            hosts: obs.hosts,
            containers: obs.containers,
            observed: obs.syscalls.len() as u64,
            allowed: sf.allowed.len(),
            beyond_default: sf.beyond_default.len(),
            high_risk: sf.high_risk.clone(),
            denied: sf.denied_calls(),
            last_seen_ms: obs.last_seen_ms,
            by_container: conv.by_container,
            syscalls_by_hour: conv.by_hour,
            containers_by_hour,
        });
    }
    // The catalogue's order, as in `query surface`'s (fleet) row.
    let fleet = html::FleetRow {
        states: states
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect::<Vec<_>>()
            .join(" "),
        allowed: all.len(),
        beyond_default: beyond_all.len(),
        high_risk: policy_compiler::risk::CATALOGUE
            .iter()
            .filter(|r| risky_all.contains(r.name))
            .map(|r| r.name)
            .collect(),
        denied: denied_all,
    };
    let (heatmap, heatmap_hidden) = heatmap(store, &rows).await?;
    let changes = match previous {
        None => html::Changes::First {
            state_file: compared_with.display().to_string(),
        },
        Some(prev) => html::Changes::Since {
            state_file: compared_with.display().to_string(),
            previous_ms: prev.generated_at_ms,
            rows: changes(store, &prev, &state).await?,
        },
    };
    Ok((
        html::Page {
            generated_at_ms: now,
            docker_default: docker.len(),
            images: rows,
            fleet,
            heatmap,
            heatmap_hidden,
            risks,
            denials,
            changes,
        },
        state,
    ))
}

/// The heatmap from the store's totals (`query totals`): images in the
/// report's order; syscalls used by the most images first (then by the
/// most containers, then by ABI and number), at most [`HEATMAP_COLUMNS`].
async fn heatmap(store: &Store, rows: &[html::ImageRow]) -> Result<(svg::Heatmap, usize)> {
    let index: BTreeMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.image.as_str(), i))
        .collect();
    let totals: Vec<_> = store
        .syscall_totals()
        .await
        .context("cannot read the store")?
        .into_iter()
        .filter(|t| index.contains_key(t.0.as_str()))
        .collect();
    // (images, containers) per syscall.
    let mut reach: BTreeMap<(Abi, u32), (u64, u64)> = BTreeMap::new();
    for (_, abi, nr, _, _, containers) in &totals {
        let e = reach.entry((*abi, *nr)).or_default();
        e.0 += 1;
        e.1 += containers;
    }
    let mut ranked: Vec<((Abi, u32), (u64, u64))> = reach.into_iter().collect();
    ranked.sort_by(|a, b| (b.1 .0, b.1 .1, a.0).cmp(&(a.1 .0, a.1 .1, b.0)));
    let hidden = ranked.len().saturating_sub(HEATMAP_COLUMNS);
    ranked.truncate(HEATMAP_COLUMNS);
    let column: BTreeMap<(Abi, u32), usize> = ranked
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i))
        .collect();
    let mut cells = Vec::new();
    for (image, abi, nr, calls, hosts, containers) in &totals {
        let (Some(&j), Some(&i)) = (index.get(image.as_str()), column.get(&(*abi, *nr))) else {
            continue;
        };
        let of = rows[j].containers.max(1);
        cells.push((
            j,
            i,
            *containers as f64 / of as f64,
            format!(
                "{image} \u{b7} {}: {containers} of {of} containers, {hosts} hosts, {calls} calls",
                shown(*abi, *nr)
            ),
        ));
    }
    Ok((
        svg::Heatmap {
            rows: rows.iter().map(|r| r.image.clone()).collect(),
            columns: ranked.iter().map(|((a, n), _)| shown(*a, *n)).collect(),
            cells,
        },
        hidden,
    ))
}

/// `+a +b -c`: what was added to and removed from a set.
fn delta<'a>(
    before: impl IntoIterator<Item = &'a String>,
    after: impl IntoIterator<Item = &'a String>,
) -> String {
    let before: BTreeSet<&String> = before.into_iter().collect();
    let after: BTreeSet<&String> = after.into_iter().collect();
    let mut parts: Vec<String> = after.difference(&before).map(|n| format!("+{n}")).collect();
    parts.extend(before.difference(&after).map(|n| format!("-{n}")));
    parts.join(" ")
}

/// Per image, in name order: new or gone images, state changes, allowed
/// and high-risk names added or removed, new syscalls since the last
/// report's time (`Store::drift`, `DriftBase::Since`).
async fn changes(
    store: &Store,
    prev: &ReportState,
    now: &ReportState,
) -> Result<Vec<html::ChangeRow>> {
    let mut rows = Vec::new();
    let names: BTreeSet<&String> = prev.images.keys().chain(now.images.keys()).collect();
    for image in names {
        let row = |change, detail: String| html::ChangeRow {
            image: image.clone(),
            change,
            detail,
        };
        let (before, after) = match (prev.images.get(image), now.images.get(image)) {
            (None, Some(a)) => {
                rows.push(row(
                    "new image",
                    format!("{}, {} allowed", a.state, a.allowed.len()),
                ));
                continue;
            }
            (Some(_), None) => {
                rows.push(row("not in this report", String::new()));
                continue;
            }
            (Some(b), Some(a)) => (b, a),
            (None, None) => continue,
        };
        if before.state != after.state {
            rows.push(row("state", format!("{} -> {}", before.state, after.state)));
        }
        let d = delta(&before.allowed, &after.allowed);
        if !d.is_empty() {
            rows.push(row("allowed", d));
        }
        let d = delta(&before.high_risk, &after.high_risk);
        if !d.is_empty() {
            rows.push(row("high-risk allowed", d));
        }
        let drift = store
            .drift(image, &DriftBase::Since(prev.generated_at_ms))
            .await
            .context("cannot read the store")?;
        if let Some(d) = drift.filter(|d| !d.new.is_empty()) {
            let names: Vec<String> = d.new.iter().map(|r| shown(r.abi, r.nr)).collect();
            rows.push(row("new syscalls", names.join(" ")));
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_sits_beside_the_page() {
        assert_eq!(
            state_path(Path::new("fleet.html")),
            Path::new("fleet.state.json")
        );
        assert_eq!(
            state_path(Path::new("/srv/www/fleet")),
            Path::new("/srv/www/fleet.state.json")
        );
        assert_eq!(
            state_path(Path::new("a.b.html")),
            Path::new("a.b.state.json")
        );
    }

    #[test]
    fn a_delta_lists_added_then_removed() {
        let s = |v: &[&str]| {
            v.iter()
                .map(|x| x.to_string())
                .collect::<BTreeSet<String>>()
        };
        assert_eq!(delta(&s(&["a", "b"]), &s(&["b", "c", "d"])), "+c +d -a");
        assert_eq!(delta(&s(&["a"]), &s(&["a"])), "");
    }
}
