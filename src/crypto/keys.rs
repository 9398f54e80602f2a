//! Epoch keys, pair secrets, the view chain, per-round pad keys and VRF footprints.
//!
//! Byte layouts are pinned in docs/PROTOCOL.md §2; the functions here are their reference.

use super::pad::StreamKey;
use super::{Hash, hash, hash_wide, tags};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A member's per-epoch Ristretto255 secret `e_i`.
///
/// # Security
/// Secret: no `Debug`, zeroized on drop. Dropping it at the end of an epoch (and of the blame
/// cases that need it) is what makes earlier pads unrecoverable after a later compromise.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EpochSecret(pub(crate) Scalar);

impl EpochSecret {
    /// Derives the scalar from 64 uniformly random bytes (reduced mod ℓ). Rejects zero.
    pub fn from_uniform_bytes(bytes: &[u8; 64]) -> Option<Self> {
        let s = Scalar::from_bytes_mod_order_wide(bytes);
        (s != Scalar::ZERO).then_some(EpochSecret(s))
    }
    /// The public key `E_i = e_i · B`.
    pub fn public(&self) -> EpochPublic {
        EpochPublic(RistrettoPoint::mul_base(&self.0).compress().to_bytes())
    }
    /// `K_ij = e_i · E_j` (compressed).
    pub fn shared(&self, other: &EpochPublic) -> Option<[u8; 32]> {
        let p = other.point()?;
        Some((self.0 * p).compress().to_bytes())
    }
    /// The VRF output `Γ_i,r = e_i · HashToPoint(group_id, epoch, round)`.
    pub fn gamma(&self, group_id: &Hash, epoch: u64, round: u64) -> [u8; 32] {
        (self.0 * footprint_base(group_id, epoch, round))
            .compress()
            .to_bytes()
    }
}

/// A member's per-epoch public key `E_i` (compressed Ristretto255).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, bincode::Encode, bincode::Decode)]
pub struct EpochPublic(pub [u8; 32]);

impl EpochPublic {
    /// Decompresses the point; `None` for invalid encodings and for the identity point.
    pub fn point(&self) -> Option<RistrettoPoint> {
        let p = CompressedRistretto(self.0).decompress()?;
        (p != RistrettoPoint::identity()).then_some(p)
    }
}

/// A pair secret `s_ij` shared by members i and j for one epoch.
///
/// # Security
/// Secret: no `Debug`, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PairSecret(pub(crate) [u8; 32]);

impl PairSecret {
    /// Wraps raw bytes (test vectors; a pair secret is otherwise only derived).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PairSecret(bytes)
    }
    /// Raw bytes (test vectors, and disclosure when a pair's secret is burned in blame).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// `s_ij = H("dcnet/v1/pair-secret"; group_id, u64le epoch, u32le i, u32le j, E_i, E_j, K_ij)`
/// with `i < j` (the caller's order is normalised here).
pub fn pair_secret(
    group_id: &Hash,
    epoch: u64,
    (a, ea): (u32, &EpochPublic),
    (b, eb): (u32, &EpochPublic),
    shared: &[u8; 32],
) -> PairSecret {
    let ((i, ei), (j, ej)) = if a < b {
        ((a, ea), (b, eb))
    } else {
        ((b, eb), (a, ea))
    };
    PairSecret(hash(
        tags::PAIR_SECRET,
        &[
            group_id,
            &epoch.to_le_bytes(),
            &i.to_le_bytes(),
            &j.to_le_bytes(),
            &ei.0,
            &ej.0,
            shared,
        ],
    ))
}

/// Start of the view chain: `H("dcnet/v1/view-genesis"; group_id, u64le epoch, u32le i ‖ E_i …)`
/// over the members of the epoch in index order (one part per member: index then key).
pub fn view_genesis(group_id: &Hash, epoch: u64, keys: &[(u32, EpochPublic)]) -> Hash {
    let mut joined = Vec::with_capacity(keys.len() * 36);
    for (i, k) in keys {
        joined.extend_from_slice(&i.to_le_bytes());
        joined.extend_from_slice(&k.0);
    }
    hash(
        tags::VIEW_GENESIS,
        &[group_id, &epoch.to_le_bytes(), &joined],
    )
}

/// One link of the view chain: `H("dcnet/v1/view"; view_prev, u64le round, H(Open))`.
pub fn view_step(view_prev: &Hash, round: u64, open_hash: &Hash) -> Hash {
    hash(tags::VIEW, &[view_prev, &round.to_le_bytes(), open_hash])
}

/// The per-round input of pad-key derivation, computed once per round:
/// `n_r = H("dcnet/v1/pad-nonce"; u64le round, view_r)[..16]`.
pub fn pad_nonce(round: u64, view: &Hash) -> [u8; 16] {
    let h = hash(tags::PAD_NONCE, &[&round.to_le_bytes(), view]);
    let mut n = [0u8; 16];
    n.copy_from_slice(&h[..16]);
    n
}

/// Per-round pair key `k_ij,r = HChaCha20(key = s_ij, input = n_r)` (the XChaCha20 subkey
/// function), with `n_r` from [`pad_nonce`].
///
/// # Security
/// HChaCha20 is a PRF under the key `s_ij` (the assumption XChaCha20 rests on), so keys for
/// distinct `(round, view)` are independent unless two 128-bit `n_r` collide. A relay that shows
/// members different views therefore makes them use unrelated pads.
pub fn pad_key(secret: &PairSecret, nonce: &[u8; 16]) -> StreamKey {
    let key = chacha20::Key::from(secret.0);
    let input = chacha20::cipher::array::Array::from(*nonce);
    let mut out = chacha20::hchacha::<chacha20::R20>(&key, &input);
    let mut k = [0u8; 32];
    k.copy_from_slice(&out);
    out.zeroize();
    StreamKey(k)
}

