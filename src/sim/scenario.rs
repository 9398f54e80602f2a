//! Scenario sweeps for `dcnet sim`: a TOML file lists values for round and network parameters;
//! the product of those lists is run on the deterministic network, and the results become
//! `results.csv`, SVG plots and `summary.md`. The same seed gives byte-identical CSV.

use super::{CostModel, LinkModel, Network, TestGroup, derive_seed};
use crate::adversary::{MemberFault, RelayFault};
use crate::params::RoundParams;
use crate::protocol::blame::Culprit;
use crate::protocol::{MemberEvent, RelayEvent};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// Parameters that can be swept, in CSV column order.
pub const PARAMS: &[&str] = &[
    "members",
    "cells",
    "slot_bytes",
    "p_trap",
    "p_cover",
    "latency_ms",
    "jitter_ms",
    "bandwidth_mbps",
    "loss",
    "crash_fraction",
    "downtime_ms",
    "jammers",
    "decoys",
    "relay_tamper",
    "relay_frame_us",
];

/// Metrics, in CSV column order.
pub const METRICS: &[&str] = &[
    "rounds",
    "virtual_s",
    "round_ms",
    "reservation_success",
    "predicted_success",
    "collisions",
    "sent",
    "delivered_fraction",
    "throughput_msgs_per_s",
    "median_latency_ms",
    "disruptions",
    "conviction_round",
    "convicted",
    "honest_convicted",
    "relay_convicted",
];

/// A scenario file.
#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name (used in titles).
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// Rounds per run.
    pub rounds: usize,
    /// Messages each honest member submits at the start (0: everyone idle).
    #[serde(default)]
    pub messages: usize,
    /// Bytes per message.
    #[serde(default = "default_message_bytes")]
    pub message_bytes: usize,
    /// Only the first `senders` honest members post (default: all).
    #[serde(default)]
    pub senders: Option<usize>,
    /// "real" (default) or "modeled" (pads skipped; for large N; no adversaries).
    #[serde(default = "default_crypto")]
    pub crypto: String,
    /// Use modeled crypto for runs with more members than this (when crypto = "real").
    #[serde(default)]
    pub modeled_above: Option<usize>,
    /// Repetitions per point (seeds seed, seed+1, …).
    #[serde(default = "one")]
    pub runs: usize,
    /// Parameter on the x axis of plots.
    pub x: String,
    /// Metrics to plot.
    #[serde(default)]
    pub plot: Vec<String>,
    /// An analytic curve to overlay: "reservation" ((1 − 1/m)^(k−1)) or "trap" ((c+1)/p_trap,
    /// c = decoys).
    #[serde(default)]
    pub overlay: Option<String>,
    /// Values per parameter; a parameter not listed keeps its default.
    pub sweep: BTreeMap<String, Vec<f64>>,
}

fn default_message_bytes() -> usize {
    40
}
fn default_crypto() -> String {
    "real".into()
}
fn one() -> usize {
    1
}

fn default_of(p: &str) -> f64 {
    match p {
        "members" => 8.0,
        "cells" => 0.0,
        "slot_bytes" => 256.0,
        "p_trap" => 0.2,
        "p_cover" => 1.0,
        "latency_ms" => 0.5,
        "jitter_ms" => 0.2,
        "downtime_ms" => 500.0,
        "relay_frame_us" => 5.0,
        _ => 0.0,
    }
}

impl Scenario {
    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        for k in s.sweep.keys() {
            if !PARAMS.contains(&k.as_str()) {
                return Err(format!(
                    "unknown sweep parameter {k:?}; known: {}",
                    PARAMS.join(", ")
                ));
            }
        }
        if !PARAMS.contains(&s.x.as_str()) {
            return Err(format!("x = {:?} is not a parameter", s.x));
        }
        for m in &s.plot {
            if !METRICS.contains(&m.as_str()) {
                return Err(format!(
                    "unknown metric {m:?}; known: {}",
                    METRICS.join(", ")
                ));
            }
        }
        if s.crypto != "real" && s.crypto != "modeled" {
            return Err("crypto must be \"real\" or \"modeled\"".into());
        }
        if s.rounds == 0 || s.runs == 0 {
            return Err("rounds and runs must be at least 1".into());
        }
        Ok(s)
    }

    /// Every point of the sweep: parameter name → value.
    pub fn points(&self) -> Vec<BTreeMap<String, f64>> {
        let mut pts = vec![BTreeMap::new()];
        for p in PARAMS {
            let vals = self
                .sweep
                .get(*p)
                .cloned()
                .unwrap_or_else(|| vec![default_of(p)]);
            let mut next = Vec::new();
            for pt in &pts {
                for v in &vals {
                    let mut q: BTreeMap<String, f64> = pt.clone();
                    q.insert(p.to_string(), *v);
                    next.push(q);
                }
            }
            pts = next;
        }
        pts
    }
}

