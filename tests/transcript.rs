//! The transcript vector (tests/vectors/transcript.json): every frame of a seeded 3-member
//! in-memory run (`dcnet::sim::Network`, `LinkModel::default()`), in delivery order, from the
//! relay's first frame until every member has delivered the one submitted message, with every
//! node's seeds, the group, the timer firings and what each member delivered.
//!
//! `replay_transcript` builds fresh engines from the seeds in the file, feeds each one exactly
//! the frames recorded for it at the recorded times, and checks that every frame it emits is the
//! recorded one, byte for byte and in order, and that the deliveries match.
//! `python_checks_the_transcript` runs tests/vectors/check_transcript.py, which checks the file
//! from docs/PROTOCOL.md alone. `--ignored regenerate_transcript` rewrites the file.

#[path = "common/python.rs"]
mod python;

use curve25519_dalek::scalar::Scalar;
use dcnet::crypto::identity::{IdentityKey, PublicKey};
use dcnet::crypto::keys::EpochSecret;
use dcnet::crypto::{hash, tags};
use dcnet::params::{Group, RosterEntry, RoundParams};
use dcnet::protocol::{Member, MemberEvent, MemberId, MemoryStore, Relay, Time};
use dcnet::sim::{Delivery, LinkModel, Network, TestGroup, derive_seed};
use dcnet::wire::{self, Body, decode_frame};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

const SEED: u64 = 10;
const N: usize = 3;
const SENDER: usize = 1;
const TEXT: &str = "hi from a dc-net";

