//! Second independent attack review of the byzantine-relay rules (tests/common/byz.rs harness).
//! Tests marked `#[ignore = "demonstrates: ..."]` show an unfixed break: run them with
//! `cargo test --release --test attack_review2 -- --ignored` and they fail with the leak in
//! their message. The others confirm that a defence holds.

#[path = "common/byz.rs"]
mod byz;

use byz::{ByzRelay, blame_params, sender_of, worst_sender_set};
use dcnet::protocol::MemberEvent;
use dcnet::wire::{BlameStart, EpochRequest, Sender, Signed};
use std::collections::BTreeMap;

/// Damages one allocated slot in the Record. If its owner accuses, the relay shows the
/// BlameStart carrying the accusation to the accuser alone (which discloses, and concludes the
/// case as unresolved from a DisclosureSet that lists the others as missing), and an empty
/// BlameStart ("D's first slot was real, nobody accused") to everyone else, so nobody but the
/// accuser learns of the accusation and nobody takes the accuser out of its A. The split
/// conclusions (`last_case`) are then merged by an EpochRequest that skips one epoch number
/// (`jump`), for which members do not compare `last_case`. Returns the accuser and whether the
/// members accepted the new epoch.
fn hidden_probe(b: &mut ByzRelay, all: &[u32], choice: usize, jump: u64) -> (Option<u32>, bool) {
    let slots = b.next_alloc_slots(all);
    if slots.is_empty() {
        b.round(all);
        return (None, true);
    }
    let s = slots[choice % slots.len()];
    let at = b.layout.slot(s).start + 40;
    let out = b.round_with(all, |x| x[at] ^= 0x5a, &[]);
    let acc = b.accusations();
    let rv = b.round_view();
    let empty = b.sign(
        out.round,
        BlameStart {
            record: rv.record_digest,
            accusation: None,
            positions: rv.positions(None),
        },
    );
    assert!(rv.positions(None).is_empty());
    let Some(acc) = acc.into_iter().next() else {
        b.send(all, &empty.clone().into_frame());
        b.last_case = Some(empty.digest());
        return (None, true);
    };
    let u = sender_of(&acc);
    let (_, x) = rv
        .check_accusation(&acc)
        .expect("an honest accusation is valid");
    let real = b.sign(
        out.round,
        BlameStart {
            record: rv.record_digest,
            accusation: Some(acc),
            positions: rv.positions(Some(x)),
        },
    );
    let others: Vec<u32> = all.iter().copied().filter(|&i| i != u).collect();
    let res = b.send(&others, &empty.clone().into_frame());
    assert!(res.iter().all(|r| r.is_ok()), "the empty start is accepted");
    b.send(&[u], &real.clone().into_frame());
    let d = b.disclosures();
    assert_eq!(d.len(), 1, "only the accuser discloses");
    let set = b.disclosure_set(real, d, all);
    b.send(&[u], &set.clone().into_frame());
    for i in all {
        assert!(
            !b.members[*i as usize].case_open(),
            "member {i} closed its case"
        );
    }
    // Merge the split: a new epoch, `jump` numbers ahead.
    let before = b.members[0].epoch();
    b.epoch += jump - 1;
    b.start_epoch(all);
    let accepted = all.iter().all(|&i| b.members[i as usize].epoch() > before);
    if accepted {
        b.round(all);
    }
    (Some(u), accepted)
}

