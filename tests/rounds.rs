//! Honest rounds through the in-memory harness, across group sizes and ≥ 200 seeds.

mod common;

use common::*;
use dcnet::params::SLOT_OVERHEAD;
use dcnet::protocol::MemberEvent;
use dcnet::sim::{LinkModel, Network, TestGroup};

fn sweep(n: usize, seeds: std::ops::Range<u64>, slot_bytes: u32) {
    let cap = (slot_bytes - SLOT_OVERHEAD) as usize;
    for seed in seeds {
        let s = script(n, cap, seed);
        let net = run_script(n, params(slot_bytes), seed, &s);
        check_delivery(&net, n, &s, seed);
    }
}

#[test]
fn n2_eighty_seeds() {
    sweep(2, 0..80, 96);
}

#[test]
fn n3_sixty_seeds() {
    sweep(3, 100..160, 128);
}

#[test]
fn n5_forty_seeds() {
    sweep(5, 200..240, 128);
}

#[test]
fn n16_sixteen_seeds() {
    sweep(16, 300..316, 96);
}

#[test]
fn n64_four_seeds() {
    sweep(64, 400..404, 80);
}

#[test]
fn one_byte_one_slot_and_ten_slots() {
    let slot_bytes = 128u32;
    let cap = (slot_bytes - SLOT_OVERHEAD) as usize;
    let s = vec![
        (0, vec![0xAB]),
        (1, vec![0x11; cap]),
        (2, (0..10 * cap).map(|i| (i % 251) as u8).collect()),
        (1, vec![0x22; cap + 1]),
    ];
    let net = run_script(4, params(slot_bytes), 9, &s);
    check_delivery(&net, 4, &s, 9);
}

#[test]
fn same_seed_same_trace() {
    let s = script(5, 80, 3);
    let a = run_script(5, params(128), 3, &s);
    let b = run_script(5, params(128), 3, &s);
    assert_eq!(a.trace_hash(), b.trace_hash());
    let c = run_script(5, params(128), 4, &s);
    assert_ne!(a.trace_hash(), c.trace_hash());
}

/// Collision rate: with k reservers and m cells a reservation wins with probability
/// (1 − 1/m)^(k−1). Every member reserves every round (p_cover = 1).
#[test]
fn collision_rate_matches_prediction() {
    for (n, cells, rounds) in [(16usize, 32u32, 120usize), (8, 8, 200)] {
        let p = dcnet::params::RoundParams {
            cells,
            slot_bytes: 64,
            ..params(64)
        };
        let tg = TestGroup::new(n, p, 77).unwrap();
        let mut net = Network::new(&tg, 77, LinkModel::default());
        net.start();
        net.run_rounds(rounds).unwrap();
        let completed = net
            .member_events
            .iter()
            .map(|ev| {
                ev.iter()
                    .filter(|e| matches!(e, MemberEvent::RoundCompleted { .. }))
                    .count()
            })
            .min()
            .unwrap();
        let reservations = (completed * n) as f64;
        let collided = net
            .member_events
            .iter()
            .flatten()
            .filter(|e| matches!(e, MemberEvent::Collided { .. }))
            .count() as f64;
        let p_win = (1.0 - 1.0 / cells as f64).powi(n as i32 - 1);
        let expect = reservations * (1.0 - p_win);
        let sd = (reservations * p_win * (1.0 - p_win)).sqrt();
        println!(
            "n={n} m={cells}: {collided} collisions of {reservations} reservations, expected {expect:.1} ± {sd:.1}"
        );
        assert!(
            (collided - expect).abs() < 4.0 * sd,
            "n={n} m={cells}: {collided} vs {expect:.1} ± {sd:.1}"
        );
    }
}
