//! The round vector: layout, allocation, slot framing, traps, fragmentation and reassembly.
//!
//! ```text
//! [ cell 0 | … | cell m−1 (8 bytes each) | slot 0 | … | slot S−1 (slot_bytes each) ]
//! ```
//!
//! A slot body is `slot_bytes − 32` bytes followed by
//! `H("dcnet/v1/slot"; u64le round, u32le slot, body)`, so a slot hit by any XOR is detected.
//! Bodies start with a kind byte: `0x01` fragment, `0x02` trap (docs/PROTOCOL.md §7).

use crate::crypto::pad::{Keystream, StreamKey};
use crate::crypto::{Hash, hash, tags};
use crate::params::{RoundParams, SLOT_OVERHEAD};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Bytes of a slot hash.
pub const SLOT_HASH: usize = 32;
const KIND_FRAGMENT: u8 = 0x01;
const KIND_TRAP: u8 = 0x02;

/// Byte layout of the round vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Number of cells.
    pub cells: u32,
    /// Number of slots.
    pub slots: u32,
    /// Bytes per slot.
    pub slot_bytes: u32,
}

impl Layout {
    /// Layout of validated parameters.
    pub fn new(p: &RoundParams) -> Layout {
        Layout {
            cells: p.cells,
            slots: p.slots,
            slot_bytes: p.slot_bytes,
        }
    }
    /// Vector length.
    pub fn len(&self) -> usize {
        self.cells as usize * 8 + self.slots as usize * self.slot_bytes as usize
    }
    /// Always false for a validated layout.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Byte range of cell `c`.
    pub fn cell(&self, c: u32) -> std::ops::Range<usize> {
        let s = c as usize * 8;
        s..s + 8
    }
    /// Byte range of slot `s`.
    pub fn slot(&self, s: u32) -> std::ops::Range<usize> {
        let start = self.cells as usize * 8 + s as usize * self.slot_bytes as usize;
        start..start + self.slot_bytes as usize
    }
    /// Payload bytes one fragment carries.
    pub fn capacity(&self) -> usize {
        (self.slot_bytes - SLOT_OVERHEAD) as usize
    }
}

/// `H("dcnet/v1/output"; u64le round, cleartext)`: names a round's output.
pub fn output_digest(round: u64, cleartext: &[u8]) -> Hash {
    hash(tags::OUTPUT, &[&round.to_le_bytes(), cleartext])
}

/// Which slot each winning cell got.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Allocation {
    /// cell → slot.
    pub by_cell: BTreeMap<u32, u32>,
    /// More non-zero cells than slots: the public trigger for a full cell check. The
    /// allocation is void.
    pub overflow: bool,
}

impl Allocation {
    /// Allocation from a completed round's cleartext: non-zero cells, ordered by
    /// `H("dcnet/v1/alloc-order"; output_digest, u32le cell)` (ties by cell index), get slots
    /// 0, 1, … in that order.
    pub fn from_output(layout: &Layout, round: u64, cleartext: &[u8]) -> Allocation {
        let out = output_digest(round, cleartext);
        let mut nonzero: Vec<(Hash, u32)> = (0..layout.cells)
            .filter(|&c| cleartext[layout.cell(c)].iter().any(|&b| b != 0))
            .map(|c| (hash(tags::ALLOC_ORDER, &[&out, &c.to_le_bytes()]), c))
            .collect();
        if nonzero.len() > layout.slots as usize {
            return Allocation {
                by_cell: BTreeMap::new(),
                overflow: true,
            };
        }
        nonzero.sort();
        Allocation {
            by_cell: nonzero
                .into_iter()
                .enumerate()
                .map(|(s, (_, c))| (c, s as u32))
                .collect(),
            overflow: false,
        }
    }
    /// Allocated slots.
    pub fn slots(&self) -> BTreeSet<u32> {
        self.by_cell.values().copied().collect()
    }
}

fn slot_hash(round: u64, slot: u32, body: &[u8]) -> Hash {
    hash(
        tags::SLOT,
        &[&round.to_le_bytes(), &slot.to_le_bytes(), body],
    )
}

fn seal(round: u64, slot: u32, mut body: Vec<u8>) -> Vec<u8> {
    let h = slot_hash(round, slot, &body);
    body.extend_from_slice(&h);
    body
}

