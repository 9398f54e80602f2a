//! Known-answer vectors (tests/vectors/*.json). pads, group_id, kdf and merkle come from
//! `tests/vectors/generate.py` (Python standard library only, written from docs/PROTOCOL.md);
//! the Ristretto255 vectors (epoch keys, footprints, DLEQ, a full 3-member round) are written by
//! `regenerate_ristretto_vectors` below and pinned here. Each failure names its vector.

#[path = "common/python.rs"]
mod python;

use dcnet::crypto::identity::PublicKey;
use dcnet::crypto::keys::{self, EpochPublic, EpochSecret};
use dcnet::crypto::pad::{self, Keystream, StreamKey, keystream};
use dcnet::crypto::{dleq, hash, merkle, tags};
use dcnet::params::{Group, RosterEntry, RoundParams};
use dcnet::protocol::slots::{self, Fragment, Layout, SlotContent};
use serde_json::{Value, json};
use sha3::{Digest, Sha3_512};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect(&path)
}
fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}
fn h32(v: &Value) -> [u8; 32] {
    hx(v).try_into().expect("32 bytes")
}
fn wide(label: &str) -> [u8; 64] {
    Sha3_512::digest(label.as_bytes()).into()
}

#[test]
fn pads() {
    let v = load("pads.json");
    let cases = v.as_array().unwrap();
    assert!(cases.len() >= 10);
    for (k, c) in cases.iter().enumerate() {
        let key = StreamKey::from_bytes(h32(&c["seed"]));
        let round = c["round"].as_u64().unwrap();
        let offset = c["offset"].as_u64().unwrap();
        let len = c["len"].as_u64().unwrap() as usize;
        assert_eq!(
            keystream(&key, round, offset, len),
            hx(&c["pad"]),
            "pads.json vector {k} (round {round}, offset {offset}, len {len})"
        );
    }
}

fn vector_group() -> Group {
    let g = load("group_id.json");
    let members = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| RosterEntry {
            name: m["name"].as_str().unwrap().to_string(),
            key: PublicKey(h32(&m["key"])),
        })
        .collect();
    let params: RoundParams = serde_json::from_value(g["params"].clone()).unwrap();
    Group::new(
        g["name"].as_str().unwrap(),
        members,
        PublicKey(h32(&g["relay_key"])),
        params,
    )
    .unwrap()
}

#[test]
fn group_id() {
    let g = load("group_id.json");
    let group = vector_group();
    assert_eq!(
        group.roster_canonical_bytes(),
        hx(&g["roster_bytes"]),
        "roster bytes"
    );
    assert_eq!(
        group.params().canonical_bytes(),
        hx(&g["params_bytes"]),
        "params bytes"
    );
    assert_eq!(group.id().to_vec(), hx(&g["group_id"]), "group_id");
    // Defaults (cells 0, slots 0, the tolerance marker) are resolved before hashing.
    let u = &g["unresolved"];
    let params: RoundParams = serde_json::from_value(u["params"].clone()).unwrap();
    assert_eq!(params.tolerance, dcnet::params::AUTO_TOLERANCE);
    let group = Group::new(
        g["name"].as_str().unwrap(),
        group.members().to_vec(),
        *group.relay_key(),
        params,
    )
    .unwrap();
    assert_eq!(
        group.params().canonical_bytes(),
        hx(&u["params_bytes"]),
        "resolved params bytes"
    );
    assert_eq!(group.id().to_vec(), hx(&u["group_id"]), "resolved group_id");
}

