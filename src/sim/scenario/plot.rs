//! Plots of a sweep: one metric against the scenario's x parameter, as SVG (and PNG rendered
//! from it). Each series (a combination of the other swept parameters) has one colour and one
//! marker; its points are the mean over runs, with min–max error bars when there are several
//! runs, and its analytic overlay (if the scenario has one) is dashed in the same colour.
//! `[[reference]]` lines are dotted and labelled. Both axes carry a label with its unit; x is
//! log2 when the swept values are powers of two (or grow geometrically); fractions are plotted
//! on exactly [0, 1]. The legend, outside the plot area, has a line sample per entry.
//!
//! The output is deterministic (same rows, same bytes) and every text from the scenario file
//! is XML-escaped.

use super::{
    OVERLAYS, Row, Scenario, analytic, columns, describe_point, human, is_fraction, label,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Okabe–Ito colours (told apart with the common colour-vision deficiencies), then brown and
/// black; markers change too, so a grey-scale print still separates series.
const COLOURS: &[&str] = &[
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#000000",
];
const MARKERS: usize = 4;

const W: f64 = 880.0;
const H: f64 = 480.0;
/// Plot area.
const LEFT: f64 = 84.0;
const RIGHT: f64 = 590.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 410.0;
/// Inset of the first and last x value from the plot's edges.
const PAD: f64 = 14.0;
const LEGEND_X: f64 = 612.0;
/// Characters per legend line before it wraps.
const LEGEND_WRAP: usize = 34;

/// The mean and spread of one metric at one x, over the runs that measured it.
struct Point {
    x: f64,
    mean: f64,
    min: f64,
    max: f64,
}

/// One line of the plot.
struct Series {
    /// The other swept parameters' values, in words ("" when only x is swept).
    label: String,
    /// A point of the series (for the analytic curve, x replaced).
    at: BTreeMap<String, f64>,
    points: Vec<Point>,
    analytic: Vec<(f64, f64)>,
}

fn collect(s: &Scenario, rows: &[Row], metric: &str) -> Vec<Series> {
    let keys: Vec<&str> = columns(s).into_iter().filter(|k| *k != s.x).collect();
    type Acc = (BTreeMap<String, f64>, BTreeMap<u64, (f64, Vec<f64>)>);
    let mut acc: BTreeMap<Vec<u64>, Acc> = BTreeMap::new();
    for r in rows {
        let Ok(m) = &r.metrics else { continue };
        let Some(v) = m.get(metric).copied().filter(|v| !v.is_nan()) else {
            continue;
        };
        let Some(x) = r.point.get(&s.x).copied() else {
            continue;
        };
        let key = keys
            .iter()
            .map(|k| super::ord_key(r.point.get(*k).copied().unwrap_or(f64::NAN)))
            .collect();
        let e = acc
            .entry(key)
            .or_insert_with(|| (r.point.clone(), BTreeMap::new()));
        e.1.entry(super::ord_key(x))
            .or_insert_with(|| (x, Vec::new()))
            .1
            .push(v);
    }
    acc.into_values()
        .map(|(at, by_x)| Series {
            label: describe_point(&keys, &at),
            points: by_x
                .into_values()
                .map(|(x, v)| Point {
                    x,
                    mean: v.iter().sum::<f64>() / v.len() as f64,
                    min: v.iter().copied().fold(f64::INFINITY, f64::min),
                    max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                })
                .collect(),
            at,
            analytic: Vec::new(),
        })
        .collect()
}

/// A numeric axis mapped onto `[0, 1]`.
struct Axis {
    lo: f64,
    hi: f64,
    log2: bool,
    ticks: Vec<f64>,
    /// Decimals of linear tick labels (log ticks are printed with [`human`]).
    decimals: usize,
}

impl Axis {
    fn frac(&self, v: f64) -> f64 {
        if self.log2 {
            (v.log2() - self.lo.log2()) / (self.hi.log2() - self.lo.log2())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn at(&self, f: f64) -> f64 {
        if self.log2 {
            (self.lo.log2() + f * (self.hi.log2() - self.lo.log2())).exp2()
        } else {
            self.lo + f * (self.hi - self.lo)
        }
    }

    fn tick_label(&self, v: f64) -> String {
        if self.log2 {
            human(v)
        } else {
            format!("{v:.prec$}", prec = self.decimals)
        }
    }
}

/// 1, 2, 2.5 or 5 × 10^k, about `range / 5`.
fn nice_step(range: f64) -> f64 {
    let raw = range / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let f = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    f * mag
}

fn decimals_of(step: f64) -> usize {
    let mut d = 0usize;
    while d < 8
        && ((step * 10f64.powi(d as i32)).round() - step * 10f64.powi(d as i32)).abs() > 1e-9
    {
        d += 1;
    }
    d
}

fn linear_ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Whether swept values call for a log2 axis: all positive and either all powers of two or
/// growing geometrically (ratio ≥ 1.5 between neighbours, ≥ 16 overall).
pub fn is_log2(values: &[f64]) -> bool {
    if values.len() < 3 || values.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return false;
    }
    if values.iter().all(|v| v.log2().fract() == 0.0) {
        return true;
    }
    let geometric = values.windows(2).all(|w| w[1] >= 1.5 * w[0]);
    geometric && values[values.len() - 1] / values[0] >= 16.0
}

fn x_axis(values: &[f64]) -> Axis {
    let lo = values.first().copied().unwrap_or(0.0);
    let hi = values.last().copied().unwrap_or(1.0);
    if is_log2(values) {
        let ticks = if values.len() <= 12 {
            values.to_vec()
        } else {
            let (a, b) = (lo.log2().ceil() as i32, hi.log2().floor() as i32);
            (a..=b).map(|e| 2f64.powi(e)).collect()
        };
        return Axis {
            lo,
            hi,
            log2: true,
            ticks,
            decimals: 0,
        };
    }
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let step = nice_step(hi - lo);
    Axis {
        lo,
        hi,
        log2: false,
        ticks: linear_ticks(lo, hi, step),
        decimals: decimals_of(step),
    }
}

fn y_axis(fraction: bool, values: &[f64]) -> Axis {
    if fraction {
        return Axis {
            lo: 0.0,
            hi: 1.0,
            log2: false,
            ticks: linear_ticks(0.0, 1.0, 0.2),
            decimals: 1,
        };
    }
    let lo = values.iter().copied().fold(0.0f64, f64::min);
    let hi = values.iter().copied().fold(lo, f64::max);
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let step = nice_step(hi - lo);
    let (lo, hi) = ((lo / step).floor() * step, (hi / step - 1e-9).ceil() * step);
    Axis {
        lo,
        hi,
        log2: false,
        ticks: linear_ticks(lo, hi, step),
        decimals: decimals_of(step),
    }
}

/// A reference value with the metric's unit, e.g. "86 ms" (the unit is the parenthesised end of
/// the metric's label, unless that is "fraction").
fn with_unit(metric: &str, v: f64) -> String {
    let unit = label(metric)
        .rsplit_once('(')
        .and_then(|(_, u)| u.strip_suffix(')'))
        .filter(|u| *u != "fraction" && !u.contains(' '));
    match unit {
        Some(u) => format!("{} {u}", human(v)),
        None => human(v),
    }
}

/// XML-escapes text.
fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn marker(out: &mut String, kind: usize, cx: f64, cy: f64, colour: &str) {
    let _ = match kind % MARKERS {
        0 => writeln!(
            out,
            "<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"3.5\" fill=\"{colour}\"/>"
        ),
        1 => writeln!(
            out,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"6.4\" height=\"6.4\" fill=\"{colour}\"/>",
            cx - 3.2,
            cy - 3.2
        ),
        2 => writeln!(
            out,
            "<polygon points=\"{cx:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{colour}\"/>",
            cy - 4.2,
            cx - 4.0,
            cy + 3.2,
            cx + 4.0,
            cy + 3.2
        ),
        _ => writeln!(
            out,
            "<polygon points=\"{cx:.1},{:.1} {:.1},{cy:.1} {cx:.1},{:.1} {:.1},{cy:.1}\" fill=\"{colour}\"/>",
            cy - 4.6,
            cx + 4.2,
            cy + 4.6,
            cx - 4.2
        ),
    };
}

/// Splits legend text into lines of at most [`LEGEND_WRAP`] characters, at spaces.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let cur = lines.last_mut().map_or(0, |l| l.chars().count());
        if cur > 0 && cur + 1 + word.chars().count() > LEGEND_WRAP {
            lines.push(String::new());
        }
        if let Some(l) = lines.last_mut() {
            if !l.is_empty() {
                l.push(' ');
            }
            l.push_str(word);
        }
    }
    lines
}

