//! Pads and blinding: the ChaCha20 keystream (djb variant: 64-bit nonce, 64-bit block counter),
//! as rand_chacha's `ChaCha20Rng` with `set_stream` produces it.
//!
//! A pad is keyed by a per-round pair key `k_ij,r` and uses `nonce = round` (the u64 passed to
//! `set_stream`, i.e. the little-endian nonce bytes of `round`). Byte 0 of the keystream is byte 0
//! of the round vector, so any byte range can be computed directly: [`xor_keystream`] seeks to the
//! enclosing 32-bit word and discards the leading bytes of a range that does not start on a word.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 32-byte ChaCha20 key: a pair key `k_ij,r`, or a blinding seed `z_i`.
///
/// # Security
/// Secret. No `Debug`, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct StreamKey(pub(crate) [u8; 32]);

impl StreamKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StreamKey(bytes)
    }
    /// The raw key bytes (for disclosure in blame and for test vectors).
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Reusable keystream generator with a scratch buffer, so a member's per-round work does not
/// allocate.
pub struct Keystream {
    scratch: Vec<u8>,
}

impl Default for Keystream {
    fn default() -> Self {
        Self::new()
    }
}

impl Keystream {
    /// A generator with an empty scratch buffer.
    pub fn new() -> Self {
        Keystream {
            scratch: Vec::new(),
        }
    }

    /// XORs keystream bytes `[offset, offset + out.len())` of `(key, nonce = round)` into `out`.
    pub fn xor_into(&mut self, key: &StreamKey, round: u64, offset: u64, out: &mut [u8]) {
        let mut rng = ChaCha20Rng::from_seed(key.0);
        rng.set_stream(round);
        rng.set_word_pos(u128::from(offset / 4));
        let skip = (offset % 4) as usize;
        let need = skip + out.len();
        // Generate in bounded pieces so the scratch buffer stays in cache.
        const PIECE: usize = 16 * 1024;
        if self.scratch.len() < PIECE.min(need) {
            self.scratch.resize(PIECE.min(need), 0);
        }
        let mut produced = 0usize; // bytes of `out` written so far
        let mut first = true;
        while produced < out.len() {
            let lead = if first { skip } else { 0 };
            // Every piece but the last is exactly PIECE bytes (a multiple of 4), so the
            // generator never discards a partial word in the middle of the range.
            let take = (out.len() - produced).min(PIECE - lead);
            let gen_len = lead + take;
            let buf = &mut self.scratch[..gen_len];
            rng.fill_bytes(buf);
            for (o, k) in out[produced..produced + take].iter_mut().zip(&buf[lead..]) {
                *o ^= *k;
            }
            produced += take;
            first = false;
        }
    }
}

impl Drop for Keystream {
    fn drop(&mut self) {
        self.scratch.zeroize();
    }
}

/// Returns keystream bytes `[offset, offset + len)` of `(key, nonce = round)`.
pub fn keystream(key: &StreamKey, round: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    Keystream::new().xor_into(key, round, offset, &mut out);
    out
}

/// Below this many keystream bytes (keys × vector length) a round's keystreams are generated on
/// the calling thread: splitting smaller work across the pool costs more than it saves.
pub const PARALLEL_MIN_BYTES: usize = 256 * 1024;

/// The smallest byte range one worker takes (a multiple of the 64-byte ChaCha block, so no
/// worker discards a partial block at the start of its range).
const RANGE_MIN: usize = 8 * 1024;