/// Result of one run: metric name → value (NaN when not applicable).
pub type Metrics = BTreeMap<String, f64>;

/// Runs one point with one seed.
pub fn run_point(s: &Scenario, pt: &BTreeMap<String, f64>, seed: u64) -> Result<Metrics, String> {
    let g = |k: &str| pt.get(k).copied().unwrap_or_else(|| default_of(k));
    let n = g("members") as usize;
    let params = RoundParams {
        cells: g("cells") as u32,
        slot_bytes: g("slot_bytes") as u32,
        p_trap: g("p_trap"),
        p_cover: g("p_cover"),
        ..RoundParams::default()
    };
    let tg = TestGroup::new(n, params, seed).map_err(|e| e.to_string())?;
    let cells = tg.group.params().cells as f64;
    let jammers = g("jammers") as usize;
    let tamper = g("relay_tamper") > 0.0;
    let modeled = s.crypto == "modeled" || s.modeled_above.is_some_and(|m| n > m);
    let decoys = g("decoys") as usize;
    if modeled && (jammers > 0 || tamper || decoys > 0) {
        return Err("adversaries need real crypto (blame discloses real pads)".into());
    }
    let mut member_faults = BTreeMap::new();
    for j in 0..jammers.min(n.saturating_sub(2)) {
        member_faults.insert(
            (n - 1 - j) as u32,
            vec![MemberFault::JamSlots { rate: 1.0 }],
        );
    }
    // Decoys: colluders garbling their own slots (c in the (c+1)/p_trap estimate).
    for d in 0..decoys.min(n.saturating_sub(2 + jammers)) {
        member_faults.insert((n - 1 - jammers - d) as u32, vec![MemberFault::GarbleOwn]);
    }
    let relay_faults = if tamper {
        vec![RelayFault::Tamper {
            offset: None,
            mask: 0x5a,
        }]
    } else {
        vec![]
    };
    let link = LinkModel {
        base_us: (g("latency_ms") * 1000.0) as u64,
        jitter_us: (g("jitter_ms") * 1000.0) as u64,
        bandwidth_bps: (g("bandwidth_mbps") * 125_000.0) as u64,
        loss: g("loss"),
        rto_us: ((g("latency_ms") * 3000.0) as u64).max(1000),
    };
    let mut net = Network::with_faults(&tg, seed, link, relay_faults, &member_faults);
    net.cost = CostModel {
        relay_frame_us: g("relay_frame_us"),
        ..CostModel::calibrated()
    };
    net.set_modeled_crypto(modeled);
    let honest: Vec<usize> = (0..n)
        .filter(|i| !member_faults.contains_key(&(*i as u32)))
        .collect();
    let senders: Vec<usize> = honest
        .iter()
        .copied()
        .take(s.senders.unwrap_or(n))
        .collect();
    let mut submitted: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
    for &i in &senders {
        for k in 0..s.messages {
            let mut m = format!("{i}/{k}/").into_bytes();
            m.resize(s.message_bytes.max(m.len()), b'.');
            if let Some(mem) = net.members[i].as_mut() {
                mem.submit(&m).map_err(|e| e.to_string())?;
            }
            submitted.insert(m, 0.0);
        }
    }
    net.start();
    // Churn schedule: which members crash after which round, and when they restart.
    let mut rng = ChaCha20Rng::from_seed(derive_seed(seed, "churn", 0));
    let crashers = ((g("crash_fraction") * n as f64).round() as usize).min(n.saturating_sub(2));
    let mut schedule: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for k in 0..crashers {
        let who = n - 1 - jammers - decoys - k;
        if who == 0 || who >= n {
            continue;
        }
        let at = 1 + (rng.next_u64() % (s.rounds.max(2) as u64 / 2)) as usize;
        schedule.entry(at).or_default().push(who);
    }
    let downtime_us = (g("downtime_ms") * 1000.0) as u64;
    let mut down: Vec<(usize, crate::protocol::Time, u64)> = Vec::new();
    let watch = honest[0];
    let mut latencies = Vec::new();
    let mut completed = 0usize;
    // Member events are consumed as they come (a run of 1000 members would otherwise keep
    // every cleartext of every member).
    let mut completed_at = vec![0usize; n];
    let mut collided = vec![0usize; n];
    let mut got: Vec<BTreeSet<Vec<u8>>> = vec![BTreeSet::new(); n];
    let mut verdicts = Vec::new();
    let mut damaged_rounds = Vec::new();
    let mut consume = |net: &mut Network, latencies: &mut Vec<f64>| {
        let now = net.now();
        for (i, ev) in net.member_events.iter_mut().enumerate() {
            for e in std::mem::take(ev) {
                match e {
                    MemberEvent::RoundCompleted { round, damaged, .. } => {
                        completed_at[i] += 1;
                        if i == watch && damaged > 0 {
                            damaged_rounds.push(round);
                        }
                    }
                    MemberEvent::Collided { .. } => collided[i] += 1,
                    MemberEvent::Delivered { message, .. } if submitted.contains_key(&message) => {
                        if i == watch {
                            latencies.push(now.as_micros() as f64 / 1000.0);
                        }
                        got[i].insert(message);
                    }
                    MemberEvent::Verdict { verdict, .. } if i == watch => verdicts.push(verdict),
                    _ => {}
                }
            }
        }
    };
    while completed < s.rounds {
        if net.run_rounds(1).is_err() {
            break;
        }
        completed = net.completed_rounds();
        if let Some(list) = schedule.remove(&completed) {
            for who in list {
                let hw = net.members[who]
                    .as_ref()
                    .map_or(0, |m| m.stored_high_water());
                net.crash(who);
                down.push((who, net.now().plus_micros(downtime_us), hw));
            }
        }
        let now = net.now();
        let (back, still): (Vec<_>, Vec<_>) = down.into_iter().partition(|d| d.1 <= now);
        down = still;
        for (who, _, hw) in back {
            net.restart(who, hw);
        }
        consume(&mut net, &mut latencies);
        if net
            .relay_events
            .iter()
            .any(|e| matches!(e, RelayEvent::Verdict { verdict, .. } if verdict.culprit == Some(Culprit::Relay)))
        {
            break;
        }
    }
    consume(&mut net, &mut latencies);
    let virtual_s = net.now().as_micros() as f64 / 1e6;
    let reservations: usize = honest.iter().map(|&i| completed_at[i]).sum();
    let collisions: usize = honest.iter().map(|&i| collided[i]).sum();
    let sent = submitted.len();
    let delivered: usize = honest.iter().map(|&i| got[i].len()).sum();
    let convicted: BTreeSet<u32> = verdicts
        .iter()
        .filter_map(|v| match v.culprit {
            Some(Culprit::Member(i)) => Some(i),
            _ => None,
        })
        .collect();
    let first_conviction = verdicts
        .iter()
        .filter(|v| v.culprit.is_some())
        .map(|v| v.round)
        .min();
    let disruptions = damaged_rounds
        .iter()
        .filter(|r| first_conviction.is_none_or(|c| **r <= c))
        .count();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let k = n as f64;
    let mut m = Metrics::new();
    m.insert("rounds".into(), completed as f64);
    m.insert("virtual_s".into(), virtual_s);
    m.insert(
        "round_ms".into(),
        if completed > 0 {
            virtual_s * 1000.0 / completed as f64
        } else {
            f64::NAN
        },
    );
    m.insert(
        "reservation_success".into(),
        if reservations > 0 {
            1.0 - collisions as f64 / reservations as f64
        } else {
            f64::NAN
        },
    );
    m.insert(
        "predicted_success".into(),
        (1.0 - 1.0 / cells).powf(k - 1.0),
    );
    m.insert("collisions".into(), collisions as f64);
    m.insert("sent".into(), sent as f64);
    m.insert(
        "delivered_fraction".into(),
        if sent > 0 {
            delivered as f64 / (sent * honest.len()) as f64
        } else {
            f64::NAN
        },
    );
    let at_watch = latencies.len() as f64;
    m.insert(
        "throughput_msgs_per_s".into(),
        if virtual_s > 0.0 {
            at_watch / virtual_s
        } else {
            f64::NAN
        },
    );
    m.insert(
        "median_latency_ms".into(),
        latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
    );
    m.insert(
        "disruptions".into(),
        if jammers > 0 || tamper {
            disruptions as f64
        } else {
            f64::NAN
        },
    );
    m.insert(
        "conviction_round".into(),
        first_conviction.map_or(f64::NAN, |r| r as f64),
    );
    m.insert("convicted".into(), convicted.len() as f64);
    m.insert(
        "honest_convicted".into(),
        convicted
            .iter()
            .filter(|i| !member_faults.contains_key(i))
            .count() as f64,
    );
    m.insert(
        "relay_convicted".into(),
        if verdicts.iter().any(|v| v.culprit == Some(Culprit::Relay)) {
            1.0
        } else {
            0.0
        },
    );
    Ok(m)
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        // Round to 6 decimals, then print the shortest representation (deterministic).
        format!("{}", (v * 1e6).round() / 1e6)
    }
}

