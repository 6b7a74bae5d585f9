//! The report's page: one HTML file with its charts inline (SVG), its
//! style inline and allowed by hash, no script, and a
//! Content-Security-Policy of `default-src 'none'` that makes any fetch an
//! error in the browser's console.

use super::svg::{self, esc, Series, XAxis};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// One image's row, with its curves.
pub struct ImageRow {
    pub image: String,
    pub state: &'static str,
    pub digests: usize,
    pub hosts: u64,
    pub containers: u64,
    /// Distinct syscalls observed (every ABI).
    pub observed: u64,
    pub allowed: usize,
    pub beyond_default: usize,
    pub high_risk: Vec<&'static str>,
    /// Calls denied by a seccomp filter (every action and profile).
    pub denied: u64,
    pub last_seen_ms: u64,
    /// Distinct syscalls after the k-th container.
    pub by_container: Vec<u64>,
    /// (hour, distinct syscalls first used by its end).
    pub syscalls_by_hour: Vec<(u64, u64)>,
    /// (hour, containers whose first use was by its end).
    pub containers_by_hour: Vec<(u64, u64)>,
}

/// The fleet's total row.
pub struct FleetRow {
    pub states: String,
    pub allowed: usize,
    pub beyond_default: usize,
    pub high_risk: Vec<&'static str>,
    pub denied: u64,
}

/// Calls of one syscall a seccomp filter denied in an image's containers,
/// per action and profile version (`sandmine query denials`' row).
pub struct DenialRow {
    pub image: String,
    /// `shown`: the name, with its ABI when not x86_64.
    pub syscall: String,
    /// errno N, trap, kill_thread, kill_process.
    pub action: String,
    /// The profile version in force: 16 hex digits, runtime/default,
    /// unconfined, unknown.
    pub profile: String,
    pub denials: u64,
    pub hosts: u64,
    pub containers: u64,
    pub last_seen_ms: u64,
}

/// A high-risk syscall an image used.
pub struct RiskRow {
    pub image: String,
    pub syscall: &'static str,
    pub abi: &'static str,
    pub hosts: u64,
    pub containers: u64,
    pub calls: u64,
    pub last_seen_ms: u64,
    /// allows, logs, denies, or "no profile" (not_ready).
    pub profile: &'static str,
    pub sources: &'static [&'static str],
}

/// One change since the last report.
pub struct ChangeRow {
    pub image: String,
    pub change: &'static str,
    pub detail: String,
}

/// What the report compares with.
pub enum Changes {
    /// No earlier report's state: nothing to compare with.
    First { state_file: String },
    Since {
        state_file: String,
        previous_ms: u64,
        rows: Vec<ChangeRow>,
    },
}

pub struct Page {
    pub generated_at_ms: u64,
    pub docker_default: usize,
    pub images: Vec<ImageRow>,
    pub fleet: FleetRow,
    pub heatmap: svg::Heatmap,
    /// Syscalls the heatmap leaves out (beyond its column limit).
    pub heatmap_hidden: usize,
    pub risks: Vec<RiskRow>,
    pub denials: Vec<DenialRow>,
    pub changes: Changes,
}

const STYLE: &str = "\
body{font-family:sans-serif;margin:24px;color:#222;background:#fff;max-width:1400px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}\
p.meta{color:#555;margin:0 0 12px}\
table{border-collapse:collapse;font-size:13px}\
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f2f2f2}\
td.image{word-break:break-all;max-width:320px}\
tr.fleet td{font-weight:bold;background:#fafafa}\
.state-enforce{color:#1a7f37}.state-log{color:#9a6700}.state-not_ready{color:#6e7781}\
.grid{display:flex;flex-wrap:wrap;gap:12px}\
figure{margin:0;border:1px solid #e4e4e4;padding:6px}\
figcaption{font-size:13px;font-weight:bold;word-break:break-all;max-width:630px}\
.scroll{overflow-x:auto}\
p.note{color:#555;font-size:13px;max-width:900px}";

const COLOR_SYSCALLS: &str = "#1f77b4";
const COLOR_CONTAINERS: &str = "#ff7f0e";

/// The page's Content-Security-Policy: nothing but this page's style.
pub fn csp() -> String {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'")
}

fn time(ms: u64) -> String {
    if ms == 0 {
        String::new()
    } else {
        sysutil::clock::rfc3339_s(ms)
    }
}

/// The whole page.
pub fn render(p: &Page) -> String {
    let mut s = String::new();
    let when = time(p.generated_at_ms);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>sandmine fleet report {when}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&csp())
    );
    let _ = writeln!(
        s,
        "<h1>sandmine fleet report</h1>\n<p class=\"meta\" id=\"generated\">Generated at {when}: {} images. \
Definitions: docs/ANALYTICS.md, \"The fleet report\".</p>",
        p.images.len()
    );
    images(&mut s, p);
    convergence(&mut s, p);
    heatmap(&mut s, p);
    risks(&mut s, p);
    denials(&mut s, p);
    changes(&mut s, p);
    s.push_str("</body>\n</html>\n");
    s
}

