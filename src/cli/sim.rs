//! `dcnet sim`: run a scenario sweep on the deterministic simulator.
//!
//! Exit codes: 0 every run completed; 1 some run failed (stalled or error; each is summarised
//! on stderr and recorded in results.csv and summary.md); 2 invalid scenario, usage or I/O
//! error (nothing is run).

use crate::sim::scenario::{self, Row, Scenario};
use clap::Args;
use std::path::PathBuf;

/// Options of `dcnet sim`.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// The scenario file (see simulations/README.md).
    pub scenario: PathBuf,
    /// Output directory for results.csv, plots (SVG and PNG) and summary.md.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Master seed: the same seed gives byte-identical results.csv.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Repetitions per point, at least 1 (overrides the scenario's `runs`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// Print one JSON object (paths, run counts, failures) on stdout and nothing else; the
    /// summary is still written to summary.md.
    #[arg(long)]
    pub json: bool,
    /// Runs at a time, one per thread (0: one per core). Every run has its own seed and
    /// simulator, so results.csv is byte-identical whatever the number.
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Measure the CPU cost model's rates (ChaCha20, SHA3-256, Ed25519 sign and verify, the
    /// footprint's multiplication) on this machine first and use them instead of the reference
    /// machine's. They are printed and written to summary.md; results then depend on the
    /// machine and its load.
    #[arg(long)]
    pub calibrate: bool,
}

/// Runs every (point, repetition) on `jobs` threads; rows come back in run order.
fn run_all(
    s: &Scenario,
    points: &[std::collections::BTreeMap<String, f64>],
    seed: u64,
    jobs: usize,
    bar: &indicatif::ProgressBar,
) -> Vec<Row> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let total = points.len().saturating_mul(s.runs);
    let next = AtomicUsize::new(0);
    let swept = s.swept();
    let slots: Vec<std::sync::Mutex<Option<Row>>> =
        (0..total).map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, total.max(1)) {
            scope.spawn(|| {
                loop {
                    let run = next.fetch_add(1, Ordering::Relaxed);
                    if run >= total {
                        break;
                    }
                    let (k, r) = (run / s.runs, run % s.runs);
                    let pt = &points[k];
                    let seed = seed.wrapping_add(r as u64);
                    bar.set_message(scenario::describe_point(&swept, pt));
                    let metrics = scenario::run_point(s, pt, seed);
                    bar.inc(1);
                    if let Ok(mut slot) = slots[run].lock() {
                        *slot = Some(Row {
                            run,
                            seed,
                            point: pt.clone(),
                            metrics,
                        });
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// Runs the sweep; returns the exit code (0 ok, 1 a run failed, 2 invalid scenario or I/O).
pub fn run(a: &SimArgs) -> i32 {
    match inner(a) {
        Ok(0) => 0,
        Ok(_) => 1,
        Err(e) => {
            eprintln!("dcnet sim: {e}");
            2
        }
    }
}

/// Runs and writes everything; returns the number of failed runs, or why nothing could be run
/// or written (an unreadable or invalid scenario, an unwritable output).
fn inner(a: &SimArgs) -> Result<usize, String> {
    let file = a.scenario.display();
    let text = std::fs::read_to_string(&a.scenario)
        .map_err(|e| format!("cannot read the scenario {file}: {e}"))?;
    let mut s = Scenario::parse(&text).map_err(|e| format!("{file}: {e}"))?;
    if let Some(r) = a.runs {
        s.runs = usize::try_from(r).unwrap_or(usize::MAX);
    }
    let measured = a.calibrate.then(crate::sim::CostModel::measure);
    s.cost = measured;
    let rates = measured.map(|c| {
        format!(
            "cost model measured on this machine (--calibrate): ChaCha20 {:.0} MB/s, SHA3-256 \
             {:.0} MB/s, Ed25519 verify {:.1} µs, sign {:.1} µs, footprint {:.1} µs",
            c.chacha_bytes_per_us, c.sha3_bytes_per_us, c.verify_us, c.sign_us, c.mul_us
        )
    });
    if let (Some(r), false) = (&rates, a.json) {
        println!("{r}");
    }
    // Create the output directory first: an unwritable --out should not cost a whole sweep.
    std::fs::create_dir_all(&a.out).map_err(|e| {
        format!(
            "cannot create the output directory {}: {e}",
            a.out.display()
        )
    })?;
    let points = s.points();
    let total = points.len().saturating_mul(s.runs);
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let swept = s.swept();
    let jobs = match a.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        j => j,
    };
    let rows = run_all(&s, &points, a.seed, jobs, &bar);
    bar.finish_and_clear();
    let write = |name: &str, body: &str| {
        let p = a.out.join(name);
        std::fs::write(&p, body).map_err(|e| format!("cannot write {}: {e}", p.display()))
    };
    write("results.csv", &scenario::csv(&rows))?;
    let mut plots = Vec::new();
    for m in &s.plot {
        let name = format!("{m}.svg");
        let svg = scenario::svg(&s, &rows, m);
        write(&name, &svg)?;
        plots.push(a.out.join(&name));
        let png = a.out.join(format!("{m}.png"));
        scenario::png(&svg, &png)?;
        plots.push(png);
    }
    let command = format!(
        "dcnet sim {file} --seed {} --runs {} --out {}{}",
        a.seed,
        s.runs,
        a.out.display(),
        if a.calibrate { " --calibrate" } else { "" }
    );
    let mut summary = scenario::summary(&s, &rows, &command);
    if let Some(r) = &rates {
        summary.push_str(&format!("\n{r}.\n"));
    }
    write("summary.md", &summary)?;
    let failed: Vec<&Row> = rows.iter().filter(|r| r.metrics.is_err()).collect();
    if !failed.is_empty() {
        eprintln!(
            "dcnet sim: {} of {} runs failed (results.csv and summary.md have every error):",
            failed.len(),
            rows.len()
        );
        for r in failed.iter().take(5) {
            if let Err(e) = &r.metrics {
                eprintln!(
                    "  run {} ({}, seed {}): {e}\n    reproduce: dcnet sim {file} --seed {} --runs 1",
                    r.run,
                    scenario::describe_point(&swept, &r.point),
                    r.seed,
                    r.seed
                );
            }
        }
        if failed.len() > 5 {
            eprintln!("  … and {} more", failed.len() - 5);
        }
    }
    if a.json {
        let failures: Vec<serde_json::Value> = failed
            .iter()
            .map(|r| {
                serde_json::json!({
                    "run": r.run,
                    "seed": r.seed,
                    "point": r.point,
                    "error": r.metrics.as_ref().err(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "scenario": s.name,
                "runs": rows.len(),
                "failed": failed.len(),
                "results": a.out.join("results.csv"),
                "summary": a.out.join("summary.md"),
                "plots": plots,
                "failures": failures,
            })
        );
    } else {
        println!("{summary}");
        println!(
            "{} runs ({} failed); wrote {}: results.csv, summary.md and {} plot file(s)",
            rows.len(),
            failed.len(),
            a.out.display(),
            plots.len()
        );
    }
    Ok(failed.len())
}
