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

/// Sender policy (docs/PROTOCOL.md §7): a message that arrives while its member is idle takes
/// the slot the member's cover reservation won, so it can go out in the very next round; and
/// the trap share of slots filled while their owner had a piece pending stays `p_trap` (a
/// disruptor aiming at busy members still meets traps as often as before).
#[test]
fn idle_members_send_in_their_cover_slot_and_traps_keep_their_share() {
    let n = 8usize;
    let p_trap = 0.25;
    let p = dcnet::params::RoundParams {
        p_trap,
        ..params(96)
    };
    let tg = TestGroup::new(n, p, 21).unwrap();
    let mut net = Network::new(&tg, 21, LinkModel::default());
    net.start();
    net.run_rounds(3).unwrap();
    // Each member gets its next one-fragment message the moment its previous one is delivered
    // back to it (in the step that completes the round, before the next Open is read): so
    // every slot is filled while its owner has a piece pending or in flight, and a member
    // whose last reservation was cover gets a message between reserving and filling.
    let mut outstanding: Vec<Option<(Vec<u8>, usize)>> = vec![None; n];
    let mut seen = vec![0usize; n];
    let (mut filled, mut fragments) = (0u64, 0u64);
    let mut rounds_to_delivery = Vec::new();
    let mut counter = 0u64;
    let start = net.completed_rounds();
    let mut steps = 0u64;
    while net.completed_rounds() < start + 240 {
        let at = net.completed_rounds();
        for (i, o) in outstanding.iter_mut().enumerate() {
            if o.is_none() {
                counter += 1;
                let m = format!("m{i} #{counter}").into_bytes();
                net.members[i].as_mut().unwrap().submit(&m).unwrap();
                *o = Some((m, at));
            }
        }
        assert!(net.step(), "the network stalled");
        steps += 1;
        assert!(steps < 2_000_000);
        let now = net.completed_rounds();
        for i in 0..n {
            let events = &net.member_events[i][seen[i]..];
            seen[i] = net.member_events[i].len();
            for e in events {
                match e {
                    MemberEvent::RoundCompleted {
                        filled: f, pieces, ..
                    } if i == 0 => {
                        filled += u64::from(*f);
                        fragments += pieces.len() as u64;
                    }
                    MemberEvent::Delivered { message, .. }
                        if outstanding[i].as_ref().is_some_and(|(m, _)| m == message) =>
                    {
                        let (_, t0) = outstanding[i].take().unwrap();
                        rounds_to_delivery.push(now - t0);
                    }
                    _ => {}
                }
            }
        }
    }
    let traps = filled - fragments;
    let share = traps as f64 / filled as f64;
    // ≈ 1,100 slots: one standard deviation of the share is ≈ 0.013.
    assert!(filled > 800, "{filled} slots filled");
    assert!(
        (share - p_trap).abs() < 0.05,
        "trap share {share:.3} of {filled} filled slots, p_trap {p_trap}"
    );
    // Without the cover slot a message needs a reservation round first: never 1 round.
    let in_one = rounds_to_delivery.iter().filter(|&&r| r <= 1).count();
    let frac = in_one as f64 / rounds_to_delivery.len() as f64;
    assert!(
        frac > 0.3,
        "{in_one} of {} messages went out in the first round after they were submitted",
        rounds_to_delivery.len()
    );
}