/// XORs the keystream of every key in `keys` (nonce `round`, from byte 0) into `buf`.
///
/// When `keys.len() × buf.len()` reaches [`PARALLEL_MIN_BYTES`] and the current rayon pool has
/// more than one thread, `buf` is split into one byte range per thread and each worker XORs
/// every key's keystream of its range (ChaCha20 seeks to any block), so the result is the same
/// bytes as the serial loop, whatever the number of threads. `ks` serves the serial path.
pub fn xor_keystreams(ks: &mut Keystream, buf: &mut [u8], round: u64, keys: &[StreamKey]) {
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    let work = keys.len().saturating_mul(buf.len());
    if threads <= 1 || work < PARALLEL_MIN_BYTES || buf.len() < 2 * RANGE_MIN {
        for k in keys {
            ks.xor_into(k, round, 0, buf);
        }
        return;
    }
    let range = buf
        .len()
        .div_ceil(threads)
        .next_multiple_of(64)
        .max(RANGE_MIN);
    buf.par_chunks_mut(range)
        .enumerate()
        .for_each_init(Keystream::new, |ks, (i, part)| {
            // i < buf.len() / RANGE_MIN, so i × range ≤ buf.len(): no overflow.
            let offset = (i * range) as u64;
            for k in keys {
                ks.xor_into(k, round, offset, part);
            }
        });
}

/// Member `i`'s ciphertext in place: `buf` holds `m_i` on entry and
/// `c_i = m_i ⊕ b_i ⊕ ⨁_j pad_ij` on return, where `b_i` is the keystream of `blinding` and each
/// `pad_ij` the keystream of `k_ij,r = pad_key(s_ij, pad_nonce(round, view))`.
pub fn encrypt_in_place<'a>(
    ks: &mut Keystream,
    buf: &mut [u8],
    round: u64,
    view: &super::Hash,
    pair_secrets: impl IntoIterator<Item = &'a super::keys::PairSecret>,
    blinding: &StreamKey,
) {
    let nonce = super::keys::pad_nonce(round, view);
    // The references first (not secret), so the keys' Vec is allocated once at its final size:
    // a Vec that grew by reallocation would free buffers still holding copies of the keys,
    // which no drop ever zeroizes.
    let secrets: Vec<&super::keys::PairSecret> = pair_secrets.into_iter().collect();
    let mut keys: Vec<StreamKey> = Vec::with_capacity(secrets.len() + 1);
    keys.push(blinding.clone());
    keys.extend(secrets.iter().map(|s| super::keys::pad_key(s, &nonce)));
    xor_keystreams(ks, buf, round, &keys);
}

/// Removes the blinding from a Record's XOR in place: `buf ⊕= ⨁_i b_i`.
pub fn unblind_in_place(ks: &mut Keystream, buf: &mut [u8], round: u64, seeds: &[StreamKey]) {
    xor_keystreams(ks, buf, round, seeds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_agree_with_the_whole_stream() {
        let key = StreamKey([7u8; 32]);
        let whole = keystream(&key, 1 << 33, 0, 300);
        for (off, len) in [
            (0, 1),
            (1, 3),
            (3, 70),
            (63, 2),
            (64, 64),
            (5, 200),
            (130, 170),
        ] {
            assert_eq!(
                keystream(&key, 1 << 33, off as u64, len),
                whole[off..off + len],
                "offset {off} len {len}"
            );
        }
    }

    #[test]
    fn split_keystreams_are_the_serial_bytes_whatever_the_pool() {
        let keys: Vec<StreamKey> = (0..9u8).map(|k| StreamKey([k; 32])).collect();
        // Lengths around the thresholds and not multiples of the range or the block size.
        for len in [0usize, 1, 63, 16 * 1024 - 1, 40_001, 64 * 1024, 100_003] {
            let message: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut serial = message.clone();
            for k in &keys {
                Keystream::new().xor_into(k, 11, 0, &mut serial);
            }
            for threads in [1usize, 2, 3, 8] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("pool");
                let mut split = message.clone();
                pool.install(|| xor_keystreams(&mut Keystream::new(), &mut split, 11, &keys));
                assert!(split == serial, "len {len}, {threads} threads");
            }
        }
    }

    #[test]
    fn long_ranges_cross_scratch_pieces() {
        let key = StreamKey([9u8; 32]);
        let whole = keystream(&key, 5, 0, 40_000);
        assert_eq!(keystream(&key, 5, 3, 39_990), whole[3..39_993]);
    }
}
