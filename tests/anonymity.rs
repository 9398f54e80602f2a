//! What the relay sees and what the output says about senders.

mod common;

use common::*;
use dcnet::adversary::RelayFault;
use dcnet::crypto::identity::IdentityKey;
use dcnet::protocol::blame::{Culprit, Rule};
use dcnet::protocol::{Member, MemberEvent, MemberId, MemoryStore};
use dcnet::sim::{Delivery, LinkModel, Network, TestGroup, derive_seed};
use dcnet::wire::{Body, decode_frame};
use std::cell::RefCell;
use std::rc::Rc;

/// Honest ciphertexts look uniform (byte-frequency χ², 255 degrees of freedom) even for a
/// member that is sending, while the cleartexts they add up to are far from uniform.
#[test]
fn ciphertexts_are_uniform_cleartexts_are_not() {
    let n = 5;
    let tg = TestGroup::new(n, params(256), 11).unwrap();
    let mut net = Network::new(&tg, 11, LinkModel::default());
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let seen2 = seen.clone();
    net.hook = Some(Box::new(move |d| {
        if let Delivery::ToRelay { from: 0, frame } = d {
            if let Ok(f) = decode_frame(frame) {
                if let Body::Reveal(r) = f.body {
                    seen2.borrow_mut().push(r.ciphertext);
                }
            }
        }
        true
    }));
    for k in 0..6 {
        net.members[0]
            .as_mut()
            .unwrap()
            .submit(&vec![b'a' + k; 600])
            .unwrap();
    }
    net.start();
    net.run_rounds(60).unwrap();
    let cts: Vec<u8> = seen.borrow().concat();
    let clear: Vec<u8> = net.member_events[1]
        .iter()
        .filter_map(|e| match e {
            MemberEvent::RoundCompleted { cleartext, .. } => Some(cleartext.to_vec()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat();
    assert_eq!(net.delivered(1).len(), 6, "member 0's messages went out");
    let (x_ct, x_clear) = (chi_square(&cts), chi_square(&clear));
    println!(
        "chi2 ciphertexts {x_ct:.1} over {} bytes; cleartexts {x_clear:.1}",
        cts.len()
    );
    // 255 dof: mean 255, sd 22.6; 380 is beyond 5.5 sd.
    assert!(x_ct < 380.0, "ciphertexts not uniform: {x_ct}");
    assert!(x_clear > 1000.0, "the test must be able to tell: {x_clear}");
}

/// Moving a message from member A to member B (with the sender's secret randomness moving
/// with it) leaves every round's output unchanged, byte for byte: the output does not depend
/// on which identity or roster index sent. (The epoch's content key is the keyholder's draw —
/// member 1, `P[round mod |P|]` of round 1 — and not the sender's, so the coupling leaves the
/// keyholder's randomness where it is: A and B are never member 1.)
#[test]
fn moving_a_message_between_members_leaves_outputs_unchanged() {
    for (n, a, b, seed) in [
        (3usize, 0usize, 2usize, 21u64),
        (5, 0, 3, 22),
        (16, 4, 11, 23),
    ] {
        let outputs = |sender: usize| {
            let tg = TestGroup::new(n, params(128), seed).unwrap();
            let mut net = Network::new(&tg, seed, LinkModel::default());
            if sender == b {
                // World 2: B runs with the randomness A had in world 1, and vice versa.
                for (who, rng_of) in [(a, b), (b, a)] {
                    net.members[who] = Some(
                        Member::new(
                            tg.group.clone(),
                            MemberId(who as u32),
                            IdentityKey::from_secret_bytes(&tg.member_keys[who].secret_bytes()),
                            derive_seed(seed, "member-rng", rng_of as u64),
                            Box::new(MemoryStore::default()),
                        )
                        .unwrap(),
                    );
                }
            }
            net.members[sender]
                .as_mut()
                .unwrap()
                .submit(b"who sent this? nobody can tell, and here is the proof.")
                .unwrap();
            net.start();
            net.run_rounds(12).unwrap();
            let mut per_member = Vec::new();
            for ev in &net.member_events {
                let outs: Vec<Vec<u8>> = ev
                    .iter()
                    .filter_map(|e| match e {
                        MemberEvent::RoundCompleted { cleartext, .. } => Some(cleartext.to_vec()),
                        _ => None,
                    })
                    .collect();
                per_member.push(outs);
            }
            (per_member, net.delivered(0))
        };
        let (w1, d1) = outputs(a);
        let (w2, d2) = outputs(b);
        assert_eq!(d1.len(), 1, "n={n}: delivered in world 1");
        assert_eq!(d1, d2, "n={n}: same deliveries");
        assert!(w1[0].len() >= 10);
        assert_eq!(w1, w2, "n={n}: every output of every round is identical");
    }
}

/// A relay that shows one member a different history (a different signed Open for the same
/// round) gets garbage: no slot of any round that member took part in comes out intact, nothing
/// is delivered from such a round, honest members hold the two signed Opens as evidence, and
/// the blame that follows the garbage convicts the relay.
#[test]
fn equivocating_relay_yields_garbage_not_attribution() {
    for (n, victim, seed) in [(3usize, 1u32, 31u64), (5, 0, 32), (16, 7, 33)] {
        let tg = TestGroup::new(n, params(128), seed).unwrap();
        let mut net = Network::with_relay_faults(
            &tg,
            seed,
            LinkModel::default(),
            vec![RelayFault::Equivocate { victim }],
        );
        for i in 0..n {
            net.members[i]
                .as_mut()
                .unwrap()
                .submit(format!("message from somebody #{i}").as_bytes())
                .unwrap();
        }
        net.start();
        // Run until the group stops (the relay is convicted and members refuse it).
        let _ = net.drive_bounded(200_000, |_| false);
        let mut equivocation_seen = 0;
        let mut convictions = 0;
        let mut garbage_rounds = 0;
        for (i, ev) in net.member_events.iter().enumerate() {
            for e in ev {
                match e {
                    MemberEvent::RelayEquivocated { opens, .. } => {
                        assert_eq!(opens.len(), 2);
                        assert_ne!(opens[0], opens[1]);
                        assert!(opens.iter().all(|o| o.verify(tg.group.relay_key())));
                        equivocation_seen += 1;
                    }
                    MemberEvent::RoundCompleted { round, .. } if *round == 1 => {
                        // Round 1 had the victim present. Members convict the relay from the
                        // Record that names both Opens and never send their blinding seed, so
                        // the round is never unblinded (not even into garbage).
                        garbage_rounds += 1;
                    }
                    MemberEvent::Delivered { round, .. } => {
                        panic!("member {i}: delivery from a poisoned round {round}");
                    }
                    MemberEvent::Verdict { verdict, .. } => {
                        assert_eq!(verdict.culprit, Some(Culprit::Relay), "member {i}");
                        assert_eq!(verdict.rule, Rule::RelayEquivocation);
                        convictions += 1;
                    }
                    _ => {}
                }
            }
        }
        assert!(
            equivocation_seen >= n - 1,
            "n={n}: evidence at the honest members"
        );
        assert_eq!(
            garbage_rounds, 0,
            "n={n}: nobody unblinds an equivocated round"
        );
        assert!(
            convictions >= n - 1,
            "n={n}: the relay is convicted by the honest members"
        );
    }
}
