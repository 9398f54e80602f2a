//! The round vector: layout, allocation, slot framing, traps, fragmentation and reassembly.
//!
//! ```text
//! [ cell 0 | … | cell m−1 (8 bytes each) | slot 0 | … | slot S−1 (slot_bytes each) ]
//! ```
//!
//! A slot body is `slot_bytes − 32` bytes, encrypted under the epoch's slot key (ChaCha20),
//! followed by `H("dcnet/v1/slot"; u64le round, u32le slot, encrypted body)`, so a slot hit by
//! any XOR is detected by anyone, and only members can read it. Plaintext bodies start with a
//! kind byte: `0x01` fragment, `0x02` trap (docs/PROTOCOL.md §7).

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
    /// The allocation is void: more non-zero cells than slots, or than members present in the
    /// round that wrote the cells (the public trigger for a cell check, docs/PROTOCOL.md §8.3).
    pub overflow: bool,
    /// Non-zero cells, ascending.
    pub nonzero: Vec<u32>,
    /// More non-zero cells than present members: someone wrote garbage or twice. The
    /// allocation is void and the round's cells are checked.
    pub cell_check: bool,
}

impl Allocation {
    /// Allocation from a completed round's cleartext, `present` being the size of that round's
    /// present set: non-zero cells, ordered by `H("dcnet/v1/alloc-order"; output_digest, u32le
    /// cell)` (ties by cell index), get slots 0, 1, … in that order. Void (`overflow`) when there
    /// are more non-zero cells than `min(slots, present)`.
    pub fn from_output(
        layout: &Layout,
        round: u64,
        cleartext: &[u8],
        present: usize,
    ) -> Allocation {
        Self::from_digest(layout, &output_digest(round, cleartext), cleartext, present)
    }