fn images(s: &mut String, p: &Page) {
    let _ = writeln!(
        s,
        "<section id=\"images\">\n<h2>Images: state and surface</h2>\n\
<p class=\"note\">The state and the allowed set are compiled now, as <code>sandmine compile</code> \
would (<code>sandmine query surface</code>). Allowed and beyond Docker's default count x86_64 \
names; Docker's default allows {}.</p>\n<table id=\"images-table\">\n\
<thead><tr><th>image</th><th>state</th><th>digests</th><th>hosts</th><th>containers</th>\
<th>observed</th><th>allowed</th><th>beyond default</th><th>high-risk allowed</th><th>denied calls</th>\
<th>last seen</th></tr></thead>\n<tbody>",
        p.docker_default
    );
    for r in &p.images {
        let _ = writeln!(
            s,
            "<tr data-image=\"{i}\"><td class=\"image\">{i}</td><td class=\"state-{st}\">{st}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            r.digests,
            r.hosts,
            r.containers,
            r.observed,
            r.allowed,
            r.beyond_default,
            r.high_risk.join(" "),
            r.denied,
            time(r.last_seen_ms),
            i = esc(&r.image),
            st = r.state,
        );
    }
    let f = &p.fleet;
    let _ = writeln!(
        s,
        "<tr class=\"fleet\"><td>(fleet)</td><td>{}</td><td></td><td></td><td></td><td></td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td></td></tr>\n\
</tbody>\n</table>\n</section>",
        esc(&f.states),
        f.allowed,
        f.beyond_default,
        f.high_risk.join(" "),
        f.denied
    );
}

fn convergence(s: &mut String, p: &Page) {
    let _ = writeln!(
        s,
        "<section id=\"convergence\">\n<h2>Convergence</h2>\n\
<p class=\"note\">Per image: distinct syscalls used by the first k containers (in start order, \
the compiler's), and over time the distinct syscalls and the containers seen so far, per hour. \
A curve that has flattened means new containers bring nothing new. The syscall curves leave \
unverified containers out, as the compiler does; the containers curve counts every container \
(<code>sandmine query usage</code>).</p>\n<div class=\"grid\">"
    );
    for r in &p.images {
        let by_container: Vec<(f64, f64)> = steps(
            r.by_container
                .iter()
                .enumerate()
                .map(|(k, n)| ((k + 1) as f64, *n as f64)),
        );
        let c1 = svg::step_chart(
            &format!("{}: syscalls over containers", r.image),
            "containers (start order)",
            XAxis::Count,
            &[Series {
                name: "syscalls",
                color: COLOR_SYSCALLS,
                dashed: false,
                points: by_container,
            }],
        );
        let hours = |v: &[(u64, u64)]| -> Vec<(f64, f64)> {
            v.iter().map(|(h, n)| (*h as f64, *n as f64)).collect()
        };
        let c2 = svg::step_chart(
            &format!("{}: syscalls and containers over time", r.image),
            "hour (UTC)",
            XAxis::Hours,
            &[
                Series {
                    name: "syscalls",
                    color: COLOR_SYSCALLS,
                    dashed: false,
                    points: hours(&r.syscalls_by_hour),
                },
                Series {
                    name: "containers",
                    color: COLOR_CONTAINERS,
                    dashed: true,
                    points: hours(&r.containers_by_hour),
                },
            ],
        );
        let _ = writeln!(
            s,
            "<figure class=\"convergence\" data-image=\"{i}\"><figcaption>{i}</figcaption>{c1}{c2}</figure>",
            i = esc(&r.image)
        );
    }
    s.push_str("</div>\n</section>\n");
}

/// Only the points where the value changes, and the last one: the same
/// step curve with far fewer points for a large fleet.
fn steps(points: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let all: Vec<(f64, f64)> = points.collect();
    let mut out: Vec<(f64, f64)> = Vec::new();
    for (i, &(x, y)) in all.iter().enumerate() {
        let changed = out.last().is_none_or(|l| l.1 != y);
        if changed || i + 1 == all.len() {
            out.push((x, y));
        }
    }
    out
}

