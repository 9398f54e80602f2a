//! `dcnet bench`: rounds per second, message latency percentiles and CPU per round over real
//! QUIC on 127.0.0.1, directly or through an in-process delay line (`--delay-ms`, WAN mode).
//!
//! For each (N, L) a relay and N members run in this process. Member 0 keeps one message in
//! flight (submitting the next at a random moment of the round after the previous one was
//! delivered to member 1); the latency of a message is submit → delivery at member 1.
//! Rounds/s counts the relay's completed rounds over the measured window, after a warm-up.
//! `--goodput` saturates every member instead and reports delivered payload per second beside
//! the slot capacity and this machine's PRG and QUIC bounds, each measured here first.

use crate::net::member::MemberNote;
use crate::params::RoundParams;
use crate::protocol::{MemberEvent, RelayEvent};
use crate::sim::TestGroup;
use clap::Args;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
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
    /// WAN mode: every member reaches the relay through an in-process UDP delay line of this
    /// many ms each way (loopback; large buffers, nothing dropped by the line). 0: direct.
    #[arg(long, default_value_t = 0.0)]
    pub delay_ms: f64,
    /// Instead of latency: every member keeps two slot-sized messages queued, and the bench
    /// reports goodput (payload bytes delivered per second at member 1) beside the slots'
    /// capacity at the measured round rate and the PRG and QUIC bounds of this machine.
    #[arg(long)]
    pub goodput: bool,
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
    if !(a.delay_ms >= 0.0 && a.delay_ms <= 10_000.0) {
        eprintln!("dcnet bench: --delay-ms {}: give 0 … 10000 ms", a.delay_ms);
        return 2;
    }
    let delay = (a.delay_ms > 0.0).then(|| Duration::from_secs_f64(a.delay_ms / 1000.0));
    let mut results = Vec::new();
    if let Some(d) = delay {
        println!(
            "WAN mode: {:.1} ms one way between every member and the relay (in-process delay line)",
            d.as_secs_f64() * 1000.0
        );
    }
    if a.goodput {
        return goodput(&rt, a, delay);
    }
    println!(
        "{:>4} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>12}",
        "N", "L", "slot", "rounds/s", "p50 ms", "p90 ms", "p99 ms", "messages", "CPU ms/round"
    );
    for &n in &a.members {
        for &l in &a.lengths {
            match rt.block_on(one(n, l, a.seconds, delay, false)) {
                Ok(r) => {
                    println!(
                        "{:>4} {:>8} {:>6} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8} {:>12.2}",
                        n,
                        r.len,
                        r.slot_bytes,
                        r.rounds_per_s,
                        r.p50_ms,
                        r.p90_ms,
                        r.p99_ms,
                        r.messages,
                        r.cpu_ms_per_round
                    );
                    results.push(serde_json::json!({
                        "members": n, "vector_bytes": r.len, "slot_bytes": r.slot_bytes,
                        "rounds_per_s": r.rounds_per_s, "median_latency_ms": r.p50_ms,
                        "p90_latency_ms": r.p90_ms, "p99_latency_ms": r.p99_ms,
                        "messages": r.messages, "cpu_ms_per_round_all_parties": r.cpu_ms_per_round,
                        "one_way_delay_ms": a.delay_ms, "latencies_ms": r.latencies,
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
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    messages: usize,
    /// CPU time of this whole process (relay, every member, QUIC, the delay line) per
    /// completed round over the measured window.
    cpu_ms_per_round: f64,
    /// Slots per round and payload bytes per slot.
    slots: u32,
    capacity: usize,
    /// Payload bytes delivered at member 1 per measured second (goodput mode; 0 otherwise).
    goodput: f64,
    /// Every measured message latency (ms), sorted (latency mode).
    latencies: Vec<f64>,
}

/// CPU time this process has used, all threads (Linux; 0 where /proc cannot be read).
fn own_cpu() -> Duration {
    super::bench_proc::cpu_time(std::process::id()).unwrap_or(Duration::ZERO)
}

/// The q-quantile (0 … 1) of sorted values, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// One configuration. `saturate`: every member keeps [`QUEUED`] slot-sized messages queued
/// (goodput mode) instead of member 0 keeping one message in flight (latency mode).
async fn one(
    n: usize,
    l: usize,
    seconds: f64,
    delay: Option<Duration>,
    saturate: bool,
) -> Result<Result1, String> {
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
    let (mut relay, mut members, proxy) =
        crate::net::spawn_local_group_delayed(&tg, 7, vec![], &BTreeMap::new(), delay).await?;
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
    let capacity = crate::protocol::slots::Layout::new(tg.group.params()).capacity();
    // Goodput mode: sender i's messages start with "g{i}:" and fill one slot exactly.
    let filler = |i: usize, k: u64| {
        let mut m = format!("g{i}:{k}:").into_bytes();
        m.resize(capacity.max(m.len()), b'.');
        m
    };
    let mut outstanding = vec![0usize; n];
    let mut delivered_bytes = 0usize;
    if saturate {
        for (i, m) in members.iter().enumerate() {
            for k in 0..QUEUED {
                m.submit
                    .send(filler(i, k as u64).into())
                    .await
                    .map_err(|e| e.to_string())?;
                outstanding[i] += 1;
            }
        }
    } else {
        let first = next_msg();
        sent_at.insert(first.clone(), Instant::now());
        members[0]
            .submit
            .send(first.into())
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut refills = 0u64;
    // The next message goes in at a uniformly random moment of the round after the previous
    // one was delivered (steady state, not aligned with any Open: submitting at the delivery
    // itself would always just miss the next Open).
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut last_completed: Option<Instant> = None;
    let mut round_est = Duration::from_millis(10);
    let mut next_at: Option<Instant> = None;
    while Instant::now() < end {
        let wake = next_at.unwrap_or(end).min(end);
        tokio::select! {
            e = relay.events.recv() => {
                if let Some(RelayEvent::Completed { .. }) = e {
                    completed += 1;
                    let now = Instant::now();
                    if let Some(t) = last_completed {
                        round_est = now - t;
                    }
                    last_completed = Some(now);
                }
            }
            note = members[1].notes.recv() => {
                if let Some(MemberNote::Event(MemberEvent::Delivered { message, .. })) = note {
                    if saturate {
                        // Whose message it was, from its "g{i}:" prefix; refill that sender.
                        let sender = message
                            .strip_prefix(b"g")
                            .and_then(|m| m.split(|&b| b == b':').next())
                            .and_then(|d| std::str::from_utf8(d).ok()?.parse::<usize>().ok())
                            .filter(|&i| i < n);
                        if let Some(i) = sender {
                            if Instant::now() > warm {
                                delivered_bytes += message.len();
                            }
                            outstanding[i] = outstanding[i].saturating_sub(1);
                            while outstanding[i] < QUEUED {
                                refills += 1;
                                let m = filler(i, refills);
                                members[i].submit.send(m.into()).await.map_err(|e| e.to_string())?;
                                outstanding[i] += 1;
                            }
                        }
                    } else if let Some(t0) = sent_at.remove(&message) {
                        if Instant::now() > warm {
                            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
                        }
                        let us = round_est.as_micros().max(1) as u64;
                        next_at = Some(Instant::now() + Duration::from_micros(rng.next_u64() % us));
                    }
                }
            }
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                if next_at.is_some_and(|t| Instant::now() >= t) {
                    next_at = None;
                    let m = next_msg();
                    sent_at.insert(m.clone(), Instant::now());
                    members[0].submit.send(m.into()).await.map_err(|e| e.to_string())?;
                }
            }
        }
        if at_warm.is_none() && Instant::now() >= warm {
            at_warm = Some((completed, own_cpu()));
        }
        // Keep the other members' queues drained.
        for m in members.iter_mut().skip(2) {
            while m.notes.try_recv().is_ok() {}
        }
        while members[0].notes.try_recv().is_ok() {}
    }
    let (c0, cpu0) = at_warm.unwrap_or((0, Duration::ZERO));
    let measured = completed - c0;
    let cpu = own_cpu().saturating_sub(cpu0);
    for m in members {
        m.shutdown().await;
    }
    relay.shutdown().await;
    drop(proxy);
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(Result1 {
        len,
        slot_bytes,
        rounds_per_s: measured as f64 / seconds,
        p50_ms: quantile(&latencies, 0.5),
        p90_ms: quantile(&latencies, 0.9),
        p99_ms: quantile(&latencies, 0.99),
        messages: latencies.len(),
        cpu_ms_per_round: cpu.as_secs_f64() * 1000.0 / measured.max(1) as f64,
        slots: tg.group.params().slots,
        capacity,
        goodput: delivered_bytes as f64 / seconds,
        latencies,
    })
}

/// Messages each member keeps queued in goodput mode.
const QUEUED: usize = 2;

/// ChaCha20 keystream bytes per second on one thread of this machine (rand_chacha, as the
/// pads use it), over 32 MiB.
fn prg_rate() -> f64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let t = Instant::now();
    for _ in 0..512 {
        rng.fill_bytes(&mut buf);
        std::hint::black_box(&buf);
    }
    (512 * buf.len()) as f64 / t.elapsed().as_secs_f64().max(1e-9)
}

/// Bytes per second one QUIC connection carries on 127.0.0.1 in one direction, with the
/// relay's TLS and transport settings and 64 KiB frames, over 64 MiB.
async fn quic_rate() -> Result<f64, String> {
    use crate::crypto::identity::IdentityKey;
    use crate::net::tls;
    let relay = IdentityKey::from_secret_bytes(&[0x51; 32]);
    let member = IdentityKey::from_secret_bytes(&[0x52; 32]);
    let server = tls::server_config(tls::node_cert(&relay)?, vec![member.public()])?;
    let ep = crate::net::relay::bind(server, "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
        .map_err(|e| e.to_string())?;
    let addr = ep.local_addr().map_err(|e| e.to_string())?;
    let mut client = quinn::Endpoint::client("127.0.0.1:0".parse().map_err(|e| format!("{e}"))?)
        .map_err(|e| e.to_string())?;
    client.set_default_client_config(tls::client_config(
        tls::node_cert(&member)?,
        relay.public(),
    )?);
    const FRAMES: usize = 1024;
    let frame = vec![0xA5u8; 64 * 1024];
    let reader = tokio::spawn(async move {
        let conn = ep
            .accept()
            .await
            .ok_or("no connection")?
            .await
            .map_err(|e| e.to_string())?;
        let (_, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
        let mut got = 0usize;
        let mut started = None;
        while let Some(f) = crate::net::read_frame(&mut recv, 1 << 20).await? {
            started.get_or_insert_with(Instant::now);
            got += f.len();
        }
        let secs = started.map_or(0.0, |t: Instant| t.elapsed().as_secs_f64());
        Ok::<(usize, f64), String>((got, secs))
    });
    let conn = client
        .connect(addr, "dcnet")
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    let (mut send, _recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    for _ in 0..FRAMES {
        crate::net::write_frame(&mut send, &frame).await?;
    }
    send.finish().map_err(|e| e.to_string())?;
    let (got, secs) = reader.await.map_err(|e| e.to_string())??;
    conn.close(0u32.into(), b"done");
    client.wait_idle().await;
    if got != FRAMES * frame.len() || secs <= 0.0 {
        return Err(format!(
            "QUIC rate: {got} of {} bytes arrived",
            FRAMES * frame.len()
        ));
    }
    Ok(got as f64 / secs)
}

/// `--goodput`: saturated groups, goodput beside the slot capacity and this machine's bounds.
fn goodput(rt: &tokio::runtime::Runtime, a: &BenchArgs, delay: Option<Duration>) -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let prg = prg_rate();
    let quic = match rt.block_on(quic_rate()) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("dcnet bench: measuring the QUIC bound: {e}");
            return 1;
        }
    };
    println!(
        "this machine: ChaCha20 {:.0} MB/s per thread on {cores} cores; one QUIC connection on \
         loopback {:.0} MB/s",
        prg / 1e6,
        quic / 1e6
    );
    println!(
        "bounds on rounds/s: PRG = cores × rate / (N · 2N · L) (every member's 2N keystreams of L, \
         all members on these cores); QUIC = rate / (2 · N · L) (the relay takes N Reveals and \
         sends N Records of L); goodput bound = rounds/s × slots × payload per slot"
    );
    println!(
        "{:>4} {:>8} {:>6} {:>9} {:>12} {:>12} {:>12} {:>12} {:>7}",
        "N",
        "L",
        "slot",
        "rounds/s",
        "goodput MB/s",
        "slots MB/s",
        "PRG MB/s",
        "QUIC MB/s",
        "share"
    );
    let mut results = Vec::new();
    for &n in &a.members {
        for &l in &a.lengths {
            let r = match rt.block_on(one(n, l, a.seconds, delay, true)) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("dcnet bench: N={n} L={l}: {e}");
                    return 1;
                }
            };
            let per_round = r.slots as f64 * r.capacity as f64;
            let len = r.len as f64;
            let nf = n as f64;
            let prg_bound = cores as f64 * prg / (nf * 2.0 * nf * len) * per_round;
            let quic_bound = quic / (2.0 * nf * len) * per_round;
            let slots_rate = r.rounds_per_s * per_round;
            let share = r.goodput / prg_bound.min(quic_bound);
            println!(
                "{:>4} {:>8} {:>6} {:>9.1} {:>12.3} {:>12.3} {:>12.3} {:>12.3} {:>6.1}%",
                n,
                r.len,
                r.slot_bytes,
                r.rounds_per_s,
                r.goodput / 1e6,
                slots_rate / 1e6,
                prg_bound / 1e6,
                quic_bound / 1e6,
                share * 100.0
            );
            results.push(serde_json::json!({
                "members": n, "vector_bytes": r.len, "slot_bytes": r.slot_bytes,
                "rounds_per_s": r.rounds_per_s, "goodput_bytes_per_s": r.goodput,
                "slot_capacity_bytes_per_s": slots_rate, "prg_bound_bytes_per_s": prg_bound,
                "quic_bound_bytes_per_s": quic_bound, "share_of_bound": share,
                "one_way_delay_ms": a.delay_ms,
            }));
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "transport": "quic", "mode": "goodput", "cores": cores,
                "chacha20_bytes_per_s": prg, "quic_bytes_per_s": quic, "results": results,
            })
        );
    }
    0
}
