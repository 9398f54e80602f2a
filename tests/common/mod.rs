//! Shared test helpers: seeded scripts of messages and the checks every run must pass.
#![allow(dead_code)]

pub mod coalition;

use dcnet::params::RoundParams;
use dcnet::protocol::MemberEvent;
use dcnet::sim::{LinkModel, Network, TestGroup};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

/// Byte-frequency χ² against the uniform distribution (255 degrees of freedom: mean 255,
/// standard deviation 22.6).
pub fn chi_square(bytes: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &b in bytes {
        counts[b as usize] += 1;
    }
    let e = bytes.len() as f64 / 256.0;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

/// Small slots keep large groups fast.
pub fn params(slot_bytes: u32) -> RoundParams {
    RoundParams {
        slot_bytes,
        ..RoundParams::default()
    }
}

/// A seeded script: which member posts which messages, in order. Lengths cover 1 byte,
/// exactly one slot, several slots, up to ten slots.
pub fn script(n: usize, capacity: usize, seed: u64) -> Vec<(usize, Vec<u8>)> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let senders = n.clamp(1, 8);
    let mut out = Vec::new();
    let lens = [
        1,
        capacity,
        3 * capacity + 5,
        10 * capacity,
        17,
        capacity - 1,
    ];
    let count = 2 + (rng.next_u32() % 4) as usize;
    for k in 0..count {
        let who = (rng.next_u32() as usize) % n;
        let len = if k < lens.len() && k < 3 {
            lens[k]
        } else {
            lens[(rng.next_u32() as usize) % lens.len()]
        };
        let mut msg = vec![0u8; len];
        rng.fill_bytes(&mut msg);
        // Tag so each message is distinct even if random bytes coincide.
        if len >= 2 {
            msg[0] = k as u8;
            msg[1] = who as u8;
        }
        out.push((who % senders, msg));
    }
    out
}

/// Runs `script` to completion; returns the network. Panics with the seed on livelock.
pub fn run_script(n: usize, p: RoundParams, seed: u64, script: &[(usize, Vec<u8>)]) -> Network {
    let tg = TestGroup::new(n, p, seed).expect("valid group");
    let mut net = Network::new(&tg, seed, LinkModel::default());
    for (who, m) in script {
        net.members[*who].as_mut().unwrap().submit(m).unwrap();
    }
    net.start();
    let total = script.len();
    let r = net.drive_bounded(400_000, |net| {
        (0..n).all(|i| net.delivered(i).len() >= total)
            && net
                .members
                .iter()
                .all(|m| m.as_ref().is_some_and(|m| m.pending() == 0))
    });
    if let Err(s) = r {
        panic!(
            "seed {seed}, n {n}: stuck {s:?}; delivered {:?}; errors {:?}",
            (0..n).map(|i| net.delivered(i).len()).collect::<Vec<_>>(),
            net.errors.first()
        );
    }
    net
}

/// Every message delivered exactly once, intact, to every member, in each sender's order.
pub fn check_delivery(net: &Network, n: usize, script: &[(usize, Vec<u8>)], seed: u64) {
    assert!(
        net.errors.is_empty(),
        "seed {seed}: errors {:?}",
        net.errors
    );
    for i in 0..n {
        let got = net.delivered(i);
        assert_eq!(got.len(), script.len(), "seed {seed}: member {i} count");
        let mut want: Vec<&Vec<u8>> = script.iter().map(|(_, m)| m).collect();
        let mut have: Vec<&Vec<u8>> = got.iter().collect();
        want.sort();
        have.sort();
        assert_eq!(want, have, "seed {seed}: member {i} multiset");
        // Per-sender order.
        for s in 0..n {
            let sent: Vec<&Vec<u8>> = script
                .iter()
                .filter(|(w, _)| *w == s)
                .map(|(_, m)| m)
                .collect();
            let seen: Vec<&Vec<u8>> = got.iter().filter(|m| sent.contains(m)).collect();
            assert_eq!(sent, seen, "seed {seed}: member {i} order of sender {s}");
        }
        assert_eq!(got, net.delivered(0), "seed {seed}: members agree on order");
    }
    // Honest runs never damage a slot.
    for ev in &net.member_events {
        for e in ev {
            if let MemberEvent::RoundCompleted { damaged, round, .. } = e {
                assert_eq!(*damaged, 0, "seed {seed}: damage in round {round}");
            }
        }
    }
}
