//! Churn: absent members, crashes, restarts, and the sender-side anonymity-set rule.

mod common;

use common::params;
use dcnet::params::RoundParams;
use dcnet::protocol::slots::Layout;
use dcnet::protocol::{MemberEvent, RelayEvent};
use dcnet::sim::{LinkModel, Network, TestGroup};

/// A member crashes while another's long message is half out: the remaining pieces are held
/// back (trap content instead) while the crashed member is away, nothing of the message goes out
/// in a round without it, and once it restarts and rejoins the message completes, exactly once.
#[test]
fn long_message_waits_for_its_anonymity_set() {
    for seed in 0..6u64 {
        let n = 6;
        let p = RoundParams {
            tolerance: 0, // floor = N: every member must be present for every piece
            ..params(96)
        };
        let tg = TestGroup::new(n, p, seed).unwrap();
        let mut net = Network::new(&tg, seed, LinkModel::default());
        let layout = Layout::new(tg.group.params());
        let cap = layout.capacity();
        let msg: Vec<u8> = (0..cap * 6).map(|i| (i % 253) as u8 + 1).collect();
        net.members[0].as_mut().unwrap().submit(&msg).unwrap();
        net.start();
        // Run until the first piece of the message is out, then crash member 5.
        let first_out = |net: &Network| {
            net.member_events[1].iter().any(|e| match e {
                MemberEvent::RoundCompleted { pieces, .. } => pieces.iter().any(|p| p.count == 6),
                _ => false,
            })
        };
        net.drive_bounded(100_000, first_out).unwrap();
        let hw = net.members[5].as_ref().unwrap().high_water();
        net.crash(5);
        // Give the group a while without member 5.
        net.run_rounds(15).unwrap();
        let held = net.member_events[0]
            .iter()
            .filter(|e| matches!(e, MemberEvent::HeldBack { .. }))
            .count();
        assert!(held > 0, "seed {seed}: nothing was held back");
        assert!(
            net.delivered(1).is_empty(),
            "seed {seed}: delivered without member 5"
        );
        // Member 5 comes back; the message completes.
        net.restart(5, hw);
        // (The restarted process lost the pieces it had reassembled; the others complete it.)
        let r = net.drive_bounded(300_000, |net| {
            (0..n - 1).all(|i| net.delivered(i).len() == 1)
        });
        assert!(
            r.is_ok(),
            "seed {seed}: message never completed after the restart"
        );
        for i in 0..n - 1 {
            assert_eq!(
                net.delivered(i),
                vec![msg.clone()],
                "seed {seed}: member {i}"
            );
        }
        assert!(net.delivered(n - 1).len() <= 1);
        // Every round that carried a piece of it had all six members present.
        let full: std::collections::BTreeSet<u64> = net
            .relay_events
            .iter()
            .filter_map(|e| match e {
                RelayEvent::Completed { round, present } if present.len() == n => Some(*round),
                _ => None,
            })
            .collect();
        for e in &net.member_events[1] {
            if let MemberEvent::RoundCompleted { round, pieces, .. } = e {
                if pieces.iter().any(|p| p.count == 6) {
                    assert!(
                        full.contains(round),
                        "seed {seed}: a piece went out in round {round} without member 5"
                    );
                }
            }
        }
        // The sender saw |A| for the message.
        assert!(
            net.member_events[0]
                .iter()
                .any(|e| matches!(e, MemberEvent::Sent { anonymity, .. } if *anonymity == n))
        );
    }
}

/// With the default tolerance (floor = half the roster), a crash does not stop the group:
/// messages submitted before and after it are delivered to everyone left, exactly once.
#[test]
fn crash_does_not_stop_the_group() {
    for seed in 0..8u64 {
        let n = 5;
        let tg = TestGroup::new(n, params(96), seed).unwrap();
        let mut net = Network::new(&tg, seed, LinkModel::default());
        for i in 0..3 {
            net.members[i]
                .as_mut()
                .unwrap()
                .submit(format!("before {i}").as_bytes())
                .unwrap();
        }
        net.start();
        net.run_rounds(2).unwrap();
        net.crash(4);
        for i in 0..3 {
            net.members[i]
                .as_mut()
                .unwrap()
                .submit(format!("after {i}").as_bytes())
                .unwrap();
        }
        let r = net.drive_bounded(300_000, |net| (0..4).all(|i| net.delivered(i).len() == 6));
        assert!(
            r.is_ok(),
            "seed {seed}: {:?}",
            (0..4).map(|i| net.delivered(i).len()).collect::<Vec<_>>()
        );
        for i in 0..4 {
            let mut d = net.delivered(i);
            d.sort();
            d.dedup();
            assert_eq!(d.len(), 6, "seed {seed}: duplicates at member {i}");
        }
        assert!(
            net.relay_events
                .iter()
                .any(|e| matches!(e, RelayEvent::Aborted { missing, .. } if missing == &vec![4]))
                || net
                    .relay_events
                    .iter()
                    .any(|e| matches!(e, RelayEvent::Excluded { member: 4, .. }))
        );
    }
}