#[test]
fn kdf() {
    let v = load("kdf.json");
    let gid = h32(&v["group_id"]);
    let epoch = v["epoch"].as_u64().unwrap();
    let p = &v["pair_secret"];
    let s = keys::pair_secret(
        &gid,
        epoch,
        (
            p["i"].as_u64().unwrap() as u32,
            &EpochPublic(h32(&p["E_i"])),
        ),
        (
            p["j"].as_u64().unwrap() as u32,
            &EpochPublic(h32(&p["E_j"])),
        ),
        &h32(&p["K_ij"]),
    );
    assert_eq!(s.expose().to_vec(), hx(&p["s_ij"]), "pair_secret");
    let vw = &v["view"];
    let list: Vec<(u32, EpochPublic)> = vw["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["index"].as_u64().unwrap() as u32,
                EpochPublic(h32(&k["key"])),
            )
        })
        .collect();
    let mut view = keys::view_genesis(&gid, epoch, &list);
    assert_eq!(view.to_vec(), hx(&vw["genesis"]), "view genesis");
    for st in vw["steps"].as_array().unwrap() {
        let r = st["round"].as_u64().unwrap();
        view = keys::view_step(&view, r, &h32(&st["open_hash"]));
        assert_eq!(view.to_vec(), hx(&st["view"]), "view step round {r}");
    }
    let pk = &v["pad_key"];
    let round = pk["round"].as_u64().unwrap();
    let nonce = keys::pad_nonce(round, &h32(&pk["view"]));
    assert_eq!(nonce.to_vec(), hx(&pk["pad_nonce"]), "pad nonce");
    let k = keys::pad_key(&s, &nonce);
    assert_eq!(k.expose().to_vec(), hx(&pk["key"]), "pad_key");
    assert_eq!(
        keystream(&k, round, 0, 64),
        hx(&pk["pad_first_64"]),
        "first pad bytes"
    );
    let hc = &v["hchacha20_ietf"];
    let ietf_key = dcnet::crypto::keys::PairSecret::from_bytes(h32(&hc["key"]));
    let input: [u8; 16] = hx(&hc["input"]).try_into().unwrap();
    assert_eq!(
        keys::pad_key(&ietf_key, &input).expose().to_vec(),
        hx(&hc["output"]),
        "HChaCha20 (draft-irtf-cfrg-xchacha §2.2.1)"
    );
    let bc = &v["blind_commitment"];
    let z = StreamKey::from_bytes(h32(&bc["z"]));
    assert_eq!(
        keys::blind_commitment(&z).to_vec(),
        hx(&bc["commitment"]),
        "blind commitment"
    );
    let fp = &v["footprint_from_gamma"];
    assert_eq!(
        keys::footprint(&h32(&fp["gamma"])).to_vec(),
        hx(&fp["footprint"]),
        "footprint"
    );
    let od = &v["output_digest"];
    let round = od["round"].as_u64().unwrap();
    let out = slots::output_digest(round, &hx(&od["cleartext"]));
    assert_eq!(out.to_vec(), hx(&od["digest"]), "output digest");
    for a in v["alloc_order"].as_array().unwrap() {
        let c = a["cell"].as_u64().unwrap() as u32;
        let key = hash(tags::ALLOC_ORDER, &[&out, &c.to_le_bytes()]);
        assert_eq!(key.to_vec(), hx(&a["key"]), "alloc order cell {c}");
    }
    let sh = &v["slot_hash"];
    let body = hx(&sh["body"]);
    let layout = Layout {
        cells: 1,
        slots: 3,
        slot_bytes: (body.len() + 32) as u32,
    };
    let mut slot = body.clone();
    slot.extend_from_slice(&hx(&sh["hash"]));
    let _ = layout;
    assert_eq!(
        slots::slot_state(sh["round"].as_u64().unwrap(), 2, &slot),
        slots::SlotState::Intact,
        "slot hash"
    );
}

#[test]
fn merkle_vectors() {
    for (k, c) in load("merkle.json").as_array().unwrap().iter().enumerate() {
        let data = hx(&c["data"]);
        let root = merkle::commit(&data);
        assert_eq!(
            root.to_vec(),
            hx(&c["root"]),
            "merkle.json vector {k}: root"
        );
        let idx = c["index"].as_u64().unwrap() as u32;
        let proof = merkle::prove(&data, idx).unwrap();
        let sib: Vec<Vec<u8>> = c["siblings"].as_array().unwrap().iter().map(hx).collect();
        assert_eq!(
            proof
                .siblings
                .iter()
                .map(|s| s.to_vec())
                .collect::<Vec<_>>(),
            sib,
            "merkle.json vector {k}: siblings"
        );
        assert!(merkle::verify(
            &root,
            data.len() as u64,
            &hx(&c["chunk"]),
            &proof
        ));
    }
}

