//! Known-answer vectors for sealed private messages, replies and pseudonym posts
//! (docs/PROTOCOL.md §13): tests/vectors/chat.json, checked here against the library and by
//! tests/vectors/check_chat.py from the spec alone (X25519, ChaCha20-Poly1305 and Ed25519
//! written out in Python).
//!
//! Regenerate (only when §13 changes): `cargo test --release --test chat_vectors -- --ignored`.

#[path = "common/python.rs"]
mod python;

use dcnet::chat::{self, Envelope, NymPost, nym_digest, open_with, seal_to};
use dcnet::crypto::Hash;
use dcnet::crypto::identity::{IdentityKey, PublicKey};
use serde_json::{Value, json};

const FILE: &str = "chat.json";

fn path() -> String {
    format!("{}/tests/vectors/{FILE}", env!("CARGO_MANIFEST_DIR"))
}

fn seed(label: &str) -> [u8; 32] {
    dcnet::crypto::hash("dcnet/test/chat-vector", &[label.as_bytes()])
}

fn x_public(secret: &[u8; 32]) -> [u8; 32] {
    curve25519_dalek::MontgomeryPoint::mul_base_clamped(*secret).to_bytes()
}

fn inner(kind: u8, reply_secret: &[u8; 32], text: &[u8]) -> Vec<u8> {
    let mut v = vec![kind];
    v.extend_from_slice(&x_public(reply_secret));
    v.extend_from_slice(text);
    v
}

fn sealed_case(name: &str, gid: &Hash, to_roster: bool, text: &[u8]) -> Value {
    let eph = seed(&format!("{name}/eph"));
    let reply = seed(&format!("{name}/reply"));
    let (to, recipient) = if to_roster {
        let id = IdentityKey::from_secret_bytes(&seed(&format!("{name}/recipient")));
        let x = id.public().x25519().expect("usable");
        (
            x,
            json!({"ed25519_seed": hex::encode(id.secret_bytes()),
                   "ed25519_public": hex::encode(id.public().0),
                   "x25519_public": hex::encode(x)}),
        )
    } else {
        let s = seed(&format!("{name}/one-time"));
        (
            x_public(&s),
            json!({"x25519_secret": hex::encode(s), "x25519_public": hex::encode(x_public(&s))}),
        )
    };
    let kind = if to_roster { 1 } else { 2 };
    let pt = inner(kind, &reply, text);
    let msg = seal_to(gid, &to, &eph, &pt).expect("sealable");
    json!({
        "name": name,
        "group_id": hex::encode(gid),
        "recipient": recipient,
        "eph_secret": hex::encode(eph),
        "eph_public": hex::encode(x_public(&eph)),
        "reply_secret": hex::encode(reply),
        "reply_public": hex::encode(x_public(&reply)),
        "text": hex::encode(text),
        "inner": hex::encode(&pt),
        "message": hex::encode(&msg),
    })
}

fn nym_case(gid: &Hash, name: &str, seq: u64, text: &[u8]) -> Value {
    let key = IdentityKey::from_secret_bytes(&seed(&format!("nym/{name}")));
    let public = key.public();
    let d = nym_digest(gid, &public, seq, name, text);
    let post = NymPost {
        key: public,
        sig: key.sign(&d),
        seq,
        name: name.to_string(),
        text: text.to_vec(),
    };
    json!({
        "group_id": hex::encode(gid),
        "nym_seed": hex::encode(key.secret_bytes()),
        "nym_public": hex::encode(public.0),
        "name": name,
        "seq": seq,
        "text": hex::encode(text),
        "digest": hex::encode(d),
        "message": hex::encode(post.encode()),
    })
}

fn build() -> Value {
    let gid = dcnet::crypto::hash("dcnet/test/chat-vector-group", &[]);
    json!({
        "about": "docs/PROTOCOL.md §13: sealed messages (to a roster key and to a one-time reply key) and pseudonym posts",
        "sealed": [
            sealed_case("dm", &gid, true, b"meet at the usual place, nine"),
            sealed_case("reply", &gid, false, b"who is this?"),
            sealed_case("empty", &gid, true, b""),
        ],
        "nym": [
            nym_case(&gid, "owl", 0, b"first post of the owl"),
            nym_case(&gid, "heron", 7, b""),
        ],
    })
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn h32(v: &Value) -> [u8; 32] {
    unhex(v).try_into().expect("32 bytes")
}

#[test]
#[ignore = "writes tests/vectors/chat.json; run only when §13 changes"]
fn regenerate_chat_vectors() {
    let v = build();
    std::fs::write(path(), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
}

/// The file says what the library computes, and every sealed message opens to its inner
/// plaintext with the recipient's secret; every post verifies.
#[test]
fn chat_vectors_match_the_library() {
    let text = std::fs::read_to_string(path()).expect("tests/vectors/chat.json");
    let file: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        file,
        build(),
        "chat.json differs from what the library computes"
    );
    for c in file["sealed"].as_array().unwrap() {
        let gid = h32(&c["group_id"]);
        let msg = unhex(&c["message"]);
        let Envelope::Sealed { eph, body } = chat::parse(&msg) else {
            panic!("not sealed")
        };
        let r = &c["recipient"];
        let (secret, public) = match r.get("ed25519_seed") {
            Some(s) => {
                let id = IdentityKey::from_secret_bytes(&h32(s));
                (*id.x25519_secret(), id.public().x25519().unwrap())
            }
            None => (h32(&r["x25519_secret"]), h32(&r["x25519_public"])),
        };
        let pt = open_with(&gid, &secret, &public, &eph, body).expect("opens");
        assert_eq!(pt.as_slice(), unhex(&c["inner"]).as_slice());
        // Another key does not open it.
        assert!(open_with(&gid, &[9; 32], &x_public(&[9; 32]), &eph, body).is_none());
    }
    for c in file["nym"].as_array().unwrap() {
        let gid = h32(&c["group_id"]);
        let Envelope::Nym(p) = chat::parse(&unhex(&c["message"])) else {
            panic!("not a post")
        };
        assert!(p.verifies(&gid));
        assert_eq!(p.key, PublicKey(h32(&c["nym_public"])));
    }
}

/// The Python checker, from the spec alone.
#[test]
fn python_checks_chat_vectors() {
    python::check("check_chat.py", &[]);
}