/// Rounds in which a piece of the `count`-piece message went out (as member `reader` saw the
/// cleartext), and the present set of each (as the relay announced it).
fn piece_rounds(net: &Network, reader: usize, count: u16) -> Vec<(u64, Vec<u32>)> {
    let present: std::collections::BTreeMap<u64, Vec<u32>> = net
        .relay_events
        .iter()
        .filter_map(|e| match e {
            RelayEvent::Completed { round, present } => Some((*round, present.clone())),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for e in &net.member_events[reader] {
        if let MemberEvent::RoundCompleted { round, pieces, .. } = e {
            let carries = pieces.iter().any(|p| p.count == count);
            if carries {
                out.push((*round, present.get(round).cloned().unwrap_or_default()));
            }
        }
    }
    out
}

/// The attacker's view of a message: the members present in every round that carried a piece.
fn sender_set(rounds: &[(u64, Vec<u32>)]) -> std::collections::BTreeSet<u32> {
    let mut it = rounds.iter();
    let mut set: std::collections::BTreeSet<u32> = match it.next() {
        Some((_, p)) => p.iter().copied().collect(),
        None => return Default::default(),
    };
    for (_, p) in it {
        set.retain(|m| p.contains(m));
    }
    set
}

/// [`Network::run_until_round`], failing the test if the network stalls first.
fn rounds_until(net: &mut Network, max: usize, done: impl Fn(&Network) -> bool) -> bool {
    let start = net.completed_rounds();
    net.run_until_round(max, done).unwrap_or_else(|e| {
        panic!(
            "stalled after {} rounds: {e:?}; last relay events {:?}",
            net.completed_rounds() - start,
            net.relay_events.iter().rev().take(5).collect::<Vec<_>>()
        )
    })
}

/// The sender crashes mid-message and restarts from its outbox snapshot while another member
/// is away: the rest of the message waits for that member (it was present when the first piece
/// went out: §7.1's R), then goes out, exactly once. From the relay's side, the members present
/// in every round that carried a piece stay the whole group. (A restart that forgot R and A
/// would send the rest at once into the five-member present set, and a second such restart
/// with other absentees could cut the intersection below the floor.)
#[test]
fn the_outbox_survives_a_crash_without_widening_the_anonymity_set() {
    for seed in 0..3u64 {
        let n = 6;
        let p = RoundParams {
            tolerance: 2, // floor 4 of 6
            ..params(96)
        };
        let tg = TestGroup::new(n, p, seed).unwrap();
        let mut net = Network::new(&tg, seed, LinkModel::default());
        let layout = Layout::new(tg.group.params());
        let pieces = 8u16;
        let msg: Vec<u8> = (0..layout.capacity() * pieces as usize)
            .map(|i| (i % 251) as u8 + 1)
            .collect();
        net.members[0].as_mut().unwrap().submit(&msg).unwrap();
        net.start();
        assert!(rounds_until(&mut net, 40, |net| {
            !piece_rounds(net, 1, pieces).is_empty()
        }));
        let out_before = piece_rounds(&net, 1, pieces).len();
        assert!(
            out_before < pieces as usize,
            "seed {seed}: completed too early for the test"
        );
        // The sender crashes, and member 5 with it; the sender restarts from its outbox.
        let snap = net.members[0].as_ref().unwrap().outbox_snapshot();
        let hw0 = net.members[0].as_ref().unwrap().stored_high_water();
        let hw5 = net.members[5].as_ref().unwrap().stored_high_water();
        net.crash(0);
        net.crash(5);
        net.restart(0, hw0);
        let m0 = net.members[0].as_mut().unwrap();
        assert_eq!(m0.restore_outbox(&snap).unwrap().len(), 1);
        assert_eq!(
            m0.outbox_snapshot(),
            snap,
            "seed {seed}: the restored outbox differs from the saved one"
        );
        let before = net.member_events[0].len();
        let rbefore = net.relay_events.len();
        assert!(
            !rounds_until(&mut net, 40, |net| {
                piece_rounds(net, 1, pieces)
                    .iter()
                    .any(|(_, p)| p.len() < n)
            }),
            "seed {seed}: a piece went out without member 5"
        );
        assert!(
            net.member_events[0][before..]
                .iter()
                .any(|e| matches!(e, MemberEvent::HeldBack { .. })),
            "seed {seed}: the restarted sender never held the message back: {:?}",
            net.relay_events[rbefore..]
                .iter()
                .filter(|e| !matches!(e, RelayEvent::Completed { .. } | RelayEvent::Opened { .. }))
                .collect::<Vec<_>>()
        );
        // Member 5 returns: the message completes, once, everywhere.
        net.restart(5, hw5);
        assert!(
            rounds_until(&mut net, 200, |net| {
                (1..n - 1).all(|i| !net.delivered(i).is_empty())
            }),
            "seed {seed}: never completed"
        );
        let _ = rounds_until(&mut net, 3, |_| false);
        for i in 1..n - 1 {
            assert_eq!(
                net.delivered(i),
                vec![msg.clone()],
                "seed {seed}: member {i}"
            );
        }
        let rounds = piece_rounds(&net, 1, pieces);
        assert_eq!(
            sender_set(&rounds).len(),
            n,
            "seed {seed}: the sender set shrank to {:?} over {rounds:?}",
            sender_set(&rounds)
        );
        // It reports |A| less any accusation it may have missed while down (at most the one
        // round that was unresolved when it crashed): a conservative figure.
        assert!(
            net.member_events[0]
                .iter()
                .any(|e| matches!(e, MemberEvent::Sent { anonymity, .. } if *anonymity + 1 >= n)),
            "seed {seed}: the restarted sender never reported the message sent with |A| ≥ {}",
            n - 1
        );
    }
}

/// A snapshot of another group, a truncated one, garbage and an empty outbox.
#[test]
fn outbox_snapshots_of_another_group_or_corrupt_ones_are_refused() {
    let tg = TestGroup::new(3, params(96), 1).unwrap();
    let other = TestGroup::new(3, params(128), 1).unwrap();
    let mut net = Network::new(&tg, 1, LinkModel::default());
    let mut net2 = Network::new(&other, 1, LinkModel::default());
    let m = net.members[0].as_mut().unwrap();
    let empty = m.outbox_snapshot();
    m.submit(b"hello").unwrap();
    m.submit(&[7u8; 500]).unwrap();
    let snap = m.outbox_snapshot();
    let m2 = net2.members[0].as_mut().unwrap();
    assert!(
        m2.restore_outbox(&snap)
            .unwrap_err()
            .contains("another group")
    );
    // A non-minimal varint (the empty convictions list's length as 0xfb 00 00) decodes in
    // bincode but is not the canonical encoding: refused.
    let mut long = snap[..33].to_vec();
    assert_eq!(snap[33], 0, "no convictions yet");
    long.extend_from_slice(&[0xfb, 0, 0]);
    long.extend_from_slice(&snap[34..]);
    assert!(m2.restore_outbox(&long).is_err());
    let mut net4 = Network::new(&tg, 3, LinkModel::default());
    let m4 = net4.members[0].as_mut().unwrap();
    assert!(m4.restore_outbox(&long).unwrap_err().contains("canonical"));
    // Another group's outbox with no message in it is ignored (nothing of ours to lose).
    assert_eq!(m2.restore_outbox(&empty).unwrap(), Vec::<u64>::new());
    for cut in [0, 1, 5, snap.len() / 2, snap.len() - 1] {
        assert!(m2.restore_outbox(&snap[..cut]).is_err(), "cut {cut}");
    }
    let mut longer = snap.clone();
    longer.push(0);
    assert!(m2.restore_outbox(&longer).is_err());
    assert!(m2.restore_outbox(&[0xff; 64]).is_err());
    assert_eq!(m2.pending(), 0, "a refused snapshot queued something");
    // Into a fresh member of the same group: both messages, in order, nothing else.
    let mut net3 = Network::new(&tg, 2, LinkModel::default());
    let m3 = net3.members[0].as_mut().unwrap();
    assert_eq!(m3.restore_outbox(&empty).unwrap(), Vec::<u64>::new());
    assert_eq!(m3.restore_outbox(&snap).unwrap().len(), 2);
    assert_eq!(m3.outbox_snapshot(), snap);
}
