//! No heap block freed during a member's pad work holds a copy of a key (attack review 9,
//! finding 1: the round's keys were collected into a Vec that grew by reallocation, and every
//! outgrown buffer was freed with plain copies of the blinding key and pad keys in it).
//!
//! A spy allocator looks into every block as it is freed, for the 32 bytes of the blinding key.

use dcnet::crypto::keys::{self, PairSecret};
use dcnet::crypto::pad::{self, Keystream, StreamKey};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const BLIND: [u8; 32] = *b"\x5a\xa7\x13\xc4dcnet-blinding-key-\x99\x01\xfe\x42\x77\x10\x23\x45\x66";

static WATCH: AtomicBool = AtomicBool::new(false);
static FOUND: AtomicUsize = AtomicUsize::new(0);

struct Spy;

// SAFETY: forwards every call to the system allocator unchanged; `dealloc` only reads the
// block it is given, which is still allocated and `l.size()` bytes long at that point.
unsafe impl GlobalAlloc for Spy {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if WATCH.load(Ordering::Relaxed) && l.size() >= 32 {
            let block = unsafe { std::slice::from_raw_parts(p, l.size()) };
            if block.windows(32).any(|c| c == BLIND) {
                FOUND.fetch_add(1, Ordering::Relaxed);
            }
        }
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Spy = Spy;

#[test]
fn no_freed_heap_block_holds_the_blinding_key() {
    let secrets: Vec<PairSecret> = (0..40u8).map(|i| PairSecret::from_bytes([i; 32])).collect();
    let view = [7u8; 32];
    let blinding = StreamKey::from_bytes(BLIND);
    // 40 keys × 16 KiB is above the split threshold: the pool path runs too (when it has more
    // than one thread).
    for len in [1024usize, 16 * 1024] {
        // The same pads, key by key, for the expected bytes.
        let mut expect = vec![0u8; len];
        let mut ks = Keystream::new();
        ks.xor_into(&blinding, 3, 0, &mut expect);
        let nonce = keys::pad_nonce(3, &view);
        for s in &secrets {
            ks.xor_into(&keys::pad_key(s, &nonce), 3, 0, &mut expect);
        }
        // As member.rs calls it: an iterator whose length is not known in advance.
        let mut buf = vec![0u8; len];
        WATCH.store(true, Ordering::SeqCst);
        pad::encrypt_in_place(
            &mut ks,
            &mut buf,
            3,
            &view,
            secrets.iter().filter(|_| true),
            &blinding,
        );
        WATCH.store(false, Ordering::SeqCst);
        assert!(buf == expect, "L = {len}: wrong ciphertext");
        let found = FOUND.swap(0, Ordering::SeqCst);
        assert_eq!(
            found, 0,
            "L = {len}: {found} freed heap blocks held the blinding key"
        );
    }
}
