//! Scenario sweeps for `dcnet sim`: a TOML file lists values for round and network parameters;
//! the product of those lists is run on the deterministic network, and the results become
//! `results.csv`, SVG plots and `summary.md`. The same seed gives byte-identical CSV.

use super::{CostModel, LinkModel, Network, TestGroup, derive_seed};
use crate::adversary::{MemberFault, RelayFault};
use crate::params::{
    MAX_MEMBERS, MAX_SLOT_BYTES, MAX_VECTOR_BYTES, MIN_SLOT_BYTES, RoundParams, SLOT_OVERHEAD,
};
use crate::protocol::blame::Culprit;
use crate::protocol::member::MAX_QUEUE;
use crate::protocol::{MemberEvent, RelayEvent};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

pub mod plot;
pub use plot::{png, svg};

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

/// What values a swept parameter accepts.
#[derive(Clone, Copy, Debug)]
enum Domain {
    /// A whole number in `[min, max]`.
    Whole(f64, f64),
    /// A probability in `[0, 1]`.
    Probability,
    /// A finite number ≥ 0.
    NonNegative,
    /// 0 (off) or 1 (on).
    Flag,
}

impl Domain {
    fn admits(self, v: f64) -> bool {
        match self {
            Domain::Whole(lo, hi) => v.fract() == 0.0 && (lo..=hi).contains(&v),
            Domain::Probability => (0.0..=1.0).contains(&v),
            Domain::NonNegative => v.is_finite() && v >= 0.0,
            Domain::Flag => v == 0.0 || v == 1.0,
        }
    }

    fn describe(self) -> String {
        match self {
            Domain::Whole(lo, hi) => format!("a whole number from {lo} to {hi}"),
            Domain::Probability => "a probability in [0, 1]".into(),
            Domain::NonNegative => "a number ≥ 0".into(),
            Domain::Flag => "0 (off) or 1 (on)".into(),
        }
    }
}

/// One swept parameter: default, accepted values, axis label (with unit).
struct Param {
    name: &'static str,
    default: f64,
    domain: Domain,
    axis: &'static str,
}

/// Every parameter, in [`PARAMS`] order.
const PARAM_TABLE: &[Param] = &[
    Param {
        name: "members",
        default: 8.0,
        domain: Domain::Whole(2.0, MAX_MEMBERS as f64),
        axis: "group size N (members)",
    },
    Param {
        name: "cells",
        default: 0.0,
        domain: Domain::Whole(0.0, (MAX_VECTOR_BYTES / 8) as f64),
        axis: "reservation cells m",
    },
    Param {
        name: "slot_bytes",
        default: 256.0,
        domain: Domain::Whole(MIN_SLOT_BYTES as f64, MAX_SLOT_BYTES as f64),
        axis: "slot size (bytes)",
    },
    Param {
        name: "p_trap",
        default: 0.2,
        domain: Domain::Probability,
        axis: "trap probability p_trap",
    },
    Param {
        name: "p_cover",
        default: 1.0,
        domain: Domain::Probability,
        axis: "cover probability p_cover",
    },
    Param {
        name: "latency_ms",
        default: 0.5,
        domain: Domain::NonNegative,
        axis: "one-way latency (ms)",
    },
    Param {
        name: "jitter_ms",
        default: 0.2,
        domain: Domain::NonNegative,
        axis: "jitter (ms)",
    },
    Param {
        name: "bandwidth_mbps",
        default: 0.0,
        domain: Domain::NonNegative,
        axis: "link bandwidth (Mbit/s)",
    },
    Param {
        name: "loss",
        default: 0.0,
        domain: Domain::Probability,
        axis: "loss probability per transmission",
    },
    Param {
        name: "crash_fraction",
        default: 0.0,
        domain: Domain::Probability,
        axis: "fraction of members that crash",
    },
    Param {
        name: "downtime_ms",
        default: 500.0,
        domain: Domain::NonNegative,
        axis: "downtime after a crash (ms)",
    },
    Param {
        name: "jammers",
        default: 0.0,
        domain: Domain::Whole(0.0, MAX_MEMBERS as f64),
        axis: "slot jammers",
    },
    Param {
        name: "decoys",
        default: 0.0,
        domain: Domain::Whole(0.0, MAX_MEMBERS as f64),
        axis: "decoy colluders c",
    },
    Param {
        name: "relay_tamper",
        default: 0.0,
        domain: Domain::Flag,
        axis: "tampering relay (0 = no, 1 = yes)",
    },
    Param {
        name: "relay_frame_us",
        default: 5.0,
        domain: Domain::NonNegative,
        axis: "relay cost per frame (µs)",
    },
];

