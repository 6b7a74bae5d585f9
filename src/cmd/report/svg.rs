//! Plain SVG charts for the fleet report: step curves and a heatmap. Every
//! text that reaches the page goes through [`esc`] (image names are the
//! fleet's input, not ours); only presentation attributes are used, never
//! `style=`, so that the page's Content-Security-Policy needs no
//! `'unsafe-inline'`.
//!
//! What a chart draws from the data carries `class="mark"` (the report's
//! check removes them to prove that an empty chart is caught); the plot's
//! frame is `class="plot-area"`.

use std::fmt::Write;

/// Text for HTML and SVG: `&`, `<`, `>`, `"` and `'` escaped, and control
/// characters (which XML forbids) shown as U+FFFD.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of `s`, with an ellipsis when cut.
pub fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('\u{2026}');
    t
}

/// One line of a chart: points (x, y) in data units, sorted by x.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    /// Drawn dashed (a second series that may lie on the first).
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

/// How the x axis is labelled.
pub enum XAxis {
    /// Whole numbers from 1 (containers).
    Count,
    /// Hours: x is ms since the epoch, labels are UTC times.
    Hours,
}

const W: f64 = 310.0;
const H: f64 = 210.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 40.0;
const PAD: f64 = 6.0;
const HOUR_MS: f64 = 3_600_000.0;