    /// [`Allocation::from_output`] with the round's output digest already computed (see
    /// [`OutputChecks`]).
    pub fn from_digest(
        layout: &Layout,
        out: &Hash,
        cleartext: &[u8],
        present: usize,
    ) -> Allocation {
        let nonzero: Vec<u32> = (0..layout.cells)
            .filter(|&c| cleartext[layout.cell(c)].iter().any(|&b| b != 0))
            .collect();
        let cell_check = nonzero.len() > present;
        if nonzero.len() > (layout.slots as usize).min(present) {
            return Allocation {
                by_cell: BTreeMap::new(),
                overflow: true,
                nonzero,
                cell_check,
            };
        }
        let mut order: Vec<(Hash, u32)> = nonzero
            .iter()
            .map(|&c| (hash(tags::ALLOC_ORDER, &[out, &c.to_le_bytes()]), c))
            .collect();
        order.sort();
        Allocation {
            by_cell: order
                .into_iter()
                .enumerate()
                .map(|(s, (_, c))| (c, s as u32))
                .collect(),
            overflow: false,
            nonzero,
            cell_check,
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

/// Encrypts a plaintext body in place under the slot key (ChaCha20, nonce = round), then
/// appends the slot hash of the *encrypted* body: anyone can tell an intact slot from a hit
/// one, nobody without the key can tell a fragment from a trap.
fn seal(round: u64, slot: u32, mut body: Vec<u8>, key: &StreamKey) -> Vec<u8> {
    Keystream::new().xor_into(key, round, 0, &mut body);
    let h = slot_hash(round, slot, &body);
    body.extend_from_slice(&h);
    body
}

/// `H("dcnet/v1/message-digest"; msg_id, message)[..16]`: binds every fragment of a message to
/// the whole message, so a fragment spliced in by another slot owner is detected on reassembly.
pub fn message_digest(msg_id: &[u8; 8], message: &[u8]) -> [u8; 16] {
    let h = hash(tags::MESSAGE_DIGEST, &[msg_id, message]);
    let mut d = [0u8; 16];
    d.copy_from_slice(&h[..16]);
    d
}

/// One fragment of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Random message id (links the fragments of one message, never a sender).
    pub msg_id: [u8; 8],
    /// [`message_digest`] of the whole message.
    pub digest: [u8; 16],
    /// Index of this fragment.
    pub index: u16,
    /// Number of fragments.
    pub count: u16,
    /// Payload bytes.
    pub payload: Vec<u8>,
}

/// Frames a fragment into slot `slot` of `round`, encrypted under the slot key `key`
/// ([`crate::crypto::keys::ContentKey::slot_key`]).
pub fn frame_fragment(
    layout: &Layout,
    round: u64,
    slot: u32,
    f: &Fragment,
    key: &StreamKey,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(layout.slot_bytes as usize);
    body.push(KIND_FRAGMENT);
    body.extend_from_slice(&f.msg_id);
    body.extend_from_slice(&f.digest);
    body.extend_from_slice(&f.index.to_le_bytes());
    body.extend_from_slice(&f.count.to_le_bytes());
    body.extend_from_slice(&(f.payload.len() as u16).to_le_bytes());
    body.extend_from_slice(&f.payload);
    body.resize(layout.slot_bytes as usize - SLOT_HASH, 0);
    seal(round, slot, body, key)
}

/// Trap content for slot `slot` of `round`, from the owner's VRF output `Γ` of the round in which
/// it reserved: kind byte `0x02`, then ChaCha20 keystream keyed by
/// `H("dcnet/v1/trap"; Γ, u64le round, u32le slot)` with nonce = round; that body encrypted under
/// the slot key `key` like any other, then the slot hash.
pub fn trap_slot(
    layout: &Layout,
    round: u64,
    slot: u32,
    gamma: &[u8; 32],
    key: &StreamKey,
) -> Vec<u8> {
    let trap_key = StreamKey::from_bytes(hash(
        tags::TRAP,
        &[gamma, &round.to_le_bytes(), &slot.to_le_bytes()],
    ));
    let mut body = vec![0u8; layout.slot_bytes as usize - SLOT_HASH];
    Keystream::new().xor_into(&trap_key, round, 0, &mut body[1..]);
    body[0] = KIND_TRAP;
    seal(round, slot, body, key)
}

/// What anyone holding the round's output can tell about a slot, without any key: this is all
/// the relay learns, and all that D and blame use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// All zero.
    Empty,
    /// Non-zero and its slot hash matches (a fragment or a trap: uniform bytes either way).
    Intact,
    /// Non-zero and failing its hash: hit by a jammer (or a collision's leftovers).
    Damaged,
}

/// What every reader of a completed round's cleartext needs first, computed once: the output
/// digest and the keyless state of every slot. A member and the relay used to hash the output
/// twice and every allocated slot twice per round; they now build this once and read it. With
/// a large cleartext the slot hashes run on the rayon pool beside the output digest.
#[derive(Clone, Debug)]
pub struct OutputChecks {
    /// `output_digest(round, cleartext)`.
    pub digest: Hash,
    states: Vec<SlotState>,
}

impl OutputChecks {
    /// From this many cleartext bytes on, the slot hashes and the output digest run in parallel.
    const PARALLEL_MIN_BYTES: usize = 64 * 1024;

    /// Checks `cleartext` (a whole round vector of `layout`) of `round`.
    pub fn new(layout: &Layout, round: u64, cleartext: &[u8]) -> OutputChecks {
        use rayon::prelude::*;
        let state = |s: u32| {
            cleartext
                .get(layout.slot(s))
                .map_or(SlotState::Damaged, |b| slot_state(round, s, b))
        };
        if cleartext.len() < Self::PARALLEL_MIN_BYTES || rayon::current_num_threads() < 2 {
            return OutputChecks {
                digest: output_digest(round, cleartext),
                states: (0..layout.slots).map(state).collect(),
            };
        }
        let (digest, states) = rayon::join(
            || output_digest(round, cleartext),
            || (0..layout.slots).into_par_iter().map(state).collect(),
        );
        OutputChecks { digest, states }
    }