/// What a legend entry's sample looks like.
enum Sample<'a> {
    /// A measured series: solid line with its marker.
    Measured(&'a str, usize),
    /// An analytic curve: dashed line.
    Analytic(&'a str),
    /// A reference line: dotted.
    Reference,
    /// Error bars.
    Spread,
}

/// An SVG plot of `metric` against the scenario's x parameter (see the module doc).
pub fn svg(s: &Scenario, rows: &[Row], metric: &str) -> String {
    let mut series = collect(s, rows, metric);
    let xs: Vec<f64> = {
        let mut v = s.sweep.get(&s.x).cloned().unwrap_or_default();
        v.sort_by(f64::total_cmp);
        v
    };
    let xa = x_axis(&xs);
    let overlay = s
        .overlay
        .as_deref()
        .and_then(|o| OVERLAYS.iter().find(|(n, m, _)| *n == o && *m == metric));
    if let Some((name, _, _)) = overlay {
        for ser in &mut series {
            ser.analytic = (0..=96)
                .filter_map(|k| {
                    let x = xa.at(k as f64 / 96.0);
                    let mut pt = ser.at.clone();
                    pt.insert(s.x.clone(), x);
                    analytic(name, metric, &pt).map(|y| (x, y))
                })
                .collect();
        }
    }
    let references: Vec<&super::Reference> =
        s.reference.iter().filter(|r| r.metric == metric).collect();
    let fraction = is_fraction(metric);
    let mut ys: Vec<f64> = series
        .iter()
        .flat_map(|se| {
            se.points
                .iter()
                .flat_map(|p| [p.min, p.max])
                .chain(se.analytic.iter().map(|a| a.1))
        })
        .collect();
    ys.extend(references.iter().map(|r| r.value));
    let ya = y_axis(fraction, &ys);
    let px = |x: f64| LEFT + PAD + xa.frac(x) * (RIGHT - LEFT - 2.0 * PAD);
    let py = |y: f64| BOTTOM - ya.frac(y) * (BOTTOM - TOP);
    let runs = s.runs;

    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif\" font-size=\"13\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{:.1}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        (LEFT + RIGHT) / 2.0,
        esc(&format!("{}: {}", s.name, label(metric)))
    );
    // Grid and ticks.
    let _ = writeln!(
        out,
        "<g class=\"x-axis\" data-scale=\"{}\">",
        if xa.log2 { "log2" } else { "linear" }
    );
    for t in &xa.ticks {
        let x = px(*t);
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{TOP}\" x2=\"{x:.1}\" y2=\"{BOTTOM}\" stroke=\"#e6e6e6\"/>\n<line x1=\"{x:.1}\" y1=\"{BOTTOM}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"black\"/>\n<text class=\"tick\" x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            BOTTOM + 5.0,
            BOTTOM + 20.0,
            xa.tick_label(*t)
        );
    }
    let _ = writeln!(
        out,
        "<text class=\"x-label\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n</g>",
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 46.0,
        esc(&if xa.log2 {
            format!("{} (log scale)", label(&s.x))
        } else {
            label(&s.x).to_string()
        })
    );
    let _ = writeln!(out, "<g class=\"y-axis\">");
    for t in &ya.ticks {
        let y = py(*t);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/>\n<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{LEFT}\" y2=\"{y:.1}\" stroke=\"black\"/>\n<text class=\"tick\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 5.0,
            LEFT - 8.0,
            y + 4.5,
            ya.tick_label(*t)
        );
    }
    let (lx, ly) = (22.0, (TOP + BOTTOM) / 2.0);
    let _ = writeln!(
        out,
        "<text class=\"y-label\" x=\"{lx}\" y=\"{ly}\" transform=\"rotate(-90 {lx} {ly})\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n</g>",
        esc(label(metric))
    );
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"black\"/>",
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    if series.iter().all(|se| se.points.is_empty()) {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data: every run failed, or {} does not apply to these runs</text>",
            (LEFT + RIGHT) / 2.0,
            (TOP + BOTTOM) / 2.0,
            esc(metric)
        );
    }
    // References under the data.
    for r in &references {
        let y = py(r.value);
        let _ = writeln!(
            out,
            "<line class=\"reference\" x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{RIGHT}\" y2=\"{y:.1}\" stroke=\"#333333\" stroke-width=\"1.4\" stroke-dasharray=\"1.5,3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#333333\" font-size=\"12\">{}</text>",
            RIGHT - 6.0,
            y - 5.0,
            esc(&format!("{}: {}", r.label, with_unit(metric, r.value)))
        );
    }
    for (k, se) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        if !se.analytic.is_empty() {
            let path: Vec<String> = se
                .analytic
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            let _ = writeln!(
                out,
                "<polyline class=\"analytic\" fill=\"none\" stroke=\"{c}\" stroke-width=\"1.6\" stroke-dasharray=\"7,4\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        if runs > 1 {
            let _ = writeln!(
                out,
                "<g class=\"error-bars\" stroke=\"{c}\" stroke-width=\"1.2\">"
            );
            // Bars of neighbouring series are set apart by 3 px so they do not hide each
            // other; the means stay at their x.
            let dodge = 3.0 * (k as f64 - (series.len() as f64 - 1.0) / 2.0);
            for p in &se.points {
                let (x, a, b) = (px(p.x) + dodge, py(p.min), py(p.max));
                if (a - b).abs() < 0.5 {
                    continue; // no visible spread (and a zero-length line cannot be stroked)
                }
                let _ = writeln!(
                    out,
                    "<line x1=\"{x:.1}\" y1=\"{a:.1}\" x2=\"{x:.1}\" y2=\"{b:.1}\"/><line x1=\"{:.1}\" y1=\"{a:.1}\" x2=\"{:.1}\" y2=\"{a:.1}\"/><line x1=\"{:.1}\" y1=\"{b:.1}\" x2=\"{:.1}\" y2=\"{b:.1}\"/>",
                    x - 4.0,
                    x + 4.0,
                    x - 4.0,
                    x + 4.0
                );
            }
            out.push_str("</g>\n");
        }
        let path: Vec<String> = se
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", px(p.x), py(p.mean)))
            .collect();
        // One point has no line (a zero-length polyline cannot be stroked); its marker shows it.
        if se.points.len() >= 2 {
            let _ = writeln!(
                out,
                "<polyline class=\"measured\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        for p in &se.points {
            marker(&mut out, k, px(p.x), py(p.mean), c);
        }
    }
    // Legend.
    let mut entries: Vec<(Sample<'_>, String)> = Vec::new();
    for (k, se) in series.iter().enumerate() {
        let text = if se.label.is_empty() {
            "measured".to_string()
        } else {
            se.label.clone()
        };
        entries.push((Sample::Measured(COLOURS[k % COLOURS.len()], k), text));
    }
    if runs > 1 && !series.is_empty() {
        entries.push((
            Sample::Spread,
            format!("mean of {runs} runs; bars: min–max"),
        ));
    }
    if let Some((_, _, formula)) = overlay {
        if series.len() == 1 {
            entries.push((Sample::Analytic(COLOURS[0]), format!("analytic {formula}")));
        } else if !series.is_empty() {
            entries.push((
                Sample::Analytic("#555555"),
                format!("analytic {formula}, dashed in each series' colour"),
            ));
        }
    }
    for r in &references {
        entries.push((
            Sample::Reference,
            format!("{}: {}", r.label, with_unit(metric, r.value)),
        ));
    }
    let _ = writeln!(out, "<g class=\"legend\">");
    let mut y = TOP + 10.0;
    for (sample, text) in &entries {
        let (a, b) = (LEGEND_X, LEGEND_X + 30.0);
        match sample {
            Sample::Measured(c, k) => {
                let _ = writeln!(
                    out,
                    "<line x1=\"{a}\" y1=\"{y:.1}\" x2=\"{b}\" y2=\"{y:.1}\" stroke=\"{c}\" stroke-width=\"2\"/>"
                );
                marker(&mut out, *k, (a + b) / 2.0, y, c);
            }
            Sample::Analytic(c) => {
                let _ = writeln!(
                    out,
                    "<line x1=\"{a}\" y1=\"{y:.1}\" x2=\"{b}\" y2=\"{y:.1}\" stroke=\"{c}\" stroke-width=\"1.6\" stroke-dasharray=\"7,4\"/>"
                );
            }
            Sample::Reference => {
                let _ = writeln!(
                    out,
                    "<line x1=\"{a}\" y1=\"{y:.1}\" x2=\"{b}\" y2=\"{y:.1}\" stroke=\"#333333\" stroke-width=\"1.4\" stroke-dasharray=\"1.5,3\"/>"
                );
            }
            Sample::Spread => {
                let m = (a + b) / 2.0;
                let _ = writeln!(
                    out,
                    "<g stroke=\"#555555\" stroke-width=\"1.2\"><line x1=\"{m}\" y1=\"{:.1}\" x2=\"{m}\" y2=\"{:.1}\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/></g>",
                    y - 6.0,
                    y + 6.0,
                    m - 4.0,
                    y - 6.0,
                    m + 4.0,
                    y - 6.0,
                    m - 4.0,
                    y + 6.0,
                    m + 4.0,
                    y + 6.0
                );
            }
        }
        for (i, line) in wrap(text).iter().enumerate() {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{:.1}\">{}</text>",
                b + 8.0,
                y + 4.5 + 16.0 * i as f64,
                esc(line)
            );
        }
        y += 16.0 * wrap(text).len() as f64 + 6.0;
    }
    out.push_str("</g>\n</svg>\n");
    out
}

/// Renders an SVG plot to a PNG file at twice its size (1760 × 960 pixels for a plot, 192 dpi
/// at the SVG's 96 dpi size). Labels use the system's fonts; without any, the PNG has lines and
/// points but no text.
pub fn png(svg: &str, path: &std::path::Path) -> Result<(), String> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("plot: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width() * 2, size.height() * 2)
        .ok_or_else(|| "plot: empty image".to_string())?;
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    pixmap
        .save_png(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}