/// A step chart of cumulative counts (each series holds its value until its
/// next point), with a dot at each point, axes, ticks and a legend.
pub fn step_chart(title: &str, x_label: &str, axis: XAxis, series: &[Series]) -> String {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    if !x0.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    match axis {
        XAxis::Count => {
            x0 = x0.min(1.0);
            x1 = x1.max(x0 + 1.0);
        }
        // The last hour is drawn to its end.
        XAxis::Hours => x1 += HOUR_MS,
    }
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0_f64, f64::max);
    let y_ticks = ticks(y_max);
    let y1 = y_ticks.last().copied().unwrap_or(y_max).max(y_max);
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    // Data stays off the frame: a point on an edge is still drawn whole.
    let px = |x: f64| LEFT + PAD + (x - x0) / (x1 - x0) * (pw - 2.0 * PAD);
    let py = |y: f64| TOP + ph - PAD - y / y1 * (ph - 2.0 * PAD);

    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title>"##,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<rect class="plot-area" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="#ffffff" stroke="#c8c8c8"/>"##
    );
    for t in &y_ticks {
        let y = py(*t);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eeeeee"/><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#444444">{}</text>"##,
            LEFT + pw,
            LEFT - 4.0,
            y + 3.5,
            fmt_num(*t)
        );
    }
    for (x, label) in x_ticks(&axis, x0, x1) {
        // A label at the right end ends there, inside the chart.
        let anchor = if px(x) > W - RIGHT - 30.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="{anchor}" fill="#444444">{}</text>"##,
            px(x),
            TOP + ph + 13.0,
            esc(&label)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="#444444">{}</text>"##,
        LEFT + pw / 2.0,
        H - 6.0,
        esc(x_label)
    );
    // Legend, top left.
    let mut lx = LEFT;
    for ser in series {
        let _ = write!(
            s,
            r##"<rect x="{lx:.1}" y="9" width="10" height="10" fill="{c}"/><text x="{:.1}" y="18" font-size="11" fill="#222222">{}</text>"##,
            lx + 14.0,
            esc(ser.name),
            c = ser.color
        );
        lx += 24.0 + 6.5 * ser.name.chars().count() as f64;
    }
    for ser in series {
        let Some(&(fx, fy)) = ser.points.first() else {
            continue;
        };
        let mut d = format!("M{:.1},{:.1}", px(fx), py(fy));
        for &(x, y) in &ser.points[1..] {
            let _ = write!(d, "H{:.1}V{:.1}", px(x), py(y));
        }
        let _ = write!(d, "H{:.1}", px(x1));
        let _ = write!(
            s,
            r##"<path class="mark" d="{d}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"##,
            c = ser.color,
            dash = if ser.dashed {
                r#" stroke-dasharray="6 3""#
            } else {
                ""
            }
        );
        for &(x, y) in &ser.points {
            let _ = write!(
                s,
                r##"<circle class="mark" cx="{:.1}" cy="{:.1}" r="2.5" fill="{c}"><title>{}</title></circle>"##,
                px(x),
                py(y),
                esc(&format!(
                    "{}: {} at {}",
                    ser.name,
                    fmt_num(y),
                    x_text(&axis, x)
                )),
                c = ser.color
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A value of x as a person reads it.
fn x_text(axis: &XAxis, x: f64) -> String {
    match axis {
        XAxis::Count => format!("container {}", fmt_num(x)),
        XAxis::Hours => format!("the hour from {}", sysutil::clock::rfc3339_s(x as u64)),
    }
}

/// Whole numbers without a fraction, others with one digit.
fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Ticks from 0 to at least `max`, 1, 2 or 5 times a power of ten apart
/// (whole numbers), at most 6 of them.
fn ticks(max: f64) -> Vec<f64> {
    let mut step = 1.0;
    'outer: loop {
        for m in [1.0, 2.0, 5.0] {
            if max / (step * m) <= 5.0 {
                step *= m;
                break 'outer;
            }
        }
        step *= 10.0;
    }
    let n = (max / step).ceil() as u64;
    (0..=n).map(|i| i as f64 * step).collect()
}

fn x_ticks(axis: &XAxis, x0: f64, x1: f64) -> Vec<(f64, String)> {
    match axis {
        XAxis::Count => {
            let span = x1 - x0;
            let t = ticks(span.max(1.0));
            let step = t.get(1).copied().unwrap_or(1.0);
            let mut out = vec![(x0, fmt_num(x0))];
            let mut x = (x0 / step).floor() * step + step;
            while x <= x1 + 1e-9 {
                if x - x0 >= step * 0.5 {
                    out.push((x, fmt_num(x)));
                }
                x += step;
            }
            out
        }
        XAxis::Hours => {
            let hours = ((x1 - x0) / HOUR_MS).round().max(1.0);
            let step = [
                1.0, 2.0, 3.0, 6.0, 12.0, 24.0, 48.0, 168.0, 336.0, 720.0, 2160.0, 8760.0,
            ]
            .into_iter()
            .find(|h| hours / h <= 4.0)
            .unwrap_or(8760.0);
            let with_time = step < 24.0;
            let mut out = Vec::new();
            let mut x = x0;
            while x <= x1 + 1.0 {
                let t = sysutil::clock::rfc3339_s(x as u64);
                // 2023-11-15T02:00:00Z: "11-15 02:00" or "11-15".
                let label = if with_time {
                    format!("{} {}", &t[5..10], &t[11..16])
                } else {
                    t[5..10].to_string()
                };
                out.push((x, label));
                x += step * HOUR_MS;
            }
            out
        }
    }
}

/// One heatmap: rows (images), columns (syscalls), and the filled cells.
pub struct Heatmap {
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// (row, column, share in 0..=1, tooltip).
    pub cells: Vec<(usize, usize, f64, String)>,
}

const CELL_W: f64 = 14.0;
const CELL_H: f64 = 18.0;
const LABEL_W: f64 = 190.0;
const HEAD_H: f64 = 96.0;

/// The colour of a share: from a light to a dark blue.
fn shade(share: f64) -> String {
    let t = share.clamp(0.0, 1.0);
    let (a, b) = ((0xd6, 0xe6, 0xf4), (0x08, 0x30, 0x6b));
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

/// The heatmap: one row per image, one column per syscall, a cell's shade
/// its share; names above (rotated) and to the left; a legend below.
pub fn heatmap(title: &str, h: &Heatmap) -> String {
    let pw = CELL_W * h.columns.len().max(1) as f64;
    let ph = CELL_H * h.rows.len().max(1) as f64;
    let w = LABEL_W + pw + 20.0;
    let height = HEAD_H + ph + 40.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart heatmap" xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{height:.0}" viewBox="0 0 {w:.0} {height:.0}" role="img" aria-label="{t}"><title>{t}</title>"##,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<rect class="plot-area" x="{LABEL_W}" y="{HEAD_H}" width="{pw}" height="{ph}" fill="#f7f7f7" stroke="#c8c8c8"/>"##
    );
    for (i, c) in h.columns.iter().enumerate() {
        let x = LABEL_W + CELL_W * i as f64 + CELL_W / 2.0 + 3.0;
        let y = HEAD_H - 4.0;
        let _ = write!(
            s,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="9" fill="#333333" transform="rotate(-90 {x:.1} {y:.1})">{}</text>"##,
            esc(&shorten(c, 16))
        );
    }
    for (j, r) in h.rows.iter().enumerate() {
        let y = HEAD_H + CELL_H * j as f64 + CELL_H / 2.0 + 3.5;
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{y:.1}" font-size="11" text-anchor="end" fill="#222222"><title>{}</title>{}</text>"##,
            LABEL_W - 6.0,
            esc(r),
            esc(&shorten(r, 28))
        );
    }
    for (j, i, share, tip) in &h.cells {
        let _ = write!(
            s,
            r##"<rect class="mark" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}</title></rect>"##,
            LABEL_W + CELL_W * *i as f64 + 0.5,
            HEAD_H + CELL_H * *j as f64 + 0.5,
            CELL_W - 1.0,
            CELL_H - 1.0,
            shade(*share),
            esc(tip)
        );
    }
    // Legend: five shades from "few" to "every container".
    let ly = HEAD_H + ph + 14.0;
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end" fill="#444444">share of the image's containers</text>"##,
        LABEL_W - 6.0,
        ly + 9.0
    );
    for k in 0..5 {
        let share = (k as f64 + 1.0) / 5.0;
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{ly:.1}" width="22" height="11" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle" fill="#444444">{}%</text>"##,
            LABEL_W + 24.0 * k as f64,
            shade(share),
            LABEL_W + 24.0 * k as f64 + 11.0,
            ly + 22.0,
            (share * 100.0) as u32
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(
            esc("<script>\"a\"&'b'\u{7}"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;\u{fffd}"
        );
        let evil = "evil:<img src=x onerror=alert(1)>";
        let c = step_chart(
            evil,
            evil,
            XAxis::Count,
            &[Series {
                name: evil,
                color: "#1f77b4",
                dashed: false,
                points: vec![(1.0, 3.0), (2.0, 4.0)],
            }],
        );
        assert!(!c.contains("<img"), "{c}");
        let h = heatmap(
            evil,
            &Heatmap {
                rows: vec![evil.into()],
                columns: vec![evil.into()],
                cells: vec![(0, 0, 1.0, evil.into())],
            },
        );
        assert!(!h.contains("<img"), "{h}");
        assert!(!h.contains("style="), "{h}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(ticks(1.0), vec![0.0, 1.0]);
        assert_eq!(ticks(4.0), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(ticks(7.0), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(ticks(230.0), vec![0.0, 50.0, 100.0, 150.0, 200.0, 250.0]);
        assert_eq!(shorten("abcdef", 4), "abc\u{2026}");
        assert_eq!(shorten("abc", 4), "abc");
    }

    #[test]
    fn a_step_chart_draws_its_points() {
        let c = step_chart(
            "t",
            "containers",
            XAxis::Count,
            &[Series {
                name: "syscalls",
                color: "#1f77b4",
                dashed: false,
                points: vec![(1.0, 2.0), (3.0, 4.0)],
            }],
        );
        assert_eq!(c.matches(r#"class="mark""#).count(), 3, "{c}");
        assert!(
            c.contains("<title>syscalls: 4 at container 3</title>"),
            "{c}"
        );
    }
}
