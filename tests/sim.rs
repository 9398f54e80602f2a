//! The scenario simulator: reproducibility, the reservation curve, modeled vs real crypto.

use dcnet::sim::scenario::{self, Row, Scenario};

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
fn adversaries_refuse_modeled_crypto_and_bad_scenarios_are_refused() {
    let s = scenario(
        r#"
name = "x"
rounds = 5
crypto = "modeled"
x = "members"
[sweep]
jammers = [1]
"#,
    );
    let r = scenario::run_point(&s, &s.points()[0], 1);
    assert!(r.is_err());
    assert!(Scenario::parse("name = \"x\"\nrounds = 5\nx = \"nope\"\n[sweep]\n").is_err());
    assert!(
        Scenario::parse("name = \"x\"\nrounds = 5\nx = \"cells\"\n[sweep]\nfoo = [1]\n").is_err()
    );
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
p_trap = [0.5]
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
