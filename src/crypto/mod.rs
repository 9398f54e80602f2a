//! Cryptographic building blocks: pure functions with known-answer vectors.
//!
//! Everything here is deterministic given its inputs; randomness is passed in by the caller.
//! The byte layout of every hash input is pinned in `docs/PROTOCOL.md` §2; the functions here
//! are the reference for it and `tests/vectors/*.json` check them.
//!
//! # Hash framing
//!
//! Every hash in dcnet is domain-separated with [`hash`]:
//! `SHA3-256(u16le(len(tag)) ‖ tag ‖ for each part: u32le(len(part)) ‖ part)`.
//! The length prefixes make the encoding injective, so no two different (tag, parts) lists
//! hash the same input.

pub mod dleq;
pub mod identity;
pub mod keys;
pub mod merkle;
pub mod pad;

use sha3::{Digest, Sha3_256, Sha3_512};
use subtle::ConstantTimeEq;

/// A 32-byte SHA3-256 output.
pub type Hash = [u8; 32];

fn framed<D: Digest>(tag: &str, parts: &[&[u8]]) -> D {
    let mut h = D::new();
    h.update((tag.len() as u16).to_le_bytes());
    h.update(tag.as_bytes());
    for p in parts {
        h.update((p.len() as u32).to_le_bytes());
        h.update(p);
    }
    h
}

/// Domain-separated SHA3-256 (see the module docs for the exact framing).
pub fn hash(tag: &str, parts: &[&[u8]]) -> Hash {
    framed::<Sha3_256>(tag, parts).finalize().into()
}

/// [`hash`] of one part given in pieces: `hash(tag, &[&concat(pieces)])` without building
/// the concatenation (a received frame's digest is over bytes that are not contiguous in it).
pub fn hash_concat(tag: &str, pieces: &[&[u8]]) -> Hash {
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let mut h = Sha3_256::new();
    h.update((tag.len() as u16).to_le_bytes());
    h.update(tag.as_bytes());
    h.update((total as u32).to_le_bytes());
    for p in pieces {
        h.update(p);
    }
    h.finalize().into()
}

/// Domain-separated SHA3-512, used for hash-to-point and Fiat–Shamir challenges.
pub fn hash_wide(tag: &str, parts: &[&[u8]]) -> [u8; 64] {
    framed::<Sha3_512>(tag, parts).finalize().into()
}

/// Constant-time equality for secrets, commitments and MACs.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Domain tags, one per use. Changing any of these changes the protocol version.
#[allow(missing_docs)]
pub mod tags {
    pub const GROUP_ID: &str = "dcnet/v1/group-id";
    pub const PAIR_SECRET: &str = "dcnet/v1/pair-secret";
    pub const VIEW_GENESIS: &str = "dcnet/v1/view-genesis";
    pub const VIEW: &str = "dcnet/v1/view";
    pub const PAD_NONCE: &str = "dcnet/v1/pad-nonce";
    pub const BLIND_COMMIT: &str = "dcnet/v1/blind-commit";
    pub const FOOTPRINT_BASE: &str = "dcnet/v1/footprint-base";
    pub const FOOTPRINT: &str = "dcnet/v1/footprint";
    pub const DLEQ_NONCE: &str = "dcnet/v1/dleq-nonce";
    pub const DLEQ_CHALLENGE: &str = "dcnet/v1/dleq-challenge";
    pub const MERKLE_LEAF: &str = "dcnet/v1/merkle-leaf";
    pub const MERKLE_NODE: &str = "dcnet/v1/merkle-node";
    pub const MERKLE_ROOT: &str = "dcnet/v1/merkle-root";
    pub const SIGNATURE: &str = "dcnet/v1/signature";
    pub const MESSAGE: &str = "dcnet/v1/message";
    pub const OUTPUT: &str = "dcnet/v1/output";
    pub const ALLOC_ORDER: &str = "dcnet/v1/alloc-order";
    pub const SLOT: &str = "dcnet/v1/slot";
    pub const TRAP: &str = "dcnet/v1/trap";
    pub const MESSAGE_DIGEST: &str = "dcnet/v1/message-digest";
    pub const CONTENT_ID: &str = "dcnet/v1/content-id";
    pub const CONTENT_SEAL: &str = "dcnet/v1/content-seal";
    pub const SLOT_KEY: &str = "dcnet/v1/slot-key";
    pub const SEALED_KEY: &str = "dcnet/v1/sealed-key";
    pub const NYM_POST: &str = "dcnet/v1/nym-post";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_is_injective_on_split_points() {
        // "ab"+"c" and "a"+"bc" must differ: the length prefix separates them.
        assert_ne!(hash("t", &[b"ab", b"c"]), hash("t", &[b"a", b"bc"]));
        assert_ne!(hash("t1", &[b"x"]), hash("t", &[b"1x"]));
    }

    #[test]
    fn ct_eq_checks_length_and_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
