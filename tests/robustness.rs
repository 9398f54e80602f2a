//! Malformed, oversized, stale, duplicate and wrongly signed input: a typed error, never a
//! panic, and the state left intact (the run then goes on and delivers everything).

mod common;

use common::*;
use dcnet::crypto::identity::IdentityKey;
use dcnet::protocol::{MemberId, ProtocolError, Time};
use dcnet::sim::{Delivery, LinkModel, Network, TestGroup};
use dcnet::wire::{self, Body, Open, Sender, Signed, WireError, decode_frame};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::cell::RefCell;
use std::rc::Rc;

#[test]
fn bad_input_is_refused_and_the_run_continues() {
    let n = 4;
    let tg = TestGroup::new(n, params(128), 5).unwrap();
    let mut net = Network::new(&tg, 5, LinkModel::default());
    let to_member0: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let from_member2: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let (a, b) = (to_member0.clone(), from_member2.clone());
    net.hook = Some(Box::new(move |d| {
        match d {
            Delivery::ToMember { to: 0, frame } => a.borrow_mut().push(frame.clone()),
            Delivery::ToRelay { from: 2, frame } => b.borrow_mut().push(frame.clone()),
            _ => {}
        }
        true
    }));
    let script: Vec<(usize, Vec<u8>)> = (0..n).map(|i| (i, vec![i as u8 + 1; 300])).collect();
    for (w, m) in &script {
        net.members[*w].as_mut().unwrap().submit(m).unwrap();
    }
    net.start();
    net.run_rounds(3).unwrap();
    let hw = net.members[0].as_ref().unwrap().high_water();
    let now = net.now();
    let frames = to_member0.borrow().clone();
    let open_frame = frames
        .iter()
        .rev()
        .find(|f| matches!(decode_frame(f).map(|f| f.body), Ok(Body::Open(_))))
        .unwrap()
        .clone();
    let m0 = net.members[0].as_mut().unwrap();

    // Random garbage and every truncation of a real frame.
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    for len in [0usize, 1, 7, 64, 500, 5000] {
        for _ in 0..20 {
            let mut g = vec![0u8; len];
            rng.fill_bytes(&mut g);
            assert!(m0.handle_message(now, &g).is_err());
        }
    }
    for cut in 0..open_frame.len() {
        assert!(matches!(
            m0.handle_message(now, &open_frame[..cut]),
            Err(ProtocolError::Wire(_))
        ));
    }
    // Oversized.
    assert!(matches!(
        m0.handle_message(now, &vec![0u8; wire::MAX_FRAME + 1]),
        Err(ProtocolError::Wire(WireError::TooLarge(_)))
    ));
    // Replay of an old Open: the round does not increase.
    assert!(matches!(
        m0.handle_message(now, &open_frame),
        Err(ProtocolError::BadRound { .. }) | Err(ProtocolError::Unexpected { .. })
    ));
    // Every frame the member received so far, replayed: all refused.
    for f in &frames {
        assert!(m0.handle_message(now, f).is_err(), "replay accepted");
    }
    // A flipped signature bit; a forged signer; another group; a member posing as the relay.
    let f = decode_frame(&open_frame).unwrap();
    let Body::Open(body) = f.body.clone() else {
        unreachable!()
    };
    let mut flipped = f.clone();
    flipped.sig[10] ^= 1;
    assert!(matches!(
        m0.handle_message(now, &wire::encode(&flipped)),
        Err(ProtocolError::BadSignature(_))
    ));
    let fresh = |key: &IdentityKey, group: [u8; 32], sender: Sender| {
        Signed::sign(
            key,
            group,
            f.header.epoch,
            hw + 1,
            sender,
            Open { ..body.clone() },
        )
        .into_frame()
    };
    let mallory = IdentityKey::from_secret_bytes(&[66; 32]);
    assert!(matches!(
        m0.handle_message(now, &fresh(&mallory, *tg.group.id(), Sender::Relay)),
        Err(ProtocolError::BadSignature(_))
    ));
    assert!(matches!(
        m0.handle_message(now, &fresh(&tg.relay_key, [9; 32], Sender::Relay)),
        Err(ProtocolError::WrongGroup)
    ));
    assert!(matches!(
        m0.handle_message(
            now,
            &fresh(&tg.member_keys[1], *tg.group.id(), Sender::Member(1))
        ),
        Err(ProtocolError::WrongSender(_))
    ));
    assert_eq!(
        m0.high_water(),
        hw,
        "nothing refused moved the high-water mark"
    );

    // The relay: garbage, a frame from member 2 presented as member 3's, and duplicates.
    let now = net.now();
    for len in [0usize, 3, 100, 4000] {
        let mut g = vec![0u8; len];
        rng.fill_bytes(&mut g);
        assert!(net.relay.handle_message(now, MemberId(1), &g).is_err());
    }
    let from2 = from_member2.borrow().clone();
    for f in &from2 {
        assert!(matches!(
            net.relay.handle_message(now, MemberId(3), f),
            Err(ProtocolError::WrongSender(_))
        ));
        assert!(
            net.relay.handle_message(now, MemberId(2), f).is_err(),
            "duplicate accepted"
        );
    }
    assert!(matches!(
        net.relay.handle_message(Time::ZERO, MemberId(9), &from2[0]),
        Err(ProtocolError::WrongSender(_))
    ));

    // State intact: the run goes on and delivers everything.
    net.hook = None;
    let r = net.drive_bounded(200_000, |net| {
        (0..n).all(|i| net.delivered(i).len() == script.len())
    });
    assert!(r.is_ok(), "stuck after bad input: {r:?}");
    check_delivery(&net, n, &script, 5);
}

