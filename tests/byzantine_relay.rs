//! Issue 8 regression tests: a relay that signs whatever it likes, scripted message by message
//! against real `Member` engines (tests/common/byz.rs). Each test replays one finding and
//! asserts, from the relay's side, what it could learn.

#[path = "common/byz.rs"]
mod byz;

use byz::{ByzRelay, blame_params, fragment_ids, sender_set};
use dcnet::protocol::blame::{Culprit, Rule};
use dcnet::protocol::{MemberEvent, ProtocolError};
use dcnet::wire::{
    Accuse, BlameStart, Body, CommitSet, DisclosedByte, EpochKey, EpochKeys, Evidence, Kind,
    Record, Sender, Signed,
};
use std::collections::BTreeSet;

const SECRET: &[u8] = b"meet at the north gate at nine";

/// A group of `n`, epoch 1 with everyone; member 0 has queued SECRET. Runs honest rounds until
/// SECRET's fragment has gone out (its id is returned) plus one more round.
fn with_secret_out(n: usize, seed: u64) -> (ByzRelay, [u8; 8]) {
    let mut b = ByzRelay::new(n, blame_params(), seed);
    let all: Vec<u32> = (0..n as u32).collect();
    b.start_epoch(&all);
    b.members[0].submit(SECRET).unwrap();
    for _ in 0..40 {
        let out = b.round(&all);
        assert!(out.clear.is_some());
        if let Some(id) = fragment_ids(&b.layout, &out).first() {
            let id = *id;
            b.round(&all);
            return (b, id);
        }
    }
    panic!("the secret never went out");
}

/// Finding 1: a BlameStart whose accusation does not check out (signed by the relay, sender
/// Relay, or from outside the roster) naming positions inside the sender's slot. Members must
/// disclose nothing there.
#[test]
fn f1_no_disclosure_at_relay_chosen_positions() {
    for variant in 0..4 {
        let (mut b, _) = with_secret_out(4, 11 + variant);
        let rv = b.round_view();
        let last = b.history.last().unwrap().clone();
        // Positions inside every slot (the relay wants m_i there).
        let positions: Vec<u64> = (0..b.layout.slots)
            .map(|s| b.layout.slot(s).start as u64 + 20)
            .collect();
        let accuse = Accuse {
            record: last.record.digest(),
            slot: 0,
            alloc_round: last.round - 1,
            cell: 0,
            gamma: [7; 32],
            proof: dcnet::crypto::dleq::DleqProof {
                c: [0; 32],
                s: [0; 32],
            },
            slot_key: [0; 32],
        };
        let accusation = match variant {
            // Relay-signed, claiming to be member 1.
            0 => {
                let mut a = b.sign(last.round, accuse);
                a.header.sender = Sender::Member(1);
                Some(a)
            }
            // Sender = Relay.
            1 => Some(b.sign(last.round, accuse)),
            // A member index outside the roster.
            2 => {
                let mut a = b.sign(last.round, accuse);
                a.header.sender = Sender::Member(99);
                Some(a)
            }
            // No accusation at all, positions the relay chose.
            _ => None,
        };
        let start = b.sign(
            last.round,
            BlameStart {
                record: rv.record_digest,
                accusation,
                positions,
            },
        );
        let all: Vec<u32> = (0..4).collect();
        b.send(&all, &start.into_frame());
        assert_eq!(
            b.sent_kind(Kind::Disclose),
            0,
            "variant {variant}: disclosed"
        );
        for i in 0..4 {
            let stopped = b.faulty(i)
                || b.events[i].iter().any(|e| {
                    matches!(e, MemberEvent::Verdict { verdict, .. }
                        if verdict.culprit == Some(Culprit::Relay) && verdict.rule == Rule::BadBlameStart)
                });
            assert!(
                stopped,
                "variant {variant}: member {i} still trusts the relay"
            );
        }
    }
}

/// A case: round with damage against zero (the relay XORs a byte into an unallocated slot of a
/// round without allocation), honest BlameStart, honest disclosures collected.
fn damaged_case(
    n: usize,
    seed: u64,
) -> (
    ByzRelay,
    Signed<BlameStart>,
    Vec<Signed<dcnet::wire::Disclose>>,
) {
    let mut b = ByzRelay::new(n, blame_params(), seed);
    let all: Vec<u32> = (0..n as u32).collect();
    b.start_epoch(&all);
    let slot = b.layout.slot(1).start + 3;
    // Round 1 has no allocation: every slot must be zero.
    b.round_with(&all, |x| x[slot] ^= 0x5a, &[]);
    let rv = b.round_view();
    let positions = rv.positions(None);
    assert_eq!(positions, vec![slot as u64]);
    let start = b.sign(
        b.round,
        BlameStart {
            record: rv.record_digest,
            accusation: None,
            positions,
        },
    );
    b.send(&all, &start.clone().into_frame());
    let d = b.disclosures();
    assert_eq!(d.len(), n, "every member discloses at the checked position");
    (b, start, d)
}

