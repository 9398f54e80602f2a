//! Churn: absent members, crashes, restarts, and the sender-side anonymity-set rule.

mod common;

use common::params;
use dcnet::params::RoundParams;
use dcnet::protocol::slots::{Layout, SlotContent, parse_slot};
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
                MemberEvent::RoundCompleted {
                    round, cleartext, ..
                } => (0..layout.slots).any(|s| {
                    matches!(parse_slot(&layout, *round, s, &cleartext[layout.slot(s)]),
                        SlotContent::Fragment(f) if f.count == 6)
                }),
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
            if let MemberEvent::RoundCompleted {
                round, cleartext, ..
            } = e
            {
                for s in 0..layout.slots {
                    if let SlotContent::Fragment(f) =
                        parse_slot(&layout, *round, s, &cleartext[layout.slot(s)])
                    {
                        if f.count == 6 {
                            assert!(
                                full.contains(round),
                                "seed {seed}: a piece went out in round {round} without member 5"
                            );
                        }
                    }
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
