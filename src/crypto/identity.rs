//! Long-term Ed25519 identities of members and the relay.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::fmt;

/// An Ed25519 public key as it appears in a roster (32 bytes, hex in text form).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct PublicKey(pub [u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(self.0))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl std::str::FromStr for PublicKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bytes = hex::decode(s.trim()).map_err(|e| format!("public key is not hex: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "public key must be 32 bytes (64 hex digits)".to_string())?;
        if usable(&arr).is_none() {
            return Err(
                "not a usable Ed25519 public key (invalid, non-canonical or of small order)".into(),
            );
        }
        Ok(PublicKey(arr))
    }
}

/// Keys decoded per thread, so that a roster key is decompressed once, not at every
/// verification (a round verifies the same few keys again and again). Bounded: cleared when
/// full. `None`: the bytes are not a usable key (invalid, or of small order).
const KEY_CACHE: usize = 4096;

thread_local! {
    static DECODED: std::cell::RefCell<std::collections::HashMap<[u8; 32], Option<VerifyingKey>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The keys §2.10 verifies under: canonical encodings of points not of small order (no honest
/// key is either; refusing them keeps every implementation's verdicts equal). One check, used
/// both where keys are read and at every verification.
fn usable(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    let canonical = curve25519_dalek::edwards::CompressedEdwardsY(*bytes)
        .decompress()
        .is_some_and(|p| p.compress().to_bytes() == *bytes);
    VerifyingKey::from_bytes(bytes)
        .ok()
        .filter(|vk| canonical && !vk.is_weak())
}

fn decoded(bytes: &[u8; 32]) -> Option<VerifyingKey> {
    DECODED.with(|c| {
        let mut c = c.borrow_mut();
        if let Some(k) = c.get(bytes) {
            return *k;
        }
        let k = usable(bytes);
        if c.len() >= KEY_CACHE {
            c.clear();
        }
        c.insert(*bytes, k);
        k
    })
}

impl PublicKey {
    /// Verifies `sig` over `msg` with strict (non-malleable) Ed25519 verification; keys that
    /// are non-canonical or of small order never verify.
    pub fn verify(&self, msg: &[u8], sig: &[u8; 64]) -> bool {
        let Some(vk) = decoded(&self.0) else {
            return false;
        };
        vk.verify_strict(msg, &Signature::from_bytes(sig)).is_ok()
    }

    /// The X25519 public key (Montgomery u-coordinate) of this Ed25519 key: the birational
    /// map of RFC 7748 §4.1, as libsodium's `crypto_sign_ed25519_pk_to_curve25519` and age's
    /// ssh-ed25519 recipients use it. Sealed messages go to it (docs/PROTOCOL.md §13.2).
    /// `None` for a key §2.10 would not verify under.
    pub fn x25519(&self) -> Option<[u8; 32]> {
        decoded(&self.0).map(|vk| vk.to_montgomery().to_bytes())
    }
}

/// A long-term Ed25519 signing key.
///
/// # Security
/// Secret. No `Debug`; the inner `SigningKey` zeroizes itself on drop.
pub struct IdentityKey(SigningKey);

impl IdentityKey {
    /// Builds a key from 32 secret bytes (callers draw them from a CSPRNG or a key file).
    pub fn from_secret_bytes(bytes: &[u8; 32]) -> Self {
        IdentityKey(SigningKey::from_bytes(bytes))
    }
    /// The secret bytes, for writing a key file.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }
    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
    /// The X25519 secret matching [`PublicKey::x25519`]: the first half of SHA-512 of the
    /// seed (RFC 8032 §5.1.5), clamped where it is used. Joint use of one key for Ed25519 and
    /// an X25519 KEM is analysed in Thormarker, eprint 2021/509 (docs/PROTOCOL.md §13.2).
    pub fn x25519_secret(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_scalar_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_reject_tampering() {
        let k = IdentityKey::from_secret_bytes(&[1u8; 32]);
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig));
        assert!(!k.public().verify(b"hellp", &sig));
        let mut bad = sig;
        bad[3] ^= 1;
        assert!(!k.public().verify(b"hello", &bad));
    }

    #[test]
    fn the_key_cache_answers_as_a_fresh_decode_would() {
        let k = IdentityKey::from_secret_bytes(&[5u8; 32]);
        let sig = k.sign(b"m");
        // A weak key (the identity point) never verifies, cached or not.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let weak = PublicKey(identity);
        for _ in 0..3 {
            assert!(k.public().verify(b"m", &sig));
            assert!(!k.public().verify(b"n", &sig));
            assert!(!weak.verify(b"m", &sig));
        }
        // More keys than the cache holds: it empties and answers the same.
        for i in 0..(KEY_CACHE as u32 + 10) {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            let _ = PublicKey(b).verify(b"m", &sig);
        }
        assert!(DECODED.with(|c| c.borrow().len()) <= KEY_CACHE);
        assert!(k.public().verify(b"m", &sig));
        assert!(!weak.verify(b"m", &sig));
    }

    #[test]
    fn the_x25519_halves_of_an_identity_match() {
        for seed in [[3u8; 32], [200u8; 32]] {
            let k = IdentityKey::from_secret_bytes(&seed);
            let public = k.public().x25519().unwrap();
            let derived =
                curve25519_dalek::MontgomeryPoint::mul_base_clamped(*k.x25519_secret()).to_bytes();
            assert_eq!(public, derived);
        }
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey(identity).x25519(), None);
    }

    #[test]
    fn parse_public_key() {
        let k = IdentityKey::from_secret_bytes(&[2u8; 32]).public();
        assert_eq!(k.to_string().parse::<PublicKey>().unwrap(), k);
        assert!("zz".parse::<PublicKey>().is_err());
        assert!("00".parse::<PublicKey>().is_err());
    }
}
