//! One member's whole per-round computation beside the raw ChaCha20 keystream of the same
//! number of bytes, in the same run.
//!
//! Per round a member derives N−1 pad keys, XORs N−1 pads and its blinding into its message
//! (N keystreams of L bytes), and later XORs the N blinding keystreams out of the Record
//! (N more): 2N keystreams of L bytes. The raw baseline generates (2N−1)·L keystream bytes —
//! DESIGN.md's figure, which assumes a member keeps its own blinding keystream instead of
//! regenerating it — so the ratio printed by criterion's two lines includes that extra L.
//! Target: member ≤ 1.25 × raw. `member_round` runs on the rayon pool (every core, or
//! `RAYON_NUM_THREADS`), `member_round_1_thread` on a pool of one thread, so the two lines give
//! the speed-up from splitting the pads across cores; the raw keystream is one thread.
//!
//! `engines/N=…/L=…` times a whole protocol round of the real engines in memory: the relay and
//! all N members (signatures, verification, Merkle commitments, hashes, pads, allocation,
//! slot checks; no sockets), on the simulator's network with zero latency. It is what the pad
//! figures leave out; divided by N + 1 it bounds one party's CPU per round from above.
//! `member_whole_round` and `relay_whole_round` time only what one member's (the relay's) engine
//! spends per round — every frame and timeout it handles, as `Network::host_time` counts it —
//! beside `raw_keystream` of (2N−1)·L bytes (one thread). Run with `RAYON_NUM_THREADS=1` for
//! the engines on one core.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dcnet::crypto::hash;
use dcnet::crypto::keys::{self, EpochPublic, EpochSecret};
use dcnet::crypto::pad::{self, Keystream, StreamKey};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    for n in [10usize, 50, 100] {
        for l in [1024usize, 64 * 1024] {
            let mut g = c.benchmark_group(format!("round/N={n}/L={l}"));
            g.sample_size(20);
            let bytes = (2 * n - 1) * l;
            g.throughput(Throughput::Bytes(bytes as u64));
            // Raw keystream: (2N−1)·L bytes from one ChaCha20Rng into a reused buffer.
            g.bench_function(BenchmarkId::new("raw_keystream", bytes), |b| {
                b.iter(|| raw_keystream(l, 2 * n - 1))
            });
            // The member's computation, as src/protocol/member.rs does it.
            let gid = [1u8; 32];
            let mine = EpochSecret::from_uniform_bytes(&[3u8; 64]).unwrap();
            let me = mine.public();
            let pairs: Vec<_> = (1..n as u32)
                .map(|j| {
                    let other = EpochSecret::from_uniform_bytes(&[j as u8 + 10; 64]).unwrap();
                    let ej: EpochPublic = other.public();
                    let k = mine.shared(&ej).unwrap();
                    keys::pair_secret(&gid, 1, (0, &me), (j, &ej), &k)
                })
                .collect();
            let seeds: Vec<StreamKey> = (0..n)
                .map(|i| StreamKey::from_bytes(hash("bench/z", &[&[i as u8]])))
                .collect();
            let view = [9u8; 32];
            let message = vec![0x5Au8; l];
            let mut ks = Keystream::new();
            let mut work = vec![0u8; l];
            g.bench_function(BenchmarkId::new("member_round", bytes), |b| {
                b.iter(|| {
                    work.copy_from_slice(&message);
                    pad::encrypt_in_place(&mut ks, &mut work, 7, &view, &pairs, &seeds[0]);
                    // (The Record's XOR would arrive here; unblinding is the same work.)
                    pad::unblind_in_place(&mut ks, &mut work, 7, &seeds);
                    black_box(&work);
                })
            });
            g.bench_function(BenchmarkId::new("member_round_1_thread", bytes), |b| {
                b.iter(|| {
                    one_thread.install(|| {
                        work.copy_from_slice(&message);
                        pad::encrypt_in_place(&mut ks, &mut work, 7, &view, &pairs, &seeds[0]);
                        pad::unblind_in_place(&mut ks, &mut work, 7, &seeds);
                    });
                    black_box(&work);
                })
            });
            g.finish();
        }
    }
}

fn raw_keystream(bytes_per_stream: usize, streams: usize) {
    let mut buf = vec![0u8; bytes_per_stream];
    for k in 0..streams {
        let mut rng = ChaCha20Rng::from_seed([k as u8; 32]);
        rng.set_stream(7);
        rng.fill_bytes(&mut buf);
        black_box(&buf);
    }
}

fn engines(c: &mut Criterion) {
    use dcnet::params::RoundParams;
    use dcnet::sim::{LinkModel, Network, TestGroup};
    for (n, slot_bytes) in [(10usize, 96u32), (10, 6 * 1024), (50, 96), (50, 1296)] {
        let p = RoundParams {
            slot_bytes,
            ..RoundParams::default()
        };
        let tg = TestGroup::new(n, p, 1).expect("group");
        let l = tg.group.params().vector_len();
        let mut g = c.benchmark_group(format!("engines/N={n}/L={l}"));
        g.sample_size(10);
        g.throughput(Throughput::Bytes(l as u64));
        let mut net = Network::new(&tg, 1, LinkModel::default());
        // One event at a time: each engine has the machine to itself while it works, as with
        // one machine per party (parallel windows would run members side by side and time
        // each one's pads against the others').
        net.set_parallel(false);
        net.start();
        // Into the steady state: keys exchanged, the content key fixed, reservations running.
        net.run_rounds(5).expect("warm-up rounds");
        let mut k = 0u64;
        // One round, with a message now and then, so slots carry fragments as well as traps.
        let mut round = move |net: &mut Network| {
            k += 1;
            if k % 4 == 0 {
                if let Some(m) = net.members[(k as usize) % n].as_mut() {
                    let _ = m.submit(format!("bench message {k}").as_bytes());
                }
            }
            net.run_rounds(1).expect("a round");
        };
        // The whole-round-of-everyone figure is only taken for the smaller groups (at N = 50,
        // L = 64 KiB one round of all 51 engines takes seconds on 2 cores).
        if n * l <= 1 << 20 {
            g.bench_function("whole_round_all_parties", |b| b.iter(|| round(&mut net)));
        }
        // One party's own time per round (`who` = n is the relay). For the one-core figure run
        // the bench with RAYON_NUM_THREADS=1 (the engines are not Send, so they cannot be moved
        // into a one-thread pool here).
        // Criterion budgets the time these return, about 1/(N+1) of the wall time a round takes.
        let parties = n as u32 + 1;
        g.warm_up_time(std::time::Duration::from_secs(2) / parties);
        g.measurement_time(std::time::Duration::from_secs(8) / parties);
        let mut party = |name: &str, who: usize| {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let before = net.host_time(who).expect("party");
                    for _ in 0..iters {
                        round(&mut net);
                    }
                    net.host_time(who).expect("party") - before
                })
            });
        };
        party("member_whole_round", 0);
        party("relay_whole_round", n);
        // Beside them: the raw keystream of the member's (2N−1)·L pad bytes, one thread.
        g.bench_function("raw_keystream", |b| b.iter(|| raw_keystream(l, 2 * n - 1)));
        g.finish();
    }
}

criterion_group!(benches, bench, engines);
criterion_main!(benches);