fn path() -> String {
    format!(
        "{}/tests/vectors/transcript.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn params() -> RoundParams {
    RoundParams {
        slot_bytes: 96,
        ..RoundParams::default()
    }
}

/// The message digest of a frame (PROTOCOL §2.10): H("dcnet/v1/message"; hb ‖ bb ‖ sig), the
/// frame without the variant index after the header.
fn frame_digest(frame: &[u8]) -> ([u8; 32], String) {
    let f = decode_frame(frame).expect("recorded frames decode");
    let hb = wire::encode(&f.header).len();
    // Kind indices are < 251: the variant index is one byte.
    let mut m = frame[..hb].to_vec();
    m.extend_from_slice(&frame[hb + 1..]);
    (hash(tags::MESSAGE, &[&m]), format!("{:?}", f.body.kind()))
}

/// The epoch secret a member drew, recomputed from its RNG seed the way dcnet's engine draws
/// (dcnet-specific, not protocol: `msg_id` (8 bytes) per message submitted before the epoch,
/// then 64 bytes per attempt at `e_i`, §2.3). Published only so a checker can recompute pads.
fn epoch_secret(rng_seed: [u8; 32], submitted: usize) -> ([u8; 32], [u8; 32]) {
    let mut rng = ChaCha20Rng::from_seed(rng_seed);
    for _ in 0..submitted {
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
    }
    loop {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        if let Some(s) = EpochSecret::from_uniform_bytes(&wide) {
            return (
                Scalar::from_bytes_mod_order_wide(&wide).to_bytes(),
                s.public().0,
            );
        }
    }
}

fn delivered(events: &[MemberEvent]) -> Vec<Value> {
    events
        .iter()
        .filter_map(|e| match e {
            MemberEvent::Delivered {
                round,
                slot,
                message,
            } => Some(json!({
                "round": round,
                "slot": slot,
                "hex": hex::encode(message),
                "text": String::from_utf8_lossy(message),
            })),
            _ => None,
        })
        .collect()
}

#[test]
#[ignore = "writes tests/vectors/transcript.json"]
fn regenerate_transcript() {
    let tg = TestGroup::new(N, params(), SEED).unwrap();
    let link = LinkModel::default();
    let mut net = Network::new(&tg, SEED, link);
    type Seen = Rc<RefCell<Vec<(bool, u32, Vec<u8>)>>>;
    let seen: Seen = Rc::default();
    let s = seen.clone();
    net.hook = Some(Box::new(move |d| {
        match d {
            Delivery::ToRelay { from, frame } => s.borrow_mut().push((true, from, frame.clone())),
            Delivery::ToMember { to, frame } => s.borrow_mut().push((false, to, frame.clone())),
        }
        true
    }));
    net.members[SENDER]
        .as_mut()
        .unwrap()
        .submit(TEXT.as_bytes())
        .unwrap();
    net.start();
    let mut steps = Vec::new();
    let mut epoch_keys = [None; N];
    let all_delivered = |net: &Network| {
        (0..N).all(|i| {
            net.member_events[i]
                .iter()
                .any(|e| matches!(e, MemberEvent::Delivered { .. }))
        })
    };
    let mut count = 0;
    while !all_delivered(&net) {
        count += 1;
        assert!(count < 10_000, "no delivery");
        // Which timer the network fires if no frame comes first (same rule as Network::step).
        let member_timer = net
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((m.as_ref()?.poll_timeout()?, i)))
            .min();
        let relay_timer = net.relay.poll_timeout();
        let before = seen.borrow().len();
        assert!(net.step(), "the run stalled");
        let at = net.now().as_micros();
        let new: Vec<_> = seen.borrow()[before..].to_vec();
        assert!(new.len() <= 1);
        match new.into_iter().next() {
            Some((to_relay, i, frame)) => {
                let (digest, kind) = frame_digest(&frame);
                if kind == "EpochKey" {
                    let f = decode_frame(&frame).unwrap();
                    let Body::EpochKey(k) = f.body else {
                        unreachable!()
                    };
                    assert!(epoch_keys[i as usize].replace(k.key.0).is_none());
                }
                steps.push(json!({
                    "step": steps.len(),
                    "at_us": at,
                    "type": "frame",
                    "direction": if to_relay { "member->relay" } else { "relay->member" },
                    "member": i,
                    "kind": kind,
                    "digest": hex::encode(digest),
                    "frame": hex::encode(&frame),
                }));
            }
            None => {
                let node = match member_timer {
                    Some((mt, i)) if relay_timer.is_none_or(|r| mt < r) => json!(i),
                    _ => json!("relay"),
                };
                steps.push(json!({
                    "step": steps.len(),
                    "at_us": at,
                    "type": "timeout",
                    "node": node,
                }));
            }
        }
    }
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    let group = &tg.group;
    let members: Vec<Value> = (0..N)
        .map(|i| {
            let rng_seed = derive_seed(SEED, "member-rng", i as u64);
            let (e, big_e) = epoch_secret(rng_seed, usize::from(i == SENDER));
            assert_eq!(Some(big_e), epoch_keys[i], "epoch secret of member {i}");
            json!({
                "index": i,
                "name": group.members()[i].name,
                "identity_secret": hex::encode(tg.member_keys[i].secret_bytes()),
                "public_key": hex::encode(tg.member_keys[i].public().0),
                "rng_seed": hex::encode(rng_seed),
                "epoch_secret": {"epoch": 1, "e": hex::encode(e), "E": hex::encode(big_e)},
            })
        })
        .collect();
    let out = json!({
        "description": "Every frame of a seeded 3-member in-memory dcnet run (dcnet::sim::Network, \
            LinkModel::default(): 500 us + up to 200 us jitter per frame, no loss), in delivery \
            order, from the relay's first frame until every member delivered the one submitted \
            message. Replay: build the relay and members from the seeds, submit the message, \
            start the relay at t = 0, then for each step in order deliver the frame (or fire the \
            timer) at at_us; every frame a node emits must equal the next recorded frame on its \
            link (relay->member i, member i->relay), byte for byte. docs/PROTOCOL.md §12.",
        "protocol": wire::PROTOCOL_VERSION,
        "master_seed": SEED,
        "seed_derivation": "simulator only: derive_seed(master, label, index) = \
            H(\"dcnet/sim/seed\"; u64le(master), label, u64le(index)); identity keys: labels \
            member-key (index i) and relay-key (0); member engine RNG seeds: member-rng (i)",
        "group": {
            "name": group.name(),
            "members": group.members().iter().map(|m| json!({"name": m.name, "key": hex::encode(m.key.0)})).collect::<Vec<_>>(),
            "relay_key": hex::encode(group.relay_key().0),
            "params": group.params(),
            "vector_len": group.params().vector_len(),
            "roster_bytes": hex::encode(group.roster_canonical_bytes()),
            "params_bytes": hex::encode(group.params().canonical_bytes()),
            "group_id": hex::encode(group.id()),
        },
        "relay": {
            "identity_secret": hex::encode(tg.relay_key.secret_bytes()),
            "public_key": hex::encode(tg.relay_key.public().0),
        },
        "members": members,
        "rng_draws": "dcnet-specific, not protocol (an engine's use of its RNG is its own \
            business), published so that an implementation can reproduce the members' frames \
            too and a checker can recompute pads: a member's engine RNG is \
            ChaCha20Rng::from_seed(rng_seed), i.e. the ChaCha20 keystream of §2.5 with key \
            rng_seed, nonce 0 and block counter 0, read in order: 8 bytes msg_id per message \
            submitted (here before the relay starts); at each accepted EpochRequest 64 bytes w, \
            e = w mod l (drawn again if 0; epoch_secret holds e and E = e·B); at each accepted \
            Open a u64 coin (8 bytes little-endian; coin = (u64 >> 11) / 2^53: with a fragment \
            pending reserve a trap if coin < p_trap, else the fragment; idle, a trap if coin < \
            p_cover, else no reservation), if reserving a u64 c (cell = c mod cells), then 32 \
            bytes z. Nothing else draws in an honest run (Ed25519 signatures are deterministic; \
            DLEQ nonces are drawn only in blame).",
        "submitted": [{"member": SENDER, "text": TEXT, "hex": hex::encode(TEXT), "before_start": true}],
        "start_at_us": 0,
        "steps": steps,
        "delivered": (0..N).map(|i| delivered(&net.member_events[i])).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&out).unwrap() + "\n";
    std::fs::write(path(), &text).unwrap();
    println!(
        "wrote {} ({} steps, {} bytes)",
        path(),
        out["steps"].as_array().unwrap().len(),
        text.len()
    );
}

fn load() -> Value {
    serde_json::from_str(&std::fs::read_to_string(path()).expect("transcript.json"))
        .expect("transcript.json is JSON")
}
fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}
fn h32(v: &Value) -> [u8; 32] {
    hx(v).try_into().expect("32 bytes")
}