/// Finding 2: a DisclosureSet padded with unsigned copies whose pad bytes are flipped. Members
/// must reveal no pair key.
#[test]
fn f2_forged_disclosures_reveal_no_keys() {
    let n = 4;
    let (mut b, start, mut d) = damaged_case(n, 21);
    let all: Vec<u32> = (0..n as u32).collect();
    let mut forged = Vec::new();
    for x in &d {
        let mut f = x.clone();
        for byte in &mut f.body.bytes {
            for p in &mut byte.pads {
                p.1 ^= 0xff;
            }
        }
        f.sig = [0; 64];
        forged.push(f);
    }
    d.extend(forged);
    let set = b.disclosure_set(start.clone(), d.clone(), &all);
    b.send(&all, &set.into_frame());
    assert_eq!(b.sent_kind(Kind::KeyReveal), 0, "a pair key left a member");
    assert!((0..n).all(|i| b.faulty(i)), "members distrust the relay");

    // Forged pads under a valid-looking order but only for one member's view: also refused.
    let (mut b, start, mut d) = damaged_case(n, 22);
    for byte in &mut d[1].body.bytes {
        let DisclosedByte { pads, .. } = byte;
        pads[0].1 ^= 1;
    }
    let set = b.disclosure_set(start, d, &all);
    b.send(&all, &set.into_frame());
    assert_eq!(
        b.sent_kind(Kind::KeyReveal),
        0,
        "keys revealed on an altered disclosure"
    );
}

/// Control for finding 2: the honest set convicts the tampering relay, with no key revealed.
#[test]
fn f2_control_honest_set_convicts_the_tampering_relay() {
    let n = 4;
    let (mut b, start, d) = damaged_case(n, 23);
    let all: Vec<u32> = (0..n as u32).collect();
    let set = b.disclosure_set(start, d, &all);
    b.send(&all, &set.into_frame());
    assert_eq!(b.sent_kind(Kind::KeyReveal), 0);
    for i in 0..n {
        assert!(
            b.events[i]
                .iter()
                .any(|e| matches!(e, MemberEvent::Verdict { verdict, .. }
            if verdict.culprit == Some(Culprit::Relay) && verdict.rule == Rule::RecordMismatch))
        );
    }
}

/// Finding 3: the relay reads the sender's slot, then claims a seed was withheld, so the
/// sender re-sends; two epochs with present sets that each clear the floor ({0,1,2,3}, then
/// {0,1,4,5}) would intersect to {0,1}, below it. (The version used floor-sized sets,
/// {0,1,2} then {0,3,4} at N = 5; since a piece now goes out only with one member to spare
/// for a possible accusation, floor-sized sets send nothing at all.) The relay's sender set
/// must never fall below the floor.
#[test]
fn f3_every_exposure_counts_across_epochs() {
    let n = 6;
    let mut b = ByzRelay::new(n, blame_params(), 31);
    let floor = n - b.tg.group.params().tolerance as usize;
    assert_eq!(floor, 3);
    let first = [0u32, 1, 2, 3];
    b.start_epoch(&first);
    b.members[0].submit(SECRET).unwrap();
    b.round(&first);
    for _ in 0..6 {
        // Every data round: the relay gets every seed, reads the slots, and tells members
        // that member 1 withheld.
        b.round_with(&first, |_| {}, &[1]);
    }
    b.start_epoch(&[0, 1, 4, 5]);
    for _ in 0..30 {
        b.round(&[0, 1, 4, 5]);
    }
    let mut ids = BTreeSet::new();
    for r in &b.all_rounds {
        ids.extend(fragment_ids(&b.layout, r));
    }
    assert!(!ids.is_empty(), "the relay read the fragment at least once");
    for id in ids {
        let set = sender_set(&b.all_rounds, &b.layout, id).unwrap();
        assert!(
            set.len() >= floor,
            "the relay narrowed the sender of a message to {set:?} (floor {floor})"
        );
    }
}

