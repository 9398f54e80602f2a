//! Chaum–Pedersen proofs of discrete-log equality over Ristretto255.
//!
//! A proof shows `log_B(X) = log_T(Y)` for public points `X, T, Y` without revealing the
//! logarithm: used to prove a footprint `Γ = e·T` against an epoch key `E = e·B`, and to reveal
//! a Diffie–Hellman value `K_ij = e_i·E_j` against `E_i` when a pad is disputed.
//!
//! Fiat–Shamir: `c = SHA3-512("dcnet/v1/dleq-challenge"; context, X, T, Y, R1, R2) mod ℓ`.
//! The caller's `context` binds group, epoch, round, members and purpose (docs/PROTOCOL.md §2.8).
//!
//! Nonces are hedged: `k = SHA3-512("dcnet/v1/dleq-nonce"; e, context, X, T, Y, fresh) mod ℓ`, so
//! neither a bad RNG nor a repeated input alone can leak `e`.

use super::keys::EpochSecret;
use super::{hash_wide, tags};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use zeroize::Zeroize;

/// A DLEQ proof: challenge and response scalars (64 bytes on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Debug, bincode::Encode, bincode::Decode)]
pub struct DleqProof {
    /// Challenge `c` (canonical scalar bytes).
    pub c: [u8; 32],
    /// Response `s = k + c·e` (canonical scalar bytes).
    pub s: [u8; 32],
}

fn challenge(context: &[u8], pts: [&[u8; 32]; 5]) -> Scalar {
    let wide = hash_wide(
        tags::DLEQ_CHALLENGE,
        &[context, pts[0], pts[1], pts[2], pts[3], pts[4]],
    );
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Proves `log_B(e·B) = log_T(e·T)`. Returns `(Y = e·T compressed, proof)`.
pub fn prove(
    secret: &EpochSecret,
    base_t: &RistrettoPoint,
    context: &[u8],
    fresh: &[u8; 32],
) -> ([u8; 32], DleqProof) {
    let e = &secret.0;
    let x = RistrettoPoint::mul_base(e).compress().to_bytes();
    let t = base_t.compress().to_bytes();
    let y = (e * base_t).compress().to_bytes();
    let mut e_bytes = e.to_bytes();
    let mut wide = hash_wide(tags::DLEQ_NONCE, &[&e_bytes, context, &x, &t, &y, fresh]);
    e_bytes.zeroize();
    let mut k = Scalar::from_bytes_mod_order_wide(&wide);
    wide.zeroize();
    let r1 = RistrettoPoint::mul_base(&k).compress().to_bytes();
    let r2 = (k * base_t).compress().to_bytes();
    let c = challenge(context, [&x, &t, &y, &r1, &r2]);
    let s = k + c * e;
    k.zeroize();
    (
        y,
        DleqProof {
            c: c.to_bytes(),
            s: s.to_bytes(),
        },
    )
}

/// Verifies a proof that `log_B(X) = log_T(Y)`. Variable time (all inputs are public).
pub fn verify_vartime(
    x: &[u8; 32],
    base_t: &RistrettoPoint,
    y: &[u8; 32],
    proof: &DleqProof,
    context: &[u8],
) -> bool {
    let (Some(xp), Some(yp)) = (
        CompressedRistretto(*x).decompress(),
        CompressedRistretto(*y).decompress(),
    ) else {
        return false;
    };
    let (Some(c), Some(s)) = (
        Option::<Scalar>::from(Scalar::from_canonical_bytes(proof.c)),
        Option::<Scalar>::from(Scalar::from_canonical_bytes(proof.s)),
    ) else {
        return false;
    };
    // R1 = s·B − c·X, R2 = s·T − c·Y
    let r1 = RistrettoPoint::vartime_multiscalar_mul(
        [s, -c],
        [curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT, xp],
    );
    let r2 = RistrettoPoint::vartime_multiscalar_mul([s, -c], [*base_t, yp]);
    let t = base_t.compress().to_bytes();
    let c2 = challenge(
        context,
        [
            x,
            &t,
            y,
            &r1.compress().to_bytes(),
            &r2.compress().to_bytes(),
        ],
    );
    c2 == c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::keys::footprint_base;

    #[test]
    fn proof_verifies_and_binds_everything() {
        let e = EpochSecret::from_uniform_bytes(&[5u8; 64]).unwrap();
        let x = e.public().0;
        let t = footprint_base(&[1u8; 32], 2, 3);
        let (y, p) = prove(&e, &t, b"ctx", &[9u8; 32]);
        assert_eq!(y, e.gamma(&[1u8; 32], 2, 3));
        assert!(verify_vartime(&x, &t, &y, &p, b"ctx"));
        assert!(!verify_vartime(&x, &t, &y, &p, b"cty"));
        let other = footprint_base(&[1u8; 32], 2, 4);
        assert!(!verify_vartime(&x, &other, &y, &p, b"ctx"));
        let mut bad = p;
        bad.s[0] ^= 1;
        assert!(!verify_vartime(&x, &t, &y, &bad, b"ctx"));
        let e2 = EpochSecret::from_uniform_bytes(&[6u8; 64]).unwrap();
        assert!(!verify_vartime(&e2.public().0, &t, &y, &p, b"ctx"));
    }
}