#[test]
fn replay_transcript() {
    replay(&load());
}

/// No byte of the run depends on the clock: the same frames come out when every step happens
/// at t = 0 (the times matter only for deadlines, and none passes in this run).
#[test]
fn replay_transcript_at_time_zero() {
    let mut t = load();
    for s in t["steps"].as_array_mut().unwrap() {
        s["at_us"] = json!(0);
    }
    replay(&t);
}

/// Replays `t`: fresh engines from its seeds, each fed exactly the frames recorded for it at
/// the recorded times; every frame an engine emits must be the recorded one, in order.
fn replay(t: &Value) {
    let g = &t["group"];
    let roster: Vec<RosterEntry> = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| RosterEntry {
            name: m["name"].as_str().unwrap().into(),
            key: PublicKey(h32(&m["key"])),
        })
        .collect();
    let params: RoundParams = serde_json::from_value(g["params"].clone()).unwrap();
    let group = Arc::new(
        Group::new(
            g["name"].as_str().unwrap(),
            roster,
            PublicKey(h32(&g["relay_key"])),
            params,
        )
        .unwrap(),
    );
    assert_eq!(hex::encode(group.id()), g["group_id"], "group_id");
    let relay_key = IdentityKey::from_secret_bytes(&h32(&t["relay"]["identity_secret"]));
    assert_eq!(relay_key.public(), *group.relay_key(), "relay key");
    let mut relay = Relay::new(group.clone(), relay_key).unwrap();
    let ms = t["members"].as_array().unwrap();
    let n = ms.len();
    let mut members: Vec<Member> = ms
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let key = IdentityKey::from_secret_bytes(&h32(&m["identity_secret"]));
            assert_eq!(&key.public(), group.member_key(i as u32).unwrap());
            let seed = h32(&m["rng_seed"]);
            Member::new(
                group.clone(),
                MemberId(i as u32),
                key,
                seed,
                Box::new(MemoryStore::default()),
            )
            .unwrap()
        })
        .collect();
    for s in t["submitted"].as_array().unwrap() {
        let who = s["member"].as_u64().unwrap() as usize;
        members[who].submit(&hx(&s["hex"])).unwrap();
    }
    // What each node emitted and nobody consumed yet, per link.
    let mut to_member: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); n];
    let mut to_relay: Vec<VecDeque<Vec<u8>>> = vec![VecDeque::new(); n];
    let mut events: Vec<Vec<MemberEvent>> = vec![Vec::new(); n];
    let drain = |relay: &mut Relay,
                 members: &mut [Member],
                 to_member: &mut [VecDeque<Vec<u8>>],
                 to_relay: &mut [VecDeque<Vec<u8>>],
                 events: &mut [Vec<MemberEvent>]| {
        while let Some(tx) = relay.poll_transmit() {
            to_member[tx.to.0 as usize].push_back(tx.frame.to_vec());
        }
        while relay.poll_event().is_some() {}
        for (i, m) in members.iter_mut().enumerate() {
            while let Some(f) = m.poll_transmit() {
                to_relay[i].push_back(f);
            }
            while let Some(e) = m.poll_event() {
                events[i].push(e);
            }
        }
    };
    relay.start(Time::from_micros(t["start_at_us"].as_u64().unwrap()));
    drain(
        &mut relay,
        &mut members,
        &mut to_member,
        &mut to_relay,
        &mut events,
    );
    let steps = t["steps"].as_array().unwrap();
    for s in steps {
        let k = s["step"].as_u64().unwrap();
        let now = Time::from_micros(s["at_us"].as_u64().unwrap());
        match s["type"].as_str().unwrap() {
            "timeout" => match s["node"].as_u64() {
                Some(i) => members[i as usize].handle_timeout(now),
                None => relay.handle_timeout(now),
            },
            "frame" => {
                let i = s["member"].as_u64().unwrap() as usize;
                let want = hx(&s["frame"]);
                let what = format!("step {k} ({} {}, member {i})", s["direction"], s["kind"]);
                let (digest, kind) = frame_digest(&want);
                assert_eq!(hex::encode(digest), s["digest"], "{what}: digest");
                assert_eq!(kind, s["kind"].as_str().unwrap(), "{what}: kind");
                if s["direction"] == "relay->member" {
                    let got = to_member[i]
                        .pop_front()
                        .unwrap_or_else(|| panic!("{what}: the relay sent nothing"));
                    assert!(got == want, "{what}: the relay sent another frame");
                    members[i]
                        .handle_message(now, &want)
                        .unwrap_or_else(|e| panic!("{what}: member refused it: {e}"));
                } else {
                    let got = to_relay[i]
                        .pop_front()
                        .unwrap_or_else(|| panic!("{what}: the member sent nothing"));
                    assert!(got == want, "{what}: the member sent another frame");
                    relay
                        .handle_message(now, MemberId(i as u32), &want)
                        .unwrap_or_else(|e| panic!("{what}: relay refused it: {e}"));
                }
            }
            other => panic!("step {k}: unknown type {other}"),
        }
        drain(
            &mut relay,
            &mut members,
            &mut to_member,
            &mut to_relay,
            &mut events,
        );
    }
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            Value::Array(delivered(e)),
            t["delivered"][i],
            "deliveries of member {i}"
        );
    }
    // The published epoch secrets are the ones the engines drew (E = e·B is in the EpochKey).
    for (i, m) in ms.iter().enumerate() {
        let seed = h32(&m["rng_seed"]);
        let before = t["submitted"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["member"] == i)
            .count();
        let (e, big_e) = epoch_secret(seed, before);
        assert_eq!(hex::encode(e), m["epoch_secret"]["e"], "e of member {i}");
        assert_eq!(
            hex::encode(big_e),
            m["epoch_secret"]["E"],
            "E of member {i}"
        );
    }
}

#[test]
fn python_checks_the_transcript() {
    python::check("check_transcript.py", &[]);
}