fn heatmap(s: &mut String, p: &Page) {
    let hidden = if p.heatmap_hidden > 0 {
        format!(
            " {} more syscalls, used by fewer images, are not shown.",
            p.heatmap_hidden
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "<section id=\"heatmap\">\n<h2>Syscall usage by image</h2>\n\
<p class=\"note\">One row per image, one column per syscall (x86_64 names; other ABIs \
marked), the most widely used first; a cell's shade is the share of the image's containers \
that used the syscall (hover for the numbers).{hidden}</p>\n<div class=\"scroll\">{}</div>\n</section>",
        svg::heatmap("syscall usage by image", &p.heatmap)
    );
}

fn risks(s: &mut String, p: &Page) {
    let _ = writeln!(
        s,
        "<section id=\"risks\">\n<h2>High-risk syscalls in use</h2>\n\
<p class=\"note\">Syscalls of the high-risk catalogue (<code>sandmine query surface --risks</code>) \
that an image's containers used, and what its compiled profile does with them: allows, \
logs (log state: the call runs and is logged), denies, or no profile (not_ready).</p>"
    );
    if p.risks.is_empty() {
        s.push_str("<p id=\"risks-none\">No image used a high-risk syscall.</p>\n</section>\n");
        return;
    }
    s.push_str(
        "<table id=\"risks-table\">\n<thead><tr><th>image</th><th>syscall</th><th>abi</th>\
<th>hosts</th><th>containers</th><th>calls</th><th>last seen</th><th>profile</th><th>sources</th></tr></thead>\n<tbody>\n",
    );
    for r in &p.risks {
        let _ = writeln!(
            s,
            "<tr data-image=\"{}\" data-syscall=\"{}\"><td class=\"image\">{}</td><td>{}</td><td>{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.image),
            r.syscall,
            esc(&r.image),
            r.syscall,
            r.abi,
            r.hosts,
            r.containers,
            r.calls,
            time(r.last_seen_ms),
            r.profile,
            esc(&r.sources.join(" ")),
        );
    }
    s.push_str("</tbody>\n</table>\n</section>\n");
}

fn denials(s: &mut String, p: &Page) {
    let _ = writeln!(
        s,
        "<section id=\"denials\">\n<h2>Seccomp denials</h2>\n\
<p class=\"note\">Calls a seccomp filter denied in an image's containers, as the collectors \
counted them in the kernel (wire version 6; <code>sandmine query denials</code>), per syscall, \
action and the profile version in force (16 hex digits of the applied profile's sha256, or \
runtime/default, unconfined, unknown). A denial under an enforced sandmine profile means \
the profile broke something: see docs/OPERATIONS.md for the levers.</p>"
    );
    if p.denials.is_empty() {
        s.push_str("<p id=\"denials-none\">No denial recorded.</p>\n</section>\n");
        return;
    }
    s.push_str(
        "<table id=\"denials-table\">\n<thead><tr><th>image</th><th>syscall</th><th>action</th>\
<th>profile</th><th>denied calls</th><th>hosts</th><th>containers</th><th>last seen</th></tr></thead>\n<tbody>\n",
    );
    for r in &p.denials {
        let _ = writeln!(
            s,
            "<tr data-image=\"{i}\"><td class=\"image\">{i}</td><td>{}</td><td>{}</td><td>{}</td>\
<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&r.syscall),
            esc(&r.action),
            esc(&r.profile),
            r.denials,
            r.hosts,
            r.containers,
            time(r.last_seen_ms),
            i = esc(&r.image),
        );
    }
    s.push_str("</tbody>\n</table>\n</section>\n");
}

fn changes(s: &mut String, p: &Page) {
    s.push_str("<section id=\"changes\">\n<h2>Since the last report</h2>\n");
    match &p.changes {
        Changes::First { state_file } => {
            let _ = writeln!(
                s,
                "<p id=\"changes-first\">No earlier report to compare with (no state file {}). \
This report's state is written there for the next one.</p>",
                esc(state_file)
            );
        }
        Changes::Since {
            state_file,
            previous_ms,
            rows,
        } => {
            let _ = writeln!(
                s,
                "<p class=\"note\" id=\"changes-since\">Compared with the report of {} (state file {}). \
New syscalls: first used at or after that time (<code>sandmine query drift IMAGE --since</code>).</p>",
                time(*previous_ms),
                esc(state_file)
            );
            if rows.is_empty() {
                s.push_str("<p id=\"changes-none\">Nothing changed.</p>\n");
            } else {
                s.push_str(
                    "<table id=\"changes-table\">\n<thead><tr><th>image</th><th>change</th><th>detail</th></tr></thead>\n<tbody>\n",
                );
                for r in rows {
                    let _ = writeln!(
                        s,
                        "<tr data-image=\"{i}\"><td class=\"image\">{i}</td><td>{}</td><td>{}</td></tr>",
                        r.change,
                        esc(&r.detail),
                        i = esc(&r.image)
                    );
                }
                s.push_str("</tbody>\n</table>\n");
            }
        }
    }
    s.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_keep_changes_and_the_end() {
        let v = steps([(1.0, 2.0), (2.0, 2.0), (3.0, 3.0), (4.0, 3.0), (5.0, 3.0)].into_iter());
        assert_eq!(v, vec![(1.0, 2.0), (3.0, 3.0), (5.0, 3.0)]);
    }

    #[test]
    fn the_policy_allows_only_the_style() {
        let c = csp();
        assert!(
            c.starts_with("default-src 'none'; style-src 'sha256-"),
            "{c}"
        );
        assert!(!c.contains("unsafe"), "{c}");
    }
}
