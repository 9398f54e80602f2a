//! Known-answer vectors for allocation, damage, slots and DLEQ (issue 10 item 3):
//! tests/vectors/{alloc,damage,slots,dleq}.json.
//!
//! Each file holds cases of *inputs* and *outputs*. `regenerate_more_vectors` (ignored: run it on
//! purpose) builds the inputs and writes the outputs the Rust code computes from them. The other
//! tests read every case's inputs from the file, recompute all its outputs with the library and
//! compare the whole case, so any change in bytes names its vector. `python_checker` runs
//! tests/vectors/check_more.py, which verifies the same files from docs/PROTOCOL.md alone
//! (Python standard library, its own Ristretto255).

#[path = "common/python.rs"]
mod python;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use dcnet::crypto::keys::{self, ContentKey, EpochPublic, EpochSecret};
use dcnet::crypto::pad::keystream;
use dcnet::crypto::{Hash, dleq, hash, hash_wide, tags};
use dcnet::protocol::blame;
use dcnet::protocol::slots::{self, Allocation, Fragment, Layout, SlotContent, SlotState};
use serde_json::{Value, json};
use sha3::{Digest, Sha3_512};
use std::collections::BTreeSet;

const FILES: [&str; 4] = ["alloc.json", "damage.json", "slots.json", "dleq.json"];

fn path(name: &str) -> String {
    format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"))
}
fn load(name: &str) -> Value {
    let p = path(name);
    serde_json::from_str(&std::fs::read_to_string(&p).expect(&p)).expect(&p)
}
fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}
fn h32(v: &Value) -> [u8; 32] {
    hx(v).try_into().expect("32 bytes")
}
fn u(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}
fn wide(label: &str) -> [u8; 64] {
    Sha3_512::digest(label.as_bytes()).into()
}
/// `n` deterministic bytes (inputs only; the files carry them in full).
fn bytes(label: &str, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut k = 0u32;
    while out.len() < n {
        out.extend_from_slice(&hash("vector/bytes", &[label.as_bytes(), &k.to_le_bytes()]));
        k += 1;
    }
    out.truncate(n);
    out
}
fn layout_of(v: &Value) -> Layout {
    Layout {
        cells: u(&v["cells"]) as u32,
        slots: u(&v["slots"]) as u32,
        slot_bytes: u(&v["slot_bytes"]) as u32,
    }
}
fn layout_json(l: &Layout) -> Value {
    json!({"cells": l.cells, "slots": l.slots, "slot_bytes": l.slot_bytes})
}
/// Copies a case's input fields (those named) into a fresh object.
/// The content key of a case (`content_key`, hex).
fn content_key(case: &Value) -> ContentKey {
    ContentKey::from_bytes(h32(&case["content_key"]))
}
/// A fixed content key for the vectors.
fn vector_content_key(label: &str) -> String {
    hex::encode(hash("vector/content-key", &[label.as_bytes()]))
}
fn state_name(s: SlotState) -> &'static str {
    match s {
        SlotState::Empty => "empty",
        SlotState::Intact => "intact",
        SlotState::Damaged => "damaged",
    }
}

fn inputs(case: &Value, names: &[&str]) -> serde_json::Map<String, Value> {
    names
        .iter()
        .map(|n| (n.to_string(), case[*n].clone()))
        .collect()
}

// ---------------------------------------------------------------- allocation (§6, §11.10)

/// The cells a cell check examines (as `blame::RoundView::new` chooses them; not a public
/// function there): the first `CELL_CHECK_MAX` non-zero cells by
/// `H("dcnet/v1/cell-check-order"; output_digest, u32le cell)`, then ascending by index.
fn checked_cells(out: &Hash, nonzero: &[u32]) -> (Vec<(Hash, u32)>, Vec<u32>) {
    let mut order: Vec<(Hash, u32)> = nonzero
        .iter()
        .map(|&c| (hash(blame::CELL_CHECK_ORDER, &[out, &c.to_le_bytes()]), c))
        .collect();
    order.sort();
    let mut cells: Vec<u32> = order
        .iter()
        .take(blame::CELL_CHECK_MAX)
        .map(|x| x.1)
        .collect();
    cells.sort();
    (order, cells)
}