/// One row per run.
pub struct Row {
    /// Run index.
    pub run: usize,
    /// Seed.
    pub seed: u64,
    /// Parameters.
    pub point: BTreeMap<String, f64>,
    /// Metrics (or the error that stopped the run).
    pub metrics: Result<Metrics, String>,
}

/// `results.csv`: one row per run, one column per parameter and metric.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from("run,seed,");
    out.push_str(&PARAMS.join(","));
    out.push(',');
    out.push_str(&METRICS.join(","));
    out.push_str(",error\n");
    for r in rows {
        let _ = write!(out, "{},{}", r.run, r.seed);
        for p in PARAMS {
            let _ = write!(out, ",{}", fmt(r.point[*p]));
        }
        match &r.metrics {
            Ok(m) => {
                for k in METRICS {
                    let _ = write!(out, ",{}", fmt(m[*k]));
                }
                out.push_str(",\n");
            }
            Err(e) => {
                for _ in METRICS {
                    out.push(',');
                }
                let _ = writeln!(out, ",\"{}\"", e.replace('"', "'"));
            }
        }
    }
    out
}

/// Mean of a metric per (series, x), series = the other swept parameters.
fn series(s: &Scenario, rows: &[Row], metric: &str) -> BTreeMap<String, Vec<(f64, f64)>> {
    let swept: Vec<&String> = s
        .sweep
        .iter()
        .filter(|(k, v)| v.len() > 1 && **k != s.x)
        .map(|(k, _)| k)
        .collect();
    let mut acc: BTreeMap<String, BTreeMap<u64, (f64, f64, usize)>> = BTreeMap::new();
    for r in rows {
        let Ok(m) = &r.metrics else { continue };
        let v = m[metric];
        if v.is_nan() {
            continue;
        }
        let label = swept
            .iter()
            .map(|k| format!("{k}={}", fmt(r.point[k.as_str()])))
            .collect::<Vec<_>>()
            .join(" ");
        let x = r.point[&s.x];
        let e = acc
            .entry(label)
            .or_default()
            .entry(x.to_bits())
            .or_insert((x, 0.0, 0));
        e.1 += v;
        e.2 += 1;
    }
    acc.into_iter()
        .map(|(l, pts)| {
            let mut v: Vec<(f64, f64)> = pts
                .into_values()
                .map(|(x, s, c)| (x, s / c as f64))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (l, v)
        })
        .collect()
}