/// The content key of the round3.json epoch.
fn round3_content_key() -> dcnet::crypto::keys::ContentKey {
    dcnet::crypto::keys::ContentKey::from_bytes(hash("vector/content-key", &[b"round3"]))
}

/// Everything the Ristretto255 vectors contain, computed from their inputs.
fn ristretto_vectors() -> (Value, Value) {
    let group = vector_group();
    let gid = *group.id();
    let (epoch, round) = (1u64, 5u64);
    // Footprint and DLEQ.
    let e = EpochSecret::from_uniform_bytes(&wide("dcnet vector e")).unwrap();
    let base = keys::footprint_base(&gid, epoch, round);
    let gamma = e.gamma(&gid, epoch, round);
    let context = b"dcnet vector context".to_vec();
    let fresh = [7u8; 32];
    let (y, proof) = dleq::prove(&e, &base, &context, &fresh);
    assert_eq!(y, gamma);
    let footprint = json!({
        "group_id": hex::encode(gid), "epoch": epoch, "round": round,
        "secret_wide": hex::encode(wide("dcnet vector e")),
        "epoch_key": hex::encode(e.public().0),
        "base": hex::encode(base.compress().to_bytes()),
        "gamma": hex::encode(gamma),
        "footprint": hex::encode(keys::footprint(&gamma)),
        "dleq": {"context": hex::encode(&context), "fresh": hex::encode(fresh),
                 "c": hex::encode(proof.c), "s": hex::encode(proof.s)},
    });
    // A complete 3-member round.
    let layout = Layout::new(group.params());
    let secrets: Vec<EpochSecret> = (0..3)
        .map(|i| {
            EpochSecret::from_uniform_bytes(&wide(&format!("dcnet vector member {i}"))).unwrap()
        })
        .collect();
    let pubs: Vec<EpochPublic> = secrets.iter().map(|s| s.public()).collect();
    let list: Vec<(u32, EpochPublic)> = pubs
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u32, *p))
        .collect();
    let genesis = keys::view_genesis(&gid, epoch, &list);
    let open_hash = hash("vector/open", &[&round.to_le_bytes()]);
    let view = keys::view_step(&genesis, round, &open_hash);
    let mut pairs = Vec::new();
    let mut ms = vec![vec![0u8; layout.len()]; 3];
    let cells = [1u32, 4, 3];
    for i in 0..3 {
        let g = secrets[i].gamma(&gid, epoch, round);
        ms[i][layout.cell(cells[i])].copy_from_slice(&keys::footprint(&g));
    }
    let frag = Fragment {
        msg_id: [0xA5; 8],
        digest: slots::message_digest(&[0xA5; 8], b"hello, group"),
        index: 0,
        count: 1,
        payload: b"hello, group".to_vec(),
    };
    let ck = round3_content_key();
    ms[0][layout.slot(0)].copy_from_slice(&slots::frame_fragment(
        &layout,
        round,
        0,
        &frag,
        &ck.slot_key(round, 0),
    ));
    let g1 = secrets[1].gamma(&gid, epoch, round - 1);
    ms[1][layout.slot(2)].copy_from_slice(&slots::trap_slot(
        &layout,
        round,
        2,
        &g1,
        &ck.slot_key(round, 2),
    ));
    let zs: Vec<StreamKey> = (0..3)
        .map(|i| StreamKey::from_bytes(hash("vector/z", &[&[i as u8]])))
        .collect();
    let mut ks = Keystream::new();
    let mut cts = Vec::new();
    for i in 0..3 {
        let mine: Vec<_> = (0..3)
            .filter(|&j| j != i)
            .map(|j| {
                let k = secrets[i].shared(&pubs[j]).unwrap();
                keys::pair_secret(&gid, epoch, (i as u32, &pubs[i]), (j as u32, &pubs[j]), &k)
            })
            .collect();
        for (j, s) in (0..3).filter(|&j| j != i).zip(&mine) {
            if i < j {
                pairs.push(json!({"i": i, "j": j, "s_ij": hex::encode(s.expose())}));
            }
        }
        let mut c = ms[i].clone();
        pad::encrypt_in_place(&mut ks, &mut c, round, &view, &mine, &zs[i]);
        cts.push(c);
    }
    let mut xor = vec![0u8; layout.len()];
    for c in &cts {
        for (x, b) in xor.iter_mut().zip(c) {
            *x ^= b;
        }
    }
    let mut clear = xor.clone();
    pad::unblind_in_place(&mut ks, &mut clear, round, &zs);
    let mut expect = vec![0u8; layout.len()];
    for m in &ms {
        for (x, b) in expect.iter_mut().zip(m) {
            *x ^= b;
        }
    }
    assert_eq!(clear, expect, "pads cancel and blinding is removed");
    let round3 = json!({
        "group_id": hex::encode(gid), "epoch": epoch, "round": round,
        "content_key": hex::encode(ck.expose()),
        "layout": {"cells": layout.cells, "slots": layout.slots, "slot_bytes": layout.slot_bytes},
        "members": (0..3).map(|i| json!({
            "secret_wide": hex::encode(wide(&format!("dcnet vector member {i}"))),
            "epoch_key": hex::encode(pubs[i].0),
            "cell": cells[i],
            "message": hex::encode(&ms[i]),
            "z": hex::encode(zs[i].expose()),
            "ciphertext_root": hex::encode(merkle::commit(&cts[i])),
            "ciphertext": hex::encode(&cts[i]),
        })).collect::<Vec<_>>(),
        "pair_secrets": pairs,
        "view_genesis": hex::encode(genesis),
        "open_hash": hex::encode(open_hash),
        "view": hex::encode(view),
        "record_xor": hex::encode(&xor),
        "cleartext": hex::encode(&clear),
    });
    (footprint, round3)
}

