//! Attack review 7 (the fixes of cf1aa4b: linked sets without R, reordering in
//! `choose_purpose`, Mailbox conversations, NymBook, forget_idle_links).
//!
//! An independent attacker's tests. Each asserts what must hold: the ones named `break_*`
//! failed on cf1aa4b (each showed a break) and pass since the fixes (a later message may go out
//! beside a held-back front even once partly out; sealed messages beside a piece count against
//! its message's and link's set); the `holds_*` ones record attacks that were tried and held.

mod common;

use common::coalition::*;
use common::params;
use dcnet::chat::{Correspondent, Nym};
use dcnet::params::RoundParams;
use dcnet::protocol::{MemberEvent, RelayEvent};
use dcnet::sim::{LinkModel, Network, TestGroup};
use std::collections::{BTreeMap, BTreeSet};

// ---------------------------------------------------------------------------------------------
// Finding A (liveness): `choose_purpose` lets a later message overtake a held-back front only
// while it has *no piece out yet*. Once the overtaking message's first piece went out it is
// no longer eligible, and the front (still held back) takes every reservation again and
// writes a trap into it. A front message whose R holds a member that never comes back is held
// back for good (§7.1: absence is no fault, nobody is convicted), so every later multi-piece
// message of that member gets exactly one piece out and then stalls forever, although each
// one passes its own check (its R and A lack the departed member). One coalition member
// leaving at the right moment silences every long message of an honest member.
// ---------------------------------------------------------------------------------------------

