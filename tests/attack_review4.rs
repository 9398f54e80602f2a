//! Fourth independent attack review: canonical frames, the verdict order and group binding of
//! cases, the outbox's convictions, roster keys, and — found on the way — the EpochKeys a case
//! (an evidence bundle) carries. Every break it found is fixed (a case's EpochKeys must hold a key
//! for every member of P; a member stores an epoch before signing its key and never signs two
//! for one epoch; a new conviction reaches the outbox file), so every test here now asserts
//! that the defence holds.

#[path = "common/byz.rs"]
mod byz;

use byz::{ByzRelay, blame_params, sender_of};
use dcnet::crypto::identity::{IdentityKey, PublicKey};
use dcnet::params::RoundParams;
use dcnet::protocol::blame::{self, Case, Culprit, Rule};
use dcnet::sim::TestGroup;
use dcnet::wire::{
    self, BlameStart, Body, EpochKey, EpochKeys, EpochRequest, Kind, Sender, Signed, WireError,
};
use std::collections::BTreeMap;

/// The group of tests/vectors/evidence.json (`TestGroup::new(4, .., 7)`, p_trap 0.5, 96-byte
/// slots): the test holds its relay key, as a byzantine relay does.
fn vector_group() -> TestGroup {
    let p = RoundParams {
        slot_bytes: 96,
        p_trap: 0.5,
        ..RoundParams::default()
    };
    TestGroup::new(4, p, 7).unwrap()
}

fn vector(name: &str) -> serde_json::Value {
    let path = format!("{}/tests/vectors/evidence.json", env!("CARGO_MANIFEST_DIR"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} vector"))
        .clone()
}

fn vector_case(name: &str) -> Case {
    let v = vector(name);
    blame::decode_evidence(&hex::decode(v["bundle"].as_str().unwrap()).unwrap()).unwrap()
}

/// The relay re-signs the case's EpochKeys with the member-signed keys `keys` (it can: the
/// EpochKeys is its own message, the keys inside are copied).
fn resign_keys(
    relay: &IdentityKey,
    ek: &Signed<EpochKeys>,
    keys: Vec<Signed<EpochKey>>,
) -> Signed<EpochKeys> {
    Signed::sign(
        relay,
        ek.header.group_id,
        ek.header.epoch,
        ek.header.round,
        Sender::Relay,
        EpochKeys { keys },
    )
}

/// `dcnet verify-evidence --group` on a bundle: its exit status.
fn verify_evidence_exit(tag: &str, group_toml: &str, case: &Case) -> Option<i32> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("attack_review4");
    std::fs::create_dir_all(&dir).unwrap();
    let group = dir.join(format!("{tag}.group.toml"));
    let file = dir.join(format!("{tag}.evidence"));
    std::fs::write(&group, group_toml).unwrap();
    std::fs::write(&file, blame::encode_evidence(case)).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_dcnet"))
        .arg("verify-evidence")
        .arg("--group")
        .arg(&group)
        .arg(&file)
        .output()
        .unwrap()
        .status
        .code()
}

// ---------------------------------------------------------------------------------------------
// Finding A: a case's EpochKeys need not hold a key for every member of P. The relay re-signs
// the epoch's EpochKeys without the accuser's key: the accuser's DLEQ proof then "fails", and
// judge (and `dcnet verify-evidence --group`) convicts the honest accuser of false-accusation.
// ---------------------------------------------------------------------------------------------

#[test]
fn a1_bundle_without_the_accusers_key_convicts_the_honest_accuser() {
    let tg = vector_group();
    let v = vector("ciphertext-mismatch");
    let case = vector_case("ciphertext-mismatch");
    let honest = blame::judge(&case).unwrap();
    assert_eq!(honest.culprit, Some(Culprit::Member(3)), "the jammer");
    let start = case.disclosure.as_ref().unwrap().body.start.clone();
    let accuser = sender_of(start.body.accusation.as_ref().expect("an accusation"));
    assert_ne!(accuser, 3, "the accuser is an honest trap owner");
    let mut forged = case.clone();
    let keys: Vec<_> = case
        .epoch_keys
        .body
        .keys
        .iter()
        .filter(|k| sender_of(k) != accuser)
        .cloned()
        .collect();
    forged.epoch_keys = resign_keys(&tg.relay_key, &case.epoch_keys, keys);
    let verdict = blame::judge(&forged);
    let exit = verify_evidence_exit("a1", v["group_toml"].as_str().unwrap(), &forged);
    assert!(
        verdict
            .as_ref()
            .map_or(true, |v| v.culprit != Some(Culprit::Member(accuser))),
        "honest accuser {accuser} convicted from a bundle the relay made: {verdict:?}; \
         dcnet verify-evidence --group exits {exit:?} (0 = valid evidence of a conviction)"
    );
}