/// Finding 4: the relay breaks every allocated slot and never runs blame. Members accept no
/// new Open while the case is open, and treat the relay as faulty at the deadline.
#[test]
fn f4_blame_is_not_optional_for_the_relay() {
    let (mut b, _) = with_secret_out(4, 41);
    let all: Vec<u32> = (0..4).collect();
    let slots: Vec<usize> = (0..b.layout.slots)
        .map(|s| b.layout.slot(s).start)
        .collect();
    b.round_with(
        &all,
        |x| {
            for &s in &slots {
                x[s + 1] ^= 0x33;
            }
        },
        &[],
    );
    let commits_before = b.sent_kind(Kind::Commit);
    let open = b.next_open(&all);
    let res = b.send(&all, &open.into_frame());
    assert!(
        res.iter().all(|r| r.is_err()),
        "an Open was accepted during a case"
    );
    assert_eq!(b.sent_kind(Kind::Commit), commits_before, "someone re-sent");
    b.advance(60_000);
    for i in 0..4 {
        assert!(
            b.faulty(i),
            "member {i} keeps trusting a relay that skipped blame"
        );
        assert!(
            b.events[i]
                .iter()
                .any(|e| matches!(e, MemberEvent::RelayFaulty { .. })),
            "member {i} says so"
        );
    }
}

/// Finding 5: a colluder convicted (here of equivocation) is put back by the relay through an
/// EpochKeys carrying its key, or an Open naming it. Members refuse both.
#[test]
fn f5_a_convicted_colluder_is_not_kept() {
    let n = 5;
    let mut b = ByzRelay::new(n, blame_params(), 51);
    let all: Vec<u32> = (0..n as u32).collect();
    b.start_epoch(&all);
    b.round(&all);
    // Colluder 4 signs two different commitments for one round.
    let open = b.next_open(&all);
    let c1 = b.sign_as(
        4,
        b.round,
        dcnet::wire::Commit {
            open: open.digest(),
            ciphertext: [1; 32],
            blinding: [2; 32],
            content: None,
        },
    );
    let mut c2b = c1.body.clone();
    c2b.blinding[0] ^= 1;
    let c2 = b.sign_as(4, b.round, c2b);
    let ev = b.sign(b.round, Evidence { commits: (c1, c2) });
    b.send(&all, &ev.into_frame());
    for i in 0..4 {
        assert!(
            b.members[i].convicted().contains(&4),
            "member {i} convicted 4"
        );
    }
    // The same epoch: an Open naming 4 is refused.
    let open = b.next_open(&all);
    let res = b.send(&[0, 1, 2, 3], &open.into_frame());
    assert!(
        res.iter().all(|r| r.is_err()),
        "Open with a convicted member accepted"
    );
    // A new epoch that leaves 4 out of the request but slips its key into EpochKeys.
    b.epoch += 1;
    let req = b.sign(
        0,
        dcnet::wire::EpochRequest {
            members: vec![0, 1, 2, 3],
            last_case: None,
        },
    );
    b.send(&[0, 1, 2, 3], &req.into_frame());
    let mut keys: Vec<Signed<EpochKey>> = b
        .take(Kind::EpochKey)
        .into_values()
        .map(|f| match f.body {
            Body::EpochKey(k) => dcnet::wire::typed(f.header, k, f.sig),
            _ => unreachable!(),
        })
        .collect();
    let colluder_key = dcnet::crypto::keys::EpochSecret::from_uniform_bytes(&[9; 64])
        .unwrap()
        .public();
    keys.push(b.sign_as(4, 0, EpochKey { key: colluder_key }));
    let ek = b.sign(0, EpochKeys { keys });
    let res = b.send(&[0, 1, 2, 3], &ek.into_frame());
    assert!(
        res.iter().all(|r| r.is_err()),
        "EpochKeys with a convicted member accepted"
    );
    for i in 0..4 {
        assert_eq!(
            b.members[i].epoch(),
            1,
            "member {i} entered the colluder's epoch"
        );
    }
}

