//! The epoch's content key (docs/PROTOCOL.md §8.2): epochs rotate on schedule with a fresh key,
//! and a keyholder that seals a wrong key to one member costs that member the epoch and
//! nothing else (no conviction, the others go on).

mod common;

use common::*;
use dcnet::adversary::MemberFault;
use dcnet::params::RoundParams;
use dcnet::protocol::MemberEvent;
use dcnet::sim::{LinkModel, Network, TestGroup};
use std::collections::BTreeMap;

fn rotating(epoch_rounds: u64) -> RoundParams {
    RoundParams {
        epoch_rounds,
        ..params(128)
    }
}

#[test]
fn epochs_rotate_on_schedule_with_a_fresh_content_key() {
    let tg = TestGroup::new(4, rotating(5), 61).unwrap();
    let mut net = Network::new(&tg, 61, LinkModel::default());
    let msgs: Vec<Vec<u8>> = (0..3).map(|k| vec![b'p' + k; 100]).collect();
    for m in &msgs {
        net.members[0].as_mut().unwrap().submit(m).unwrap();
    }
    net.start();
    net.run_rounds(3).unwrap();
    let k1 = *net.members[1]
        .as_ref()
        .unwrap()
        .content_key()
        .unwrap()
        .expose();
    net.run_rounds(27).unwrap();
    let k2 = *net.members[1]
        .as_ref()
        .unwrap()
        .content_key()
        .unwrap()
        .expose();
    assert_ne!(k1, k2, "a later epoch has another content key");
    // Every member: at most epoch_rounds completed rounds per epoch, and several epochs.
    for (i, ev) in net.member_events.iter().enumerate() {
        let (mut epochs, mut in_epoch, mut most) = (0, 0, 0);
        for e in ev {
            match e {
                MemberEvent::EpochStarted { .. } => {
                    epochs += 1;
                    in_epoch = 0;
                }
                MemberEvent::RoundCompleted { .. } => {
                    in_epoch += 1;
                    most = most.max(in_epoch);
                }
                _ => {}
            }
        }
        assert!(epochs >= 5, "member {i}: {epochs} epochs in 30 rounds");
        assert!(most <= 5, "member {i}: {most} rounds in one epoch");
    }
    // Messages cross epochs intact.
    for i in 1..4 {
        let got = net.delivered(i);
        assert_eq!(got.len(), msgs.len(), "member {i}: {got:?}");
    }
}

#[test]
fn a_bad_seal_locks_out_only_its_victim_and_convicts_nobody() {
    let n = 4;
    let victim = 2u32;
    let tg = TestGroup::new(n, rotating(8), 62).unwrap();
    // Every member but the victim seals it a wrong key whenever it is the keyholder.
    let faults: BTreeMap<u32, Vec<MemberFault>> = (0..n as u32)
        .filter(|&i| i != victim)
        .map(|i| (i, vec![MemberFault::BadSeal { victim }]))
        .collect();
    let mut net = Network::with_faults(&tg, 62, LinkModel::default(), vec![], &faults);
    net.members[0]
        .as_mut()
        .unwrap()
        .submit(b"for everyone who can read it")
        .unwrap();
    net.members[victim as usize]
        .as_mut()
        .unwrap()
        .submit(b"the victim's own message")
        .unwrap();
    net.start();
    net.run_rounds(20).unwrap();
    let ev = &net.member_events[victim as usize];
    let refused: Vec<(u64, u32)> = ev
        .iter()
        .filter_map(|e| match e {
            MemberEvent::ContentKeyRefused { epoch, holder } => Some((*epoch, *holder)),
            _ => None,
        })
        .collect();
    assert!(!refused.is_empty(), "the victim noticed its bad seal");
    let epochs = ev
        .iter()
        .filter(|e| matches!(e, MemberEvent::EpochStarted { .. }))
        .count();
    assert!(
        refused.len() <= epochs,
        "one notice per epoch at most: {refused:?}"
    );
    assert!(refused.iter().all(|(_, h)| *h != victim));
    // While it lacks the key the victim reads nothing and completes no round (it sits the
    // epoch out, so its absence is public); the others read member 0's message; nobody is
    // convicted for it.
    // (The notice comes inside the completion of the round that fixed the key, just before
    // that round's RoundCompleted.)
    let (mut pending, mut locked) = (false, false);
    for e in ev {
        match e {
            MemberEvent::EpochStarted { .. } => (pending, locked) = (false, false),
            MemberEvent::ContentKeyRefused { .. } => pending = true,
            MemberEvent::Delivered { .. } => assert!(!locked, "read without the key"),
            MemberEvent::RoundCompleted { round, .. } => {
                assert!(!locked, "round {round} completed without the key");
                locked = pending;
            }
            _ => {}
        }
    }
    for i in [0usize, 1, 3] {
        let got = net.delivered(i);
        assert!(
            got.iter().any(|d| d == b"for everyone who can read it"),
            "member {i} did not get member 0's message"
        );
    }
    for (i, ev) in net.member_events.iter().enumerate() {
        for e in ev {
            if let MemberEvent::Verdict { verdict, .. } = e {
                panic!("member {i}: a verdict from a bad seal: {verdict:?}");
            }
        }
    }
    assert!(net.completed_rounds() >= 20, "the group went on");
}