/// One fragment of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Random message id (links the fragments of one message, never a sender).
    pub msg_id: [u8; 8],
    /// Index of this fragment.
    pub index: u16,
    /// Number of fragments.
    pub count: u16,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Frames a fragment into slot `slot` of `round`.
pub fn frame_fragment(layout: &Layout, round: u64, slot: u32, f: &Fragment) -> Vec<u8> {
    let mut body = Vec::with_capacity(layout.slot_bytes as usize);
    body.push(KIND_FRAGMENT);
    body.extend_from_slice(&f.msg_id);
    body.extend_from_slice(&f.index.to_le_bytes());
    body.extend_from_slice(&f.count.to_le_bytes());
    body.extend_from_slice(&(f.payload.len() as u16).to_le_bytes());
    body.extend_from_slice(&f.payload);
    body.resize(layout.slot_bytes as usize - SLOT_HASH, 0);
    seal(round, slot, body)
}

/// Trap content for slot `slot` of `round`, from the owner's VRF output `Γ` of the round in which
/// it reserved: kind byte `0x02`, then ChaCha20 keystream keyed by
/// `H("dcnet/v1/trap"; Γ, u64le round, u32le slot)` with nonce = round, then the slot hash.
pub fn trap_slot(layout: &Layout, round: u64, slot: u32, gamma: &[u8; 32]) -> Vec<u8> {
    let key = StreamKey::from_bytes(hash(
        tags::TRAP,
        &[gamma, &round.to_le_bytes(), &slot.to_le_bytes()],
    ));
    let mut body = vec![0u8; layout.slot_bytes as usize - SLOT_HASH];
    Keystream::new().xor_into(&key, round, 0, &mut body[1..]);
    body[0] = KIND_TRAP;
    seal(round, slot, body)
}

/// What a slot of a completed round holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotContent {
    /// All zero.
    Empty,
    /// An intact fragment.
    Fragment(Fragment),
    /// An intact trap.
    Trap,
    /// Non-zero and failing its hash or its format: hit by a jammer (or a collision's leftovers).
    Damaged,
}

/// Parses slot `slot` of `round`.
pub fn parse_slot(layout: &Layout, round: u64, slot: u32, bytes: &[u8]) -> SlotContent {
    if bytes.iter().all(|&b| b == 0) {
        return SlotContent::Empty;
    }
    let (body, h) = bytes.split_at(bytes.len() - SLOT_HASH);
    if !crate::crypto::ct_eq(&slot_hash(round, slot, body), h) {
        return SlotContent::Damaged;
    }
    match body[0] {
        KIND_TRAP => SlotContent::Trap,
        KIND_FRAGMENT => {
            let msg_id: [u8; 8] = body[1..9].try_into().unwrap_or([0; 8]);
            let index = u16::from_le_bytes([body[9], body[10]]);
            let count = u16::from_le_bytes([body[11], body[12]]);
            let len = u16::from_le_bytes([body[13], body[14]]) as usize;
            if len > layout.capacity() || count == 0 || index >= count {
                return SlotContent::Damaged;
            }
            SlotContent::Fragment(Fragment {
                msg_id,
                index,
                count,
                payload: body[15..15 + len].to_vec(),
            })
        }
        _ => SlotContent::Damaged,
    }
}

/// Splits a message into fragments of at most `capacity` bytes (an empty message is one empty
/// fragment).
pub fn fragment(msg: &[u8], capacity: usize, msg_id: [u8; 8]) -> Vec<Fragment> {
    let chunks: Vec<&[u8]> = if msg.is_empty() {
        vec![&[][..]]
    } else {
        msg.chunks(capacity).collect()
    };
    let count = chunks.len() as u16;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| Fragment {
            msg_id,
            index: i as u16,
            count,
            payload: c.to_vec(),
        })
        .collect()
}

/// Fragments received so far for one message: (fragment count, index → payload).
type Partial = (u16, BTreeMap<u16, Vec<u8>>);

/// Reassembles fragments into messages; each message is returned once.
///
/// Memory is bounded: at most `max_partial` incomplete messages (the oldest is dropped when
/// full) and a window of `max_done` delivered ids for de-duplication.
pub struct Reassembly {
    partial: BTreeMap<[u8; 8], Partial>,
    order: VecDeque<[u8; 8]>,
    done: BTreeSet<[u8; 8]>,
    done_order: VecDeque<[u8; 8]>,
    max_partial: usize,
    max_done: usize,
    max_fragments: u16,
}