fn param(name: &str) -> Option<&'static Param> {
    PARAM_TABLE.iter().find(|p| p.name == name)
}

/// The axis label (with unit) of a parameter or metric, e.g. `"one-way latency (ms)"`; the
/// name itself when it is neither.
pub fn label(name: &str) -> &str {
    if let Some(p) = param(name) {
        return p.axis;
    }
    match name {
        "rounds" => "rounds completed",
        "virtual_s" => "virtual time (s)",
        "round_ms" => "time per round (ms)",
        "reservation_success" => "reservation success (fraction)",
        "predicted_success" => "predicted reservation success (fraction)",
        "collisions" => "collisions (reservations lost)",
        "sent" => "messages sent",
        "delivered_fraction" => "delivered (fraction of messages × members)",
        "throughput_msgs_per_s" => "throughput at member 0 (messages/s)",
        "median_latency_ms" => "median message latency (ms)",
        "disruptions" => "disrupted rounds before conviction",
        "conviction_round" => "round of first conviction",
        "convicted" => "members convicted",
        "honest_convicted" => "honest members convicted",
        "relay_convicted" => "runs convicting the relay (fraction)",
        _ => name,
    }
}

/// Whether a metric is a fraction (plotted on [0, 1]).
pub fn is_fraction(metric: &str) -> bool {
    matches!(
        metric,
        "reservation_success" | "predicted_success" | "delivered_fraction" | "relay_convicted"
    )
}

/// A horizontal reference line on one plot, e.g. a published system's figure.
#[derive(serde::Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// The metric whose plot shows it (one of `plot`).
    pub metric: String,
    /// Its value, in the metric's unit.
    pub value: f64,
    /// What it is, shown beside the line and in the legend.
    pub label: String,
}

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
    /// Rounds the group runs idle before the messages are submitted (default 0: at the start,
    /// before the first epoch). With warm-up, each sender submits at a uniformly random moment
    /// of the round after the warm-up (steady state: not aligned with any Open), and latency is
    /// measured from that moment.
    #[serde(default)]
    pub warmup_rounds: usize,
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
    /// Parameter on the x axis of plots; it must be swept over at least 2 values.
    pub x: String,
    /// Metrics to plot.
    #[serde(default)]
    pub plot: Vec<String>,
    /// An analytic curve to overlay: "reservation" ((1 − 1/m)^(k−1) on the
    /// `reservation_success` plot) or "trap" ((c+1)/p_trap, c = decoys, on `disruptions`).
    #[serde(default)]
    pub overlay: Option<String>,
    /// Horizontal reference lines (`[[reference]]` tables).
    #[serde(default)]
    pub reference: Vec<Reference>,
    /// Values per parameter; a parameter not listed keeps its default.
    pub sweep: BTreeMap<String, Vec<f64>>,
    /// The CPU cost rates (not in the file: `dcnet sim --calibrate` measures them on the machine
    /// it runs on; `None` means the reference machine's, [`CostModel::calibrated`]).
    #[serde(skip)]
    pub cost: Option<CostModel>,
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
    param(p).map_or(0.0, |p| p.default)
}

/// The analytic overlays: name, the metric it is drawn on, and the formula in words.
pub const OVERLAYS: &[(&str, &str, &str)] = &[
    ("reservation", "reservation_success", "(1 − 1/m)^(k−1)"),
    ("trap", "disruptions", "(c + 1) / p_trap"),
];

/// The analytic value of `overlay` at a point, when it applies to `metric`.
pub fn analytic(overlay: &str, metric: &str, pt: &BTreeMap<String, f64>) -> Option<f64> {
    let g = |k: &str| pt.get(k).copied().unwrap_or_else(|| default_of(k));
    match (overlay, metric) {
        ("reservation", "reservation_success") => {
            let k = g("members");
            let m = if g("cells") == 0.0 {
                2.0 * k
            } else {
                g("cells")
            };
            (m > 0.0).then(|| (1.0 - 1.0 / m).powf(k - 1.0))
        }
        ("trap", "disruptions") => {
            let p = g("p_trap");
            (p > 0.0).then(|| (g("decoys") + 1.0) / p)
        }
        _ => None,
    }
}