/// Finding 9: bounded work. A BlameStart with a million positions and a Record listing a
/// thousand Opens are refused before any per-item work.
#[test]
fn f9_oversized_blame_and_record_are_refused() {
    let (mut b, _) = with_secret_out(3, 91);
    let rv = b.round_view();
    let start = b.sign(
        b.round,
        BlameStart {
            record: rv.record_digest,
            accusation: None,
            positions: (0..1_000_000u64).collect(),
        },
    );
    b.send(&[0, 1, 2], &start.into_frame());
    assert_eq!(b.sent_kind(Kind::Disclose), 0);

    let mut b = ByzRelay::new(3, blame_params(), 92);
    b.start_epoch(&[0, 1, 2]);
    let open = b.next_open(&[0, 1, 2]);
    b.send(&[0, 1, 2], &open.clone().into_frame());
    let commits: Vec<_> = b
        .take(Kind::Commit)
        .into_values()
        .map(|f| match f.body {
            Body::Commit(c) => dcnet::wire::typed(f.header, c, f.sig),
            _ => unreachable!(),
        })
        .collect();
    let cs = b.sign(
        b.round,
        CommitSet {
            open: open.digest(),
            commits,
        },
    );
    b.send(&[0, 1, 2], &cs.clone().into_frame());
    b.take(Kind::Reveal);
    let record = b.sign(
        b.round,
        Record {
            commit_set: cs,
            opens: vec![open; 1000],
            xor: vec![0; b.layout.len()],
        },
    );
    let res = b.send(&[0, 1, 2], &record.into_frame());
    assert!(
        res.iter()
            .all(|r| matches!(r, Err(ProtocolError::Invalid { .. })))
    );
    assert_eq!(b.sent_kind(Kind::Unblind), 0);
}

/// Finding 10: the relay shows two members a set that leaves member 3 out (unresolved) and the
/// others the full set (relay convicted). Members that go on together hold the same verdict:
/// the next Open names one conclusion, and the other side refuses it.
#[test]
fn f10_split_disclosure_sets_do_not_go_on_together() {
    let n = 4;
    let (mut b, start, d) = damaged_case(n, 101);
    let all: Vec<u32> = (0..n as u32).collect();
    let partial: Vec<_> = d
        .iter()
        .filter(|x| x.header.sender != Sender::Member(3))
        .cloned()
        .collect();
    let set_a = b.disclosure_set(start.clone(), partial, &all);
    let set_b = b.disclosure_set(start, d, &all);
    b.send(&[0, 1], &set_a.clone().into_frame());
    b.send(&[2, 3], &set_b.into_frame());
    // The relay goes on with conclusion A.
    b.last_case = Some(set_a.digest());
    let open = b.next_open(&all);
    let res = b.send(&all, &open.into_frame());
    let accepted: Vec<usize> = (0..n).filter(|&i| res[i].is_ok()).collect();
    let verdict_of = |i: usize| {
        b.events[i].iter().rev().find_map(|e| match e {
            MemberEvent::Verdict { verdict, .. } => Some(verdict.clone()),
            _ => None,
        })
    };
    for &i in &accepted {
        assert_eq!(
            verdict_of(i),
            verdict_of(accepted[0]),
            "member {i} disagrees"
        );
    }
    assert_eq!(
        accepted,
        vec![0, 1],
        "only the side that saw conclusion A goes on"
    );
}

/// Finding 2, the other way round: a colluder (member 3) signs a pad byte that contradicts
/// honest member 0; member 0 reveals `K_03` as it must, and the relay drops that reveal so the
/// dispute stays unresolved (the liar escapes, the honest member is excluded). The honest
/// member sees its reveal missing and distrusts the relay instead of accepting the verdict.
#[test]
fn f2_a_dropped_key_reveal_is_not_accepted() {
    let n = 4;
    let (mut b, start, mut d) = damaged_case(n, 24);
    let all: Vec<u32> = (0..n as u32).collect();
    let k = d
        .iter()
        .position(|x| x.header.sender == Sender::Member(3))
        .unwrap();
    let mut body = d[k].body.clone();
    for byte in &mut body.bytes {
        if let Some(p) = byte.pads.iter_mut().find(|p| p.0 == 0) {
            p.1 ^= 0x10;
        }
    }
    d[k] = b.sign_as(3, b.round, body);
    let set = b.disclosure_set(start, d, &all);
    b.send(&[0, 1, 2], &set.clone().into_frame());
    let reveals = b.take(Kind::KeyReveal);
    assert_eq!(
        reveals.keys().copied().collect::<Vec<_>>(),
        vec![0],
        "only member 0, in dispute with the colluder, reveals"
    );
    let rs = b.sign(
        b.round,
        dcnet::wire::RevealSet {
            set: set.digest(),
            reveals: vec![],
        },
    );
    let res = b.send(&[0, 1, 2], &rs.into_frame());
    assert!(
        res[0].is_err() && b.faulty(0),
        "member 0 accepted a set without its reveal"
    );
    assert!(
        !b.events[0]
            .iter()
            .any(|e| matches!(e, MemberEvent::Verdict { verdict, .. }
            if verdict.unresponsive.contains(&0))),
        "member 0 took a verdict excluding it for a reveal the relay dropped"
    );
}