#[test]
#[ignore = "writes tests/vectors/{footprint,round3}.json; run on purpose only"]
fn regenerate_ristretto_vectors() {
    let (f, r) = ristretto_vectors();
    let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        format!("{dir}/footprint.json"),
        serde_json::to_string_pretty(&f).unwrap() + "\n",
    )
    .unwrap();
    std::fs::write(
        format!("{dir}/round3.json"),
        serde_json::to_string_pretty(&r).unwrap() + "\n",
    )
    .unwrap();
}

#[test]
fn footprint_and_dleq() {
    let v = load("footprint.json");
    let (computed, _) = ristretto_vectors();
    for field in ["epoch_key", "base", "gamma", "footprint"] {
        assert_eq!(computed[field], v[field], "footprint.json: {field}");
    }
    assert_eq!(computed["dleq"], v["dleq"], "footprint.json: dleq proof");
    // The stored proof verifies; a changed context does not.
    let base = keys::footprint_base(&h32(&v["group_id"]), 1, 5);
    let proof = dleq::DleqProof {
        c: h32(&v["dleq"]["c"]),
        s: h32(&v["dleq"]["s"]),
    };
    let ctx = hx(&v["dleq"]["context"]);
    let (x, y) = (h32(&v["epoch_key"]), h32(&v["gamma"]));
    assert!(dleq::verify_vartime(&x, &base, &y, &proof, &ctx));
    assert!(!dleq::verify_vartime(&x, &base, &y, &proof, b"other"));
}

#[test]
fn complete_three_member_round() {
    let v = load("round3.json");
    let (_, computed) = ristretto_vectors();
    for field in [
        "view_genesis",
        "view",
        "pair_secrets",
        "record_xor",
        "cleartext",
    ] {
        assert_eq!(computed[field], v[field], "round3.json: {field}");
    }
    for i in 0..3 {
        for field in ["epoch_key", "message", "ciphertext", "ciphertext_root"] {
            assert_eq!(
                computed["members"][i][field], v["members"][i][field],
                "round3.json: member {i} {field}"
            );
        }
    }
    // The cleartext parses: member 0's fragment in slot 0, member 1's trap in slot 2.
    let layout = Layout {
        cells: 6,
        slots: 3,
        slot_bytes: 128,
    };
    let clear = hx(&v["cleartext"]);
    let ck = round3_content_key();
    assert_eq!(v["content_key"], json!(hex::encode(ck.expose())));
    match slots::parse_slot(&layout, 5, 0, &clear[layout.slot(0)], &ck.slot_key(5, 0)) {
        SlotContent::Fragment(f) => assert_eq!(f.payload, b"hello, group"),
        other => panic!("slot 0: {other:?}"),
    }
    assert_eq!(
        slots::parse_slot(&layout, 5, 2, &clear[layout.slot(2)], &ck.slot_key(5, 2)),
        SlotContent::Trap
    );
    // Without the key the relay sees two intact slots and nothing else.
    for s in [0, 2] {
        assert_eq!(
            slots::slot_state(5, s, &clear[layout.slot(s)]),
            slots::SlotState::Intact
        );
    }
}