    /// The keyless state of slot `slot` (`Damaged` for a slot the layout does not have).
    pub fn state(&self, slot: u32) -> SlotState {
        self.states
            .get(slot as usize)
            .copied()
            .unwrap_or(SlotState::Damaged)
    }
}

/// The keyless check of slot `slot` of `round`.
pub fn slot_state(round: u64, slot: u32, bytes: &[u8]) -> SlotState {
    if bytes.iter().all(|&b| b == 0) {
        return SlotState::Empty;
    }
    if bytes.len() < SLOT_HASH {
        return SlotState::Damaged;
    }
    let (body, h) = bytes.split_at(bytes.len() - SLOT_HASH);
    if crate::crypto::ct_eq(&slot_hash(round, slot, body), h) {
        SlotState::Intact
    } else {
        SlotState::Damaged
    }
}

/// What a slot of a completed round holds, read with the slot key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotContent {
    /// All zero.
    Empty,
    /// An intact fragment.
    Fragment(Fragment),
    /// An intact trap.
    Trap,
    /// Non-zero and failing its hash (hit by a jammer, or a collision's leftovers), or intact
    /// but not a fragment or trap under our key (written under another key, or garbage with a
    /// correct hash).
    Damaged,
}

/// Parses slot `slot` of `round` with its slot key.
pub fn parse_slot(
    layout: &Layout,
    round: u64,
    slot: u32,
    bytes: &[u8],
    key: &StreamKey,
) -> SlotContent {
    match slot_state(round, slot, bytes) {
        SlotState::Empty => SlotContent::Empty,
        SlotState::Damaged => SlotContent::Damaged,
        SlotState::Intact => read_intact(layout, round, bytes, key),
    }
}