#[test]
fn break_a_stuck_front_stalls_every_later_long_message_after_one_piece() {
    let seed = 21;
    let (_tg, mut net) = floor5_of_7(seed);
    // m0's long message F: its first pieces go out with all seven present (R = everyone).
    let f = vec![b'f'; 3000];
    net.members[0].as_mut().unwrap().submit(&f).unwrap();
    net.start();
    let ok = net
        .run_until_round(100, |net| pieces_seen(net, 1) >= 2)
        .unwrap();
    assert!(ok);
    // m6 (coalition) leaves and never returns: F is held back for good (by design, §7.1).
    net.crash(6);
    until_present(&mut net, &[0, 1, 2, 3, 4, 5]);
    // Two later messages, five pieces each, submitted and first exposed without m6: each
    // would pass its own check every round from now on (R = A = {0..5}, 6 >= floor + 1).
    let g = vec![b'g'; 600];
    let h = vec![b'h'; 600];
    let m0 = net.members[0].as_mut().unwrap();
    m0.submit(&g).unwrap();
    m0.submit(&h).unwrap();
    m0.submit(b"short").unwrap();
    let _ = net
        .run_until_round(300, |net| {
            let d = net.delivered(1);
            d.contains(&g) && d.contains(&h) && d.iter().any(|m| m == b"short")
        })
        .unwrap();
    let d = net.delivered(1);
    assert!(
        d.iter().any(|m| m == b"short"),
        "the short message stalled too"
    );
    let held = net.member_events[0]
        .iter()
        .filter(|e| matches!(e, MemberEvent::HeldBack { .. }))
        .count();
    assert!(
        d.contains(&g) && d.contains(&h),
        "two 5-piece messages that pass their own check were not delivered in 300 rounds \
         (only their first pieces went out; {held} HeldBack reports for the stuck front)"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding B (anonymity): a named answer identifies its author's slot to the coalition, and a
// member writes at most one slot per round. `Mailbox::reply` to a message the coalition wrote
// is sealed to a reply key only its addressee ever saw ("m2 answered you", §13.2), so the
// coalition learns that m2 wrote slot s of round r, hence wrote no other slot of round r. No
// anonymity rule counts that (the accusation spare of §7.1 covers one accuser per round, not
// this): the coalition DMs honest members while a pseudonym (or any long message) is in
// flight, and every answer that shares a round with one of its pieces removes its author from
// the candidate set. Here three answers take a pseudonym's set from 7 to 4 (floor 5) with
// nobody ever absent.
// ---------------------------------------------------------------------------------------------

/// Since the fix the sender counts every sealed message that went out beside one of its pieces
/// as one candidate less, for good (§7.2), so the narrowing cannot compound: a piece of the
/// pseudonym goes out only while the members not told apart by earlier answers beside its
/// pieces are at least floor + 1. (The answers in the very round of a piece still tell their
/// authors apart for that piece: the limit PROTOCOL §13.2 and SECURITY state.)
#[test]
fn break_named_answers_exclude_honest_members_from_a_pseudonym() {
    let mut stuck_for_good = 0;
    for seed in [31u64, 32, 33] {
        let (tg, mut net) = floor5_of_7(seed);
        let mut boxes = mailboxes(&tg, seed);
        let all: Vec<usize> = (0..7).collect();
        // The coalition (relay, m1, m6) writes to the honest m2, m3, m4: any member may.
        for j in [2u32, 3, 4] {
            let dm = boxes[1]
                .dm(j, b"quick question, long answer please")
                .unwrap();
            net.members[1]
                .as_mut()
                .unwrap()
                .submit_linked(&dm.message, dm.link.unwrap())
                .unwrap();
        }
        net.start();
        deliver(&mut net, &all, 3);
        // The honest members answer; meanwhile the honest m0 posts as a pseudonym.
        for j in [2usize, 3, 4] {
            let got = net.delivered(j);
            let o = got.iter().find_map(|m| boxes[j].open(m)).unwrap();
            let r = boxes[j].reply(o.number, &[b'a'; 1100]).unwrap();
            assert_eq!(r.link, None, "the named side answers unlinked");
            net.members[j].as_mut().unwrap().submit(&r.message).unwrap();
        }
        let mut nym = Nym::new("owl", [seed as u8; 32]).unwrap();
        let post = nym.post(tg.group.id(), &[b'p'; 1800]);
        net.members[0]
            .as_mut()
            .unwrap()
            .submit_linked(&post, nym.link())
            .unwrap();
        let _ = net.run_until_round(200, |_| false).expect("stalled");
        // The coalition's view: which slot held which msg_id (the post's pieces are the ones
        // with its fragment count), and whose answers its reply keys opened.
        let cap = dcnet::protocol::slots::Layout::new(tg.group.params()).capacity();
        let count = post.len().div_ceil(cap) as u16;
        assert_ne!(count, 1100usize.div_ceil(cap) as u16);
        let mut nym_rounds = BTreeSet::new();
        for e in &net.member_events[1] {
            if let MemberEvent::RoundCompleted { round, pieces, .. } = e {
                if pieces.iter().any(|p| p.count == count) {
                    nym_rounds.insert(*round);
                }
            }
        }
        assert!(
            !nym_rounds.is_empty(),
            "seed {seed}: the post never started"
        );
        let mut answered_in: Vec<(u32, BTreeSet<u64>)> = Vec::new();
        for (m, rounds) in rounds_per_message(&net, 1) {
            if let Some(o) = boxes[1].open(&m) {
                if let Correspondent::Member(j) = o.from {
                    answered_in.push((j, rounds));
                }
            }
        }
        assert_eq!(answered_in.len(), 3, "seed {seed}: the answers arrived");
        // A post that cannot go on is told as such, not as waiting for members.
        if !net.delivered(1).contains(&post) {
            stuck_for_good += 1;
            assert!(
                net.member_events[0].iter().any(|e| matches!(e,
                    MemberEvent::HeldBack { reason, .. }
                        if reason.starts_with(dcnet::protocol::member::PERMANENT))),
                "seed {seed}: the stuck post was never reported as stuck for good"
            );
        }
        for &r in &nym_rounds {
            let told_apart: BTreeSet<u32> = answered_in
                .iter()
                .filter(|(_, rs)| rs.iter().any(|x| *x < r && nym_rounds.contains(x)))
                .map(|(j, _)| *j)
                .collect();
            assert!(
                7 - told_apart.len() >= 6,
                "seed {seed}: a piece of the pseudonym went out in round {r} although answers \
                 beside its earlier pieces had told {told_apart:?} apart"
            );
        }
    }
    assert!(
        stuck_for_good > 0,
        "no seed ran the pseudonym out of spare members"
    );
}

// ---------------------------------------------------------------------------------------------
// Tried and held.
// ---------------------------------------------------------------------------------------------

/// Valid accusations from honest trap owners tell the coalition who sent nothing in a round.
/// Two jammers (m5, m6) provoke them while m1 and m4 take turns being away during a
/// pseudonym's posts. The coalition's candidate set for the pseudonym (present in every round
/// it wrote in, less every accuser of such a round) stays at or above the floor
/// N − t − convicted. (Seed 43: one accusation took a post's own set to the floor, and it and
/// the pseudonym's later posts can never go out: the rule working, at the price of liveness.)
#[test]
fn holds_provoked_accusations_and_rotation_keep_a_pseudonym_at_the_floor() {
    use dcnet::adversary::MemberFault;
    use dcnet::wire::Sender;
    for seed in [41u64, 42, 43, 44] {
        let p = RoundParams {
            tolerance: 2,
            ..params(200)
        };
        let tg = TestGroup::new(7, p, seed).unwrap();
        let faults: BTreeMap<u32, Vec<MemberFault>> = [
            (5, vec![MemberFault::JamSlots { rate: 0.04 }]),
            (6, vec![MemberFault::JamSlots { rate: 0.04 }]),
        ]
        .into_iter()
        .collect();
        let mut net = Network::with_faults(&tg, seed, LinkModel::default(), vec![], &faults);
        let mut nym = Nym::new("lark", [seed as u8; 32]).unwrap();
        let mut posts = Vec::new();
        let post = nym.post(tg.group.id(), &[b'0'; 500]);
        net.members[0]
            .as_mut()
            .unwrap()
            .submit_linked(&post, nym.link())
            .unwrap();
        posts.push(post);
        net.start();
        let _ = net.run_until_round(60, |_| false).unwrap();
        for (k, gone) in [1usize, 4, 1, 4].into_iter().enumerate() {
            let hw = take_down(&mut net, gone);
            let post = nym.post(tg.group.id(), &vec![b'1' + k as u8; 400]);
            net.members[0]
                .as_mut()
                .unwrap()
                .submit_linked(&post, nym.link())
                .unwrap();
            posts.push(post);
            let _ = net.run_until_round(40, |_| false).unwrap();
            net.restart(gone, hw);
            let _ = net.run_until_round(20, |_| false).unwrap();
        }
        let _ = net
            .run_until_round(400, |net| net.delivered(2).len() >= posts.len())
            .unwrap();
        let present = present_of(&net);
        let seen = rounds_per_message(&net, 2);
        // Only m0 sends here: every piece any round carried is one of the pseudonym's, the
        // pieces of a post still stuck included.
        let nym_rounds: BTreeSet<u64> = net.member_events[2]
            .iter()
            .filter_map(|e| match e {
                MemberEvent::RoundCompleted { round, pieces, .. } if !pieces.is_empty() => {
                    Some(*round)
                }
                _ => None,
            })
            .collect();
        let mut accusers = BTreeSet::new();
        for e in &net.relay_events {
            if let RelayEvent::Verdict { case, .. } = e {
                let start = case
                    .disclosure
                    .as_ref()
                    .map(|d| &d.body.start)
                    .or(case.start.as_ref());
                if let Some(acc) = start.and_then(|s| s.body.accusation.as_ref()) {
                    if let (Sender::Member(a), Some(rec)) = (acc.header.sender, &case.record) {
                        eprintln!(
                            "seed {seed}: accusation by m{a} in round {}",
                            rec.header.round
                        );
                        if nym_rounds.contains(&rec.header.round) {
                            accusers.insert(a);
                        }
                    }
                }
            }
        }
        let convicted = net.members[0].as_ref().unwrap().convicted().len();
        let floor = (7 - 2 - convicted).max(2);
        let a = intersection(nym_rounds.iter().map(|r| &present[r]));
        let cand: BTreeSet<u32> = a.difference(&accusers).copied().collect();
        assert!(
            cand.len() >= floor,
            "seed {seed}: narrowed to {cand:?} (floor {floor}; accusers {accusers:?})"
        );
        // (Liveness is not asserted: once a message's or link's set is down to the floor after
        // an accusation it can never go on; that is the rule working, see the report.)
        let delivered = seen.iter().filter(|(m, _)| posts.contains(m)).count();
        eprintln!("seed {seed}: {delivered} of {} posts out", posts.len());
        eprintln!(
            "seed {seed}: candidates {cand:?}, floor {floor}, convicted {convicted}, accusers {accusers:?}"
        );
    }
}

/// `dcnet member`'s restart: restore the outbox, then forget idle links. The link of a queued
/// pseudonym post keeps its narrowed set (the post stays held back while a member of it is
/// away); only the idle conversation's link is forgotten; the pseudonym's set over all its
/// posts stays at or above the floor.
#[test]
fn holds_restart_with_forget_idle_links_keeps_a_queued_posts_link() {
    let seed = 51;
    let (tg, mut net) = floor5_of_7(seed);
    let mut boxes = mailboxes(&tg, seed);
    let all: Vec<usize> = (0..7).collect();
    let mut nym = Nym::new("heron", [seed as u8; 32]).unwrap();
    let link = nym.link();
    let dm = boxes[0].dm(1, b"an idle conversation").unwrap();
    let p0 = nym.post(tg.group.id(), b"p0");
    let m0 = net.members[0].as_mut().unwrap();
    m0.submit_linked(&dm.message, dm.link.unwrap()).unwrap();
    m0.submit_linked(&p0, link).unwrap();
    net.start();
    deliver(&mut net, &all, 2);
    // m6 away for p1: the link's set is {0..5} (floor + 1).
    let hw6 = take_down(&mut net, 6);
    until_present(&mut net, &[0, 1, 2, 3, 4, 5]);
    let p1 = post_as(&mut net, 0, &mut nym, b"p1");
    deliver(&mut net, &[0, 1, 2, 3, 4, 5], 3);
    net.restart(6, hw6);
    until_present(&mut net, &[0, 1, 2, 3, 4, 5, 6]);
    // m5 away: p2 would narrow the pseudonym to {0..4}: held back. m0 crashes and restarts.
    let hw5 = take_down(&mut net, 5);
    until_present(&mut net, &[0, 1, 2, 3, 4, 6]);
    let p2 = post_as(&mut net, 0, &mut nym, b"p2");
    let _ = net.run_until_round(10, |_| false).unwrap();
    let m0 = net.members[0].as_ref().unwrap();
    let snap = m0.outbox_snapshot();
    let hw0 = m0.high_water();
    net.crash(0);
    net.restart(0, hw0);
    let m0 = net.members[0].as_mut().unwrap();
    assert_eq!(m0.restore_outbox(&snap).unwrap().len(), 1);
    assert_eq!(
        m0.forget_idle_links(),
        1,
        "only the idle conversation's link goes"
    );
    assert_eq!(m0.link_anonymity(&link), Some(6));
    let _ = net.run_until_round(60, |_| false).unwrap();
    assert!(
        !net.delivered(1).contains(&p2),
        "the restored post went out while m5 was away"
    );
    net.restart(5, hw5);
    deliver(&mut net, &[1, 2], 4);
    assert!(net.delivered(1).contains(&p2));
    let present = present_of(&net);
    let seen = rounds_per_message(&net, 1);
    let posts = [p0, p1, p2];
    let a = intersection(
        seen.iter()
            .filter(|(m, _)| posts.contains(m))
            .flat_map(|(_, r)| r.iter())
            .map(|r| &present[r]),
    );
    assert!(a.len() >= 5, "narrowed to {a:?}");
}