fn alloc_case(case: &Value) -> Value {
    let layout = layout_of(&case["layout"]);
    let round = u(&case["round"]);
    let present = u(&case["present"]) as usize;
    let clear = hx(&case["cleartext"]);
    assert_eq!(clear.len(), layout.len(), "cleartext length");
    let out = slots::output_digest(round, &clear);
    let a = Allocation::from_output(&layout, round, &clear, present);
    let mut order: Vec<(Hash, u32)> = a
        .nonzero
        .iter()
        .map(|&c| (hash(tags::ALLOC_ORDER, &[&out, &c.to_le_bytes()]), c))
        .collect();
    order.sort();
    let mut o = inputs(
        case,
        &["comment", "layout", "round", "present", "cleartext"],
    );
    o.insert("output_digest".into(), json!(hex::encode(out)));
    o.insert("nonzero_cells".into(), json!(a.nonzero));
    o.insert(
        "order".into(),
        json!(
            order
                .iter()
                .map(|(k, c)| json!({"cell": c, "order_key": hex::encode(k)}))
                .collect::<Vec<_>>()
        ),
    );
    o.insert("void".into(), json!(a.overflow));
    // Allocated cells in slot order.
    let mut by_slot: Vec<(u32, u32)> = a.by_cell.iter().map(|(&c, &s)| (s, c)).collect();
    by_slot.sort();
    o.insert(
        "allocation".into(),
        json!(
            by_slot
                .iter()
                .map(|(s, c)| json!({"cell": c, "slot": s}))
                .collect::<Vec<_>>()
        ),
    );
    o.insert("cell_check".into(), json!(a.cell_check));
    if a.cell_check {
        let (corder, cells) = checked_cells(&out, &a.nonzero);
        o.insert(
            "cell_check_order".into(),
            json!(
                corder
                    .iter()
                    .map(|(k, c)| json!({"cell": c, "key": hex::encode(k)}))
                    .collect::<Vec<_>>()
            ),
        );
        o.insert("checked_cells".into(), json!(cells));
        let positions: Vec<u64> = cells
            .iter()
            .filter_map(|&c| {
                let r = layout.cell(c);
                clear[r.clone()]
                    .iter()
                    .position(|&b| b != 0)
                    .map(|p| (r.start + p) as u64)
            })
            .collect();
        o.insert("checked_positions".into(), json!(positions));
    }
    Value::Object(o)
}

fn alloc_inputs() -> Value {
    let layout = Layout {
        cells: 20,
        slots: 4,
        slot_bytes: 64,
    };
    let mk = |label: &str, cells: &[u32]| {
        let mut v = vec![0u8; layout.len()];
        let slots_start = layout.cells as usize * 8;
        v[slots_start..].copy_from_slice(&bytes(
            &format!("{label} slots"),
            layout.len() - slots_start,
        ));
        for &c in cells {
            v[layout.cell(c)].copy_from_slice(&bytes(&format!("{label} cell {c}"), 8));
        }
        v
    };
    let mut a = mk("a", &[2, 5, 11]);
    // A cell with a single non-zero byte (its last) is non-zero.
    a[layout.cell(17).end - 1] = 0x01;
    let cases = [
        (
            "4 non-zero cells (cell 17 only in its last byte), 4 present, 4 slots: allocated",
            7u64,
            4u64,
            a,
        ),
        (
            "5 non-zero cells > 4 slots, 5 present: void, no cell check",
            (1u64 << 32) + 3,
            5,
            mk("b", &[0, 3, 8, 13, 19]),
        ),
        (
            "3 non-zero cells > 2 present: void and a cell check of all 3",
            9,
            2,
            mk("c", &[1, 6, 14]),
        ),
        (
            "all 20 cells non-zero, 3 present: void, cell check of the first 16 by cell-check order",
            10,
            3,
            mk("d", &(0..20).collect::<Vec<_>>()),
        ),
        ("no non-zero cell: empty allocation", 11, 3, mk("e", &[])),
        (
            "one non-zero cell, 2 present: slot 0",
            12,
            2,
            mk("f", &[19]),
        ),
    ];
    json!(
        cases
            .into_iter()
            .map(|(comment, round, present, clear)| json!({
                "comment": comment,
                "layout": layout_json(&layout),
                "round": round,
                "present": present,
                "cleartext": hex::encode(clear),
            }))
            .collect::<Vec<_>>()
    )
}

// ---------------------------------------------------------------- damage (§7, §11.1, §11.3)

fn content_name(c: &SlotContent) -> &'static str {
    match c {
        SlotContent::Empty => "empty",
        SlotContent::Fragment(_) => "fragment",
        SlotContent::Trap => "trap",
        SlotContent::Damaged => "damaged",
    }
}