#[test]
fn a2_bundle_without_a_claimants_key_convicts_it_of_bad_disclosure() {
    let tg = vector_group();
    let v = vector("garbage-cell");
    let case = vector_case("garbage-cell");
    let honest = blame::judge(&case).unwrap();
    assert_eq!(
        honest.culprit,
        Some(Culprit::Member(3)),
        "the garbage writer"
    );
    let set = case.disclosure.as_ref().unwrap();
    let claimant = set
        .body
        .disclosures
        .iter()
        .find(|d| d.body.claim.is_some() && sender_of(d) != 3)
        .map(sender_of)
        .expect("an honest member claimed its cell");
    let mut forged = case.clone();
    let keys: Vec<_> = case
        .epoch_keys
        .body
        .keys
        .iter()
        .filter(|k| sender_of(k) != claimant)
        .cloned()
        .collect();
    forged.epoch_keys = resign_keys(&tg.relay_key, &case.epoch_keys, keys);
    let verdict = blame::judge(&forged);
    let exit = verify_evidence_exit("a2", v["group_toml"].as_str().unwrap(), &forged);
    assert!(
        verdict
            .as_ref()
            .map_or(true, |v| v.culprit != Some(Culprit::Member(claimant))),
        "honest claimant {claimant} convicted from a bundle the relay made: {verdict:?}; \
         dcnet verify-evidence --group exits {exit:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding B: an honest member signs two different epoch keys for one epoch (EpochRequest e,
// then e + 1, then e again: each is above the epoch it holds, and only the epoch it awaits is
// refused). So "EpochKeys must cover P" alone would not close finding A: the relay swaps in
// the key the member signed first, whose DLEQ proofs the member can no longer make.
// ---------------------------------------------------------------------------------------------

fn typed_keys(b: &mut ByzRelay) -> BTreeMap<u32, Signed<EpochKey>> {
    b.take(Kind::EpochKey)
        .into_iter()
        .map(|(i, f)| match f.body {
            Body::EpochKey(k) => (i, wire::typed(f.header, k, f.sig)),
            _ => unreachable!(),
        })
        .collect()
}

/// The relay asks for epoch 1, then 2, then 1 again and completes epoch 1 with the second set
/// of keys. Returns the keys members signed first for epoch 1.
fn downgrade_epoch(b: &mut ByzRelay, all: &[u32]) -> BTreeMap<u32, Signed<EpochKey>> {
    let request = |b: &mut ByzRelay, epoch: u64| {
        b.epoch = epoch;
        let req = b.sign(
            0,
            EpochRequest {
                members: all.to_vec(),
                last_case: None,
            },
        );
        b.send(all, &req.into_frame());
        typed_keys(b)
    };
    let first = request(b, 1);
    assert_eq!(first.len(), all.len(), "every member answers epoch 1");
    let _ = request(b, 2);
    b.epoch = 0;
    b.start_epoch(all); // epoch 1 again, completed with the keys signed now
    first
}

#[test]
fn b1_member_signs_two_epoch_keys_for_one_epoch() {
    let n = 4;
    let all: Vec<u32> = (0..n as u32).collect();
    let mut b = ByzRelay::new(n, blame_params(), 91);
    let first = downgrade_epoch(&mut b, &all);
    let ek = b.epoch_keys.clone().unwrap();
    let second: BTreeMap<u32, EpochKey> = ek
        .body
        .keys
        .iter()
        .map(|k| (sender_of(k), k.body.clone()))
        .collect();
    let twice: Vec<u32> = all
        .iter()
        .copied()
        .filter(|i| {
            second
                .get(i)
                .is_some_and(|k| first[i].header.epoch == 1 && first[i].body != *k)
        })
        .collect();
    assert!(
        twice.is_empty(),
        "members {twice:?} signed two different epoch keys for epoch 1 (and are in epoch {})",
        b.members[0].epoch()
    );
}

#[test]
fn b2_swapped_epoch_key_convicts_an_honest_accuser() {
    let n = 4;
    let all: Vec<u32> = (0..n as u32).collect();
    let mut b = ByzRelay::new(n, blame_params(), 92);
    let first = downgrade_epoch(&mut b, &all);
    // Fixed: a member stores the epoch before it signs a key for it and never signs a second
    // key for one epoch, so the relay cannot complete epoch 1 again with other keys and the
    // forged bundle below has nothing to swap in.
    assert_ne!(
        b.members[0].epoch(),
        1,
        "members took epoch 1 again with a second key"
    );
    if b.members[0].epoch() != 1 {
        return;
    }
    // Idle members reserve traps (p_cover = 1): round 1 allocates round 2, whose slot the relay
    // hits; the slot's owner accuses.
    b.round(&all);
    let slots = b.next_alloc_slots(&all);
    assert!(!slots.is_empty(), "round 2 has allocated slots");
    let at = b.layout.slot(slots[0]).start + 40;
    let out = b.round_with(&all, |x| x[at] ^= 0x5a, &[]);
    assert!(out.completed);
    let acc = b.accusations();
    let a = acc.first().expect("the trap owner accuses").clone();
    let accuser = sender_of(&a);
    let rv = b.round_view();
    let (_, x) = rv.check_accusation(&a).expect("a valid accusation");
    let start = b.sign(
        out.round,
        BlameStart {
            record: out.record.digest(),
            accusation: Some(a),
            positions: rv.positions(Some(x)),
        },
    );
    let mut case = b.case();
    case.start = Some(start);
    assert!(
        matches!(blame::assess(&case), Ok(blame::Assessment::Disclose(_))),
        "the honest case checks out"
    );
    // The forged bundle: same EpochKeys, every member present, the accuser's first key.
    let ek = case.epoch_keys.clone();
    let keys: Vec<_> = ek
        .body
        .keys
        .iter()
        .map(|k| {
            if sender_of(k) == accuser {
                first[&accuser].clone()
            } else {
                k.clone()
            }
        })
        .collect();
    assert_eq!(keys.len(), n, "every member of P keeps a key");
    case.epoch_keys = resign_keys(&b.tg.relay_key, &ek, keys);
    let verdict = blame::judge(&case);
    assert!(
        verdict
            .as_ref()
            .map_or(true, |v| v.culprit != Some(Culprit::Member(accuser))),
        "honest accuser {accuser} convicted: {verdict:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Defences that hold.
// ---------------------------------------------------------------------------------------------

/// Canonical frames: seeded single-byte changes and varint lengthenings of real frames never
/// panic, and a frame that is accepted re-encodes to exactly its bytes (so two accepted frames
/// that differ carry different values, digests and signatures).
#[test]
fn c1_mutated_frames_are_canonical_or_refused() {
    let n = 3;
    let all: Vec<u32> = (0..n as u32).collect();
    let mut b = ByzRelay::new(n, blame_params(), 93);
    b.start_epoch(&all);
    let out = b.round(&all);
    let frames = [
        out.record.clone().into_frame(),
        out.zset.clone().unwrap().into_frame(),
        b.epoch_keys.clone().unwrap().into_frame(),
    ];
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut accepted = 0;
    for f in &frames {
        for _ in 0..400 {
            let mut m = f.clone();
            let at = (next() % m.len() as u64) as usize;
            match next() % 3 {
                0 => m[at] ^= 1 << (next() % 8),
                // A byte < 251 is a one-byte varint wherever a varint starts: write it long.
                1 if m[at] < 251 => {
                    let v = m[at];
                    m.splice(at..=at, [0xfb, v, 0]);
                }
                _ => m[at] = m[at].wrapping_add(1),
            }
            if let Ok(fr) = wire::decode_frame(&m) {
                accepted += 1;
                assert_eq!(wire::encode(&fr), m, "accepted a non-canonical frame");
            }
        }
        // The long form of the header's epoch: refused.
        let mut long = f[..32].to_vec();
        long.extend_from_slice(&[0xfb, f[32], 0x00]);
        long.extend_from_slice(&f[33..]);
        assert_eq!(
            wire::decode_frame(&long).unwrap_err(),
            WireError::NonCanonical
        );
    }
    // Flips inside signatures, seeds and XOR bytes decode fine (and fail their signature).
    assert!(accepted > 0);
}

/// A DisclosureSet in another order than ascending signers is refused, not judged: the relay
/// cannot pick which malformed disclosure decides. And it cannot make an honest member's
/// disclosure come out "malformed" by reordering.
#[test]
fn c2_disclosure_order_is_not_the_relays_choice() {
    let case = vector_case("garbage-cell");
    let mut set = case.disclosure.clone().unwrap();
    let tg = vector_group();
    let mut reordered = set.body.clone();
    reordered.disclosures.reverse();
    set = Signed::sign(
        &tg.relay_key,
        set.header.group_id,
        set.header.epoch,
        set.header.round,
        Sender::Relay,
        reordered,
    );
    let mut c = case.clone();
    c.disclosure = Some(set);
    assert!(blame::judge(&c).is_err(), "a reordered set must be refused");
    // Dropping the jammer's disclosure leaves it unresponsive, never convicts an honest one.
    let mut dropped = case.disclosure.clone().unwrap().body;
    dropped.disclosures.retain(|d| sender_of(d) != 3);
    dropped.missing = vec![3];
    let set = Signed::sign(
        &tg.relay_key,
        case.disclosure.as_ref().unwrap().header.group_id,
        case.epoch_keys.header.epoch,
        case.disclosure.as_ref().unwrap().header.round,
        Sender::Relay,
        dropped,
    );
    let mut c = case.clone();
    c.disclosure = Some(set);
    let v = blame::judge(&c).unwrap();
    assert!(
        v.culprit.is_none() || v.culprit == Some(Culprit::Member(3)),
        "{v:?}"
    );
    if v.culprit.is_none() {
        assert_eq!(v.rule, Rule::Unresolved);
    }
}

/// Roster keys: every non-canonical encoding of a point (y + p for small y) and every
/// small-order point is refused when a group file is read.
#[test]
fn c3_non_canonical_and_small_order_roster_keys_are_refused() {
    // p = 2^255 - 19, little-endian; y + p for y in 0..19 fits in 255 bits.
    for y in 0u8..19 {
        let mut b = [0xffu8; 32];
        b[0] = 0xed_u8.wrapping_add(y);
        b[31] = 0x7f;
        for sign in [0u8, 0x80] {
            let mut k = b;
            k[31] |= sign;
            assert!(
                hex::encode(k).parse::<PublicKey>().is_err(),
                "non-canonical key y = p + {y}, sign {sign} accepted"
            );
        }
    }
    // The identity (y = 1) and the point of order 2 (y = -1), canonical encodings.
    let mut id = [0u8; 32];
    id[0] = 1;
    assert!(hex::encode(id).parse::<PublicKey>().is_err());
    let mut m1 = [0xffu8; 32];
    m1[0] = 0xec;
    m1[31] = 0x7f;
    assert!(hex::encode(m1).parse::<PublicKey>().is_err());
    // An honest key parses.
    let k = IdentityKey::from_secret_bytes(&[5; 32]).public();
    assert_eq!(k.to_string().parse::<PublicKey>().unwrap(), k);
}

// ---------------------------------------------------------------------------------------------
// Finding C: a conviction does not move `outbox_rev`, so the driver (which writes the outbox
// file only when the revision moved) does not persist it. An idle member that convicts a
// colluder and restarts before anything else changes forgets the conviction, and then accepts
// an epoch that invites the convicted colluder back (finding 5 of the first review: "members a
// member convicted never come back"; the floor it counts also rises again).
// ---------------------------------------------------------------------------------------------

#[test]
fn d1_a_conviction_survives_a_restart() {
    use dcnet::protocol::{Member, MemberId, MemoryStore};
    use dcnet::wire::{Commit, Evidence};
    let n = 4;
    let all: Vec<u32> = (0..n as u32).collect();
    let mut b = ByzRelay::new(n, blame_params(), 94);
    b.start_epoch(&all);
    // The driver's view: it writes the file whenever the revision moved (here: removes it, as
    // nothing is pending and nothing was convicted yet).
    let rev = b.members[0].outbox_rev();
    // Colluder 3 signs two commitments for one round; the relay forwards them as Evidence.
    let c = |blinding| Commit {
        open: [1; 32],
        ciphertext: [2; 32],
        blinding,
        content: None,
    };
    let ev = b.sign(
        0,
        Evidence {
            commits: (b.sign_as(3, 7, c([3; 32])), b.sign_as(3, 7, c([4; 32]))),
        },
    );
    assert!(b.send(&[0], &ev.into_frame())[0].is_ok());
    assert!(b.members[0].convicted().contains(&3), "member 0 convicts 3");
    let file = (b.members[0].outbox_rev() != rev).then(|| b.members[0].outbox_snapshot());
    // Crash and restart from the durable state (high-water, epoch) and that file.
    let hw = b.members[0].stored_high_water();
    let epoch = b.members[0].epoch();
    let mut m = Member::new(
        b.tg.group.clone(),
        MemberId(0),
        IdentityKey::from_secret_bytes(&b.tg.member_keys[0].secret_bytes()),
        [9; 32],
        Box::new(MemoryStore(hw, epoch)),
    )
    .unwrap();
    if let Some(f) = &file {
        m.restore_outbox(f).unwrap();
    }
    b.members[0] = m;
    b.epoch += 1;
    let req = b.sign(
        0,
        EpochRequest {
            members: all.clone(),
            last_case: None,
        },
    );
    let r = b.send(&[0], &req.into_frame()).remove(0);
    assert!(
        r.is_err(),
        "after a restart member 0 accepted an epoch inviting the member it convicted \
         (outbox file written: {}; convictions now {:?})",
        file.is_some(),
        b.members[0].convicted()
    );
}