/// An SVG line plot of `metric` against the scenario's x parameter, one line per series, with
/// the analytic overlay when the scenario asks for one.
pub fn svg(s: &Scenario, rows: &[Row], metric: &str) -> String {
    let mut lines = series(s, rows, metric);
    if let Some(o) = &s.overlay {
        // The analytic value of each run, averaged per series and x like the measurements.
        let analytic: Vec<Row> = rows
            .iter()
            .filter_map(|r| {
                let m = r.metrics.as_ref().ok()?;
                let y = match o.as_str() {
                    "reservation" if metric == "reservation_success" => m["predicted_success"],
                    "trap" if metric == "disruptions" => {
                        (r.point["decoys"] + 1.0) / r.point["p_trap"]
                    }
                    _ => return None,
                };
                let mut mm = Metrics::new();
                mm.insert(metric.to_string(), y);
                Some(Row {
                    run: r.run,
                    seed: r.seed,
                    point: r.point.clone(),
                    metrics: Ok(mm),
                })
            })
            .collect();
        for (label, pts) in series(s, &analytic, metric) {
            let name = if label.is_empty() {
                format!("analytic ({o})")
            } else {
                format!("analytic {label}")
            };
            lines.insert(name, pts);
        }
    }
    let all: Vec<(f64, f64)> = lines.values().flatten().copied().collect();
    let (w, h, l, b) = (640.0, 400.0, 70.0, 50.0);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}: {} vs {}</text>\n",
        w / 2.0,
        s.name,
        metric,
        s.x
    );
    if all.is_empty() {
        out.push_str("<text x=\"320\" y=\"200\" text-anchor=\"middle\">no data</text>\n</svg>\n");
        return out;
    }
    let (x0, x1) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |a, p| (a.0.min(p.0), a.1.max(p.0)));
    let (y0, y1) = all
        .iter()
        .fold((0.0f64, f64::MIN), |a, p| (a.0.min(p.1), a.1.max(p.1)));
    let (x1, y1) = (
        if x1 > x0 { x1 } else { x0 + 1.0 },
        if y1 > y0 { y1 * 1.05 } else { y0 + 1.0 },
    );
    let px = |x: f64| l + (x - x0) / (x1 - x0) * (w - l - 20.0);
    let py = |y: f64| h - b - (y - y0) / (y1 - y0) * (h - b - 40.0);
    let _ = writeln!(
        out,
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>",
        h - b,
        w - 20.0,
        h - b
    );
    let _ = writeln!(
        out,
        "<line x1=\"{l}\" y1=\"40\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>",
        h - b
    );
    for k in 0..=4 {
        let xv = x0 + (x1 - x0) * k as f64 / 4.0;
        let yv = y0 + (y1 - y0) * k as f64 / 4.0;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(xv),
            h - b + 18.0,
            short(xv)
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            l - 6.0,
            py(yv) + 4.0,
            short(yv)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        w / 2.0,
        h - 10.0,
        s.x
    );
    let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f",
    ];
    for (k, (label, pts)) in lines.iter().enumerate() {
        let c = if label.starts_with("analytic") {
            "black"
        } else {
            colors[k % colors.len()]
        };
        let dash = if label.starts_with("analytic") {
            " stroke-dasharray=\"6,4\""
        } else {
            ""
        };
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            path.join(" ")
        );
        for (x, y) in pts {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{c}\"/>",
                px(*x),
                py(*y)
            );
        }
        let name = if label.is_empty() {
            metric.to_string()
        } else {
            label.clone()
        };
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" fill=\"{c}\">{name}</text>",
            l + 10.0,
            55.0 + 15.0 * k as f64
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Renders an SVG plot to a PNG file (labels use the system's fonts; without any, the PNG has
/// lines and points but no text).
pub fn png(svg: &str, path: &std::path::Path) -> Result<(), String> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    opt.fontdb_mut().load_system_fonts();
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("plot: {e}"))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| "plot: empty image".to_string())?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap
        .save_png(path)
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// `summary.md`: the scenario, the command, and the mean of every metric per point.
pub fn summary(s: &Scenario, rows: &[Row], command: &str) -> String {
    let mut out = format!(
        "# {}\n\n{}\n\nReproduce: `{}`\n\n",
        s.name,
        s.description.trim(),
        command
    );
    let swept: Vec<&String> = s
        .sweep
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k)
        .collect();
    let shown: Vec<&str> = METRICS
        .iter()
        .copied()
        .filter(|m| {
            rows.iter()
                .any(|r| r.metrics.as_ref().is_ok_and(|x| !x[*m].is_nan()))
        })
        .collect();
    let mut groups: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let key = swept
            .iter()
            .map(|k| format!("{:>12}", fmt(r.point[k.as_str()])))
            .collect::<Vec<_>>()
            .join("|");
        groups.entry(key).or_default().push(r);
    }
    let _ = writeln!(
        out,
        "| {} | runs | {} |",
        swept
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        shown.join(" | ")
    );
    let _ = writeln!(out, "|{}", "---|".repeat(swept.len() + 1 + shown.len()));
    for rs in groups.values() {
        let p = &rs[0].point;
        let ok: Vec<&Metrics> = rs.iter().filter_map(|r| r.metrics.as_ref().ok()).collect();
        let means: Vec<String> = shown
            .iter()
            .map(|m| {
                let v: Vec<f64> = ok.iter().map(|x| x[*m]).filter(|v| !v.is_nan()).collect();
                if v.is_empty() {
                    "–".into()
                } else {
                    short(v.iter().sum::<f64>() / v.len() as f64)
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            swept
                .iter()
                .map(|k| fmt(p[k.as_str()]))
                .collect::<Vec<_>>()
                .join(" | "),
            ok.len(),
            means.join(" | ")
        );
    }
    let errors: Vec<&String> = rows
        .iter()
        .filter_map(|r| r.metrics.as_ref().err())
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(
            out,
            "\n{} run(s) failed; first error: {}",
            errors.len(),
            errors[0]
        );
    }
    out
}
