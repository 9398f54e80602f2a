//! Attack review 6 (sealed messages, reply keys, pseudonyms, linked anonymity sets).
//!
//! An independent attacker's tests. Each asserts what must hold; the ones named `break_*`
//! failed on commit 232b894 (each showed a break) and pass since the fixes: answers carry their
//! conversation's link themselves (finding 1), one link's messages never overtake each other
//! (2), a full pseudonym book refuses new pseudonyms instead of forgetting old ones (3), and
//! only the floor applies to a link's set, not R (4). The `holds_*` tests record attacks that
//! were tried and held.

mod common;

use common::coalition::*;
use common::params;
use dcnet::chat::{Correspondent, Envelope, Nym, NymBook, NymRefusal, parse};
use dcnet::params::RoundParams;
use dcnet::sim::{LinkModel, Network, TestGroup};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

// ---------------------------------------------------------------------------------------------
// Finding 1: a coalition floods the anonymous writer with DMs; its conversation's thread (and
// with it the link) is evicted from `Mailbox::threads` (MAX_RECEIVED = 1024) while the received
// message it answers is kept, so `reply` returns `link: None` and the writer's side of the
// conversation goes out unlinked. The recipient (coalition) then narrows the writer below the
// floor with faked absences.
// ---------------------------------------------------------------------------------------------

/// Mailbox level: after 1024 DMs from anyone, the writer's answer in its own conversation has
/// no link, and the recipient's next answer no longer shows as coming from the named member.
#[test]
fn break_dm_flood_evicts_the_writers_link() {
    let tg = TestGroup::new(5, params(160), 1).unwrap();
    let mut boxes = mailboxes(&tg, 1);
    let dm = boxes[0].dm(3, b"anonymous question").unwrap();
    let link = dm.link.unwrap();
    let o = boxes[3].open(&dm.message).unwrap();
    // The coalition (member 2 here; any member can DM anyone) sends 1023 DMs to member 0 ...
    for k in 0..1023u32 {
        let f = boxes[2].dm(0, &k.to_le_bytes()).unwrap();
        assert!(boxes[0].open(&f.message).is_some());
    }
    // ... then the recipient (coalition) answers, then one more flood DM.
    let r = boxes[3].reply(o.number, b"who is this?").unwrap();
    let got = boxes[0].open(&r.message).unwrap();
    assert_eq!(got.from, Correspondent::Member(3));
    let f = boxes[2].dm(0, b"last").unwrap();
    boxes[0].open(&f.message).unwrap();
    let again = boxes[0]
        .reply(got.number, b"a friend")
        .expect("the received answer is still there");
    assert_eq!(
        again.link,
        Some(link),
        "the writer's answer in its own conversation lost its link (thread evicted)"
    );
}