// --- Wire vectors (tests/vectors/wire.json): one signed message of every kind. ---

/// The published test seeds (Ed25519 secret keys, RFC 8032): the relay's, then members 0..2.
fn wire_seeds() -> Vec<(&'static str, [u8; 32])> {
    vec![
        ("relay", [0x11; 32]),
        ("member 0", [0x21; 32]),
        ("member 1", [0x22; 32]),
        ("member 2", [0x23; 32]),
    ]
}

fn kind_of<T: dcnet::wire::Payload>(_: &T) -> dcnet::wire::Kind {
    T::KIND
}

fn wire_vectors() -> Value {
    use dcnet::crypto::dleq::DleqProof;
    use dcnet::crypto::identity::IdentityKey;
    use dcnet::crypto::merkle::ChunkProof;
    use dcnet::wire::*;
    let seeds = wire_seeds();
    let relay = IdentityKey::from_secret_bytes(&seeds[0].1);
    let member: Vec<IdentityKey> = seeds[1..]
        .iter()
        .map(|(_, s)| IdentityKey::from_secret_bytes(s))
        .collect();
    let group: [u8; 32] = hash("dcnet/v1/test-vector", &[b"wire group"]);
    let (epoch, round) = (3u64, 41u64);
    let b = |label: &str| -> [u8; 32] { hash("dcnet/v1/test-vector", &[label.as_bytes()]) };
    let proof = |label: &str| DleqProof {
        c: b(&format!("{label} c")),
        s: b(&format!("{label} s")),
    };
    let mut out: Vec<Value> = Vec::new();
    let mut push = |kind: &str,
                    seed: &[u8; 32],
                    header: &Header,
                    body: Vec<u8>,
                    sig: [u8; 64],
                    frame: Vec<u8>,
                    digest: [u8; 32]| {
        let hb = encode(header);
        out.push(json!({
            "kind": kind,
            "seed": hex::encode(seed),
            "public_key": IdentityKey::from_secret_bytes(seed).public().to_string(),
            "header": hex::encode(&hb),
            "body": hex::encode(&body),
            // Unsigned kinds (Reveal, Unblind: §2.10) carry 64 zero bytes and sign nothing.
            "signed_bytes": if sig == [0u8; 64] {
                Value::Null
            } else {
                json!(hex::encode(hash(tags::SIGNATURE, &[&hb, &body])))
            },
            "signature": hex::encode(sig),
            "frame": hex::encode(&frame),
            "digest": hex::encode(digest),
            "header_fields": {
                "group_id": hex::encode(header.group_id),
                "epoch": header.epoch,
                "round": header.round,
                "sender": match header.sender { Sender::Relay => json!("relay"), Sender::Member(i) => json!(i) },
            },
        }));
    };
    macro_rules! emit {
        ($kind:literal, $key:expr, $seed:expr, $sender:expr, $round:expr, $body:expr) => {{
            let body = $body;
            let m = if UNSIGNED_KINDS.contains(&kind_of(&body)) {
                Signed::unsigned(group, epoch, $round, $sender, body)
            } else {
                let m = Signed::sign($key, group, epoch, $round, $sender, body);
                assert!(m.verify(&$key.public()));
                m
            };
            let body = encode(&m.body);
            let digest = m.digest();
            let (header, sig) = (m.header, m.sig);
            let frame = m.clone().into_frame();
            assert_eq!(decode_frame(&frame).map(|f| f.header), Ok(header));
            push($kind, $seed, &header, body, sig, frame, digest);
            m
        }};
    }
    let (r, m0, m1) = (&relay, &member[0], &member[1]);
    let (sr, s0, s1) = (&seeds[0].1, &seeds[1].1, &seeds[2].1);
    emit!(
        "EpochRequest",
        r,
        sr,
        Sender::Relay,
        0,
        EpochRequest {
            members: vec![0, 1, 2],
            last_case: Some(b("case"))
        }
    );
    let key0 = emit!(
        "EpochKey",
        m0,
        s0,
        Sender::Member(0),
        0,
        EpochKey {
            key: EpochPublic(b("E0"))
        }
    );
    emit!(
        "EpochKeys",
        r,
        sr,
        Sender::Relay,
        0,
        EpochKeys { keys: vec![key0] }
    );
    let open = emit!(
        "Open",
        r,
        sr,
        Sender::Relay,
        round,
        Open {
            view_prev: b("view"),
            present: vec![0, 1, 2],
            last: Some((round - 1, b("record 40"))),
            alloc: Some((round - 1, b("record 40"))),
            voids: vec![5],
            commit_ms: 2000,
            last_case: None,
        }
    );
    let commit = emit!(
        "Commit",
        m0,
        s0,
        Sender::Member(0),
        round,
        Commit {
            open: open.digest(),
            ciphertext: b("root"),
            blinding: b("blinding"),
            content: Some(dcnet::wire::ContentSeal {
                id: b("content id"),
                seals: vec![(1, b("seal for 1")), (2, b("seal for 2"))],
            }),
        }
    );
    let cs = emit!(
        "CommitSet",
        r,
        sr,
        Sender::Relay,
        round,
        CommitSet {
            open: open.digest(),
            commits: vec![commit.clone()]
        }
    );
    emit!(
        "Reveal",
        m0,
        s0,
        Sender::Member(0),
        round,
        Reveal {
            ciphertext: (0..300u32).map(|i| (i * 7) as u8).collect()
        }
    );
    let record = emit!(
        "Record",
        r,
        sr,
        Sender::Relay,
        round,
        Record {
            commit_set: cs,
            opens: vec![open.clone()],
            xor: (0..300u32).map(|i| (i * 13 + 1) as u8).collect(),
        }
    );
    emit!(
        "Unblind",
        m0,
        s0,
        Sender::Member(0),
        round,
        Unblind { z: b("z0") }
    );
    emit!(
        "ZSet",
        r,
        sr,
        Sender::Relay,
        round,
        ZSet {
            record: record.digest(),
            seeds: vec![(0, b("z0")), (1, b("z1"))],
            missing: vec![2]
        }
    );
    emit!(
        "Abort",
        r,
        sr,
        Sender::Relay,
        round,
        Abort {
            missing: vec![1, 2],
            phase: 1
        }
    );
    let accuse = emit!(
        "Accuse",
        m1,
        s1,
        Sender::Member(1),
        round,
        Accuse {
            record: record.digest(),
            slot: 2,
            alloc_round: round - 1,
            cell: 7,
            gamma: b("gamma"),
            proof: proof("accuse"),
            slot_key: b("slot key"),
        }
    );
    let start = emit!(
        "BlameStart",
        r,
        sr,
        Sender::Relay,
        round,
        BlameStart {
            record: record.digest(),
            accusation: Some(accuse),
            positions: vec![96, 97, 1_000_000],
        }
    );
    let disclose = emit!(
        "Disclose",
        m0,
        s0,
        Sender::Member(0),
        round,
        Disclose {
            start: start.digest(),
            bytes: vec![DisclosedByte {
                position: 96,
                pads: vec![(1, 0xab), (2, 0x01)],
                chunk: (0..256u32).map(|i| i as u8).collect(),
                proof: ChunkProof {
                    index: 0,
                    siblings: vec![b("sibling 0"), b("sibling 1")]
                },
            }],
            claim: Some(CellClaim {
                cell: 7,
                gamma: b("gamma 0"),
                proof: proof("claim")
            }),
        }
    );
    let set = emit!(
        "DisclosureSet",
        r,
        sr,
        Sender::Relay,
        round,
        DisclosureSet {
            start,
            disclosures: vec![disclose],
            missing: vec![2]
        }
    );
    let kr = emit!(
        "KeyReveal",
        m0,
        s0,
        Sender::Member(0),
        round,
        KeyReveal {
            set: set.digest(),
            other: 1,
            shared: b("shared"),
            proof: proof("reveal"),
        }
    );
    emit!(
        "RevealSet",
        r,
        sr,
        Sender::Relay,
        round,
        RevealSet {
            set: set.digest(),
            reveals: vec![kr]
        }
    );
    let other = Signed::sign(
        m0,
        group,
        epoch,
        round,
        Sender::Member(0),
        Commit {
            open: b("other open"),
            ciphertext: b("root 2"),
            blinding: b("blinding"),
            content: None,
        },
    );
    emit!(
        "Evidence",
        r,
        sr,
        Sender::Relay,
        round,
        Evidence {
            commits: (commit, other)
        }
    );
    emit!(
        "Hello",
        m0,
        s0,
        Sender::Member(0),
        0,
        Hello {
            protocol: PROTOCOL_VERSION,
            high_water: 300,
            epoch,
            last_case: Some(b("case"))
        }
    );
    Value::Array(out)
}