#[test]
fn a_member_never_commits_twice_for_one_round() {
    // Deliver every frame to member 1 twice: the second Open of each round is refused, so the
    // relay sees exactly one commitment per member per round.
    let n = 3;
    let tg = TestGroup::new(n, params(128), 8).unwrap();
    let mut net = Network::new(&tg, 8, LinkModel::default());
    let commits: Rc<RefCell<Vec<(u32, u64)>>> = Rc::default();
    let c = commits.clone();
    net.hook = Some(Box::new(move |d| {
        if let Delivery::ToRelay { from, frame } = d {
            if let Ok(f) = decode_frame(frame) {
                if matches!(f.body, Body::Commit(_)) {
                    c.borrow_mut().push((from, f.header.round));
                }
            }
        }
        true
    }));
    net.start();
    net.run_rounds(2).unwrap();
    // Replay every Open member 1 could have seen, now, directly.
    let now = net.now();
    let m1 = net.members[1].as_mut().unwrap();
    let hw = m1.high_water();
    for round in 1..=hw {
        let open = Signed::sign(
            &tg.relay_key,
            *tg.group.id(),
            1,
            round,
            Sender::Relay,
            Open {
                view_prev: [0; 32],
                present: vec![0, 1, 2],
                last: None,
                alloc: None,
                voids: vec![],
                commit_ms: 1,
                last_case: None,
            },
        );
        assert!(matches!(
            m1.handle_message(now, &open.into_frame()),
            Err(ProtocolError::BadRound { .. }) | Err(ProtocolError::Unexpected { .. })
        ));
    }
    net.run_rounds(3).unwrap();
    let mut seen = commits.borrow().clone();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        total,
        "a member signed two commitments for one round"
    );
}

/// Reveal and Unblind travel unsigned (docs/PROTOCOL.md §2.10): the relay takes the canonical
/// all-zero signature only, and the same Reveal with any other signature bytes is refused.
#[test]
fn the_relay_refuses_an_unsigned_kind_with_a_signature() {
    let tg = TestGroup::new(3, params(96), 4).unwrap();
    let mut net = Network::new(&tg, 4, LinkModel::default());
    let held: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let h = held.clone();
    net.hook = Some(Box::new(move |d| {
        if let Delivery::ToRelay { from: 1, frame } = d {
            if matches!(decode_frame(frame).map(|f| f.body), Ok(Body::Reveal(_)))
                && h.borrow().is_none()
            {
                *h.borrow_mut() = Some(frame.clone());
                return false; // held back: delivered by hand below
            }
        }
        true
    }));
    net.start();
    let r = net.drive_bounded(100_000, |_| held.borrow().is_some());
    assert!(r.is_ok(), "no Reveal from member 1: {r:?}");
    net.hook = None;
    let frame = held.borrow().clone().unwrap();
    let f = decode_frame(&frame).unwrap();
    assert_eq!(f.sig, [0u8; 64], "a Reveal travels unsigned");
    let mut signed = f.clone();
    signed.sig[7] = 1;
    let now = net.now();
    assert!(
        net.relay
            .handle_message(now, MemberId(1), &wire::encode(&signed))
            .is_err(),
        "a Reveal with signature bytes was accepted"
    );
    assert!(net.relay.handle_message(now, MemberId(1), &frame).is_ok());
}
