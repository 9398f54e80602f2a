//! `dcnet bench`: rounds per second and message latency over real QUIC on 127.0.0.1.
//!
//! For each (N, L) a relay and N members run in this process. Member 0 keeps one message in
//! flight at all times (submitting the next when the previous is delivered back to it); the
//! latency of a message is submit → delivery at member 1. Rounds/s counts the relay's completed
//! rounds over the measured window, after a warm-up.

use crate::net::member::MemberNote;
use crate::params::RoundParams;
use crate::protocol::{MemberEvent, RelayEvent};
use crate::sim::TestGroup;
use clap::Args;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Options of `dcnet bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Group sizes.
    #[arg(long, value_delimiter = ',', default_values_t = vec![5usize, 10, 25])]
    pub members: Vec<usize>,
    /// Round vector lengths in bytes (approximate: slots are sized to fit).
    #[arg(long, value_delimiter = ',', default_values_t = vec![1024usize, 65536])]
    pub lengths: Vec<usize>,
    /// Measured seconds per configuration (after a 1 s warm-up).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Print one JSON object (all results) as the last line.
    #[arg(long)]
    pub json: bool,
    /// Instead: start a relay and the first --members count of `dcnet member` processes, let
    /// the group idle at --round-ms for --seconds, and report each process's CPU (Linux).
    #[arg(long, conflicts_with = "soak")]
    pub idle: bool,
    /// Instead: run a group of processes (the first --members count) as fast as it goes for
    /// this many rounds, member 0 sending a line every 50 ms, and report the resident memory
    /// of every process from round 500 to the end (Linux).
    #[arg(long, value_name = "ROUNDS")]
    pub soak: Option<u64>,
    /// Round period of the --idle group, in ms.
    #[arg(long, default_value_t = 500)]
    pub round_ms: u64,
}

/// Runs the benchmark; returns the exit code.
pub fn run(a: &BenchArgs) -> i32 {
    let n = a.members.first().copied().unwrap_or(5);
    if a.idle || a.soak.is_some() {
        if n < 2 {
            eprintln!("dcnet bench: a group needs at least 2 members (--members)");
            return 2;
        }
        let r = match a.soak {
            Some(rounds) => super::bench_proc::soak(n, rounds, a.json),
            None => super::bench_proc::idle(n, a.round_ms, a.seconds, a.json),
        };
        return match r {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("dcnet bench: {e}");
                1
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("dcnet bench: {e}");
            return 1;
        }
    };
    let mut results = Vec::new();
    println!(
        "{:>4} {:>8} {:>10} {:>10} {:>14} {:>14}",
        "N", "L", "slot", "rounds/s", "median lat ms", "messages"
    );
    for &n in &a.members {
        for &l in &a.lengths {
            match rt.block_on(one(n, l, a.seconds)) {
                Ok(r) => {
                    println!(
                        "{:>4} {:>8} {:>10} {:>10.0} {:>14.2} {:>14}",
                        n, r.len, r.slot_bytes, r.rounds_per_s, r.median_ms, r.messages
                    );
                    results.push(serde_json::json!({
                        "members": n, "vector_bytes": r.len, "slot_bytes": r.slot_bytes,
                        "rounds_per_s": r.rounds_per_s, "median_latency_ms": r.median_ms,
                        "messages": r.messages,
                    }));
                }
                Err(e) => {
                    eprintln!("dcnet bench: N={n} L={l}: {e}");
                    return 1;
                }
            }
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({ "transport": "quic", "results": results })
        );
    }
    0
}

struct Result1 {
    len: usize,
    slot_bytes: u32,
    rounds_per_s: f64,
    median_ms: f64,
    messages: usize,
}

async fn one(n: usize, l: usize, seconds: f64) -> Result<Result1, String> {
    let cells = 2 * n as u32;
    let slot_bytes = ((l.saturating_sub(cells as usize * 8)) / n).max(64) as u32;
    let p = RoundParams {
        cells,
        slots: n as u32,
        slot_bytes,
        ..RoundParams::default()
    };
    let tg = TestGroup::new(n, p, 7).map_err(|e| e.to_string())?;
    let len = tg.group.params().vector_len();
    let (mut relay, mut members) =
        crate::net::spawn_local_group(&tg, 7, vec![], &BTreeMap::new()).await?;
    let mut completed = 0usize;
    let mut sent_at: BTreeMap<Vec<u8>, Instant> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut counter = 0u64;
    let mut next_msg = || {
        counter += 1;
        format!("bench message {counter}").into_bytes()
    };
    let start = Instant::now();
    let warm = start + Duration::from_secs(1);
    let end = warm + Duration::from_secs_f64(seconds);
    let mut at_warm = None;
    let first = next_msg();
    sent_at.insert(first.clone(), Instant::now());
    members[0]
        .submit
        .send(first.into())
        .await
        .map_err(|e| e.to_string())?;
    while Instant::now() < end {
        tokio::select! {
            e = relay.events.recv() => {
                if let Some(RelayEvent::Completed { .. }) = e {
                    completed += 1;
                }
            }
            note = members[1].notes.recv() => {
                if let Some(MemberNote::Event(MemberEvent::Delivered { message, .. })) = note {
                    if let Some(t0) = sent_at.remove(&message) {
                        if Instant::now() > warm {
                            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                        }
                        let m = next_msg();
                        sent_at.insert(m.clone(), Instant::now());
                        members[0].submit.send(m.into()).await.map_err(|e| e.to_string())?;
                    }
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(end)) => {}
        }
        if at_warm.is_none() && Instant::now() >= warm {
            at_warm = Some(completed);
        }
        // Keep the other members' queues drained.
        for m in members.iter_mut().skip(2) {
            while m.notes.try_recv().is_ok() {}
        }
        while members[0].notes.try_recv().is_ok() {}
    }
    let measured = completed - at_warm.unwrap_or(0);
    for m in members {
        m.shutdown().await;
    }
    relay.shutdown().await;
    latencies.sort_by(|a, b| a.total_cmp(b));
    let median_ms = latencies
        .get(latencies.len() / 2)
        .copied()
        .unwrap_or(f64::NAN);
    Ok(Result1 {
        len,
        slot_bytes,
        rounds_per_s: measured as f64 / seconds,
        median_ms,
        messages: latencies.len(),
    })
}
