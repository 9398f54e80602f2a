//! Documented limits, checked against the real encodings so docs and code cannot drift apart.

use dcnet::crypto::merkle;
use dcnet::params::RoundParams;
use dcnet::protocol::blame::MAX_POSITIONS;
use dcnet::wire::{self, DisclosedByte};

/// The largest DisclosureSet a group of `n` members with default parameters can need: every
/// member discloses MAX_POSITIONS bytes, each with N − 1 pad bytes, a Merkle chunk of
/// `chunk_len` bytes and the deepest proof, plus a generous 400 bytes per Disclose for its
/// header, signature, case digest and the set's own framing.
fn worst_disclosure_set(n: usize, chunk_len: usize) -> usize {
    let p = RoundParams::default().resolved(n);
    let l = p.vector_len();
    let proof = merkle::prove(&vec![0xA5u8; l], 0).expect("chunk 0");
    (0..n as u32)
        .map(|i| {
            let bytes: Vec<DisclosedByte> = (0..MAX_POSITIONS)
                .map(|k| DisclosedByte {
                    position: (l - 1 - k) as u64,
                    pads: (0..n as u32)
                        .filter(|&j| j != i)
                        .map(|j| (j, 0xFF))
                        .collect(),
                    chunk: vec![0xA5; chunk_len],
                    proof: proof.clone(),
                })
                .collect();
            wire::encode(&bytes).len() + 400
        })
        .sum()
}

/// The largest group whose worst DisclosureSet fits one frame.
fn largest_fitting(chunk_len: usize) -> usize {
    let (mut lo, mut hi) = (2usize, 1025usize);
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if worst_disclosure_set(mid, chunk_len) > wire::MAX_FRAME {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    lo
}

/// docs/SECURITY.md "Blame in very large groups" and PROTOCOL §2.9 give these sizes. If the
/// disclosure format changes (say the pad indices go), this test says the docs must too.
#[test]
fn the_worst_disclosure_set_fits_one_frame_up_to_the_documented_group_size() {
    let at_256 = largest_fitting(merkle::CHUNK);
    let at_1024 = largest_fitting(1024);
    println!(
        "largest N whose worst DisclosureSet fits 16 MiB: {at_256} (256-byte chunks), {at_1024} (1024)"
    );
    assert_eq!(merkle::CHUNK, 256);
    assert!((460..=480).contains(&at_256), "docs say ≈ 470: {at_256}");
    assert!((380..=400).contains(&at_1024), "docs say ≈ 390: {at_1024}");
}
