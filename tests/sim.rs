//! The scenario simulator: reproducibility, the reservation curve, modeled vs real crypto,
//! validation of scenario files (messages and exit codes of `dcnet sim`), summary.md order and
//! what the plots contain.

use dcnet::sim::scenario::{self, Metrics, Row, Scenario};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

fn scenario(text: &str) -> Scenario {
    Scenario::parse(text).expect("valid scenario")
}

fn rows(s: &Scenario, seed: u64) -> Vec<Row> {
    let mut out = Vec::new();
    for (k, pt) in s.points().into_iter().enumerate() {
        for r in 0..s.runs {
            let metrics = scenario::run_point(s, &pt, seed + r as u64);
            out.push(Row {
                run: k * s.runs + r,
                seed: seed + r as u64,
                point: pt.clone(),
                metrics,
            });
        }
    }
    out
}

const SMALL: &str = r#"
name = "small"
rounds = 40
messages = 2
runs = 2
x = "cells"
plot = ["reservation_success"]
[sweep]
members = [4]
cells = [4, 16]
slot_bytes = [96]
latency_ms = [1.0]
"#;

#[test]
fn same_seed_gives_byte_identical_csv() {
    let s = scenario(SMALL);
    let a = scenario::csv(&rows(&s, 5));
    let b = scenario::csv(&rows(&s, 5));
    assert_eq!(a, b);
    assert_ne!(a, scenario::csv(&rows(&s, 6)), "the seed matters");
    assert_eq!(a.lines().count(), 1 + 4, "header + one row per run");
    assert!(a.lines().next().unwrap().contains("reservation_success"));
    let svg = scenario::svg(&s, &rows(&s, 5), "reservation_success");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"));
    let png = std::env::temp_dir().join(format!("dcnet-plot-{}.png", std::process::id()));
    scenario::png(&svg, &png).unwrap();
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let _ = std::fs::remove_file(&png);
}

#[test]
fn reservation_success_falls_within_its_confidence_interval() {
    let s = scenario(
        r#"
name = "res"
rounds = 80
messages = 0
x = "cells"
[sweep]
members = [8]
cells = [8, 16, 32]
slot_bytes = [64]
"#,
    );
    for r in rows(&s, 3) {
        let m = r.metrics.expect("run ok");
        let n = (m["rounds"] * 8.0).max(1.0);
        let (got, p) = (m["reservation_success"], m["predicted_success"]);
        let sd = (p * (1.0 - p) / n).sqrt();
        println!("cells {}: {got:.3} vs {p:.3} ± {sd:.3}", r.point["cells"]);
        assert!(
            (got - p).abs() < 4.0 * sd,
            "cells {}: {got} vs {p}",
            r.point["cells"]
        );
    }
}

#[test]
fn modeled_and_real_crypto_give_the_same_outcomes() {
    let real = scenario(SMALL);
    let mut modeled = real.clone();
    modeled.crypto = "modeled".into();
    let (a, b) = (rows(&real, 9), rows(&modeled, 9));
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x.metrics.as_ref().unwrap(), y.metrics.as_ref().unwrap());
        for k in [
            "rounds",
            "collisions",
            "delivered_fraction",
            "median_latency_ms",
            "virtual_s",
        ] {
            assert_eq!(x[k].to_bits(), y[k].to_bits(), "{k}: {} vs {}", x[k], y[k]);
        }
        assert_eq!(x["delivered_fraction"], 1.0);
    }
}

#[test]
fn adversaries_refuse_modeled_crypto() {
    let mut s = scenario(
        r#"
name = "x"
rounds = 5
x = "members"
[sweep]
members = [4, 5]
jammers = [1]
"#,
    );
    s.crypto = "modeled".into();
    let r = scenario::run_point(&s, &s.points()[0], 1);
    assert!(r.is_err());
    let err = s.validate().expect_err("validation refuses it too");
    assert!(err.contains("adversaries need real crypto"), "{err}");
}

