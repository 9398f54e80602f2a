//! Attack review 5 (issue 11, content key): two breaks an independent attacker found in the
//! first version of §8.2, replayed through a relay that signs hand-made messages. Both are
//! fixed; these tests keep them fixed.

#[path = "common/byz.rs"]
mod byz;
mod common;

use byz::*;
use common::*;
use dcnet::adversary::MemberFault;
use dcnet::crypto::identity::IdentityKey;
use dcnet::protocol::{Member, MemberEvent, MemberId, MemoryStore};
use dcnet::sim::derive_seed;
use dcnet::wire::Kind;

fn faulty(b: &ByzRelay, i: u32, seed: u64, f: MemberFault) -> Member {
    Member::with_faults(
        b.tg.group.clone(),
        MemberId(i),
        IdentityKey::from_secret_bytes(&b.tg.member_keys[i as usize].secret_bytes()),
        derive_seed(seed, "byz-member", i as u64),
        Box::new(MemoryStore::default()),
        vec![f],
    )
    .unwrap()
}

/// The epoch's first completed round had a keyholder that sent no seal, so the next round both
/// fixes the key and uses an allocation nobody could write into. The relay hits an allocated
/// slot. Before: the slot's honest owner learned the key before accusing, accused with a slot
/// key for a trap it never wrote, and was convicted of ciphertext-mismatch. Now it accuses only
/// a trap it wrote: no accusation, nobody convicted.
#[test]
fn no_accusation_for_a_trap_never_written_in_the_round_that_fixes_the_key() {
    let seed = 91;
    let mut b = ByzRelay::new(3, blame_params(), seed);
    b.members[2] = faulty(&b, 2, seed, MemberFault::NoSeal);
    let p = vec![0u32, 1, 2];
    b.start_epoch(&p);
    b.round = 1; // the relay picks round 2: keyholder P[2 mod 3] = member 2, no seal
    assert!(b.round(&p).completed);
    assert!(b.content_key().is_none(), "no key fixed yet");
    let slots = b.next_alloc_slots(&p);
    assert!(!slots.is_empty());
    let at = b.layout.slot(slots[0]).end - 1;
    let out = b.round_with(&p, |x| x[at] ^= 0x01, &[]);
    assert!(out.completed);
    assert!(b.content_key().is_some(), "round 3 fixed the key");
    assert!(
        b.accusations().is_empty(),
        "an owner accused a trap it never wrote"
    );
    for (i, ev) in b.events.iter().enumerate() {
        assert!(
            !ev.iter().any(|e| matches!(e, MemberEvent::Verdict { .. })),
            "member {i} reached a verdict"
        );
    }
}

/// A colluding keyholder seals a wrong key to the only other honest member. Before: the victim
/// stayed present but silent, so the sender's anonymity rule still counted it and every piece
/// the coalition read was the last honest member's. Now the victim sits the epoch out (it
/// commits to no further Open), its absence is public, and the sender holds back below the floor.
#[test]
fn a_victim_of_a_bad_seal_leaves_the_epoch_and_the_sender_holds_back() {
    let seed = 77;
    let mut b = ByzRelay::new(3, params(128), seed);
    b.members[2] = faulty(&b, 2, seed, MemberFault::BadSeal { victim: 1 });
    b.members[0]
        .submit(b"from the only sender that can")
        .unwrap();
    b.start_epoch(&[0, 1, 2]);
    b.round = 1; // round 2: keyholder P[2 mod 3] = member 2
    let all = [0u32, 1, 2];
    assert!(b.round(&all).completed);
    assert!(
        b.events[1]
            .iter()
            .any(|e| matches!(e, MemberEvent::ContentKeyRefused { holder: 2, .. })),
        "the victim noticed"
    );
    // The victim refuses the next Open: no commitment from it.
    let open = b.next_open(&all);
    b.send(&all, &open.into_frame());
    let commits = b.take(Kind::Commit);
    assert!(
        !commits.contains_key(&1),
        "the victim committed without a key"
    );
    // The relay goes on without it: the sender never lets a piece out with one honest member
    // short of its set (floor 2 of 3, and one to spare).
    b.round += 1;
    let rest = [0u32, 2];
    let mut read = 0;
    for _ in 0..10 {
        let out = b.round(&rest);
        read += fragment_ids(&b.layout, &out).len();
    }
    assert_eq!(read, 0, "the coalition read a piece sent without cover");
    assert!(
        b.events[0]
            .iter()
            .any(|e| matches!(e, MemberEvent::HeldBack { .. })),
        "the sender was told it held back"
    );
}