/// `k = v` pairs for the parameters `keys` at a point, e.g. `"members = 8, cells = 16"`.
pub fn describe_point(keys: &[&str], pt: &BTreeMap<String, f64>) -> String {
    keys.iter()
        .map(|k| format!("{k} = {}", fmt(pt.get(*k).copied().unwrap_or(f64::NAN))))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Scenario {
    /// Parses and checks a scenario. The error names the key, the value and what is allowed.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string().trim().to_string())?;
        s.validate()?;
        Ok(s)
    }

    /// Parameters swept over at least 2 values, in [`PARAMS`] order.
    pub fn swept(&self) -> Vec<&'static str> {
        PARAMS
            .iter()
            .copied()
            .filter(|p| self.sweep.get(*p).is_some_and(|v| v.len() > 1))
            .collect()
    }

    /// Checks every key and every point of the sweep (so that no run fails for a reason the
    /// file could have told).
    pub fn validate(&self) -> Result<(), String> {
        if self.rounds == 0 {
            return Err("rounds = 0: a run needs at least 1 round".into());
        }
        if self.runs == 0 {
            return Err("runs = 0: each point needs at least 1 run".into());
        }
        if self.messages > MAX_QUEUE {
            return Err(format!(
                "messages = {}: a member queues at most {MAX_QUEUE} messages",
                self.messages
            ));
        }
        if self.warmup_rounds >= self.rounds {
            return Err(format!(
                "warmup_rounds = {} with rounds = {}: the messages would be submitted after the run; make rounds larger than warmup_rounds",
                self.warmup_rounds, self.rounds
            ));
        }
        if self.senders == Some(0) {
            return Err(
                "senders = 0: nobody would post; use messages = 0 for an idle group, or senders ≥ 1"
                    .into(),
            );
        }
        if self.crypto != "real" && self.crypto != "modeled" {
            return Err(format!(
                "crypto = {:?}: allowed values are \"real\" and \"modeled\"",
                self.crypto
            ));
        }
        for (k, vals) in &self.sweep {
            let Some(p) = param(k) else {
                return Err(format!(
                    "[sweep] {k}: unknown parameter; allowed: {}",
                    PARAMS.join(", ")
                ));
            };
            if vals.is_empty() {
                return Err(format!(
                    "[sweep] {k} = []: list at least one value, or remove it to keep the default {}",
                    fmt(p.default)
                ));
            }
            for (i, v) in vals.iter().enumerate() {
                if !p.domain.admits(*v) {
                    return Err(format!(
                        "[sweep] {k} = {v}: out of range; allowed: {}",
                        p.domain.describe()
                    ));
                }
                if vals[..i].contains(v) {
                    return Err(format!("[sweep] {k} lists {v} twice; list each value once"));
                }
            }
        }
        let Some(_) = param(&self.x) else {
            return Err(format!(
                "x = {:?}: not a parameter; allowed: {}",
                self.x,
                PARAMS.join(", ")
            ));
        };
        let swept = self.swept();
        let others = if swept.is_empty() {
            "none is swept yet".to_string()
        } else {
            format!("swept: {}", swept.join(", "))
        };
        match self.sweep.get(&self.x).map_or(0, Vec::len) {
            0 => {
                return Err(format!(
                    "x = {:?} is not swept: add `{} = [a, b, …]` (at least 2 values) to [sweep], or set x to a swept parameter ({others})",
                    self.x, self.x
                ));
            }
            1 => {
                return Err(format!(
                    "x = {:?} is swept over 1 value; a plot needs at least 2: list more values in [sweep] {}, or set x to a parameter with several ({others})",
                    self.x, self.x
                ));
            }
            _ => {}
        }
        for m in &self.plot {
            if !METRICS.contains(&m.as_str()) {
                return Err(format!(
                    "plot: unknown metric {m:?}; allowed: {}",
                    METRICS.join(", ")
                ));
            }
        }
        if let Some(o) = &self.overlay {
            let Some((_, metric, _)) = OVERLAYS.iter().find(|(n, _, _)| n == o) else {
                return Err(format!(
                    "overlay = {o:?}: allowed values are {}",
                    OVERLAYS
                        .iter()
                        .map(|(n, m, f)| format!("\"{n}\" ({f} on {m})"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            };
            if !self.plot.iter().any(|m| m == metric) {
                return Err(format!(
                    "overlay = {o:?} is drawn on the {metric} plot, which is not in plot; add \"{metric}\" to plot"
                ));
            }
        }
        for r in &self.reference {
            if !self.plot.contains(&r.metric) {
                return Err(format!(
                    "[[reference]] {:?}: metric = {:?} is not in plot = {:?}; add it to plot (references are drawn on plots)",
                    r.label, r.metric, self.plot
                ));
            }
            if !r.value.is_finite() || (is_fraction(&r.metric) && !(0.0..=1.0).contains(&r.value)) {
                return Err(format!(
                    "[[reference]] {:?}: value = {} is out of range; allowed: {}",
                    r.label,
                    r.value,
                    if is_fraction(&r.metric) {
                        "a fraction in [0, 1]"
                    } else {
                        "a finite number"
                    }
                ));
            }
            if r.label.trim().is_empty() {
                return Err("[[reference]]: label is empty; say what the line is".into());
            }
        }
        for pt in self.points() {
            self.validate_point(&pt)?;
        }
        Ok(())
    }

    /// Checks one combination of values (adversaries, churn, senders, round parameters).
    fn validate_point(&self, pt: &BTreeMap<String, f64>) -> Result<(), String> {
        let g = |k: &str| pt.get(k).copied().unwrap_or_else(|| default_of(k));
        let n = g("members") as usize;
        let (jammers, decoys) = (g("jammers") as usize, g("decoys") as usize);
        let tamper = g("relay_tamper") > 0.0;
        let at = |keys: &[&str]| describe_point(keys, pt);
        if jammers + decoys + 2 > n {
            return Err(format!(
                "[sweep] {}: too many adversaries; jammers + decoys must be at most members − 2 = {} (member 0 and one more member stay honest)",
                at(&["members", "jammers", "decoys"]),
                n.saturating_sub(2)
            ));
        }
        let crashers = (g("crash_fraction") * n as f64).round() as usize;
        let crashable = (n - 1 - jammers - decoys).min(n - 2);
        if crashers > crashable {
            return Err(format!(
                "[sweep] {}: {crashers} members would crash but at most {crashable} can (honest members other than member 0, leaving 2 running); allowed: crash_fraction ≤ {}",
                at(&["members", "crash_fraction", "jammers", "decoys"]),
                fmt(crashable as f64 / n as f64)
            ));
        }
        let honest = n - jammers - decoys;
        if let Some(k) = self.senders
            && k > honest
        {
            return Err(format!(
                "senders = {k} but {} leaves {honest} honest members; allowed: senders ≤ {honest}",
                at(&["members", "jammers", "decoys"])
            ));
        }
        let modeled = self.crypto == "modeled" || self.modeled_above.is_some_and(|m| n > m);
        if modeled && (jammers > 0 || decoys > 0 || tamper) {
            return Err(format!(
                "[sweep] {}: adversaries need real crypto (blame discloses real pads), but this point uses modeled crypto ({}); use crypto = \"real\" or raise modeled_above",
                at(&["members", "jammers", "decoys", "relay_tamper"]),
                if self.crypto == "modeled" {
                    "crypto = \"modeled\"".to_string()
                } else {
                    format!(
                        "members above modeled_above = {}",
                        self.modeled_above.unwrap_or(0)
                    )
                }
            ));
        }
        let params = point_params(pt).resolved(n);
        params
            .validate(n)
            .map_err(|e| format!("[sweep] {}: {e}", at(&["members", "cells", "slot_bytes"])))?;
        let max_bytes =
            (params.slot_bytes - SLOT_OVERHEAD) as usize * usize::from(params.max_fragments);
        if self.messages > 0 && self.message_bytes > max_bytes {
            return Err(format!(
                "message_bytes = {} with slot_bytes = {}: a message may have at most {max_bytes} bytes ({} fragments of {} bytes)",
                self.message_bytes,
                params.slot_bytes,
                params.max_fragments,
                params.slot_bytes - SLOT_OVERHEAD
            ));
        }
        Ok(())
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

/// The round parameters of a point (before defaults that depend on N are resolved).
fn point_params(pt: &BTreeMap<String, f64>) -> RoundParams {
    let g = |k: &str| pt.get(k).copied().unwrap_or_else(|| default_of(k));
    RoundParams {
        cells: g("cells") as u32,
        slot_bytes: g("slot_bytes") as u32,
        p_trap: g("p_trap"),
        p_cover: g("p_cover"),
        ..RoundParams::default()
    }
}

/// Result of one run: metric name → value (NaN when not applicable).
pub type Metrics = BTreeMap<String, f64>;

/// Runs one point with one seed.
pub fn run_point(s: &Scenario, pt: &BTreeMap<String, f64>, seed: u64) -> Result<Metrics, String> {
    let g = |k: &str| pt.get(k).copied().unwrap_or_else(|| default_of(k));
    let n = g("members") as usize;
    let params = point_params(pt);
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
        ..s.cost.unwrap_or_else(CostModel::calibrated)
    };
    net.set_modeled_crypto(modeled);
    net.record_event_times = true;
    let honest: Vec<usize> = (0..n)
        .filter(|i| !member_faults.contains_key(&(*i as u32)))
        .collect();
    let senders: Vec<usize> = honest
        .iter()
        .copied()
        .take(s.senders.unwrap_or(n))
        .collect();
    // Message → submission time (ms of virtual time).
    let mut submitted: BTreeMap<Vec<u8>, f64> = BTreeMap::new();
    let message = |i: usize, k: usize| {
        let mut m = format!("{i}/{k}/").into_bytes();
        m.resize(s.message_bytes.max(m.len()), b'.');
        m
    };
    if s.warmup_rounds == 0 {
        for &i in &senders {
            for k in 0..s.messages {
                let m = message(i, k);
                if let Some(mem) = net.members[i].as_mut() {
                    mem.submit(&m).map_err(|e| e.to_string())?;
                }
                submitted.insert(m, 0.0);
            }
        }
    }
    // With a warm-up: (time, sender) of each sender's submission, set when the warm-up ends.
    let mut schedule_submit: Vec<(crate::protocol::Time, usize)> = Vec::new();
    let mut submit_rng = ChaCha20Rng::from_seed(derive_seed(seed, "submit", 0));
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
    let mut consume = |net: &mut Network,
                       latencies: &mut Vec<f64>,
                       submitted: &BTreeMap<Vec<u8>, f64>| {
        let times = std::mem::take(&mut net.member_event_times);
        net.member_event_times = vec![Vec::new(); times.len()];
        for (i, ev) in net.member_events.iter_mut().enumerate() {
            for (e, at) in std::mem::take(ev).into_iter().zip(times[i].iter()) {
                // Latency is measured at the event itself, not when this loop reads it (one
                // round later, which overstated every latency by up to a round).
                let now = *at;
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
                            let t0 = submitted.get(&message).copied().unwrap_or(0.0);
                            latencies.push(now.as_micros() as f64 / 1000.0 - t0);
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
        let step = match schedule_submit.first() {
            // Up to the submission moment exactly: everything due before it is handled first
            // and nothing after (stepping past it would hand the message to the member after
            // an Open it should have caught, and date it at that later event).
            Some(&(at, _)) => net.advance_to(at, 4 * (20 * n as u64 + 50)),
            None => net.run_rounds(1),
        };
        let now = net.now();
        while schedule_submit.first().is_some_and(|&(at, _)| at <= now) {
            let (_, i) = schedule_submit.remove(0);
            for k in 0..s.messages {
                let m = message(i, k);
                if let Some(mem) = net.members[i].as_mut() {
                    mem.submit(&m).map_err(|e| e.to_string())?;
                }
                submitted.insert(m, now.as_micros() as f64 / 1000.0);
            }
        }
        // A convicted relay ends the run (its members stop): that is the outcome, not a stall.
        if net.relay_events.iter().any(
            |e| matches!(e, RelayEvent::Verdict { verdict, .. } if verdict.culprit == Some(Culprit::Relay)),
        ) {
            break;
        }
        if let Err(stuck) = step {
            return Err(format!(
                "stalled after {completed} of {} rounds (virtual time {:.3} s): no round completed in {} simulator steps (every attempt aborted: too many members down, or frames later than the {} ms commit deadline; check crash_fraction, loss, latency_ms and bandwidth_mbps)",
                s.rounds,
                stuck.at.as_micros() as f64 / 1e6,
                stuck.steps,
                tg.group.params().commit_ms
            ));
        }
        let before = completed;
        completed = net.completed_rounds();
        if s.warmup_rounds > 0 && before < s.warmup_rounds && completed >= s.warmup_rounds {
            // Each sender submits at a uniformly random moment of the next round's length.
            let round_us = net.now().as_micros() / completed.max(1) as u64;
            for &i in &senders {
                let off = submit_rng.next_u64() % round_us.max(1);
                schedule_submit.push((net.now().plus_micros(off), i));
            }
            schedule_submit.sort();
        }
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
        consume(&mut net, &mut latencies, &submitted);
    }
    consume(&mut net, &mut latencies, &submitted);
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

/// A parameter or metric of a map; NaN (not applicable) when absent.
fn value(map: &BTreeMap<String, f64>, key: &str) -> f64 {
    map.get(key).copied().unwrap_or(f64::NAN)
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
            let _ = write!(out, ",{}", fmt(value(&r.point, p)));
        }
        match &r.metrics {
            Ok(m) => {
                for k in METRICS {
                    let _ = write!(out, ",{}", fmt(value(m, k)));
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

/// A number for people: whole numbers exactly, others to 3 significant digits; "–" for NaN
/// (not applicable).
pub fn human(v: f64) -> String {
    if v.is_nan() {
        return "–".into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let a = v.abs();
    let decimals = if a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else if a >= 0.001 {
        (2 - a.log10().floor() as i32).max(0) as usize
    } else {
        return format!("{v:.2e}");
    };
    format!("{v:.decimals$}")
}

/// A key that sorts like the number (`f64::total_cmp`), for ordered maps.
fn ord_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

/// The parameters that tell points apart in tables and plots: the swept ones other than x, then
/// x.
fn columns(s: &Scenario) -> Vec<&str> {
    let mut keys: Vec<&str> = s.swept().into_iter().filter(|k| *k != s.x).collect();
    if s.sweep.contains_key(&s.x) {
        keys.push(&s.x);
    }
    keys
}

/// `summary.md`: the scenario, the command, and the mean of every metric per point, rows in
/// numeric order of the swept parameters (x last).
pub fn summary(s: &Scenario, rows: &[Row], command: &str) -> String {
    let mut out = format!(
        "# {}\n\n{}\n\nReproduce: `{}`\n\n",
        s.name,
        s.description.trim(),
        command
    );
    let keys = columns(s);
    let shown: Vec<&str> = METRICS
        .iter()
        .copied()
        .filter(|m| {
            rows.iter()
                .any(|r| r.metrics.as_ref().is_ok_and(|x| !value(x, m).is_nan()))
        })
        .collect();
    let any_failed = rows.iter().any(|r| r.metrics.is_err());
    let mut groups: BTreeMap<Vec<u64>, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let key = keys
            .iter()
            .map(|k| ord_key(r.point.get(*k).copied().unwrap_or(f64::NAN)))
            .collect();
        groups.entry(key).or_default().push(r);
    }
    let _ = writeln!(
        out,
        "Mean over the runs of each point; – = not applicable.\n"
    );
    let mut head: Vec<&str> = keys.clone();
    head.push("runs");
    if any_failed {
        head.push("failed");
    }
    head.extend(&shown);
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
    for rs in groups.values() {
        let p = &rs[0].point;
        let ok: Vec<&Metrics> = rs.iter().filter_map(|r| r.metrics.as_ref().ok()).collect();
        let mut cells: Vec<String> = keys
            .iter()
            .map(|k| fmt(p.get(*k).copied().unwrap_or(f64::NAN)))
            .collect();
        cells.push(ok.len().to_string());
        if any_failed {
            cells.push((rs.len() - ok.len()).to_string());
        }
        for m in &shown {
            let v: Vec<f64> = ok
                .iter()
                .map(|x| value(x, m))
                .filter(|v| !v.is_nan())
                .collect();
            cells.push(if v.is_empty() {
                "–".into()
            } else {
                human(v.iter().sum::<f64>() / v.len() as f64)
            });
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    let failed: Vec<&Row> = rows.iter().filter(|r| r.metrics.is_err()).collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\n{} of {} run(s) failed:\n", failed.len(), rows.len());
        for r in failed.iter().take(10) {
            if let Err(e) = &r.metrics {
                let _ = writeln!(
                    out,
                    "- run {} ({}, seed {}): {e}",
                    r.run,
                    describe_point(&keys, &r.point),
                    r.seed
                );
            }
        }
        if failed.len() > 10 {
            let _ = writeln!(out, "- … and {} more (see results.csv)", failed.len() - 10);
        }
    }
    out
}