/// Commitment to a blinding seed: `H("dcnet/v1/blind-commit"; z)`.
pub fn blind_commitment(z: &StreamKey) -> Hash {
    hash(tags::BLIND_COMMIT, &[&z.0])
}

/// `HashToPoint`: Ristretto255 `from_uniform_bytes` (Elligator, RFC 9496 §4.3.4) of
/// `SHA3-512("dcnet/v1/footprint-base"; group_id, u64le epoch, u64le round)`.
pub fn footprint_base(group_id: &Hash, epoch: u64, round: u64) -> RistrettoPoint {
    let wide = hash_wide(
        tags::FOOTPRINT_BASE,
        &[group_id, &epoch.to_le_bytes(), &round.to_le_bytes()],
    );
    RistrettoPoint::from_uniform_bytes(&wide)
}

/// Footprint: the first 8 bytes of `H("dcnet/v1/footprint"; Γ)`.
pub fn footprint(gamma: &[u8; 32]) -> [u8; 8] {
    let h = hash(tags::FOOTPRINT, &[gamma]);
    let mut f = [0u8; 8];
    f.copy_from_slice(&h[..8]);
    f
}

/// The epoch's content key `K_c` (docs/PROTOCOL.md §2.12): every slot body of the epoch is
/// encrypted under a key derived from it, so the relay sees only uniform bytes.
///
/// # Security
/// Secret: no `Debug`, zeroized on drop. Members drop it with the epoch (forward secrecy).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ContentKey([u8; 32]);

impl ContentKey {
    /// Wraps raw key bytes (drawn by the epoch's keyholder, or opened from its seal).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ContentKey(bytes)
    }
    /// Raw bytes (test vectors only).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
    /// `kc_id = H("dcnet/v1/content-id"; group_id, u64le epoch, K_c)`: names the key in the
    /// keyholder's signed Commit, so a member checks what its seal opened to.
    pub fn id(&self, group_id: &Hash, epoch: u64) -> Hash {
        hash(tags::CONTENT_ID, &[group_id, &epoch.to_le_bytes(), &self.0])
    }
    /// The slot key `H("dcnet/v1/slot-key"; K_c, u64le round, u32le slot)`. One-way: an
    /// accuser discloses it for its trap slot alone, and nothing else of the epoch follows.
    pub fn slot_key(&self, round: u64, slot: u32) -> StreamKey {
        StreamKey(hash(
            tags::SLOT_KEY,
            &[&self.0, &round.to_le_bytes(), &slot.to_le_bytes()],
        ))
    }
    /// The seal of `K_c` for member `to`: `K_c ⊕ seal_mask`.
    pub fn seal(&self, mask: &[u8; 32]) -> [u8; 32] {
        let mut out = self.0;
        for (o, m) in out.iter_mut().zip(mask) {
            *o ^= m;
        }
        out
    }
    /// Opens a seal with `mask`; `None` unless the result is the key `id` names.
    pub fn open(
        seal: &[u8; 32],
        mask: &[u8; 32],
        group_id: &Hash,
        epoch: u64,
        id: &Hash,
    ) -> Option<Self> {
        let k = ContentKey(*seal).seal(mask);
        let k = ContentKey(k);
        super::ct_eq(&k.id(group_id, epoch), id).then_some(k)
    }
}

/// `seal_mask = H("dcnet/v1/content-seal"; group_id, u64le epoch, u64le round, u32le holder,
/// u32le to, s_holder,to)`: what the keyholder XORs `K_c` with for member `to` (only the two of
/// them know `s`).
pub fn seal_mask(
    pair: &PairSecret,
    group_id: &Hash,
    epoch: u64,
    round: u64,
    holder: u32,
    to: u32,
) -> [u8; 32] {
    hash(
        tags::CONTENT_SEAL,
        &[
            group_id,
            &epoch.to_le_bytes(),
            &round.to_le_bytes(),
            &holder.to_le_bytes(),
            &to.to_le_bytes(),
            &pair.0,
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> EpochSecret {
        EpochSecret::from_uniform_bytes(&[b; 64]).unwrap()
    }

    #[test]
    fn pair_secret_is_symmetric() {
        let g = [3u8; 32];
        let (a, b) = (secret(1), secret(2));
        let (ea, eb) = (a.public(), b.public());
        let kab = a.shared(&eb).unwrap();
        let kba = b.shared(&ea).unwrap();
        assert_eq!(kab, kba);
        let s1 = pair_secret(&g, 4, (0, &ea), (1, &eb), &kab);
        let s2 = pair_secret(&g, 4, (1, &eb), (0, &ea), &kba);
        assert_eq!(s1.expose(), s2.expose());
    }

    #[test]
    fn identity_and_garbage_points_are_rejected() {
        assert!(EpochPublic([0u8; 32]).point().is_none());
        assert!(EpochPublic([0xff; 32]).point().is_none());
        assert!(EpochSecret::from_uniform_bytes(&[0u8; 64]).is_none());
    }
}