#[test]
fn jammer_is_convicted_in_the_simulator() {
    let s = scenario(
        r#"
name = "j"
rounds = 60
messages = 20
x = "p_trap"
[sweep]
members = [6]
p_trap = [0.4, 0.5]
jammers = [1]
slot_bytes = [96]
"#,
    );
    for r in rows(&s, 2) {
        let m = r.metrics.unwrap();
        assert_eq!(m["convicted"], 1.0);
        assert_eq!(m["honest_convicted"], 0.0);
        assert!(m["disruptions"] >= 1.0);
    }
}

/// A fresh directory under the system's temp dir for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dcnet-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Runs `dcnet sim` on a scenario text, with --out inside `dir`.
fn dcnet_sim(dir: &std::path::Path, text: &str, extra: &[&str]) -> Output {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, text).expect("write scenario");
    Command::new(env!("CARGO_BIN_EXE_dcnet"))
        .arg("sim")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .args(extra)
        .output()
        .expect("run dcnet")
}

const HEAD: &str = "name = \"v\"\nrounds = 3\n";

/// A sweep run on one thread and on three writes the same results.csv, byte for byte.
#[test]
fn parallel_sweeps_write_the_same_csv_as_serial_ones() {
    let dir = temp_dir("jobs");
    let mut csv = Vec::new();
    for jobs in ["1", "3"] {
        let out = dcnet_sim(&dir, SMALL, &["--seed", "9", "--jobs", jobs]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        csv.push(std::fs::read(dir.join("out/results.csv")).expect("results.csv"));
    }
    assert_eq!(csv[0], csv[1], "--jobs changed results.csv");
    assert_eq!(String::from_utf8_lossy(&csv[0]).lines().count(), 1 + 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_scenarios_are_refused_with_exit_2_and_a_message_naming_the_fix() {
    let dir = temp_dir("invalid");
    let cases: &[(&str, &[&str])] = &[
        (
            "x = \"cells\"\n[sweep]\ncells = [4]\nmembers = [4, 8]\n",
            &[
                "x = \"cells\" is swept over 1 value",
                "at least 2",
                "swept: members",
            ],
        ),
        (
            "x = \"cells\"\n[sweep]\nmembers = [4]\n",
            &[
                "x = \"cells\" is not swept",
                "(at least 2 values) to [sweep]",
                "none is swept yet",
            ],
        ),
        (
            "x = \"nope\"\n[sweep]\nmembers = [4, 8]\n",
            &["x = \"nope\": not a parameter; allowed: members, cells"],
        ),
        (
            "x = \"loss\"\n[sweep]\nloss = [0, 1.5]\n",
            &["[sweep] loss = 1.5: out of range; allowed: a probability in [0, 1]"],
        ),
        (
            "x = \"p_trap\"\n[sweep]\np_trap = [-0.1, 0.5]\n",
            &["p_trap = -0.1", "a probability in [0, 1]"],
        ),
        (
            "x = \"p_cover\"\n[sweep]\np_cover = [0.5, 2]\n",
            &["p_cover = 2", "a probability in [0, 1]"],
        ),
        (
            "x = \"crash_fraction\"\n[sweep]\nmembers = [8]\ncrash_fraction = [0, 1]\n",
            &[
                "crash_fraction = 1",
                "at most 6 can",
                "crash_fraction ≤ 0.75",
            ],
        ),
        (
            "x = \"members\"\n[sweep]\nmembers = [8, 10]\njammers = [20]\n",
            &[
                "members = 8, jammers = 20",
                "too many adversaries",
                "members − 2 = 6",
            ],
        ),
        (
            "x = \"members\"\n[sweep]\nmembers = [4.5, 8]\n",
            &["members = 4.5", "a whole number from 2 to 1024"],
        ),
        (
            "x = \"members\"\n[sweep]\nmembers = [1, 8]\n",
            &["members = 1", "a whole number from 2"],
        ),
        (
            "x = \"members\"\nfoo = 1\n[sweep]\nmembers = [4, 8]\n",
            &["unknown field `foo`", "expected one of", "`sweep`"],
        ),
        (
            "x = \"members\"\n[sweep]\nmembers = [4, 8]\nfoo = [1]\n",
            &["[sweep] foo: unknown parameter; allowed: members, cells"],
        ),
        (
            "x = \"members\"\nplot = [\"speed\"]\n[sweep]\nmembers = [4, 8]\n",
            &["plot: unknown metric \"speed\"; allowed: rounds"],
        ),
        (
            "x = \"members\"\nplot = [\"round_ms\"]\n[sweep]\nmembers = [4, 8]\n[[reference]]\nmetric = \"median_latency_ms\"\nvalue = 86\nlabel = \"PriFi\"\n",
            &[
                "[[reference]] \"PriFi\"",
                "median_latency_ms",
                "not in plot",
            ],
        ),
        (
            "x = \"members\"\nplot = [\"delivered_fraction\"]\n[sweep]\nmembers = [4, 8]\n[[reference]]\nmetric = \"delivered_fraction\"\nvalue = 2\nlabel = \"r\"\n",
            &["value = 2 is out of range; allowed: a fraction in [0, 1]"],
        ),
        (
            "x = \"members\"\n[[reference]]\nmetric = \"round_ms\"\nvalue = 1\nlabel = \"r\"\nwhere = 3\n[sweep]\nmembers = [4, 8]\n",
            &["unknown field `where`", "`metric`, `value`, `label`"],
        ),
        (
            "x = \"members\"\noverlay = \"trap\"\n[sweep]\nmembers = [4, 8]\n",
            &["overlay = \"trap\"", "add \"disruptions\" to plot"],
        ),
        (
            "x = \"members\"\ncrypto = \"modeled\"\n[sweep]\nmembers = [4, 8]\ndecoys = [1]\n",
            &["adversaries need real crypto", "crypto = \"modeled\""],
        ),
        (
            "x = \"members\"\nsenders = 5\nmessages = 1\n[sweep]\nmembers = [4, 8]\n",
            &["senders = 5", "members = 4", "senders ≤ 4"],
        ),
        (
            "x = \"cells\"\n[sweep]\ncells = [4, 4]\n",
            &["[sweep] cells lists 4 twice"],
        ),
    ];
    for (body, wanted) in cases {
        let text = format!("{HEAD}{body}");
        let out = dcnet_sim(&dir, &text, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}\nstderr: {err}");
        assert!(out.stdout.is_empty(), "{body}: nothing on stdout");
        for w in *wanted {
            assert!(err.contains(w), "{body}\nwanted {w:?} in:\n{err}");
        }
        assert!(
            !dir.join("out").join("results.csv").exists(),
            "{body}: nothing is run"
        );
    }
    let zero = format!("{HEAD}x = \"cells\"\n[sweep]\ncells = [4, 8]\n")
        .replace("rounds = 3", "rounds = 0");
    let out = dcnet_sim(&dir, &zero, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rounds = 0"));
    let ok =
        format!("{HEAD}x = \"cells\"\n[sweep]\nmembers = [3]\ncells = [4, 8]\nslot_bytes = [64]\n");
    let out = dcnet_sim(&dir, &ok, &["--runs", "0"]);
    assert_eq!(out.status.code(), Some(2), "--runs 0 is a usage error");
    let out = Command::new(env!("CARGO_BIN_EXE_dcnet"))
        .args(["sim", "/nonexistent/scenario.toml"])
        .output()
        .expect("run dcnet");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the scenario"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_failed_run_exits_1_with_a_summary_on_stderr_and_json_stays_pure() {
    // With every frame lost 16 times on 100 ms links, frames arrive after the commit deadline
    // and every attempt aborts: the run stalls (deterministically, in a few hundred steps).
    let dir = temp_dir("failed");
    let text = format!(
        "{HEAD}x = \"loss\"\nplot = [\"round_ms\"]\n[sweep]\nmembers = [3]\nloss = [0, 1]\nlatency_ms = [100]\nslot_bytes = [64]\n"
    );
    let out = dcnet_sim(&dir, &text, &["--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("1 of 2 runs failed"), "{err}");
    assert!(
        err.contains("loss = 1, seed 1): stalled after 0 of 3 rounds"),
        "{err}"
    );
    assert!(err.contains("reproduce: dcnet sim"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("stdout is one JSON value");
    assert_eq!(v["runs"], 2);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["failures"][0]["point"]["loss"], 1.0);
    let summary = std::fs::read_to_string(dir.join("out").join("summary.md")).expect("summary");
    assert!(summary.contains("1 of 2 run(s) failed"), "{summary}");
    let csv = std::fs::read_to_string(dir.join("out").join("results.csv")).expect("csv");
    assert!(csv.contains("stalled after 0 of 3 rounds"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rows with made-up metrics, for the formatting of tables and plots without running anything.
fn made_up(s: &Scenario, metric: impl Fn(&BTreeMap<String, f64>, usize) -> f64) -> Vec<Row> {
    let mut rows = Vec::new();
    for (k, pt) in s.points().into_iter().enumerate() {
        for r in 0..s.runs {
            let mut m = Metrics::new();
            for name in scenario::METRICS {
                m.insert(name.to_string(), f64::NAN);
            }
            m.insert("round_ms".into(), metric(&pt, r));
            m.insert("reservation_success".into(), metric(&pt, r).min(1.0));
            rows.push(Row {
                run: k * s.runs + r,
                seed: r as u64,
                point: pt.clone(),
                metrics: Ok(m),
            });
        }
    }
    rows
}

#[test]
fn summary_rows_are_in_numeric_order() {
    let s = scenario(
        r#"
name = "order"
rounds = 1
x = "p_trap"
plot = ["round_ms"]
[sweep]
members = [100, 9, 10]
p_trap = [0.3, 0.25, 0.05, 0.1]
"#,
    );
    let rows = made_up(&s, |pt, _| pt["members"] * 1000.0 + pt["p_trap"] * 0.001);
    let md = scenario::summary(&s, &rows, "dcnet sim order.toml");
    let order: Vec<(String, String)> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| members"))
        .map(|l| {
            let c: Vec<&str> = l.split(" | ").collect();
            (c[0].trim_start_matches("| ").to_string(), c[1].to_string())
        })
        .collect();
    let want: Vec<(String, String)> = ["9", "10", "100"]
        .iter()
        .flat_map(|m| {
            ["0.05", "0.1", "0.25", "0.3"]
                .iter()
                .map(|p| (m.to_string(), p.to_string()))
        })
        .collect();
    assert_eq!(order, want, "{md}");
    assert!(md.contains("| members | p_trap | runs |"), "{md}");
    // Three significant digits, whole numbers exact.
    assert_eq!(scenario::human(100_000.0), "100000");
    assert_eq!(scenario::human(0.38957), "0.390");
    assert_eq!(scenario::human(4.2612), "4.26");
    assert_eq!(scenario::human(1234.56), "1235");
    assert_eq!(scenario::human(0.012345), "0.0123");
}

#[test]
fn plots_have_axis_labels_legend_log_axis_error_bars_and_reference_lines() {
    let s = scenario(
        r#"
name = "plot <test>"
rounds = 4
runs = 2
x = "cells"
plot = ["reservation_success", "round_ms"]
overlay = "reservation"
[sweep]
members = [3, 4]
cells = [4, 8, 16]
slot_bytes = [64]

[[reference]]
metric = "round_ms"
value = 86
label = "PriFi & co"
"#,
    );
    let rows = rows(&s, 1);
    assert!(rows.iter().all(|r| r.metrics.is_ok()));
    let svg = scenario::svg(&s, &rows, "reservation_success");
    assert!(svg.contains("plot &lt;test&gt;"), "titles are escaped");
    assert!(
        svg.contains(">reservation cells m (log scale)</text>"),
        "x label"
    );
    assert!(svg.contains("class=\"y-label\""));
    assert!(
        svg.contains(">reservation success (fraction)</text>"),
        "y label"
    );
    assert!(svg.contains("data-scale=\"log2\""));
    // Log ticks at the swept powers of two, equally spaced.
    let tick_x = |tick: &str| -> f64 {
        svg.lines()
            .find(|l| l.contains("class=\"tick\"") && l.ends_with(&format!(">{tick}</text>")))
            .and_then(|l| l.split("x=\"").nth(1)?.split('"').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no x tick {tick} in\n{svg}"))
    };
    let (a, b, c) = (tick_x("4"), tick_x("8"), tick_x("16"));
    assert!(a < b && ((b - a) - (c - b)).abs() < 0.2, "{a} {b} {c}");
    // A fraction is plotted on [0, 1]: the top tick is 1.0, none above.
    assert!(svg.contains(">1.0</text>") && !svg.contains(">1.2</text>"));
    // One colour per series; its analytic curve dashed in the same colour.
    let stroke = |class: &str| -> Vec<String> {
        svg.lines()
            .filter(|l| l.contains(&format!("class=\"{class}\"")))
            .filter_map(|l| {
                l.split("stroke=\"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(String::from)
            })
            .collect()
    };
    let (measured, analytic) = (stroke("measured"), stroke("analytic"));
    assert_eq!(measured.len(), 2);
    assert_ne!(measured[0], measured[1]);
    assert_eq!(measured, analytic);
    assert!(svg.contains("class=\"legend\""));
    assert!(svg.contains(">members = 3</text>") && svg.contains(">members = 4</text>"));
    assert!(svg.contains("analytic (1 − 1/m)^(k−1)"));
    assert!(
        svg.contains("class=\"error-bars\""),
        "runs = 2 draws min–max bars"
    );
    assert!(svg.contains("mean of 2 runs; bars: min–max"));
    assert!(
        !svg.contains("class=\"reference\""),
        "the reference is for round_ms"
    );

    let svg = scenario::svg(&s, &rows, "round_ms");
    assert!(svg.contains(">time per round (ms)</text>"));
    assert!(svg.contains("class=\"reference\""));
    assert!(
        svg.contains("PriFi &amp; co: 86 ms"),
        "reference label, escaped, with its value"
    );
    assert!(
        !svg.contains("class=\"analytic\""),
        "the overlay is for reservation_success"
    );
    let png = std::env::temp_dir().join(format!("dcnet-plot2-{}.png", std::process::id()));
    scenario::png(&svg, &png).expect("render");
    let _ = std::fs::remove_file(&png);

    // Values that are not powers of two get a linear axis with round ticks.
    let lin = scenario(
        "name = \"lin\"\nrounds = 1\nx = \"p_trap\"\nplot = [\"round_ms\"]\n[sweep]\np_trap = [0.1, 0.2, 0.35]\n",
    );
    let svg = scenario::svg(
        &lin,
        &made_up(&lin, |pt, _| pt["p_trap"] * 10.0),
        "round_ms",
    );
    assert!(svg.contains("data-scale=\"linear\""));
    assert!(svg.contains(">trap probability p_trap</text>"));
    assert!(
        svg.contains(">0.30</text>") || svg.contains(">0.3</text>"),
        "{svg}"
    );
    assert!(!svg.contains("class=\"error-bars\""), "one run: no bars");
}

/// `--calibrate` measures the cost rates here, prints them, writes them to summary.md and runs
/// with them: the scenario still completes (the rates only change simulated CPU time).
#[test]
fn calibrate_measures_the_rates_here_and_says_so() {
    let dir = temp_dir("calibrate");
    let out = dcnet_sim(&dir, SMALL, &["--seed", "9", "--calibrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("cost model measured on this machine"))
        .unwrap_or_else(|| panic!("no rates line in {stdout}"));
    // Every rate is a positive number.
    for unit in ["MB/s,", "µs,", "µs"] {
        assert!(line.contains(unit), "{line}");
    }
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(',').parse::<f64>().ok())
        .collect();
    assert_eq!(numbers.len(), 5, "{line}");
    assert!(numbers.iter().all(|&x| x.is_finite() && x > 0.0), "{line}");
    let summary = std::fs::read_to_string(dir.join("out/summary.md")).expect("summary.md");
    assert!(
        summary.contains("--calibrate") && summary.contains(line),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
