//! Attack review 11 (80793f1, f30c82a, fa015b6 and the `alloc` memo: one parse of a relay
//! broadcast, with its decoded CommitSet/Record and its ZSet memo, shared by every receiver).
//!
//! `holds_*` tests record attacks that were tried and held. Every ZSet here is handed to
//! members as ONE `ParsedFrame` cloned for each receiver (as `dcnet::sim::Network` does), in
//! an order chosen so that the member whose view differs fills the shared memo first.

#[path = "common/byz.rs"]
mod byz;
mod common;

use byz::*;
use dcnet::crypto::pad::{Keystream, StreamKey};
use dcnet::protocol::{MemberEvent, ProtocolError};
use dcnet::wire::{self, Body, CommitSet, Kind, ParsedFrame, Record, Signed, ZSet};
use std::collections::BTreeMap;

/// A ZSet's `(member, seed)` list.
type Seeds = Vec<(u32, [u8; 32])>;

/// Hands one parse (cloned) to each of `to`, in order; drains what they send and report.
fn deliver(b: &mut ByzRelay, to: &[u32], p: &ParsedFrame) -> Vec<Result<(), ProtocolError>> {
    let mut out = Vec::new();
    for &i in to {
        let r = b.members[i as usize].handle_parsed(b.now, p.clone());
        if let Err(e) = &r {
            b.errors.push((i, e.clone()));
        }
        out.push(r);
        while let Some(f) = b.members[i as usize].poll_transmit() {
            let fr = wire::decode_frame(&f).unwrap();
            b.seen.push((i, fr.clone()));
            b.inbox.push((i, fr));
        }
        while let Some(e) = b.members[i as usize].poll_event() {
            b.events[i as usize].push(e);
        }
    }
    out
}

fn parse(frame: &[u8]) -> ParsedFrame {
    ParsedFrame::parse(frame).unwrap()
}

/// A round run up to (not including) the ZSet: Open, CommitSet, Reveals, then the Records
/// `records(true_xor)` gives, each sent (as one shared parse) to its members.
struct Pending {
    round: u64,
    present: Vec<u32>,
    records: Vec<Signed<Record>>,
    seeds: BTreeMap<u32, [u8; 32]>,
}