fn damage_case(case: &Value) -> Value {
    let layout = layout_of(&case["layout"]);
    let round = u(&case["round"]);
    let clear = hx(&case["cleartext"]);
    assert_eq!(clear.len(), layout.len(), "cleartext length");
    let allocated: BTreeSet<u32> = case["allocated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| u(s) as u32)
        .collect();
    let out = slots::output_digest(round, &clear);
    let d = blame::damaged(&layout, round, &clear, &allocated);
    let mut o = inputs(
        case,
        &[
            "comment",
            "layout",
            "round",
            "allocated",
            "cleartext",
            "trap",
            "content_key",
        ],
    );
    let ck = content_key(case);
    o.insert("output_digest".into(), json!(hex::encode(out)));
    o.insert(
        "slots".into(),
        json!(
            (0..layout.slots)
                .map(|s| {
                    let bytes = &clear[layout.slot(s)];
                    let c = slots::parse_slot(&layout, round, s, bytes, &ck.slot_key(round, s));
                    let st = slots::slot_state(round, s, bytes);
                    json!({"slot": s, "state": state_name(st), "content": content_name(&c)})
                })
                .collect::<Vec<_>>()
        ),
    );
    o.insert(
        "damaged".into(),
        json!(
            d.iter()
                .map(|x| json!({
                    "slot": x.slot,
                    "allocated": x.allocated,
                    "order_key": hex::encode(hash(blame::DAMAGE_ORDER, &[&out, &x.slot.to_le_bytes()])),
                }))
                .collect::<Vec<_>>()
        ),
    );
    let zero = d
        .iter()
        .find(|x| !x.allocated)
        .and_then(|x| blame::first_nonzero(&layout, &clear, x.slot));
    o.insert("zero_position".into(), json!(zero));
    if let Some(t) = case.get("trap").filter(|t| !t.is_null()) {
        let s = u(&t["slot"]) as u32;
        let g = h32(&t["gamma"]);
        let k = *ck.slot_key(round, s).expose();
        let x = blame::first_trap_difference(&layout, round, s, &g, &k, &clear);
        o.insert("trap_difference".into(), json!(x));
    }
    Value::Object(o)
}

/// Encrypts a plaintext slot body under its slot key and appends the slot hash (for
/// deliberately malformed but hashed bodies).
fn seal(ck: &ContentKey, round: u64, slot: u32, mut body: Vec<u8>) -> Vec<u8> {
    let ks = keystream(&ck.slot_key(round, slot), round, 0, body.len());
    for (b, k) in body.iter_mut().zip(ks) {
        *b ^= k;
    }
    let h = hash(
        tags::SLOT,
        &[&round.to_le_bytes(), &slot.to_le_bytes(), &body],
    );
    body.extend_from_slice(&h);
    body
}

fn damage_inputs() -> Value {
    let layout = Layout {
        cells: 4,
        slots: 10,
        slot_bytes: 96,
    };
    let round = 21u64;
    let ckey = vector_content_key("damage");
    let ck = ContentKey::from_bytes(h32(&json!(ckey)));
    let sk = |s: u32| ck.slot_key(round, s);
    // A plaintext body of a framed fragment (decrypting what frame_fragment wrote).
    let plain = |s: u32, framed: Vec<u8>| {
        let mut body = framed[..layout.slot_bytes as usize - 32].to_vec();
        let ks = keystream(&sk(s), round, 0, body.len());
        for (b, k) in body.iter_mut().zip(ks) {
            *b ^= k;
        }
        body
    };
    let mut v = vec![0u8; layout.len()];
    v[0..8].copy_from_slice(&bytes("damage cell 0", 8));
    v[24..32].copy_from_slice(&bytes("damage cell 3", 8));
    let frag = |payload: &[u8], index: u16, count: u16| {
        let id = [0x11u8; 8];
        Fragment {
            msg_id: id,
            digest: slots::message_digest(&id, payload),
            index,
            count,
            payload: payload.to_vec(),
        }
    };
    let put = |v: &mut Vec<u8>, s: u32, bytes: &[u8]| v[layout.slot(s)].copy_from_slice(bytes);
    let gamma = hash("vector/gamma", &[b"damage"]);
    // 0: allocated, intact fragment.
    put(
        &mut v,
        0,
        &slots::frame_fragment(&layout, round, 0, &frag(b"intact", 0, 1), &sk(0)),
    );
    // 1: allocated, empty (a collided reservation): not damage.
    // 2: allocated trap, one byte XORed by a jammer.
    let mut t = slots::trap_slot(&layout, round, 2, &gamma, &sk(2));
    t[40] ^= 0x5a;
    put(&mut v, 2, &t);
    // 3: unallocated, one non-zero byte.
    v[layout.slot(3).start + 70] = 0x80;
    // 4: unallocated, zero.
    // 5: allocated, hashed fragment whose len exceeds the capacity (33 bytes): format fails.
    let mut body = plain(
        5,
        slots::frame_fragment(&layout, round, 5, &frag(b"x", 0, 1), &sk(5)),
    );
    body[29..31].copy_from_slice(&34u16.to_le_bytes());
    put(&mut v, 5, &seal(&ck, round, 5, body));
    // 6: allocated, intact trap.
    put(
        &mut v,
        6,
        &slots::trap_slot(&layout, round, 6, &gamma, &sk(6)),
    );
    // 7: unallocated, intact fragment: damage all the same (nobody may write there).
    put(
        &mut v,
        7,
        &slots::frame_fragment(&layout, round, 7, &frag(b"stray", 0, 1), &sk(7)),
    );
    // 8: allocated, kind byte 0x03 under a valid hash.
    let mut body = vec![0u8; layout.slot_bytes as usize - 32];
    body[0] = 0x03;
    put(&mut v, 8, &seal(&ck, round, 8, body));
    // 9: allocated, hashed fragment with index = count.
    let mut body = plain(
        9,
        slots::frame_fragment(&layout, round, 9, &frag(b"y", 0, 1), &sk(9)),
    );
    body[25..27].copy_from_slice(&2u16.to_le_bytes());
    body[27..29].copy_from_slice(&2u16.to_le_bytes());
    put(&mut v, 9, &seal(&ck, round, 9, body));
    let trap = json!({"slot": 2, "gamma": hex::encode(gamma)});
    json!([
        {
            "comment": "allocated 0,1,2,5,6,8,9: intact fragment, empty, jammed trap, len > capacity, intact trap, kind 0x03, index = count; unallocated 3 (one byte), 4 (zero), 7 (an intact fragment)",
            "layout": layout_json(&layout), "round": round, "allocated": [0, 1, 2, 5, 6, 8, 9],
            "cleartext": hex::encode(&v), "trap": trap, "content_key": ckey,
        },
        {
            "comment": "the same output in an attempt without allocation: every non-zero slot is damage",
            "layout": layout_json(&layout), "round": round, "allocated": [],
            "cleartext": hex::encode(&v), "trap": null, "content_key": ckey,
        },
    ])
}

// ---------------------------------------------------------------- slots (§2.11, §7)

fn trap_case(case: &Value) -> Value {
    let layout = layout_of(&case["layout"]);
    let (round, slot) = (u(&case["round"]), u(&case["slot"]) as u32);
    let gamma = h32(&case["gamma"]);
    let key = hash(
        tags::TRAP,
        &[&gamma, &round.to_le_bytes(), &slot.to_le_bytes()],
    );
    let sk = content_key(case).slot_key(round, slot);
    let s = slots::trap_slot(&layout, round, slot, &gamma, &sk);
    assert_eq!(
        slots::parse_slot(&layout, round, slot, &s, &sk),
        SlotContent::Trap
    );
    let body_len = layout.slot_bytes as usize - 32;
    let ks = keystream(
        &dcnet::crypto::pad::StreamKey::from_bytes(key),
        round,
        0,
        body_len - 1,
    );
    let enc = keystream(&sk, round, 0, body_len);
    let opened: Vec<u8> = s[..body_len].iter().zip(&enc).map(|(a, b)| a ^ b).collect();
    assert_eq!(opened[0], 0x02, "trap kind byte, under the slot key");
    assert_eq!(&opened[1..], &ks[..], "trap keystream");
    let mut o = inputs(
        case,
        &["comment", "layout", "gamma", "round", "slot", "content_key"],
    );
    o.insert("trap_key".into(), json!(hex::encode(key)));
    o.insert("slot_key".into(), json!(hex::encode(sk.expose())));
    o.insert("slot_bytes".into(), json!(hex::encode(&s)));
    Value::Object(o)
}

fn message_case(case: &Value) -> Value {
    let layout = layout_of(&case["layout"]);
    let msg = hx(&case["message"]);
    let msg_id: [u8; 8] = hx(&case["msg_id"]).try_into().unwrap();
    let frags = slots::fragment(&msg, layout.capacity(), msg_id);
    let places = case["placed"].as_array().unwrap();
    assert_eq!(places.len(), frags.len(), "one place per fragment");
    let mut o = inputs(
        case,
        &[
            "comment",
            "layout",
            "msg_id",
            "message",
            "placed",
            "content_key",
        ],
    );
    let ck = content_key(case);
    o.insert("capacity".into(), json!(layout.capacity()));
    o.insert(
        "digest".into(),
        json!(hex::encode(slots::message_digest(&msg_id, &msg))),
    );
    let mut r = slots::Reassembly::new(4, 16, 64);
    let mut got = None;
    let fs: Vec<Value> = frags
        .iter()
        .zip(places)
        .map(|(f, p)| {
            let (round, slot) = (u(&p["round"]), u(&p["slot"]) as u32);
            let sk = ck.slot_key(round, slot);
            let s = slots::frame_fragment(&layout, round, slot, f, &sk);
            assert_eq!(
                slots::parse_slot(&layout, round, slot, &s, &sk),
                SlotContent::Fragment(f.clone())
            );
            if let slots::Reassembled::Message(m) = r.add(f.clone()) {
                got = Some(m);
            }
            json!({"index": f.index, "count": f.count, "round": round, "slot": slot,
                   "payload": hex::encode(&f.payload), "slot_bytes": hex::encode(&s)})
        })
        .collect();
    assert_eq!(got.as_deref(), Some(&msg[..]), "reassembles");
    o.insert("fragments".into(), json!(fs));
    Value::Object(o)
}

fn slots_inputs() -> Value {
    let layout = Layout {
        cells: 2,
        slots: 4,
        slot_bytes: 80,
    };
    let l = layout_json(&layout);
    let g = |s: &str| hex::encode(hash("vector/gamma", &[s.as_bytes()]));
    let ck = vector_content_key("slots");
    let traps = json!([
        {"comment": "slot 0", "layout": l, "content_key": ck, "gamma": g("t0"), "round": 5, "slot": 0},
        {"comment": "slot 3, round above 2^40", "layout": l, "content_key": ck, "gamma": g("t1"), "round": (1u64 << 40) + 1, "slot": 3},
        {"comment": "same Γ as the first, used in another round and slot", "layout": l, "content_key": ck, "gamma": g("t0"), "round": 6, "slot": 1},
    ]);
    let msg40: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
    let messages = json!([
        {"comment": "one short fragment", "layout": l, "content_key": ck, "msg_id": "0102030405060708",
         "message": hex::encode(b"hi"), "placed": [{"round": 5, "slot": 2}]},
        {"comment": "the empty message is one empty fragment", "layout": l, "content_key": ck, "msg_id": "a0a1a2a3a4a5a6a7",
         "message": "", "placed": [{"round": 5, "slot": 0}]},
        {"comment": "exactly the capacity (17 bytes): one full fragment", "layout": l, "content_key": ck, "msg_id": "ffeeddccbbaa9988",
         "message": hex::encode(b"seventeen bytes!!"), "placed": [{"round": 7, "slot": 3}]},
        {"comment": "40 bytes: fragments of 17, 17 and 6 bytes over two rounds", "layout": l, "content_key": ck,
         "msg_id": "5555555555555555", "message": hex::encode(&msg40),
         "placed": [{"round": 12, "slot": 1}, {"round": 12, "slot": 2}, {"round": 13, "slot": 0}]},
    ]);
    let gid = hash("vector/group", &[b"content"]);
    let keys = json!([
        {"comment": "keyholder 2 seals K_c to member 0", "content_key": ck,
         "group_id": hex::encode(gid), "epoch": 3, "round": 17, "holder": 2, "to": 0,
         "pair_secret": hex::encode(hash("vector/pair", &[b"0-2"])), "slot": 1},
        {"comment": "another epoch, round and pair", "content_key": vector_content_key("other"),
         "group_id": hex::encode(gid), "epoch": 1u64 << 33, "round": (1u64 << 40) + 5, "holder": 0, "to": 7,
         "pair_secret": hex::encode(hash("vector/pair", &[b"0-7"])), "slot": 6},
    ]);
    json!({"traps": traps, "messages": messages, "content_keys": keys})
}

fn slots_file(v: &Value) -> Value {
    json!({
        "traps": v["traps"].as_array().unwrap().iter().map(trap_case).collect::<Vec<_>>(),
        "messages": v["messages"].as_array().unwrap().iter().map(message_case).collect::<Vec<_>>(),
        "content_keys": v["content_keys"].as_array().unwrap().iter().map(content_key_case).collect::<Vec<_>>(),
    })
}

/// §2.12: kc_id, a slot key, a seal mask and the seal, and the seal opening back.
fn content_key_case(case: &Value) -> Value {
    let ck = content_key(case);
    let gid = h32(&case["group_id"]);
    let (epoch, round) = (u(&case["epoch"]), u(&case["round"]));
    let (holder, to) = (u(&case["holder"]) as u32, u(&case["to"]) as u32);
    let slot = u(&case["slot"]) as u32;
    let pair = keys::PairSecret::from_bytes(h32(&case["pair_secret"]));
    let id = ck.id(&gid, epoch);
    let mask = keys::seal_mask(&pair, &gid, epoch, round, holder, to);
    let seal = ck.seal(&mask);
    let opened = ContentKey::open(&seal, &mask, &gid, epoch, &id).expect("the seal opens");
    assert_eq!(opened.expose(), ck.expose());
    let mut wrong = seal;
    wrong[0] ^= 1;
    assert!(ContentKey::open(&wrong, &mask, &gid, epoch, &id).is_none());
    let mut o = inputs(
        case,
        &[
            "comment",
            "content_key",
            "group_id",
            "epoch",
            "round",
            "holder",
            "to",
            "pair_secret",
            "slot",
        ],
    );
    o.insert("content_id".into(), json!(hex::encode(id)));
    o.insert(
        "slot_key".into(),
        json!(hex::encode(ck.slot_key(round, slot).expose())),
    );
    o.insert("seal_mask".into(), json!(hex::encode(mask)));
    o.insert("seal".into(), json!(hex::encode(seal)));
    Value::Object(o)
}

// ---------------------------------------------------------------- DLEQ (§2.8)

fn secret(wide_bytes: &[u8; 64]) -> (EpochSecret, Scalar) {
    (
        EpochSecret::from_uniform_bytes(wide_bytes).unwrap(),
        Scalar::from_bytes_mod_order_wide(wide_bytes),
    )
}

fn dleq_case(case: &Value, gid: &Hash, epoch: u64, members: &[Value]) -> Value {
    let purpose = case["purpose"].as_str().unwrap();
    let me = u(&case["prover"]) as usize;
    let w: [u8; 64] = hx(&members[me]["secret_wide"]).try_into().unwrap();
    let (sec, e) = secret(&w);
    let x = sec.public().0;
    let (t_point, ctx_parts, ctx_tag): (RistrettoPoint, Vec<Vec<u8>>, &str) = match purpose {
        "accuse" | "cell-claim" => {
            let r = u(&case["round"]);
            (
                keys::footprint_base(gid, epoch, r),
                vec![
                    gid.to_vec(),
                    epoch.to_le_bytes().to_vec(),
                    r.to_le_bytes().to_vec(),
                    (me as u32).to_le_bytes().to_vec(),
                ],
                blame::ACCUSE_CONTEXT,
            )
        }
        "pair-reveal" => {
            let other = u(&case["other"]) as usize;
            let ej = EpochPublic(h32(&members[other]["epoch_key"]));
            (
                ej.point().unwrap(),
                vec![
                    gid.to_vec(),
                    epoch.to_le_bytes().to_vec(),
                    (me as u32).to_le_bytes().to_vec(),
                    (other as u32).to_le_bytes().to_vec(),
                ],
                blame::REVEAL_CONTEXT,
            )
        }
        p => panic!("unknown purpose {p}"),
    };
    let parts: Vec<&[u8]> = ctx_parts.iter().map(|p| &p[..]).collect();
    let ctx = hash(ctx_tag, &parts);
    // The library's own context functions give the same bytes.
    let lib_ctx = match purpose {
        "pair-reveal" => blame::reveal_context(gid, epoch, me as u32, u(&case["other"]) as u32),
        _ => blame::accuse_context(gid, epoch, u(&case["round"]), me as u32),
    };
    assert_eq!(ctx, lib_ctx, "{purpose}: context");
    let fresh = h32(&case["fresh"]);
    let (y, proof) = dleq::prove(&sec, &t_point, &ctx, &fresh);
    let t = t_point.compress().to_bytes();
    if purpose == "pair-reveal" {
        let other = u(&case["other"]) as usize;
        assert_eq!(
            Some(y),
            sec.shared(&EpochPublic(h32(&members[other]["epoch_key"]))),
            "Y = K_ij"
        );
    } else {
        assert_eq!(y, sec.gamma(gid, epoch, u(&case["round"])), "Y = Γ");
    }
    assert!(dleq::verify_vartime(&x, &t_point, &y, &proof, &ctx));
    // Intermediate values from §2.8's formulas, tied to the library's proof below.
    let kw = hash_wide(tags::DLEQ_NONCE, &[&e.to_bytes(), &ctx, &x, &t, &y, &fresh]);
    let k = Scalar::from_bytes_mod_order_wide(&kw);
    let r1 = RistrettoPoint::mul_base(&k).compress().to_bytes();
    let r2 = (k * t_point).compress().to_bytes();
    let c = Scalar::from_bytes_mod_order_wide(&hash_wide(
        tags::DLEQ_CHALLENGE,
        &[&ctx, &x, &t, &y, &r1, &r2],
    ));
    assert_eq!(c.to_bytes(), proof.c, "c");
    assert_eq!((k + c * e).to_bytes(), proof.s, "s");
    let mut o = inputs(
        case,
        &["comment", "purpose", "prover", "round", "other", "fresh"],
    );
    o.retain(|_, v| !v.is_null());
    o.insert("context_tag".into(), json!(ctx_tag));
    o.insert(
        "context_parts".into(),
        json!(ctx_parts.iter().map(hex::encode).collect::<Vec<_>>()),
    );
    o.insert("context".into(), json!(hex::encode(ctx)));
    o.insert("X".into(), json!(hex::encode(x)));
    o.insert("T".into(), json!(hex::encode(t)));
    o.insert("Y".into(), json!(hex::encode(y)));
    o.insert("nonce_k".into(), json!(hex::encode(k.to_bytes())));
    o.insert("R1".into(), json!(hex::encode(r1)));
    o.insert("R2".into(), json!(hex::encode(r2)));
    o.insert("c".into(), json!(hex::encode(proof.c)));
    o.insert("s".into(), json!(hex::encode(proof.s)));
    o.insert(
        "proof".into(),
        json!(hex::encode([proof.c, proof.s].concat())),
    );
    if purpose == "pair-reveal" {
        // The context is (revealer, other), not sorted: the same proof under the swapped
        // context does not verify.
        let other = u(&case["other"]) as u32;
        let swapped = blame::reveal_context(gid, epoch, other, me as u32);
        let ok = dleq::verify_vartime(&x, &t_point, &y, &proof, &swapped);
        assert!(!ok);
        o.insert("swapped_context".into(), json!(hex::encode(swapped)));
        o.insert("swapped_context_verifies".into(), json!(ok));
    }
    Value::Object(o)
}

fn dleq_file(v: &Value) -> Value {
    let gid = h32(&v["group_id"]);
    let epoch = u(&v["epoch"]);
    let members: Vec<Value> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let w: [u8; 64] = hx(&m["secret_wide"]).try_into().unwrap();
            let (sec, e) = secret(&w);
            json!({"label": m["label"], "secret_wide": m["secret_wide"],
                   "secret": hex::encode(e.to_bytes()), "epoch_key": hex::encode(sec.public().0)})
        })
        .collect();
    let mut base = Vec::new();
    for r in [5u64, 9] {
        base.push(json!({"round": r, "T": hex::encode(keys::footprint_base(&gid, epoch, r).compress().to_bytes()),
                         "wide_input": hex::encode(hash_wide(tags::FOOTPRINT_BASE, &[&gid, &epoch.to_le_bytes(), &r.to_le_bytes()]))}));
    }
    json!({
        "comment": v["comment"],
        "group_id": v["group_id"],
        "epoch": epoch,
        "members": members,
        "footprint_bases": base,
        "proofs": v["proofs"].as_array().unwrap().iter()
            .map(|c| dleq_case(c, &gid, epoch, &members)).collect::<Vec<_>>(),
    })
}