/// Reads a slot whose keyless state is already known to be [`SlotState::Intact`] (from
/// [`OutputChecks`]) with its slot key; [`parse_slot`] is this after the check.
pub fn read_intact(layout: &Layout, round: u64, bytes: &[u8], key: &StreamKey) -> SlotContent {
    if bytes.len() < SLOT_HASH {
        return SlotContent::Damaged;
    }
    let mut body = zeroize::Zeroizing::new(bytes[..bytes.len() - SLOT_HASH].to_vec());
    if body.len() < 31 {
        return SlotContent::Damaged;
    }
    Keystream::new().xor_into(key, round, 0, &mut body);
    match body[0] {
        KIND_TRAP => SlotContent::Trap,
        KIND_FRAGMENT => {
            let msg_id: [u8; 8] = body[1..9].try_into().unwrap_or([0; 8]);
            let digest: [u8; 16] = body[9..25].try_into().unwrap_or([0; 16]);
            let index = u16::from_le_bytes([body[25], body[26]]);
            let count = u16::from_le_bytes([body[27], body[28]]);
            let len = u16::from_le_bytes([body[29], body[30]]) as usize;
            if len > layout.capacity() || 31 + len > body.len() || count == 0 || index >= count {
                return SlotContent::Damaged;
            }
            SlotContent::Fragment(Fragment {
                msg_id,
                digest,
                index,
                count,
                payload: body[31..31 + len].to_vec(),
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
    let digest = message_digest(&msg_id, msg);
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| Fragment {
            msg_id,
            digest,
            index: i as u16,
            count,
            payload: c.to_vec(),
        })
        .collect()
}

/// Candidates kept per fragment index: the first payload seen and at most this many others
/// (a splicer's fragment arriving first cannot push the real one out).
pub const MAX_CANDIDATES: usize = 3;
/// Most candidate combinations tried when a message completes.
const MAX_COMBINATIONS: usize = 64;

/// Fragments received so far for one message: (fragment count, index → candidate payloads,
/// whether a failed completion was already reported).
type Partial = (u16, BTreeMap<u16, Vec<Vec<u8>>>, bool);

/// What [`Reassembly::add`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// Nothing complete yet.
    Pending,
    /// A message whose fragments match its digest.
    Message(Vec<u8>),
    /// Every fragment index is present but no combination of the candidates matches the
    /// message digest: fragments were spliced in (or forged). Nothing is delivered.
    Spliced {
        /// The message id.
        msg_id: [u8; 8],
    },
}

/// Reassembles fragments into messages; each message is returned once, and only if it
/// matches the digest every fragment carries.
///
/// Memory is bounded: at most `max_partial` incomplete messages (the oldest is dropped when
/// full), [`MAX_CANDIDATES`] payloads per fragment index, and a window of `max_done`
/// delivered ids for de-duplication. Messages are keyed by (id, digest), so fragments that
/// copy an id but not the digest never mix with the real ones.
pub struct Reassembly {
    partial: BTreeMap<([u8; 8], [u8; 16]), Partial>,
    order: VecDeque<([u8; 8], [u8; 16])>,
    done: BTreeSet<([u8; 8], [u8; 16])>,
    done_order: VecDeque<([u8; 8], [u8; 16])>,
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

    /// Adds a fragment; returns the message if it is now complete and intact.
    pub fn add(&mut self, f: Fragment) -> Reassembled {
        let key = (f.msg_id, f.digest);
        if self.done.contains(&key) || f.count > self.max_fragments {
            return Reassembled::Pending;
        }
        if !self.partial.contains_key(&key) {
            if self.partial.len() >= self.max_partial {
                if let Some(old) = self.order.pop_front() {
                    self.partial.remove(&old);
                }
            }
            self.order.push_back(key);
            self.partial.insert(key, (f.count, BTreeMap::new(), false));
        }
        let Some(entry) = self.partial.get_mut(&key) else {
            return Reassembled::Pending;
        };
        if entry.0 != f.count {
            return Reassembled::Pending;
        }
        let cands = entry.1.entry(f.index).or_default();
        if cands.contains(&f.payload) || cands.len() > MAX_CANDIDATES {
            return Reassembled::Pending;
        }
        cands.push(f.payload);
        if entry.1.len() < entry.0 as usize {
            return Reassembled::Pending;
        }
        // Try the combinations, the first-seen candidates first.
        let lists: Vec<&Vec<Vec<u8>>> = entry.1.values().collect();
        let mut pick = vec![0usize; lists.len()];
        let mut found = None;
        for _ in 0..MAX_COMBINATIONS {
            let msg: Vec<u8> = lists
                .iter()
                .zip(&pick)
                .flat_map(|(c, &k)| c[k].iter().copied())
                .collect();
            if crate::crypto::ct_eq(&message_digest(&key.0, &msg), &key.1) {
                found = Some(msg);
                break;
            }
            // Next combination (odometer); stop when all are tried.
            let mut i = 0;
            loop {
                if i == pick.len() {
                    break;
                }
                pick[i] += 1;
                if pick[i] < lists[i].len() {
                    break;
                }
                pick[i] = 0;
                i += 1;
            }
            if i == pick.len() {
                break;
            }
        }
        let Some(msg) = found else {
            // Keep waiting for another candidate only while there is room for one.
            let first = !entry.2;
            entry.2 = true;
            return if first {
                Reassembled::Spliced { msg_id: key.0 }
            } else {
                Reassembled::Pending
            };
        };
        self.partial.remove(&key);
        self.order.retain(|k| *k != key);
        self.done.insert(key);
        self.done_order.push_back(key);
        if self.done_order.len() > self.max_done {
            if let Some(old) = self.done_order.pop_front() {
                self.done.remove(&old);
            }
        }
        Reassembled::Message(msg)
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
            digest: [7; 16],
            index: 0,
            count: 2,
            payload: b"hello".to_vec(),
        };
        let k = StreamKey::from_bytes([3; 32]);
        let s = frame_fragment(&l, 9, 1, &f, &k);
        assert_eq!(s.len(), 100);
        assert_eq!(
            parse_slot(&l, 9, 1, &s, &k),
            SlotContent::Fragment(f.clone())
        );
        assert_eq!(slot_state(9, 1, &s), SlotState::Intact);
        assert_eq!(
            parse_slot(&l, 9, 2, &s, &k),
            SlotContent::Damaged,
            "slot bound"
        );
        assert_eq!(
            parse_slot(&l, 10, 1, &s, &k),
            SlotContent::Damaged,
            "round bound"
        );
        for i in 0..s.len() {
            let mut d = s.clone();
            d[i] ^= 0x40;
            assert_eq!(parse_slot(&l, 9, 1, &d, &k), SlotContent::Damaged);
            assert_eq!(slot_state(9, 1, &d), SlotState::Damaged);
        }
        // Another key reads no fragment out of it, and the plaintext framing is not visible.
        let other = StreamKey::from_bytes([4; 32]);
        assert_ne!(
            parse_slot(&l, 9, 1, &s, &other),
            SlotContent::Fragment(f.clone())
        );
        let plain_prefix = [&[KIND_FRAGMENT][..], &f.msg_id[..]].concat();
        assert_ne!(&s[..9], &plain_prefix[..]);
        let t = trap_slot(&l, 9, 1, &[5; 32], &k);
        assert_eq!(parse_slot(&l, 9, 1, &t, &k), SlotContent::Trap);
        assert_eq!(slot_state(9, 1, &t), SlotState::Intact);
        assert_eq!(parse_slot(&l, 9, 1, &[0; 100], &k), SlotContent::Empty);
        assert_eq!(slot_state(9, 1, &[0; 100]), SlotState::Empty);
    }

    #[test]
    fn fragments_reassemble_once_in_any_order() {
        let msg: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let frags = fragment(&msg, 53, [2; 8]);
        assert_eq!(frags.len(), 19);
        let mut r = Reassembly::new(4, 16, 100);
        let mut out = Reassembled::Pending;
        for f in frags.iter().rev() {
            assert_eq!(out, Reassembled::Pending);
            out = r.add(f.clone());
        }
        assert_eq!(out, Reassembled::Message(msg));
        assert_eq!(
            r.add(frags[0].clone()),
            Reassembled::Pending,
            "delivered once"
        );
        assert_eq!(fragment(b"", 53, [3; 8]).len(), 1);
    }

    #[test]
    fn allocation_orders_nonzero_cells_and_detects_overflow() {
        let l = layout();
        let mut v = vec![0u8; l.len()];
        v[l.cell(1)].copy_from_slice(&[1; 8]);
        v[l.cell(3)].copy_from_slice(&[2; 8]);
        let a = Allocation::from_output(&l, 5, &v, 3);
        assert!(!a.overflow);
        assert!(!a.cell_check);
        assert_eq!(a.by_cell.len(), 2);
        assert_eq!(a.slots(), [0, 1].into_iter().collect());
        for c in 0..4 {
            v[l.cell(c)].copy_from_slice(&[3; 8]);
        }
        let a = Allocation::from_output(&l, 5, &v, 3);
        assert!(
            a.overflow && a.cell_check,
            "4 non-zero cells, 3 slots, 3 present"
        );
        // More non-zero cells than present members voids the allocation even with room.
        v[l.cell(0)].copy_from_slice(&[0; 8]);
        let a = Allocation::from_output(&l, 5, &v, 2);
        assert!(a.overflow && a.cell_check && a.by_cell.is_empty());
    }

    #[test]
    fn spliced_fragment_is_detected_and_the_real_one_still_delivered() {
        // Finding 7 (issue 8): another slot owner copies msg_id and digest from fragment 0 and
        // writes its own fragment 1 first.
        let msg = b"transfer 10 to alice, today".to_vec();
        let frags = fragment(&msg, 16, [9; 8]);
        assert_eq!(frags.len(), 2);
        let mut forged = frags[1].clone();
        forged.payload = b"o mallory!!".to_vec();
        let mut r = Reassembly::new(4, 16, 100);
        assert_eq!(r.add(frags[0].clone()), Reassembled::Pending);
        assert_eq!(
            r.add(forged.clone()),
            Reassembled::Spliced { msg_id: [9; 8] },
            "the forged completion is detected, never delivered"
        );
        assert_eq!(r.add(frags[1].clone()), Reassembled::Message(msg));
        // A forgery alone never delivers anything.
        let mut r = Reassembly::new(4, 16, 100);
        assert_eq!(r.add(frags[0].clone()), Reassembled::Pending);
        assert_eq!(
            r.add(forged.clone()),
            Reassembled::Spliced { msg_id: [9; 8] }
        );
        assert_eq!(r.add(forged), Reassembled::Pending, "reported once");
    }
}