/// The relay hides every valid accusation from everyone but its signer (see `hidden_probe`) and
/// merges the split conclusions with an EpochRequest two epochs ahead: the `last_case` check of
/// §11.9 applies only to the request for epoch = own + 1. The sender never removes the accusers
/// from its A, so its one-to-spare rule (§7.1) lets piece after piece go out while the relay,
/// which holds every accusation, narrows the sender below the floor. No member is convicted,
/// none distrusts the relay.
#[test]
fn hidden_accusations_cannot_be_merged_by_an_epoch_jump() {
    let n = 4;
    let mut b = ByzRelay::new(n, blame_params(), 9101);
    let floor = n - b.tg.group.params().tolerance as usize;
    let all: Vec<u32> = (0..n as u32).collect();
    b.start_epoch(&all);
    let secret = vec![0x42u8; 33 * 8];
    b.members[0].submit(&secret).unwrap();
    b.round(&all);
    let mut accusers: BTreeMap<u64, u32> = BTreeMap::new();
    for choice in 0..60 {
        if b.members[0].pending() == 0 {
            break;
        }
        let (u, accepted) = hidden_probe(&mut b, &all, choice, 2);
        if !accepted {
            // Since the fix (any EpochRequest must name the member's last conclusion), the
            // split cannot be merged: the attack ends here, the group stays split.
            assert!(u.is_some(), "a request without a split was refused");
            if let Some(u) = u {
                accusers.insert(b.all_rounds.iter().rev().nth(1).unwrap().round, u);
            }
            break;
        }
        if let Some(u) = u {
            accusers.insert(b.all_rounds.iter().rev().nth(1).unwrap().round, u);
        }
        for i in 0..n {
            assert!(b.members[i].convicted().is_empty());
            assert!(!b.faulty(i), "member {i} distrusts the relay");
        }
    }
    let held: Vec<_> = b.events[0]
        .iter()
        .filter(|e| matches!(e, MemberEvent::HeldBack { .. }))
        .collect();
    let worst =
        worst_sender_set(&b.all_rounds, &b.layout, &accusers).expect("the relay read the message");
    assert!(worst.contains(&0));
    assert!(
        worst.len() >= floor,
        "the relay narrowed the sender to {worst:?} (floor {floor}) with the hidden \
         accusations {accusers:?}; the sender held back {} pieces and was never told",
        held.len()
    );
}

/// Control: the same attack with the honest epoch number (own + 1) is refused by every member
/// whose `last_case` differs from the relay's, so the split cannot be merged.
#[test]
fn hidden_accusation_split_is_refused_at_the_next_epoch() {
    let n = 4;
    let mut b = ByzRelay::new(n, blame_params(), 9102);
    let all: Vec<u32> = (0..n as u32).collect();
    b.start_epoch(&all);
    b.members[0].submit(&[0x42u8; 33 * 8]).unwrap();
    b.round(&all);
    for choice in 0..30 {
        let epoch = b.epoch;
        let (u, accepted) = hidden_probe(&mut b, &all, choice, 1);
        if u.is_some() {
            assert!(
                !accepted,
                "a member accepted a request naming another conclusion"
            );
            return;
        }
        assert_eq!(b.epoch, epoch);
    }
    panic!("no accusation");
}

/// An EpochRequest for epoch own + 1 naming a wrong `last_case` is refused (sanity for the
/// check the epoch jump skips).
#[test]
fn epoch_request_with_wrong_last_case_is_refused() {
    let n = 4;
    let mut b = ByzRelay::new(n, blame_params(), 9103);
    let all: Vec<u32> = (0..n as u32).collect();
    b.start_epoch(&all);
    b.round(&all);
    let slot = b.layout.slot(1).start + 3;
    b.round_with(&all, |x| x[slot] ^= 0x5a, &[]);
    let _ = b.accusations();
    let rv = b.round_view();
    let start = b.sign(
        b.round,
        BlameStart {
            record: rv.record_digest,
            accusation: None,
            positions: rv.positions(None),
        },
    );
    if !rv.positions(None).is_empty() {
        return;
    }
    if !b.send(&all, &start.into_frame()).iter().all(|r| r.is_ok()) {
        return;
    }
    assert!(all.iter().all(|&i| !b.members[i as usize].case_open()));
    let req = Signed::sign(
        &b.tg.relay_key,
        *b.tg.group.id(),
        b.epoch + 1,
        0,
        Sender::Relay,
        EpochRequest {
            members: all.clone(),
            last_case: None,
        },
    );
    let res = b.send(&all, &req.into_frame());
    assert!(res.iter().all(|r| r.is_err()));
}