fn dleq_inputs() -> Value {
    let members: Vec<Value> = (0..3)
        .map(|i| {
            let label = format!("dcnet vector member {i}");
            json!({"label": label, "secret_wide": hex::encode(wide(&label))})
        })
        .collect();
    let fresh = |s: &str| hex::encode(hash("vector/fresh", &[s.as_bytes()]));
    json!({
        "comment": "secret_wide = SHA3-512(label), e = secret_wide mod l (little-endian); E = e·B",
        "group_id": hex::encode(hash("vector/group", &[b"dleq"])),
        "epoch": 4,
        "members": members,
        "proofs": [
            {"comment": "Accuse by member 1: X = E_1, T = T_5 (alloc_round 5), Y = Γ_1,5", "purpose": "accuse",
             "prover": 1, "round": 5, "fresh": fresh("accuse")},
            {"comment": "CellClaim by member 2 in a cell check of round 9: the accuse context with alloc_round = 9",
             "purpose": "cell-claim", "prover": 2, "round": 9, "fresh": fresh("claim")},
            {"comment": "KeyReveal by member 2 about member 0 (revealer > other): X = E_2, T = E_0, Y = K_02",
             "purpose": "pair-reveal", "prover": 2, "other": 0, "fresh": fresh("reveal 2")},
            {"comment": "KeyReveal by member 0 about member 2: X = E_0, T = E_2, Y = K_02", "purpose": "pair-reveal",
             "prover": 0, "other": 2, "fresh": fresh("reveal 0")},
        ],
    })
}