fn run_to_zset(
    b: &mut ByzRelay,
    present: &[u32],
    records: impl FnOnce(
        &ByzRelay,
        Signed<CommitSet>,
        Signed<wire::Open>,
        Vec<u8>,
    ) -> Vec<(Signed<Record>, Vec<u32>)>,
) -> Pending {
    let open = b.next_open(present);
    let round = b.round;
    let open_hash = open.digest();
    let r = deliver(b, present, &parse(&open.clone().into_frame()));
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    let commits = b.take_commits(present);
    let cs = b.sign(
        round,
        CommitSet {
            open: open_hash,
            commits,
        },
    );
    let r = deliver(b, present, &parse(&cs.clone().into_frame()));
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    let xor = b.take_xor();
    let recs = records(b, cs, open, xor);
    let mut out = Vec::new();
    for (rec, to) in recs {
        let r = deliver(b, &to, &parse(&rec.clone().into_frame()));
        assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
        out.push(rec);
    }
    let seeds: BTreeMap<u32, [u8; 32]> = b
        .take(Kind::Unblind)
        .iter()
        .map(|(i, f)| match &f.body {
            Body::Unblind(u) => (*i, u.z),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(seeds.len(), present.len());
    Pending {
        round,
        present: present.to_vec(),
        records: out,
        seeds,
    }
}

fn honest_record(
    b: &ByzRelay,
    cs: Signed<CommitSet>,
    open: Signed<wire::Open>,
    xor: Vec<u8>,
) -> Signed<Record> {
    b.sign(
        b.round,
        Record {
            commit_set: cs,
            opens: vec![open],
            xor,
        },
    )
}

/// What a member computes alone from `rec` and `seeds`: xor ⊕ every seed's pad.
fn expected_clear(rec: &Signed<Record>, round: u64, seeds: &BTreeMap<u32, [u8; 32]>) -> Vec<u8> {
    let mut c = rec.body.xor.clone();
    let mut ks = Keystream::new();
    for z in seeds.values() {
        ks.xor_into(&StreamKey::from_bytes(*z), round, 0, &mut c);
    }
    c
}

fn cleartext(b: &ByzRelay, i: u32, round: u64) -> Option<Vec<u8>> {
    b.events[i as usize].iter().find_map(|e| match e {
        MemberEvent::RoundCompleted {
            round: r,
            cleartext,
            ..
        } if *r == round => Some(cleartext.to_vec()),
        _ => None,
    })
}

fn zset(b: &ByzRelay, round: u64, record: &Signed<Record>, seeds: Vec<(u32, [u8; 32])>) -> Vec<u8> {
    b.sign(
        round,
        ZSet {
            record: record.digest(),
            seeds,
            missing: vec![],
        },
    )
    .into_frame()
}

/// Book-keeping so that `ByzRelay::round` can carry on after a hand-run round all completed.
fn settle(b: &mut ByzRelay, p: &Pending, rec: &Signed<Record>) {
    b.chain = dcnet::crypto::keys::view_step(&b.chain, p.round, &rec.body.opens[0].digest());
    b.last = Some((p.round, rec.digest()));
    b.last_case = None;
    b.alloc_src = Some((
        p.round,
        rec.digest(),
        p.present.clone(),
        expected_clear(rec, p.round, &p.seeds),
    ));
}

fn setup(n: usize, seed: u64) -> (ByzRelay, Vec<u32>) {
    let mut b = ByzRelay::new(n, blame_params(), seed);
    let all: Vec<u32> = (0..n as u32).collect();
    b.start_epoch(&all);
    for _ in 0..3 {
        assert!(b.round(&all).completed);
    }
    (b, all)
}

/// Attack 1: the relay equivocates the Record (R1 to {0,1}, R2 with another XOR to {2,3}),
/// then broadcasts one ZSet naming R2. Member 2 (holding R2) fills the shared memo first; 0
/// and 1 must refuse the ZSet (it names another Record), not take 2's output. Then a ZSet
/// naming R1 (its own parse, first offered to 3, who refuses) completes 0 and 1 with R1's
/// cleartext, and 3 completes with R2's from the first parse delivered late.
#[test]
fn holds_shared_zset_after_record_equivocation() {
    let (mut b, all) = setup(4, 1101);
    let p = run_to_zset(&mut b, &all, |b, cs, open, xor| {
        let r1 = honest_record(b, cs.clone(), open.clone(), xor.clone());
        let mut x2 = xor;
        x2[7] ^= 0x5a;
        x2[100] ^= 0xff;
        let r2 = honest_record(b, cs, open, x2);
        vec![(r1, vec![0, 1]), (r2, vec![2, 3])]
    });
    let (r1, r2) = (p.records[0].clone(), p.records[1].clone());
    let seeds: Vec<(u32, [u8; 32])> = p.seeds.iter().map(|(i, z)| (*i, *z)).collect();
    let z2 = parse(&zset(&b, p.round, &r2, seeds.clone()));
    let res = deliver(&mut b, &[2, 0, 1], &z2);
    assert!(res[0].is_ok(), "{res:?}");
    for r in &res[1..] {
        assert!(
            matches!(r, Err(ProtocolError::Invalid { reason, .. }) if reason.contains("another Record")),
            "{r:?}"
        );
    }
    assert_eq!(
        cleartext(&b, 2, p.round),
        Some(expected_clear(&r2, p.round, &p.seeds))
    );
    assert_eq!(cleartext(&b, 0, p.round), None);
    assert_eq!(cleartext(&b, 1, p.round), None);
    let z1 = parse(&zset(&b, p.round, &r1, seeds));
    let res = deliver(&mut b, &[3, 0, 1], &z1);
    assert!(
        res[0].is_err() && res[1].is_ok() && res[2].is_ok(),
        "{res:?}"
    );
    let want1 = expected_clear(&r1, p.round, &p.seeds);
    assert_eq!(cleartext(&b, 0, p.round), Some(want1.clone()));
    assert_eq!(cleartext(&b, 1, p.round), Some(want1));
    // The first parse, late, for 3: R2's cleartext (its own Record), from 2's memo.
    let res = deliver(&mut b, &[3], &z2);
    assert!(res[0].is_ok(), "{res:?}");
    assert_eq!(
        cleartext(&b, 3, p.round),
        Some(expected_clear(&r2, p.round, &p.seeds))
    );
    assert_ne!(cleartext(&b, 3, p.round), cleartext(&b, 0, p.round));
}

/// Attack 2: a member whose pads' mode differs (modeled crypto) fills the shared memo first;
/// the real members must compute their own cleartext. And the other way round: a modeled
/// member served after real ones computes XOR alone.
#[test]
fn holds_shared_zset_mixed_pad_modes() {
    for modeled_first in [true, false] {
        let (mut b, all) = setup(4, 1102 + modeled_first as u64);
        let p = run_to_zset(&mut b, &all, |b, cs, open, xor| {
            vec![(honest_record(b, cs, open, xor), vec![0, 1, 2, 3])]
        });
        let rec = p.records[0].clone();
        let seeds: Vec<(u32, [u8; 32])> = p.seeds.iter().map(|(i, z)| (*i, *z)).collect();
        let z = parse(&zset(&b, p.round, &rec, seeds));
        let odd = if modeled_first { 0 } else { 3 };
        b.members[odd as usize].set_modeled_crypto(true);
        let res = deliver(&mut b, &[0, 1, 2, 3], &z);
        assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
        b.members[odd as usize].set_modeled_crypto(false);
        let want = expected_clear(&rec, p.round, &p.seeds);
        for i in all.iter().filter(|&&i| i != odd) {
            assert_eq!(cleartext(&b, *i, p.round), Some(want.clone()), "member {i}");
        }
        assert_eq!(cleartext(&b, odd, p.round), Some(rec.body.xor.clone()));
    }
}

/// Attack 3: seed-list index handling with a shared parse: duplicates (right then wrong,
/// wrong then right), two members' seeds swapped, a seed of a member outside the present set,
/// a seed left out. Each is refused by every member (the commitments memo is filled by the
/// first); then the seeds in reverse order (not sorted as §4 says, accepted before this change
/// too) complete the round with the right cleartext, and later rounds use its allocation.
#[test]
fn holds_shared_zset_seed_index_handling() {
    let (mut b, _all) = setup(4, 1104);
    let present = vec![0u32, 1, 2];
    let p = run_to_zset(&mut b, &present, |b, cs, open, xor| {
        vec![(honest_record(b, cs, open, xor), vec![0, 1, 2])]
    });
    let rec = p.records[0].clone();
    let s: Vec<(u32, [u8; 32])> = p.seeds.iter().map(|(i, z)| (*i, *z)).collect();
    let mut wrong = s[1].1;
    wrong[0] ^= 1;
    let variants: Vec<(&str, Seeds)> = vec![
        ("dup right,wrong", vec![s[0], s[1], (1, wrong), s[2]]),
        ("dup wrong,right", vec![s[0], (1, wrong), s[1], s[2]]),
        ("dup same", vec![s[0], s[1], s[1], s[2]]),
        ("swapped", vec![s[0], (1, s[2].1), (2, s[1].1)]),
        ("outsider", vec![s[0], s[1], s[2], (3, s[1].1)]),
        ("left out", vec![s[0], s[2]]),
        ("wrong", vec![s[0], (1, wrong), s[2]]),
        ("other's seed twice", vec![s[0], (1, s[0].1), s[2]]),
    ];
    for (name, v) in variants {
        let z = parse(&zset(&b, p.round, &rec, v));
        let res = deliver(&mut b, &present, &z);
        assert!(
            res.iter()
                .all(|r| matches!(r, Err(ProtocolError::Invalid { .. }))),
            "{name}: {res:?}"
        );
        assert!(
            (0..3).all(|i| cleartext(&b, i, p.round).is_none()),
            "{name}"
        );
        assert!((0..3).all(|i| !b.faulty(i)), "{name}");
    }
    let mut rev = s.clone();
    rev.reverse();
    let z = parse(&zset(&b, p.round, &rec, rev));
    let res = deliver(&mut b, &present, &z);
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    let want = expected_clear(&rec, p.round, &p.seeds);
    for i in &present {
        assert_eq!(cleartext(&b, *i, p.round), Some(want.clone()));
    }
    settle(&mut b, &p, &rec);
    // Member 3 was not present; the next rounds (allocation from this one's shared memo) run
    // with the same present set, then everyone.
    for _ in 0..3 {
        let r = b.round(&present);
        assert!(r.completed);
        for i in &present {
            assert_eq!(cleartext(&b, *i, r.round), r.clear, "member {i}");
        }
    }
    assert!(
        b.errors.iter().all(|(_, e)| matches!(
            e,
            ProtocolError::Invalid {
                kind: Kind::ZSet,
                ..
            }
        )),
        "{:?}",
        b.errors
    );
}

/// Attack 4: one ZSet parse kept by the relay and replayed: to a member in the next round
/// (refused, not the round in flight), and to a member that lagged (completes with the round's
/// own cleartext from the memo others filled).
#[test]
fn holds_shared_zset_replayed_across_rounds() {
    let (mut b, all) = setup(4, 1105);
    let p = run_to_zset(&mut b, &all, |b, cs, open, xor| {
        vec![(honest_record(b, cs, open, xor), vec![0, 1, 2, 3])]
    });
    let rec = p.records[0].clone();
    let seeds: Vec<(u32, [u8; 32])> = p.seeds.iter().map(|(i, z)| (*i, *z)).collect();
    let z = parse(&zset(&b, p.round, &rec, seeds));
    let res = deliver(&mut b, &[0, 1, 2], &z);
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    settle(&mut b, &p, &rec);
    // Next round among 0, 1, 2 up to its ZSet; then the old parse to 0 (in the new round).
    let q = run_to_zset(&mut b, &[0, 1, 2], |b, cs, open, xor| {
        vec![(honest_record(b, cs, open, xor), vec![0, 1, 2])]
    });
    let res = deliver(&mut b, &[0], &z);
    assert!(
        matches!(
            &res[0],
            Err(ProtocolError::Invalid {
                kind: Kind::ZSet,
                ..
            })
        ),
        "{res:?}"
    );
    // 3 lagged in the old round: it completes it now, correctly.
    let res = deliver(&mut b, &[3], &z);
    assert!(res[0].is_ok(), "{res:?}");
    assert_eq!(
        cleartext(&b, 3, p.round),
        Some(expected_clear(&rec, p.round, &p.seeds))
    );
    // The new round completes correctly too.
    let rec2 = q.records[0].clone();
    let s2: Vec<(u32, [u8; 32])> = q.seeds.iter().map(|(i, z)| (*i, *z)).collect();
    let z2 = parse(&zset(&b, q.round, &rec2, s2));
    let res = deliver(&mut b, &[0, 1, 2], &z2);
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    for i in 0..3 {
        assert_eq!(
            cleartext(&b, i, q.round),
            Some(expected_clear(&rec2, q.round, &q.seeds))
        );
    }
}

/// Attack 5: the signature check now precedes the kind dispatch. A CommitSet, a Record and a
/// ZSet with a broken signature (one shared parse each) are refused by everyone and change
/// nothing; a relay-signed frame of a member's kind is refused as unexpected; the honest
/// messages then go through.
#[test]
fn holds_signature_before_dispatch() {
    let (mut b, all) = setup(4, 1106);
    let open = b.next_open(&all);
    let round = b.round;
    let r = deliver(&mut b, &all, &parse(&open.clone().into_frame()));
    assert!(r.iter().all(|x| x.is_ok()));
    let commits = b.take_commits(&all);
    // A relay-signed Commit (a member's kind), validly signed and not.
    let c0 = commits[0].body.clone();
    let relay_commit = b.sign(round, c0);
    let f = relay_commit.into_frame();
    let res = deliver(&mut b, &all, &parse(&f));
    assert!(
        res.iter().all(|r| matches!(
            r,
            Err(ProtocolError::WrongSender(_) | ProtocolError::Unexpected { .. })
        )),
        "{res:?}"
    );
    let mut fb = f.clone();
    *fb.last_mut().unwrap() ^= 1;
    let res = deliver(&mut b, &all, &parse(&fb));
    assert!(res.iter().all(|r| r.is_err()), "{res:?}");
    let cs = b.sign(
        round,
        CommitSet {
            open: open.digest(),
            commits,
        },
    );
    let mut bad = cs.clone().into_frame();
    *bad.last_mut().unwrap() ^= 0x80;
    let res = deliver(&mut b, &all, &parse(&bad));
    assert!(
        res.iter()
            .all(|r| matches!(r, Err(ProtocolError::BadSignature(Kind::CommitSet)))),
        "{res:?}"
    );
    assert!(b.take(Kind::Reveal).is_empty());
    let res = deliver(&mut b, &all, &parse(&cs.clone().into_frame()));
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    let reveals = b.take(Kind::Reveal);
    assert_eq!(reveals.len(), 4);
    let xor = xor_of_reveals(&reveals, b.layout.len());
    let rec = b.sign(
        round,
        Record {
            commit_set: cs,
            opens: vec![open],
            xor,
        },
    );
    // A Record whose signature is broken: one shared parse, refused by all (and its Arc'd
    // body kept by none: the good one, a different parse, is what they keep).
    let mut bad = rec.clone().into_frame();
    let k = bad.len() - 5;
    bad[k] ^= 0x01;
    let res = deliver(&mut b, &all, &parse(&bad));
    assert!(
        res.iter()
            .all(|r| matches!(r, Err(ProtocolError::BadSignature(Kind::Record)))),
        "{res:?}"
    );
    assert!(b.take(Kind::Unblind).is_empty());
    let res = deliver(&mut b, &all, &parse(&rec.clone().into_frame()));
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    let seeds: BTreeMap<u32, [u8; 32]> = b
        .take(Kind::Unblind)
        .iter()
        .map(|(i, f)| match &f.body {
            Body::Unblind(u) => (*i, u.z),
            _ => unreachable!(),
        })
        .collect();
    let sv: Vec<(u32, [u8; 32])> = seeds.iter().map(|(i, z)| (*i, *z)).collect();
    let zf = zset(&b, round, &rec, sv);
    let mut bad = zf.clone();
    *bad.last_mut().unwrap() ^= 0x01;
    let res = deliver(&mut b, &all, &parse(&bad));
    assert!(
        res.iter()
            .all(|r| matches!(r, Err(ProtocolError::BadSignature(Kind::ZSet)))),
        "{res:?}"
    );
    let res = deliver(&mut b, &all, &parse(&zf));
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    let want = expected_clear(&rec, round, &seeds);
    for i in &all {
        assert_eq!(cleartext(&b, *i, round), Some(want.clone()));
    }
    assert!(all.iter().all(|&i| !b.faulty(i as usize)));
}

/// Attack 6: a Record shared by its parse is kept by Arc in every member. After one member
/// hands its round to blame (an equivocating Record: two Opens), the others' copies still are
/// the relay-signed Record (a later honest round works and an Open-equivocation Record shared
/// by parse convicts the relay at every member).
#[test]
fn holds_shared_record_equivocation_verdict() {
    let (mut b, all) = setup(4, 1107);
    let open = b.next_open(&all);
    let round = b.round;
    // A second Open for the same round, sent to member 3.
    let mut o2 = open.body.clone();
    o2.commit_ms += 1;
    let open2 = b.sign(round, o2);
    let r = deliver(&mut b, &[0, 1, 2], &parse(&open.clone().into_frame()));
    assert!(r.iter().all(|x| x.is_ok()));
    let r = deliver(&mut b, &[3], &parse(&open2.clone().into_frame()));
    assert!(r.iter().all(|x| x.is_ok()));
    let commits = b.take_commits(&all);
    let cs = b.sign(
        round,
        CommitSet {
            open: open.digest(),
            commits: commits.clone(),
        },
    );
    // 3's commitment binds open2: 3 refuses this CommitSet (binds another Open).
    let res = deliver(&mut b, &all, &parse(&cs.clone().into_frame()));
    assert!(
        res[..3].iter().all(|r| r.is_ok()) && res[3].is_err(),
        "{res:?}"
    );
    let xor = b.take_xor();
    let rec = b.sign(
        round,
        Record {
            commit_set: cs,
            opens: vec![open, open2],
            xor,
        },
    );
    let res = deliver(&mut b, &[0, 1, 2], &parse(&rec.into_frame()));
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    for i in 0..3 {
        assert!(
            b.events[i]
                .iter()
                .any(|e| matches!(e, MemberEvent::RelayEquivocated { .. })),
            "member {i}"
        );
        assert!(b.take(Kind::Unblind).is_empty());
    }
}
