//! Merkle commitments over fixed-size chunks of a ciphertext, with single-chunk proofs.
//!
//! Chunks are [`CHUNK`] bytes (the last may be shorter).
//! `leaf_k = H("dcnet/v1/merkle-leaf"; u32le k, chunk_k)`,
//! `node = H("dcnet/v1/merkle-node"; left, right)`; on a level with an odd number of nodes the
//! last one is carried up unchanged. The commitment is
//! `H("dcnet/v1/merkle-root"; u64le total_len, top)`, so the length is bound too.

use super::{Hash, hash, tags};

/// Chunk size in bytes.
pub const CHUNK: usize = 256;

/// A proof that one chunk belongs to a committed ciphertext.
#[derive(Clone, PartialEq, Eq, Debug, bincode::Encode, bincode::Decode)]
pub struct ChunkProof {
    /// Index of the chunk.
    pub index: u32,
    /// Sibling hashes from the leaf level upwards (levels where the node was carried up have
    /// no sibling and contribute nothing).
    pub siblings: Vec<Hash>,
}

fn leaf(index: u32, chunk: &[u8]) -> Hash {
    hash(tags::MERKLE_LEAF, &[&index.to_le_bytes(), chunk])
}

fn node(l: &Hash, r: &Hash) -> Hash {
    hash(tags::MERKLE_NODE, &[l, r])
}

fn root_of(total_len: u64, top: &Hash) -> Hash {
    hash(tags::MERKLE_ROOT, &[&total_len.to_le_bytes(), top])
}

/// The level above `level`: pairs hashed, an odd last node carried up unchanged.
fn parent_level(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|p| {
            if p.len() == 2 {
                node(&p[0], &p[1])
            } else {
                p[0]
            }
        })
        .collect()
}

/// From this many bytes on, leaves are hashed by the rayon pool (same hashes, in order).
const PARALLEL_MIN_BYTES: usize = 64 * 1024;

fn leaves(data: &[u8]) -> Vec<Hash> {
    use rayon::prelude::*;
    if data.is_empty() {
        return vec![leaf(0, &[])];
    }
    if data.len() >= PARALLEL_MIN_BYTES && rayon::current_num_threads() > 1 {
        return data
            .par_chunks(CHUNK)
            .enumerate()
            .map(|(i, c)| leaf(i as u32, c))
            .collect();
    }
    data.chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| leaf(i as u32, c))
        .collect()
}

/// The commitment (root) of `data`.
pub fn commit(data: &[u8]) -> Hash {
    let mut level = leaves(data);
    while level.len() > 1 {
        level = parent_level(&level);
    }
    root_of(data.len() as u64, &level[0])
}

/// The proof for chunk `index` of `data`, or `None` if out of range.
pub fn prove(data: &[u8], index: u32) -> Option<ChunkProof> {
    let mut level = leaves(data);
    let mut pos = index as usize;
    if pos >= level.len() {
        return None;
    }
    let mut siblings = Vec::new();
    while level.len() > 1 {
        let sib = pos ^ 1;
        if sib < level.len() {
            siblings.push(level[sib]);
        }
        level = parent_level(&level);
        pos /= 2;
    }
    Some(ChunkProof { index, siblings })
}

/// The chunk `index` of a vector of `total_len` bytes spans this byte range.
pub fn chunk_range(total_len: u64, index: u32) -> Option<std::ops::Range<u64>> {
    let start = u64::from(index) * CHUNK as u64;
    (start < total_len || (total_len == 0 && index == 0))
        .then(|| start..(start + CHUNK as u64).min(total_len))
}

/// Checks that `chunk` is chunk `proof.index` of a `total_len`-byte vector committed to `root`.
pub fn verify(root: &Hash, total_len: u64, chunk: &[u8], proof: &ChunkProof) -> bool {
    let Some(range) = chunk_range(total_len, proof.index) else {
        return false;
    };
    if chunk.len() as u64 != range.end - range.start {
        return false;
    }
    let mut width = total_len.div_ceil(CHUNK as u64).max(1);
    let mut pos = u64::from(proof.index);
    let mut acc = leaf(proof.index, chunk);
    let mut sibs = proof.siblings.iter();
    while width > 1 {
        let sib = pos ^ 1;
        if sib < width {
            let Some(s) = sibs.next() else { return false };
            acc = if pos % 2 == 0 {
                node(&acc, s)
            } else {
                node(s, &acc)
            };
        }
        pos /= 2;
        width = width.div_ceil(2);
    }
    sibs.next().is_none() && super::ct_eq(&root_of(total_len, &acc), root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_hashes_the_same_root_as_one_thread() {
        let data: Vec<u8> = (0..200_003u32).map(|i| (i * 31 % 251) as u8).collect();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        let four = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .expect("pool");
        let serial = one.install(|| commit(&data));
        assert_eq!(four.install(|| commit(&data)), serial);
        assert_eq!(
            four.install(|| prove(&data, 700)),
            one.install(|| prove(&data, 700))
        );
        // The parallel path is taken (the data is above its threshold) and agrees with a
        // leaf-by-leaf hash written out here.
        let mut level: Vec<Hash> = data
            .chunks(CHUNK)
            .enumerate()
            .map(|(i, c)| leaf(i as u32, c))
            .collect();
        while level.len() > 1 {
            level = parent_level(&level);
        }
        assert!(data.len() >= PARALLEL_MIN_BYTES);
        assert_eq!(serial, root_of(data.len() as u64, &level[0]));
    }

    #[test]
    fn every_chunk_proves_and_tampering_fails() {
        for len in [0usize, 1, 255, 256, 257, 1000, 5 * 256, 7 * 256 + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
            let root = commit(&data);
            let n = len.div_ceil(CHUNK).max(1) as u32;
            for i in 0..n {
                let p = prove(&data, i).unwrap();
                let r = chunk_range(len as u64, i).unwrap();
                let chunk = &data[r.start as usize..r.end as usize];
                assert!(verify(&root, len as u64, chunk, &p), "len {len} chunk {i}");
                if !chunk.is_empty() {
                    let mut bad = chunk.to_vec();
                    bad[0] ^= 1;
                    assert!(!verify(&root, len as u64, &bad, &p));
                }
                assert!(!verify(&root, len as u64 + 1, chunk, &p));
            }
            assert!(prove(&data, n).is_none());
        }
    }
}