// ---------------------------------------------------------------- files

fn compute(name: &str, v: &Value) -> Value {
    match name {
        "alloc.json" => json!(
            v.as_array()
                .unwrap()
                .iter()
                .map(alloc_case)
                .collect::<Vec<_>>()
        ),
        "damage.json" => json!(
            v.as_array()
                .unwrap()
                .iter()
                .map(damage_case)
                .collect::<Vec<_>>()
        ),
        "slots.json" => slots_file(v),
        "dleq.json" => dleq_file(v),
        _ => unreachable!(),
    }
}

fn fresh_inputs(name: &str) -> Value {
    match name {
        "alloc.json" => alloc_inputs(),
        "damage.json" => damage_inputs(),
        "slots.json" => slots_inputs(),
        "dleq.json" => dleq_inputs(),
        _ => unreachable!(),
    }
}

#[test]
#[ignore = "writes tests/vectors/{alloc,damage,slots,dleq}.json; run on purpose only"]
fn regenerate_more_vectors() {
    for name in FILES {
        let v = compute(name, &fresh_inputs(name));
        std::fs::write(path(name), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
    }
}

/// Recomputes every output of a file from the inputs it holds and compares, naming the first
/// differing case and field.
fn check(name: &str) {
    let stored = load(name);
    let computed = compute(name, &stored);
    fn diff(path: &str, a: &Value, b: &Value) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| {
                    diff(
                        &format!("{path}.{k}"),
                        &x[k],
                        y.get(k).unwrap_or(&Value::Null),
                    )
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| diff(&format!("{path}[{i}]"), p, q)),
            _ => (a != b).then(|| format!("{path}: stored {a}, computed {b}")),
        }
    }
    if let Some(d) = diff(name, &stored, &computed) {
        panic!("{d}");
    }
    // Inputs regenerate to the same file too (the files are not hand-edited).
    assert_eq!(
        compute(name, &fresh_inputs(name)),
        stored,
        "{name}: regenerated inputs differ"
    );
}

#[test]
fn alloc_vectors() {
    check("alloc.json");
}

#[test]
fn damage_vectors() {
    check("damage.json");
}

#[test]
fn slots_vectors() {
    check("slots.json");
}

#[test]
fn dleq_vectors() {
    check("dleq.json");
    // Stored proofs verify as stored; a changed byte does not.
    let v = load("dleq.json");
    for p in v["proofs"].as_array().unwrap() {
        let t = CompressedRistretto(h32(&p["T"])).decompress().unwrap();
        let mut proof = dleq::DleqProof {
            c: h32(&p["c"]),
            s: h32(&p["s"]),
        };
        let (x, y, ctx) = (h32(&p["X"]), h32(&p["Y"]), hx(&p["context"]));
        assert!(dleq::verify_vartime(&x, &t, &y, &proof, &ctx));
        proof.s[1] ^= 1;
        assert!(!dleq::verify_vartime(&x, &t, &y, &proof, &ctx));
    }
}

#[test]
fn python_checker() {
    python::check("check_more.py", &[]);
}
