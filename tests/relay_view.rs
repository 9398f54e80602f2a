//! Issue 11 item 1, from the relay's side: everything the relay handled (every frame in both
//! directions, and every round's output, which it computes from the seeds) holds no message
//! byte, and what it can compute about the slots does not depend on whether anyone talks.

mod common;

use common::*;
use dcnet::protocol::MemberEvent;
use dcnet::protocol::slots::{self, Allocation, Layout, SlotState};
use dcnet::sim::{Delivery, LinkModel, Network, TestGroup};
use std::cell::RefCell;
use std::rc::Rc;

/// What the relay saw in one run: every frame, and per completed round its output.
struct RelayView {
    frames: Vec<Vec<u8>>,
    outputs: Vec<(u64, Vec<u8>)>,
    /// (round, slot, msg_id) of every fragment member 1 read (the test's ground truth).
    pieces: Vec<(u64, u32, [u8; 8])>,
    delivered: usize,
}

fn run(n: usize, seed: u64, messages: &[Vec<u8>], rounds: usize) -> (RelayView, Layout) {
    let tg = TestGroup::new(n, params(128), seed).unwrap();
    let layout = Layout::new(tg.group.params());
    let mut net = Network::new(&tg, seed, LinkModel::default());
    let frames: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let f2 = frames.clone();
    net.hook = Some(Box::new(move |d| {
        match d {
            Delivery::ToRelay { frame, .. } | Delivery::ToMember { frame, .. } => {
                f2.borrow_mut().push(frame.clone())
            }
        }
        true
    }));
    for m in messages {
        net.members[0].as_mut().unwrap().submit(m).unwrap();
    }
    net.start();
    net.run_rounds(rounds).unwrap();
    let mut outputs = Vec::new();
    let mut pieces = Vec::new();
    for e in &net.member_events[1] {
        if let MemberEvent::RoundCompleted {
            round,
            cleartext,
            pieces: p,
            ..
        } = e
        {
            // The relay computes exactly this output: Record.xor ⊕ ⨁ ChaCha20(z_i).
            outputs.push((*round, cleartext.to_vec()));
            pieces.extend(p.iter().map(|p| (*round, p.slot, p.msg_id)));
        }
    }
    let delivered = net.delivered(1).len();
    let frames = frames.borrow().clone();
    (
        RelayView {
            frames,
            outputs,
            pieces,
            delivered,
        },
        layout,
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Private messages and pseudonym posts are message bytes like any other: the relay sees no
/// pseudonym name, key or text, and no sealed message's ephemeral key (what a member sees).
#[test]
fn pseudonym_posts_and_sealed_messages_show_the_relay_nothing() {
    let n = 4;
    let tg = TestGroup::new(n, params(128), 43).unwrap();
    let mut nym = dcnet::chat::Nym::new("nightjar", [8; 32]).unwrap();
    let mut mb = dcnet::chat::Mailbox::new(&tg.group, 0, &tg.member_keys[0], [6; 32]);
    let text = b"the pseudonym posts this where the relay cannot read it".to_vec();
    let post = nym.post(tg.group.id(), &text);
    let sealed = mb
        .dm(2, b"and this is for member two alone")
        .unwrap()
        .message;
    let (v, _) = run(n, 43, &[post.clone(), sealed.clone()], 40);
    assert_eq!(v.delivered, 2);
    let secrets: Vec<&[u8]> = vec![
        &text[..12],
        &text[text.len() - 12..],
        b"nightjar",
        &post[2..14],   // the pseudonym key
        &sealed[2..14], // the ephemeral key
    ];
    for s in secrets {
        for f in &v.frames {
            assert!(!contains(f, s), "a frame carries {s:?}");
        }
        for (r, o) in &v.outputs {
            assert!(!contains(o, s), "round {r}'s output carries {s:?}");
        }
    }
}

#[test]
fn the_relay_reads_no_message_byte() {
    let n = 5;
    let texts: Vec<Vec<u8>> = (0..4)
        .map(|k| format!("meet at the north gate at {k} o'clock; bring the papers. ").repeat(3))
        .map(String::into_bytes)
        .collect();
    let (v, layout) = run(n, 41, &texts, 60);
    assert_eq!(v.delivered, texts.len(), "the messages went out");
    assert!(!v.pieces.is_empty());
    // No 12-byte window of any message appears in any frame or any output.
    for t in &texts {
        for w in t.chunks(12).filter(|w| w.len() == 12) {
            for f in &v.frames {
                assert!(!contains(f, w), "a frame carries message text {w:?}");
            }
            for (r, o) in &v.outputs {
                assert!(
                    !contains(o, w),
                    "round {r}'s output carries message text {w:?}"
                );
            }
        }
    }
    // Nor any fragment's framing: the msg_id (and kind byte) of every fragment is encrypted.
    for (r, s, id) in &v.pieces {
        let o = &v.outputs.iter().find(|(x, _)| x == r).unwrap().1;
        let slot = &o[layout.slot(*s)];
        assert_eq!(slots::slot_state(*r, *s, slot), SlotState::Intact);
        assert_ne!(
            &slot[1..9],
            &id[..],
            "round {r} slot {s}: the msg_id is visible"
        );
        for (_, o) in &v.outputs {
            assert!(!contains(o, id), "a msg_id appears in an output");
        }
    }
    // The bytes of the non-empty slots the relay computes are uniform (χ², 255 dof: mean 255,
    // sd 22.6; 380 is beyond 5.5 sd).
    let slot_bytes: Vec<u8> = v
        .outputs
        .iter()
        .flat_map(|(r, o)| {
            (0..layout.slots)
                .filter(|&s| slots::slot_state(*r, s, &o[layout.slot(s)]) == SlotState::Intact)
                .flat_map(|s| o[layout.slot(s)][..layout.slot_bytes as usize - 32].to_vec())
                .collect::<Vec<u8>>()
        })
        .collect();
    assert!(slot_bytes.len() > 10_000, "enough slot bytes to test");
    let x = chi_square(&slot_bytes);
    println!(
        "chi2 of slot bodies the relay computes: {x:.1} over {} bytes",
        slot_bytes.len()
    );
    assert!(
        x < 380.0,
        "slot bodies the relay computes are not uniform: {x}"
    );
}

/// Slot usage is invisible: with `p_cover = 1` every won slot comes out intact whether it
/// carries a fragment or a trap, so the relay's keyless view (which slots are empty, intact or
/// damaged) has the same law in a group that talks and in one that is silent, and intact slots
/// show no kind byte.
#[test]
fn slot_usage_is_invisible_to_the_relay() {
    let n = 6;
    let busy: Vec<Vec<u8>> = (0..4).map(|k| vec![b'a' + k; 300]).collect();
    let (vb, layout) = run(n, 42, &busy, 120);
    let (vi, _) = run(n, 42, &[], 120);
    assert_eq!(vb.delivered, busy.len());
    assert!(vi.pieces.is_empty() && vb.pieces.len() >= 20);
    // Every allocated slot is intact in both worlds (a fragment or a trap, nobody can tell),
    // so the number of intact slots per round is the number of won reservations, traffic or
    // not; and the first bytes of intact slots show no kind byte.
    let view = |v: &RelayView| {
        let mut first = Vec::new();
        let mut prev: Option<&Vec<u8>> = None;
        let mut checked = 0;
        let mut counts = (0usize, 0usize);
        for (r, o) in &v.outputs {
            let st: Vec<SlotState> = (0..layout.slots)
                .map(|s| slots::slot_state(*r, s, &o[layout.slot(s)]))
                .collect();
            assert!(
                !st.contains(&SlotState::Damaged),
                "round {r}: damage in an honest round"
            );
            if let Some(p) = prev {
                let alloc = Allocation::from_output(&layout, r - 1, p, n);
                let intact: Vec<u32> = (0..layout.slots)
                    .filter(|&s| st[s as usize] == SlotState::Intact)
                    .collect();
                let allocated = alloc.slots();
                // (An allocated slot stays empty only when two reservations collided in its
                // cell: a public event that depends on cell draws, not on traffic.)
                assert!(
                    intact.iter().all(|s| allocated.contains(s)),
                    "round {r}: an intact slot outside the allocation"
                );
                counts.0 += intact.len();
                counts.1 += allocated.len();
                checked += 1;
                first.extend(intact.iter().map(|&s| o[layout.slot(s).start]));
            }
            prev = Some(o);
        }
        (checked, first, counts.0 as f64 / counts.1 as f64)
    };
    let (cb, fb, rb) = view(&vb);
    let (ci, fi, ri) = view(&vi);
    println!("allocated slots that come out intact: busy {rb:.3}, idle {ri:.3}");
    assert!((rb - ri).abs() < 0.1, "busy {rb} vs idle {ri}");
    assert!(cb >= 100 && ci >= 100, "rounds checked: {cb}, {ci}");
    let frags = vb.pieces.len();
    let ones = |f: &[u8]| f.iter().filter(|&&b| b == 0x01).count();
    println!(
        "intact slots: busy {} ({frags} fragments), idle {}; first byte 0x01: busy {}, idle {}",
        fb.len(),
        fi.len(),
        ones(&fb),
        ones(&fi)
    );
    assert!(frags >= 20, "the busy world carried {frags} fragments");
    // Fragments' kind byte would put ≥ 20 0x01 bytes here; uniform bytes give ≈ len/256.
    assert!(
        ones(&fb) < 10,
        "first bytes betray fragments: {}",
        ones(&fb)
    );
}