/// End to end: m0 writes anonymously to m1 (coalition, with m4, m5, m6 and the relay). After
/// the flood m0's answers go out unlinked; m4, m5, m6 take turns being absent; m1 knows all of
/// m0's messages in the conversation are one author and intersects: 4 members, below the floor
/// of 5.
#[test]
fn break_dm_flood_then_absences_narrow_the_writer_below_the_floor() {
    let seed = 3;
    let n = 7;
    let p = RoundParams {
        tolerance: 2, // floor 5 of 7
        ..params(200)
    };
    let tg = TestGroup::new(n, p, seed).unwrap();
    let mut net = Network::new(&tg, seed, LinkModel::default());
    let mut boxes = mailboxes(&tg, seed);
    let all: Vec<usize> = (0..n).collect();

    let dm = boxes[0].dm(1, b"question from nobody").unwrap();
    let link = dm.link.unwrap();
    net.members[0]
        .as_mut()
        .unwrap()
        .submit_linked(&dm.message, link)
        .unwrap();
    net.start();
    deliver(&mut net, &all, 1);
    let o = boxes[1].open(&net.delivered(1)[0]).unwrap();
    // The flood, fed straight into m0's mailbox (in a real run: 1024 DMs delivered by the net).
    for k in 0..1023u32 {
        let f = boxes[4].dm(0, &k.to_le_bytes()).unwrap();
        boxes[0].open(&f.message).unwrap();
    }
    let mut authored: Vec<Vec<u8>> = vec![dm.message.clone()];
    let mut to_answer = o.number;
    let mut delivered = 1;
    let mut flooded = false;
    for absent in [6usize, 5, 4] {
        // m1 answers m0 (coalition timing: after the flood).
        let r = boxes[1].reply(to_answer, b"go on").unwrap();
        net.members[1].as_mut().unwrap().submit(&r.message).unwrap();
        delivered += 1;
        deliver(&mut net, &[0, 1, 2, 3], delivered);
        let got = boxes[0].open(&r.message).unwrap();
        if !flooded {
            let f = boxes[4].dm(0, b"last").unwrap();
            boxes[0].open(&f.message).unwrap();
            flooded = true;
        }
        // A coalition member goes away; m0 answers (as the CLI would: under `a.link`).
        let hw = take_down(&mut net, absent);
        let want: Vec<u32> = (0..n as u32).filter(|&i| i != absent as u32).collect();
        until_present(&mut net, &want);
        let a = boxes[0].reply(got.number, b"more").unwrap();
        let m0 = net.members[0].as_mut().unwrap();
        match a.link {
            Some(l) => m0.submit_linked(&a.message, l),
            None => m0.submit(&a.message),
        }
        .unwrap();
        authored.push(a.message.clone());
        let others: Vec<usize> = all.iter().copied().filter(|&i| i != absent).collect();
        let _ = net.run_until_round(40, |net| {
            others.iter().all(|&i| net.delivered(i).len() > delivered)
        });
        net.restart(absent, hw);
        delivered += 1;
        deliver(&mut net, &[0, 1, 2, 3], delivered);
        let mine = net.delivered(1).last().unwrap().clone();
        to_answer = boxes[1].open(&mine).unwrap().number;
    }
    let sets = rounds_of(&net, 1, |m| authored.iter().any(|a| a == m));
    let cand = intersection(&sets);
    assert!(
        cand.len() >= 5,
        "the coalition narrowed the anonymous writer to {cand:?} (floor 5): {sets:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 2: `choose_purpose` lets a later message of the SAME link overtake a held-back front
// message. For a pseudonym that reorders its posts, and readers refuse the overtaken post as
// a replay (NymBook: seq <= last). A coalition member's absence at the right time silently
// censors an honest pseudonym's post at every reader.
// ---------------------------------------------------------------------------------------------

#[test]
fn break_pseudonym_post_overtaken_and_refused_as_replay() {
    let seed = 7;
    let n = 7;
    let p = RoundParams {
        tolerance: 2,
        ..params(200)
    };
    let tg = TestGroup::new(n, p, seed).unwrap();
    let mut net = Network::new(&tg, seed, LinkModel::default());
    let mut nym = Nym::new("owl", [21; 32]).unwrap();
    let link = nym.link();
    // m6 (coalition) is away for the first post: the link's R is {0..5}.
    let hw6 = take_down(&mut net, 6);
    post_as(&mut net, 0, &mut nym, b"first");
    net.start();
    deliver(&mut net, &[0, 1, 2, 3, 4, 5], 1);
    net.restart(6, hw6);
    until_present(&mut net, &[0, 1, 2, 3, 4, 5, 6]);
    // A long post: its first piece goes out with all seven, so its own R is the whole group.
    let long = vec![b'x'; 3000];
    let p1 = nym.post(tg.group.id(), &long);
    let before = pieces_seen(&net, 1);
    net.members[0]
        .as_mut()
        .unwrap()
        .submit_linked(&p1, link)
        .unwrap();
    let ok = net
        .run_until_round(100, |net| pieces_seen(net, 1) > before)
        .unwrap();
    assert!(ok);
    // m6 leaves mid-message: p1 is held back. A short post p2 overtakes it.
    let hw6 = take_down(&mut net, 6);
    post_as(&mut net, 0, &mut nym, b"short");
    let _ = net.run_until_round(60, |net| net.delivered(1).len() >= 2);
    net.restart(6, hw6);
    deliver(&mut net, &[1, 2, 3], 3);
    let mut book = NymBook::default();
    let mut shown = Vec::new();
    for m in net.delivered(1) {
        if let Envelope::Nym(post) = parse(&m) {
            shown.push((post.seq, book.check(tg.group.id(), &post)));
        }
    }
    assert_eq!(
        shown,
        vec![(0, Ok(())), (1, Ok(())), (2, Ok(()))],
        "an honest pseudonym's post was reordered and refused"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 3: NymBook replay protection is bounded and in-memory: after MAX_NYMS fresh keys (or
// a reader restart), a coalition member re-submits an old post byte for byte and readers show
// it as new. Posts carry no epoch/round, so nothing else rejects them.
// ---------------------------------------------------------------------------------------------

#[test]
fn break_nym_replay_after_book_eviction() {
    let tg = TestGroup::new(3, params(160), 1).unwrap();
    let gid = tg.group.id();
    let mut owl = Nym::new("owl", [5; 32]).unwrap();
    let old = owl.post(gid, b"vote no");
    let Envelope::Nym(old) = parse(&old) else {
        panic!()
    };
    let mut book = NymBook::default();
    assert_eq!(book.check(gid, &old), Ok(()));
    assert_eq!(book.check(gid, &old), Err(NymRefusal::Replayed));
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for k in 0..dcnet::chat::MAX_NYMS {
        let mut s = [0u8; 32];
        rng.fill_bytes(&mut s);
        let mut junk = Nym::new("x", s).unwrap();
        let Envelope::Nym(p) = parse(&junk.post(gid, b".")) else {
            panic!()
        };
        let r = book.check(gid, &p);
        if k + 1 < dcnet::chat::MAX_NYMS {
            r.unwrap();
        } else {
            // The book is full: a new pseudonym is refused, not an old one forgotten.
            assert_eq!(r, Err(NymRefusal::TooMany));
        }
    }
    assert_eq!(
        book.check(gid, &old),
        Err(NymRefusal::Replayed),
        "a replayed pseudonym post was shown again after a flood of fresh pseudonyms"
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 4 (liveness, design): a link's R is the present set at its first piece, forever. One
// coalition member in R that never returns (never convicted: absence is not a fault) silences
// the pseudonym (or the anonymous side of a conversation) for good; plain posts still flow.
// ---------------------------------------------------------------------------------------------

#[test]
fn break_one_absent_member_silences_a_pseudonym_forever() {
    let seed = 11;
    let n = 7;
    let p = RoundParams {
        tolerance: 2,
        ..params(200)
    };
    let tg = TestGroup::new(n, p, seed).unwrap();
    let mut net = Network::new(&tg, seed, LinkModel::default());
    let mut nym = Nym::new("wren", [8; 32]).unwrap();
    let link = nym.link();
    post_as(&mut net, 0, &mut nym, b"hello");
    net.start();
    deliver(&mut net, &(0..n).collect::<Vec<_>>(), 1);
    net.crash(6); // and never comes back
    let p1 = nym.post(tg.group.id(), b"still here");
    let m0 = net.members[0].as_mut().unwrap();
    m0.submit_linked(&p1, link).unwrap();
    m0.submit(b"plain").unwrap();
    let _ = net.run_until_round(300, |net| net.delivered(1).len() >= 3);
    let got = net.delivered(1);
    assert!(got.iter().any(|m| m == b"plain"), "plain post stalled too");
    assert_eq!(
        got.len(),
        3,
        "the pseudonym's second post never went out in 300 rounds (6 of 7 present, floor 5)"
    );
}

// ---------------------------------------------------------------------------------------------
// Tried and held.
// ---------------------------------------------------------------------------------------------

/// Nobody but the holder of a reply key can make the writer attribute an answer to the named
/// recipient: crafted sealed messages to the writer's identity with a REPLY inner kind, and
/// to random keys, never open as `Member(_)`; replays never open twice; altered bytes never
/// open; a second answer to the same reply key does not open.
#[test]
fn holds_no_forged_attribution_or_replay() {
    let tg = TestGroup::new(5, params(160), 2).unwrap();
    let mut boxes = mailboxes(&tg, 2);
    let dm = boxes[0].dm(3, b"hi").unwrap();
    // Coalition members 1, 2, 4 see the sealed bytes (K_c) and re-submit them to everyone.
    for b in boxes.iter_mut().enumerate().filter(|(i, _)| *i != 3) {
        assert!(b.1.open(&dm.message).is_none());
    }
    let o = boxes[3].open(&dm.message).unwrap();
    assert!(boxes[3].open(&dm.message).is_none(), "replay opened");
    // A coalition member without the reply key seals "answers" to m0's identity key.
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let x0 = tg.member_keys[0].public().x25519().unwrap();
    for kind in 0..=3u8 {
        let mut pt = vec![kind];
        pt.extend_from_slice(&[7u8; 32]);
        pt.extend_from_slice(b"forged");
        let mut e = [0u8; 32];
        rng.fill_bytes(&mut e);
        let m = dcnet::chat::seal_to(tg.group.id(), &x0, &e, &pt).unwrap();
        if let Some(got) = boxes[0].open(&m) {
            assert_eq!(got.from, Correspondent::Anonymous);
            assert!(!got.is_reply);
        }
    }
    let r = boxes[3].reply(o.number, b"real").unwrap();
    let got = boxes[0].open(&r.message).unwrap();
    assert_eq!(got.from, Correspondent::Member(3));
    // m3 (or anyone it told) answers the same reply key again: does not open.
    assert!(boxes[0].open(&r.message).is_none());
    for i in 2..r.message.len() {
        let mut bad = r.message.clone();
        bad[i] ^= 0x80;
        assert!(boxes[0].open(&bad).is_none());
    }
}

/// Crafted bytes: parse, Mailbox::open, NymBook::check never panic (random and truncated
/// sealed/nym framings, name lengths past the end, non-UTF-8 names).
#[test]
fn holds_no_panic_on_crafted_chat_bytes() {
    let tg = TestGroup::new(3, params(160), 3).unwrap();
    let mut mb = mailboxes(&tg, 3);
    let mut book = NymBook::default();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let mut owl = Nym::new("owl", [1; 32]).unwrap();
    let good = owl.post(tg.group.id(), b"text");
    for k in 0..20_000usize {
        let len = (rng.next_u32() % 400) as usize;
        let mut m = vec![0u8; len];
        rng.fill_bytes(&mut m);
        if len >= 2 {
            m[0] = 0xFF;
            m[1] = (k % 4) as u8;
        }
        if k % 5 == 0 {
            m = good.clone();
            let i = (rng.next_u32() as usize) % m.len();
            m[i] = rng.next_u32() as u8;
            m.truncate((rng.next_u32() as usize) % (m.len() + 1));
        }
        match parse(&m) {
            Envelope::Nym(p) => {
                let _ = book.check(tg.group.id(), &p);
            }
            _ => {
                let _ = mb[1].open(&m);
            }
        }
    }
}

/// Crafted outbox files (format 2, with links): random byte flips, truncations and
/// extensions of a real snapshot never panic restore_outbox, and a refused file changes
/// nothing.
#[test]
fn holds_no_panic_on_crafted_outbox() {
    let seed = 4;
    let tg = TestGroup::new(4, params(160), seed).unwrap();
    let mut net = Network::new(&tg, seed, LinkModel::default());
    let mut nym = Nym::new("kite", [2; 32]).unwrap();
    let m0 = net.members[0].as_mut().unwrap();
    let first = nym.post(tg.group.id(), b"a");
    m0.submit_linked(&first, nym.link()).unwrap();
    net.start();
    deliver(&mut net, &[0, 1, 2, 3], 1);
    let m0 = net.members[0].as_mut().unwrap();
    m0.submit_linked(&nym.post(tg.group.id(), &[b'y'; 700]), nym.link())
        .unwrap();
    m0.submit(b"plain").unwrap();
    let snap = m0.outbox_snapshot();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    for k in 0..5000 {
        let mut bad = snap.clone();
        match k % 3 {
            0 => {
                let i = (rng.next_u32() as usize) % bad.len();
                bad[i] ^= 1 << (rng.next_u32() % 8);
            }
            1 => bad.truncate((rng.next_u32() as usize) % bad.len()),
            _ => bad.extend_from_slice(&[rng.next_u32() as u8; 3]),
        }
        let tg2 = TestGroup::new(4, params(160), seed).unwrap();
        let mut net2 = Network::new(&tg2, seed, LinkModel::default());
        let m = net2.members[0].as_mut().unwrap();
        let before = m.outbox_snapshot();
        if m.restore_outbox(&bad).is_err() {
            assert_eq!(
                m.outbox_snapshot(),
                before,
                "a refused outbox changed state"
            );
        }
    }
}
