//! `dcnet sim`: run a scenario sweep on the deterministic simulator.

use crate::sim::scenario::{self, Row, Scenario};
use clap::Args;
use std::path::PathBuf;

/// Options of `dcnet sim`.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// The scenario file (see simulations/).
    pub scenario: PathBuf,
    /// Output directory for results.csv, plots (SVG and PNG) and summary.md.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Master seed: the same seed gives byte-identical results.csv.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Repetitions per point (overrides the scenario's `runs`).
    #[arg(long)]
    pub runs: Option<usize>,
    /// Print one JSON object (paths and run count) as the last line.
    #[arg(long)]
    pub json: bool,
}

/// Runs the sweep; returns the exit code.
pub fn run(a: &SimArgs) -> i32 {
    match inner(a) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dcnet sim: {e}");
            1
        }
    }
}

fn inner(a: &SimArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&a.scenario)
        .map_err(|e| format!("{}: {e}", a.scenario.display()))?;
    let mut s = Scenario::parse(&text).map_err(|e| format!("{}: {e}", a.scenario.display()))?;
    if let Some(r) = a.runs {
        s.runs = r.max(1);
    }
    let points = s.points();
    let total = points.len() * s.runs;
    let mut rows = Vec::with_capacity(total);
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for (k, pt) in points.iter().enumerate() {
        for r in 0..s.runs {
            let idx = k * s.runs + r;
            let seed = a.seed.wrapping_add(r as u64);
            let label: Vec<String> = s
                .sweep
                .iter()
                .filter(|(_, v)| v.len() > 1)
                .map(|(p, _)| format!("{p}={}", pt[p]))
                .collect();
            bar.set_message(label.join(" "));
            let metrics = scenario::run_point(&s, pt, seed);
            bar.inc(1);
            rows.push(Row {
                run: idx,
                seed,
                point: pt.clone(),
                metrics,
            });
        }
    }
    bar.finish_and_clear();
    for r in rows.iter().filter(|r| r.metrics.is_err()) {
        if let Err(e) = &r.metrics {
            eprintln!(
                "run {} failed: {e}\n  reproduce: dcnet sim {} --seed {} --runs 1",
                r.run,
                a.scenario.display(),
                r.seed
            );
        }
    }
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let write = |name: &str, body: &str| {
        let p = a.out.join(name);
        std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("results.csv", &scenario::csv(&rows))?;
    let mut plots = Vec::new();
    for m in &s.plot {
        let name = format!("{}.svg", m);
        let svg = scenario::svg(&s, &rows, m);
        write(&name, &svg)?;
        plots.push(a.out.join(&name));
        let png = a.out.join(format!("{m}.png"));
        scenario::png(&svg, &png)?;
        plots.push(png);
    }
    let command = format!(
        "dcnet sim {} --seed {} --runs {} --out {}",
        a.scenario.display(),
        a.seed,
        s.runs,
        a.out.display()
    );
    let summary = scenario::summary(&s, &rows, &command);
    write("summary.md", &summary)?;
    println!("{summary}");
    println!(
        "{} runs; wrote {}/results.csv, summary.md and {} plot(s)",
        rows.len(),
        a.out.display(),
        plots.len()
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "runs": rows.len(),
                "failed": rows.iter().filter(|r| r.metrics.is_err()).count(),
                "results": a.out.join("results.csv"),
                "plots": plots,
            })
        );
    }
    Ok(())
}