#[test]
#[ignore = "writes tests/vectors/wire.json; run on purpose only"]
fn regenerate_wire_vectors() {
    let dir = format!("{}/tests/vectors", env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        format!("{dir}/wire.json"),
        serde_json::to_string_pretty(&wire_vectors()).unwrap() + "\n",
    )
    .unwrap();
}

/// Every message kind, signed with the published seeds: the code still produces exactly the
/// pinned bytes (Ed25519 signatures are deterministic).
#[test]
fn wire_vectors_are_pinned() {
    let pinned = load("wire.json");
    let now = wire_vectors();
    let (p, n) = (pinned.as_array().unwrap(), now.as_array().unwrap());
    assert_eq!(p.len(), 19, "one vector per message kind");
    assert_eq!(p.len(), n.len());
    for (a, b) in p.iter().zip(n) {
        assert_eq!(a, b, "wire vector {} changed", a["kind"]);
    }
}

/// The independent Python checker (tests/vectors/generate.py --check) verifies every vector
/// from docs/PROTOCOL.md: hash framing, signatures (Python `cryptography` for Ed25519), frame
/// layout and a bincode decoder written from §4.
#[test]
fn python_checks_the_vectors_from_the_spec() {
    python::check("generate.py", &["--check"]);
}

/// A received frame's hashes, taken from its bytes (`wire::frame_hashes`, what members use),
/// are the pinned signed bytes and digest of every message kind; a frame whose kind index does
/// not follow its header has none.
#[test]
fn frame_hashes_from_the_bytes_are_the_pinned_ones() {
    let pinned = load("wire.json");
    for v in pinned.as_array().expect("array") {
        let frame = hex::decode(v["frame"].as_str().expect("frame")).expect("hex");
        let f = dcnet::wire::decode_frame(&frame).expect("a pinned frame decodes");
        let fh = dcnet::wire::frame_hashes(&frame, &f.header).expect("canonical frame");
        assert_eq!(
            hex::encode(fh.digest),
            v["digest"].as_str().unwrap(),
            "{}",
            v["kind"]
        );
        if let Some(sb) = v["signed_bytes"].as_str() {
            assert_eq!(hex::encode(fh.signed_bytes), sb, "{}", v["kind"]);
        }
        // The one-parse token (what the simulator shares among receivers) carries the same.
        let parsed = dcnet::wire::ParsedFrame::parse(&frame).expect("parses");
        assert_eq!(parsed.header(), &f.header);
        let (pf, ph) = parsed.into_parts();
        assert_eq!(pf, f, "{}", v["kind"]);
        assert_eq!(ph, Some(fh), "{}", v["kind"]);
        let hb = dcnet::wire::encode(&f.header).len();
        let mut bad = frame.clone();
        bad[hb] ^= 1;
        assert!(
            dcnet::wire::frame_hashes(&bad, &f.header).is_none(),
            "{}",
            v["kind"]
        );
        // Such bytes never yield a token with hashes: they fail to decode or carry none.
        if let Ok(p) = dcnet::wire::ParsedFrame::parse(&bad) {
            assert!(p.into_parts().1.is_none(), "{}", v["kind"]);
        }
    }
}