impl Reassembly {
    /// A reassembler with the given bounds.
    pub fn new(max_partial: usize, max_done: usize, max_fragments: u16) -> Self {
        Reassembly {
            partial: BTreeMap::new(),
            order: VecDeque::new(),
            done: BTreeSet::new(),
            done_order: VecDeque::new(),
            max_partial,
            max_done,
            max_fragments,
        }
    }

    /// Adds a fragment; returns the message if it is now complete.
    pub fn add(&mut self, f: Fragment) -> Option<Vec<u8>> {
        if self.done.contains(&f.msg_id) || f.count > self.max_fragments {
            return None;
        }
        if !self.partial.contains_key(&f.msg_id) {
            if self.partial.len() >= self.max_partial {
                if let Some(old) = self.order.pop_front() {
                    self.partial.remove(&old);
                }
            }
            self.order.push_back(f.msg_id);
            self.partial.insert(f.msg_id, (f.count, BTreeMap::new()));
        }
        let entry = self.partial.get_mut(&f.msg_id)?;
        if entry.0 != f.count {
            return None;
        }
        entry.1.entry(f.index).or_insert(f.payload);
        if entry.1.len() < entry.0 as usize {
            return None;
        }
        let (_, frags) = self.partial.remove(&f.msg_id)?;
        self.order.retain(|id| *id != f.msg_id);
        self.done.insert(f.msg_id);
        self.done_order.push_back(f.msg_id);
        if self.done_order.len() > self.max_done {
            if let Some(old) = self.done_order.pop_front() {
                self.done.remove(&old);
            }
        }
        Some(frags.into_values().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            cells: 4,
            slots: 3,
            slot_bytes: 100,
        }
    }

    #[test]
    fn framing_roundtrip_and_damage() {
        let l = layout();
        let f = Fragment {
            msg_id: [1; 8],
            index: 0,
            count: 2,
            payload: b"hello".to_vec(),
        };
        let s = frame_fragment(&l, 9, 1, &f);
        assert_eq!(s.len(), 100);
        assert_eq!(parse_slot(&l, 9, 1, &s), SlotContent::Fragment(f));
        assert_eq!(parse_slot(&l, 9, 2, &s), SlotContent::Damaged, "slot bound");
        assert_eq!(
            parse_slot(&l, 10, 1, &s),
            SlotContent::Damaged,
            "round bound"
        );
        for i in 0..s.len() {
            let mut d = s.clone();
            d[i] ^= 0x40;
            assert_eq!(parse_slot(&l, 9, 1, &d), SlotContent::Damaged);
        }
        let t = trap_slot(&l, 9, 1, &[5; 32]);
        assert_eq!(parse_slot(&l, 9, 1, &t), SlotContent::Trap);
        assert_eq!(parse_slot(&l, 9, 1, &[0; 100]), SlotContent::Empty);
    }

    #[test]
    fn fragments_reassemble_once_in_any_order() {
        let msg: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let frags = fragment(&msg, 53, [2; 8]);
        assert_eq!(frags.len(), 19);
        let mut r = Reassembly::new(4, 16, 100);
        let mut out = None;
        for f in frags.iter().rev() {
            assert!(out.is_none());
            out = r.add(f.clone());
        }
        assert_eq!(out.unwrap(), msg);
        assert!(r.add(frags[0].clone()).is_none(), "delivered once");
        assert_eq!(fragment(b"", 53, [3; 8]).len(), 1);
    }

    #[test]
    fn allocation_orders_nonzero_cells_and_detects_overflow() {
        let l = layout();
        let mut v = vec![0u8; l.len()];
        v[l.cell(1)].copy_from_slice(&[1; 8]);
        v[l.cell(3)].copy_from_slice(&[2; 8]);
        let a = Allocation::from_output(&l, 5, &v);
        assert!(!a.overflow);
        assert_eq!(a.by_cell.len(), 2);
        assert_eq!(a.slots(), [0, 1].into_iter().collect());
        for c in 0..4 {
            v[l.cell(c)].copy_from_slice(&[3; 8]);
        }
        assert!(Allocation::from_output(&l, 5, &v).overflow);
    }
}
