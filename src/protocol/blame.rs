//! Blame: the damaged list D, accusations, disclosure checks and the verdict.
//!
//! Everything here is a pure function of signed messages, so members, the relay and
//! `dcnet verify-evidence` reach the same verdict from the same [`Case`]. A verdict convicts only
//! on contradicting signed statements; silence makes a member *unresponsive*, never guilty
//! (docs/PROTOCOL.md §11).

use super::slots::{self, Allocation, Layout, OutputChecks, SlotState};
use crate::crypto::dleq::DleqProof;
use crate::crypto::keys::{self, EpochPublic};
use crate::crypto::pad::{Keystream, StreamKey, keystream};
use crate::crypto::{Hash, dleq, hash, merkle};
use crate::params::{Group, GroupData};
use crate::wire::{
    self, Accuse, BlameStart, Commit, Disclose, DisclosureSet, EpochKeys, Open, Record, RevealSet,
    Sender, Signed, ZSet,
};
use bincode::{Decode, Encode};
use std::collections::{BTreeMap, BTreeSet};

/// Tag for the order of D.
pub const DAMAGE_ORDER: &str = "dcnet/v1/damage-order";
/// Tag of the DLEQ context of an accusation.
pub const ACCUSE_CONTEXT: &str = "dcnet/v1/accuse";
/// Tag of the DLEQ context of a key reveal.
pub const REVEAL_CONTEXT: &str = "dcnet/v1/pair-reveal";
/// Tag for the order in which the cells of a cell check are chosen.
pub const CELL_CHECK_ORDER: &str = "dcnet/v1/cell-check-order";
/// Most cells one cell check examines (one byte each): enough that a jammer filling empty
/// cells is caught at once, small enough that a disclosure stays O(N) bytes.
pub const CELL_CHECK_MAX: usize = 16;
/// Most positions a BlameStart may name: the accused byte, the zero byte and the checked cells.
pub const MAX_POSITIONS: usize = 2 + CELL_CHECK_MAX;
/// Magic prefix of an evidence file.
pub const EVIDENCE_MAGIC: &[u8; 8] = b"dcnetEv1";

/// DLEQ context of an accusation: `H("dcnet/v1/accuse"; group_id, u64le epoch, u64le alloc_round,
/// u32le accuser)`.
pub fn accuse_context(group_id: &Hash, epoch: u64, alloc_round: u64, accuser: u32) -> Hash {
    hash(
        ACCUSE_CONTEXT,
        &[
            group_id,
            &epoch.to_le_bytes(),
            &alloc_round.to_le_bytes(),
            &accuser.to_le_bytes(),
        ],
    )
}

/// DLEQ context of a key reveal by `i` about pair (i, j):
/// `H("dcnet/v1/pair-reveal"; group_id, u64le epoch, u32le i, u32le j)`.
pub fn reveal_context(group_id: &Hash, epoch: u64, i: u32, j: u32) -> Hash {
    hash(
        REVEAL_CONTEXT,
        &[
            group_id,
            &epoch.to_le_bytes(),
            &i.to_le_bytes(),
            &j.to_le_bytes(),
        ],
    )
}

/// One item of D.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Slot index.
    pub slot: u32,
    /// Whether the slot was allocated in this attempt.
    pub allocated: bool,
}

/// D: allocated slots that are non-zero and fail their hash, and unallocated slots with any
/// non-zero byte, ordered by `H("dcnet/v1/damage-order"; output_digest, u32le slot)`.
pub fn damaged(
    layout: &Layout,
    round: u64,
    clear: &[u8],
    allocated: &BTreeSet<u32>,
) -> Vec<Damage> {
    damaged_checked(
        layout,
        &OutputChecks::new(layout, round, clear),
        clear,
        allocated,
    )
}

/// [`damaged`] from the round's [`OutputChecks`] (output digest and slot states computed once).
pub fn damaged_checked(
    layout: &Layout,
    checks: &OutputChecks,
    clear: &[u8],
    allocated: &BTreeSet<u32>,
) -> Vec<Damage> {
    let mut d: Vec<(Hash, Damage)> = (0..layout.slots)
        .filter_map(|s| {
            let alloc = allocated.contains(&s);
            let bad = if alloc {
                checks.state(s) == SlotState::Damaged
            } else {
                clear
                    .get(layout.slot(s))
                    .is_none_or(|bytes| bytes.iter().any(|&b| b != 0))
            };
            bad.then(|| {
                (
                    hash(DAMAGE_ORDER, &[&checks.digest, &s.to_le_bytes()]),
                    Damage {
                        slot: s,
                        allocated: alloc,
                    },
                )
            })
        })
        .collect();
    d.sort_by_key(|x| x.0);
    d.into_iter().map(|(_, x)| x).collect()
}

/// Position of the first non-zero byte of slot `s`.
pub fn first_nonzero(layout: &Layout, clear: &[u8], s: u32) -> Option<u64> {
    let r = layout.slot(s);
    clear[r.clone()]
        .iter()
        .position(|&b| b != 0)
        .map(|p| (r.start + p) as u64)
}

/// Position of the first byte of slot `s` where the output differs from the trap content (the
/// trap of `gamma`, encrypted under the accuser's disclosed slot key).
pub fn first_trap_difference(
    layout: &Layout,
    round: u64,
    s: u32,
    gamma: &[u8; 32],
    slot_key: &[u8; 32],
    clear: &[u8],
) -> Option<u64> {
    let r = layout.slot(s);
    let trap = slots::trap_slot(layout, round, s, gamma, &StreamKey::from_bytes(*slot_key));
    clear[r.clone()]
        .iter()
        .zip(&trap)
        .position(|(a, b)| a != b)
        .map(|p| (r.start + p) as u64)
}

/// A self-contained blame case: everything needed to recompute the verdict offline.
#[derive(Clone, Debug, PartialEq, Encode, Decode)]
pub struct Case {
    /// Roster and parameters.
    pub group: GroupData,
    /// The epoch's keys (relay-signed, each key member-signed).
    pub epoch_keys: Signed<EpochKeys>,
    /// The Record of the blamed round.
    pub record: Option<Signed<Record>>,
    /// Its ZSet.
    pub zset: Option<Signed<ZSet>>,
    /// Record and ZSet of the round whose cells allocated the blamed round's slots.
    pub alloc: Option<(Signed<Record>, Signed<ZSet>)>,
    /// The disclosure: start, disclosures, silent members.
    pub disclosure: Option<Signed<DisclosureSet>>,
    /// The BlameStart alone (when it was judged before any disclosure).
    pub start: Option<Signed<BlameStart>>,
    /// Key reveals settling pad disputes.
    pub reveals: Option<Signed<RevealSet>>,
    /// Two different commitments by one member for one round.
    pub equivocation: Option<(Signed<Commit>, Signed<Commit>)>,
}

impl Case {
    /// The case of a completed round, before any blame message.
    pub fn of_round(
        group: GroupData,
        epoch_keys: Signed<EpochKeys>,
        record: Signed<Record>,
        zset: Signed<ZSet>,
        alloc: Option<(Signed<Record>, Signed<ZSet>)>,
    ) -> Case {
        Case {
            record: Some(record),
            zset: Some(zset),
            alloc,
            ..Case::empty(group, epoch_keys)
        }
    }

    /// A case holding only the group and the epoch's keys (fill in what it is about).
    pub fn empty(group: GroupData, epoch_keys: Signed<EpochKeys>) -> Case {
        Case {
            group,
            epoch_keys,
            record: None,
            zset: None,
            alloc: None,
            disclosure: None,
            start: None,
            reveals: None,
            equivocation: None,
        }
    }

    /// The case of two different commitments by one member for one round.
    pub fn of_equivocation(
        group: GroupData,
        epoch_keys: Signed<EpochKeys>,
        commits: (Signed<Commit>, Signed<Commit>),
    ) -> Case {
        Case {
            equivocation: Some(commits),
            ..Case::empty(group, epoch_keys)
        }
    }
}

/// Who is convicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Encode, Decode)]
pub enum Culprit {
    /// The member with this index.
    Member(u32),
    /// The relay.
    Relay,
}

/// The rule broken (or why nobody is convicted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[non_exhaustive]
pub enum Rule {
    /// A member signed two different commitments for one round.
    MemberEquivocation,
    /// The relay signed two different Opens for one round.
    RelayEquivocation,
    /// An accusation that the output contradicts.
    FalseAccusation,
    /// The relay's BlameStart names positions other than D prescribes.
    BadBlameStart,
    /// A disclosed chunk does not match the member's own commitment, or a disclosure is
    /// malformed.
    BadDisclosure,
    /// A disclosed pad byte contradicts the pair's DLEQ-proven Diffie–Hellman value.
    PadLie,
    /// A member's committed ciphertext byte is not its pads ⊕ blinding ⊕ what it may write.
    CiphertextMismatch,
    /// Every member's bytes check out but the Record's XOR does not.
    RecordMismatch,
    /// In a cell check, a member wrote into a cell other than the one its footprint proves.
    GarbageCell,
    /// No conviction: some members were silent or a dispute stayed unresolved.
    Unresolved,
    /// No conviction and nothing unresolved.
    NoFault,
}

impl Rule {
    /// Stable name used in evidence output.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::MemberEquivocation => "member-equivocation",
            Rule::RelayEquivocation => "relay-equivocation",
            Rule::FalseAccusation => "false-accusation",
            Rule::BadBlameStart => "bad-blame-start",
            Rule::BadDisclosure => "bad-disclosure",
            Rule::PadLie => "pad-lie",
            Rule::CiphertextMismatch => "ciphertext-mismatch",
            Rule::RecordMismatch => "record-mismatch",
            Rule::GarbageCell => "garbage-cell",
            Rule::Unresolved => "unresolved",
            Rule::NoFault => "no-fault",
        }
    }
}

/// The outcome of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Round judged.
    pub round: u64,
    /// Who is convicted, if anyone.
    pub culprit: Option<Culprit>,
    /// Rule broken.
    pub rule: Rule,
    /// Members to exclude as unresponsive (silent, or party to an unresolved dispute).
    pub unresponsive: Vec<u32>,
}

/// Why a case cannot be judged at all (a bundle that is not evidence).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The roster or parameters are invalid.
    #[error("invalid group: {0}")]
    Group(String),
    /// A signature does not verify.
    #[error("bad signature: {0}")]
    Signature(&'static str),
    /// Messages that do not belong together.
    #[error("inconsistent case: {0}")]
    Inconsistent(&'static str),
    /// The case holds nothing to judge.
    #[error("nothing to judge")]
    Empty,
    /// Not an evidence file.
    #[error("not an evidence bundle: {0}")]
    Format(String),
}

type EResult<T> = Result<T, EvidenceError>;

fn need<T>(v: Option<T>, what: &'static str) -> EResult<T> {
    v.ok_or(EvidenceError::Inconsistent(what))
}

/// Public context of a completed round, checked: group, keys, Record, seeds, cleartext,
/// allocation and D.
pub struct RoundView {
    /// The group.
    pub group: Group,
    /// Epoch.
    pub epoch: u64,
    /// Epoch keys by member.
    pub keys: BTreeMap<u32, EpochPublic>,
    /// Round.
    pub round: u64,
    /// The Open.
    pub open: Signed<Open>,
    /// `view_r`.
    pub view: Hash,
    /// Commitments by member.
    pub commits: BTreeMap<u32, Signed<Commit>>,
    /// Seeds by member.
    pub seeds: BTreeMap<u32, [u8; 32]>,
    /// The Record's XOR.
    pub xor: Vec<u8>,
    /// The cleartext.
    pub clear: Vec<u8>,
    /// The allocation used (cell → slot), with the allocating round and its cleartext.
    pub alloc: Option<(u64, Allocation, Vec<u8>)>,
    /// D.
    pub damage: Vec<Damage>,
    /// Digest of the Record.
    pub record_digest: Hash,
    /// Cells examined by this round's cell check (empty unless more cells are non-zero than
    /// members were present), ascending.
    pub checked_cells: Vec<u32>,
}

fn check_keys(group: &Group, ek: &Signed<EpochKeys>) -> EResult<BTreeMap<u32, EpochPublic>> {
    if !ek.verify(group.relay_key()) {
        return Err(EvidenceError::Signature("EpochKeys"));
    }
    if ek.body.keys.len() > group.size() {
        return Err(EvidenceError::Inconsistent("more epoch keys than members"));
    }
    let mut keys = BTreeMap::new();
    for k in &ek.body.keys {
        let Sender::Member(i) = k.header.sender else {
            return Err(EvidenceError::Inconsistent("epoch key not from a member"));
        };
        let pk = need(group.member_key(i), "epoch key from outside the roster")?;
        if keys.contains_key(&i) || k.body.key.point().is_none() {
            return Err(EvidenceError::Inconsistent(
                "duplicate or invalid epoch key",
            ));
        }
        if !k.verify(pk)
            || k.header.epoch != ek.header.epoch
            || k.header.group_id != *group.id()
            || k.header.round != 0
        {
            return Err(EvidenceError::Signature("EpochKey"));
        }
        keys.insert(i, k.body.key);
    }
    Ok(keys)
}

/// Commitments and seeds by member, and the cleartext, of a checked round.
type Unblinded = (
    BTreeMap<u32, Signed<Commit>>,
    BTreeMap<u32, [u8; 32]>,
    Vec<u8>,
);

fn cleartext(record: &Signed<Record>, zset: &Signed<ZSet>, group: &Group) -> EResult<Unblinded> {
    let relay = group.relay_key();
    if !record.verify(relay) || !record.body.commit_set.verify(relay) {
        return Err(EvidenceError::Signature("Record"));
    }
    if !zset.verify(relay) || zset.body.record != record.digest() {
        return Err(EvidenceError::Signature("ZSet"));
    }
    let round = record.header.round;
    let cs = &record.body.commit_set;
    if cs.header.round != round || cs.header.epoch != record.header.epoch {
        return Err(EvidenceError::Inconsistent("CommitSet of another round"));
    }
    if cs.body.commits.len() > group.size() {
        return Err(EvidenceError::Inconsistent("more commitments than members"));
    }
    let mut commits = BTreeMap::new();
    for c in &cs.body.commits {
        let Sender::Member(i) = c.header.sender else {
            return Err(EvidenceError::Inconsistent("commitment not from a member"));
        };
        let pk = need(group.member_key(i), "commitment from outside the roster")?;
        if commits.contains_key(&i) {
            return Err(EvidenceError::Inconsistent(
                "two commitments from one member",
            ));
        }
        if !c.verify(pk)
            || c.header.round != round
            || c.header.epoch != record.header.epoch
            || c.header.group_id != *group.id()
        {
            return Err(EvidenceError::Signature("Commit"));
        }
        commits.insert(i, c.clone());
    }
    let seeds: BTreeMap<u32, [u8; 32]> = zset.body.seeds.iter().copied().collect();
    if !zset.body.missing.is_empty() || seeds.len() != commits.len() {
        return Err(EvidenceError::Inconsistent("round was not unblinded"));
    }
    let mut clear = record.body.xor.clone();
    if clear.len() != group.params().vector_len() {
        return Err(EvidenceError::Inconsistent("Record of the wrong length"));
    }
    let mut ks = Keystream::new();
    for (i, z) in &seeds {
        let c = need(commits.get(i), "seed without commitment")?;
        let z = StreamKey::from_bytes(*z);
        if keys::blind_commitment(&z) != c.body.blinding {
            return Err(EvidenceError::Inconsistent(
                "seed does not match commitment",
            ));
        }
        ks.xor_into(&z, round, 0, &mut clear);
    }
    Ok((commits, seeds, clear))
}

impl RoundView {
    /// Checks and computes the public view of the case's round.
    pub fn new(case: &Case) -> EResult<RoundView> {
        let group =
            Group::from_data(&case.group).map_err(|e| EvidenceError::Group(e.to_string()))?;
        let keys = check_keys(&group, &case.epoch_keys)?;
        let epoch = case.epoch_keys.header.epoch;
        let record = need(case.record.as_ref(), "no Record")?;
        let zset = need(case.zset.as_ref(), "no ZSet")?;
        if record.header.epoch != epoch || record.header.group_id != *group.id() {
            return Err(EvidenceError::Inconsistent(
                "Record of another epoch or group",
            ));
        }
        let (commits, seeds, clear) = cleartext(record, zset, &group)?;
        let round = record.header.round;
        let open = need(record.body.opens.first(), "Record without an Open")?.clone();
        if !open.verify(group.relay_key()) || open.header.round != round {
            return Err(EvidenceError::Signature("Open"));
        }
        if open.header.epoch != epoch
            || !commits
                .keys()
                .copied()
                .eq(open.body.present.iter().copied())
            || !commits.values().all(|c| c.body.open == open.digest())
        {
            return Err(EvidenceError::Inconsistent(
                "commitments do not match the Open's present set",
            ));
        }
        // Every member of P has its key in the case: the EpochKeys wrapper is the relay's own
        // message, and leaving a member's key out would make its proofs fail (attack review 4,
        // finding A: a bundle convicting an honest accuser).
        if !open.body.present.iter().all(|i| keys.contains_key(i)) {
            return Err(EvidenceError::Inconsistent(
                "the epoch keys leave out a member of the round",
            ));
        }
        let view = keys::view_step(&open.body.view_prev, round, &open.digest());
        let layout = Layout::new(group.params());
        let alloc = match (open.body.alloc, &case.alloc) {
            (None, _) => None,
            (Some((ar, ah)), Some((arec, azs))) => {
                if arec.digest() != ah || arec.header.round != ar || arec.header.epoch != epoch {
                    return Err(EvidenceError::Inconsistent("allocation evidence mismatch"));
                }
                let (acommits, _, aclear) = cleartext(arec, azs, &group)?;
                let a = Allocation::from_output(&layout, ar, &aclear, acommits.len());
                if a.overflow {
                    return Err(EvidenceError::Inconsistent("allocation source is void"));
                }
                Some((ar, a, aclear))
            }
            (Some(_), None) => {
                return Err(EvidenceError::Inconsistent("allocation evidence missing"));
            }
        };
        let allocated = alloc
            .as_ref()
            .map(|(_, a, _)| a.slots())
            .unwrap_or_default();
        let damage = damaged(&layout, round, &clear, &allocated);
        let own = Allocation::from_output(&layout, round, &clear, commits.len());
        let checked_cells = if own.cell_check {
            let out = slots::output_digest(round, &clear);
            let mut order: Vec<(Hash, u32)> = own
                .nonzero
                .iter()
                .map(|&c| (hash(CELL_CHECK_ORDER, &[&out, &c.to_le_bytes()]), c))
                .collect();
            order.sort();
            let mut cells: Vec<u32> = order
                .into_iter()
                .take(CELL_CHECK_MAX)
                .map(|(_, c)| c)
                .collect();
            cells.sort();
            cells
        } else {
            Vec::new()
        };
        Ok(RoundView {
            checked_cells,
            record_digest: record.digest(),
            xor: record.body.xor.clone(),
            group,
            epoch,
            keys,
            round,
            open,
            view,
            commits,
            seeds,
            clear,
            alloc,
            damage,
        })
    }

    /// Layout of the round vector.
    pub fn layout(&self) -> Layout {
        Layout::new(self.group.params())
    }

    /// Checks an accusation; `Some((slot, first differing position))` if valid.
    pub fn check_accusation(&self, a: &Signed<Accuse>) -> Option<(u32, u64)> {
        let Sender::Member(i) = a.header.sender else {
            return None;
        };
        let b = &a.body;
        let (ar, alloc, aclear) = self.alloc.as_ref()?;
        let d0 = self.damage.first()?;
        let layout = self.layout();
        let ok = a.header.round == self.round
            && b.record == self.record_digest
            && d0.allocated
            && d0.slot == b.slot
            && *ar == b.alloc_round
            && alloc.by_cell.get(&b.cell) == Some(&b.slot)
            && b.cell < layout.cells
            && aclear[layout.cell(b.cell)] == keys::footprint(&b.gamma)
            && self.footprint_proven(i, *ar, &b.gamma, &b.proof);
        if !ok {
            return None;
        }
        let x = first_trap_difference(
            &layout,
            self.round,
            b.slot,
            &b.gamma,
            &b.slot_key,
            &self.clear,
        )?;
        Some((b.slot, x))
    }

    /// Whether `proof` shows that `gamma` is member `i`'s VRF output `Γ_{i,round}` (the DLEQ of
    /// an accusation or a cell claim, context [`accuse_context`]).
    pub fn footprint_proven(
        &self,
        i: u32,
        round: u64,
        gamma: &[u8; 32],
        proof: &DleqProof,
    ) -> bool {
        self.keys.get(&i).is_some_and(|e| {
            dleq::verify_vartime(
                &e.0,
                &keys::footprint_base(self.group.id(), self.epoch, round),
                gamma,
                proof,
                &accuse_context(self.group.id(), self.epoch, round, i),
            )
        })
    }

    /// The first unallocated item of D, blamed against zero: its first non-zero byte.
    pub fn zero_position(&self) -> Option<u64> {
        let d = self.damage.iter().find(|d| !d.allocated)?;
        first_nonzero(&self.layout(), &self.clear, d.slot)
    }

    /// Positions a BlameStart must name, given its accusation (checked before): the accused
    /// byte, the first non-zero byte of D's first unallocated item, and the first non-zero byte
    /// of every checked cell; ascending, without duplicates.
    pub fn positions(&self, accused: Option<u64>) -> Vec<u64> {
        let layout = self.layout();
        let mut p: BTreeSet<u64> = accused.into_iter().collect();
        p.extend(self.zero_position());
        for &c in &self.checked_cells {
            let r = layout.cell(c);
            if let Some(k) = self.clear[r.clone()].iter().position(|&b| b != 0) {
                p.insert((r.start + k) as u64);
            }
        }
        debug_assert!(p.len() <= MAX_POSITIONS);
        p.into_iter().collect()
    }

    /// The cell whose byte `x` is, if `x` lies in a checked cell.
    fn checked_cell_at(&self, x: u64) -> Option<u32> {
        let c = u32::try_from(x / 8).ok()?;
        (x < u64::from(self.layout().cells) * 8 && self.checked_cells.contains(&c)).then_some(c)
    }

    /// The true pad byte of pair (i, j) at `x`, from `K_ij`.
    pub fn pad_byte(&self, i: u32, j: u32, shared: &[u8; 32], x: u64) -> Option<u8> {
        let (ei, ej) = (self.keys.get(&i)?, self.keys.get(&j)?);
        let s = keys::pair_secret(self.group.id(), self.epoch, (i, ei), (j, ej), shared);
        let k = keys::pad_key(&s, &keys::pad_nonce(self.round, &self.view));
        Some(keystream(&k, self.round, x, 1)[0])
    }

    fn blind_byte(&self, i: u32, x: u64) -> Option<u8> {
        let z = StreamKey::from_bytes(*self.seeds.get(&i)?);
        Some(keystream(&z, self.round, x, 1)[0])
    }
}

/// Pairs `(i, j)`, `i < j`, that disclosed different pad bytes at some position.
///
/// # Security
/// This reads the set as given, so it is private: [`judge_inner`] calls it only after every
/// disclosure was checked, and hands the result out as [`Disputes`]. A member acting on raw
/// sets could be made to reveal pair keys by forged, unsigned disclosures.
fn disputes(set: &DisclosureSet) -> BTreeSet<(u32, u32)> {
    let mut claimed: BTreeMap<(u32, u32, u64), u8> = BTreeMap::new();
    for d in &set.disclosures {
        let Sender::Member(i) = d.header.sender else {
            continue;
        };
        for b in &d.body.bytes {
            for &(j, p) in &b.pads {
                claimed.insert((i, j, b.position), p);
            }
        }
    }
    let mut out = BTreeSet::new();
    for (&(i, j, x), &p) in &claimed {
        if let Some(&q) = claimed.get(&(j, i, x)) {
            if p != q {
                out.insert((i.min(j), i.max(j)));
            }
        }
    }
    out
}

fn convict(round: u64, who: Culprit, rule: Rule, unresponsive: Vec<u32>) -> Verdict {
    Verdict {
        round,
        culprit: Some(who),
        rule,
        unresponsive,
    }
}

/// Proof token: a BlameStart that this party checked against its own copy of the round (the
/// accusation's signature, the accuser's footprint, and every position recomputed from the
/// Record and seeds). Only [`assess`] creates one, and a member discloses only with one, so
/// disclosing at positions the relay chose does not compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedStart {
    round: u64,
    digest: Hash,
    positions: Vec<u64>,
    accused: Option<(u32, u32)>,
    cell_check: bool,
}

impl CheckedStart {
    /// The round blamed.
    pub fn round(&self) -> u64 {
        self.round
    }
    /// Digest of the BlameStart (what a disclosure answers).
    pub fn digest(&self) -> Hash {
        self.digest
    }
    /// The positions, as recomputed (equal to the BlameStart's).
    pub fn positions(&self) -> &[u64] {
        &self.positions
    }
    /// `(accuser, slot)` of the checked accusation, if any.
    pub fn accused(&self) -> Option<(u32, u32)> {
        self.accused
    }
    /// Whether the round's cells are checked (its allocation is void), so a discloser names
    /// the cell it wrote.
    pub fn cell_check(&self) -> bool {
        self.cell_check
    }
}

/// Proof token: pad disputes found among disclosures whose signatures, case and senders this
/// party checked. Only [`assess`] creates one; revealing a pair key requires it, and only for
/// a pair in it — a pair whose other member signed a contradicting pad byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disputes {
    set_digest: Hash,
    pairs: BTreeSet<(u32, u32)>,
}

impl Disputes {
    /// Digest of the DisclosureSet the disputes come from.
    pub fn set_digest(&self) -> Hash {
        self.set_digest
    }
    /// The members `me` is in dispute with.
    pub fn against(&self, me: u32) -> Vec<u32> {
        self.pairs
            .iter()
            .filter_map(|&(i, j)| match (i == me, j == me) {
                (true, _) => Some(j),
                (_, true) => Some(i),
                _ => None,
            })
            .collect()
    }
    /// All disputed pairs, `i < j`.
    pub fn pairs(&self) -> &BTreeSet<(u32, u32)> {
        &self.pairs
    }
}

/// Where a live case stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Assessment {
    /// The case is decided.
    Verdict(Verdict),
    /// The BlameStart checks out: disclose at its positions.
    Disclose(CheckedStart),
    /// The disclosures check out but some pairs disagree: those pairs reveal their keys.
    RevealKeys(Disputes),
}

/// Whether a verdict is news: not a case closed with nothing to check (damage only to slots
/// whose owners did not accuse). Members and the relay report only these.
pub fn notable(verdict: &Verdict, case: &Case) -> bool {
    verdict.rule != Rule::NoFault || case.disclosure.is_some()
}

/// Judges a case. Deterministic: every honest party computes the same verdict from the same
/// case. Errors mean the bundle is not evidence of anything. Pad disputes without key
/// reveals leave both parties unresponsive.
pub fn judge(case: &Case) -> EResult<Verdict> {
    match judge_inner(case, false)? {
        Assessment::Verdict(v) => Ok(v),
        _ => Err(EvidenceError::Empty),
    }
}

/// Assesses a live case: like [`judge`], but says what is still to be done (disclose, reveal
/// keys) instead of judging an incomplete case. Every error means "refuse": do nothing.
pub fn assess(case: &Case) -> EResult<Assessment> {
    judge_inner(case, true)
}

fn judge_inner(case: &Case, live: bool) -> EResult<Assessment> {
    let done = |v: Verdict| Ok(Assessment::Verdict(v));
    // Every signed message in the bundle must verify, whatever the path below uses, so that no
    // byte of a bundle is outside a signature's reach.
    let group = Group::from_data(&case.group).map_err(|e| EvidenceError::Group(e.to_string()))?;
    check_keys(&group, &case.epoch_keys)?;
    let relay = group.relay_key();
    // Signed by the relay *for this group*: a relay key shared by two groups must not let a
    // message of one stand in a case of the other.
    let gid = *group.id();
    let ok = |h: &wire::Header, v: bool| v && h.group_id == gid;
    let signed_ok = ok(&case.epoch_keys.header, true)
        && case
            .record
            .as_ref()
            .is_none_or(|r| ok(&r.header, r.verify(relay)))
        && case
            .zset
            .as_ref()
            .is_none_or(|z| ok(&z.header, z.verify(relay)))
        && case
            .alloc
            .as_ref()
            .is_none_or(|(r, z)| ok(&r.header, r.verify(relay)) && ok(&z.header, z.verify(relay)))
        && case
            .disclosure
            .as_ref()
            .is_none_or(|d| ok(&d.header, d.verify(relay)))
        && case
            .start
            .as_ref()
            .is_none_or(|s| ok(&s.header, s.verify(relay)))
        && case
            .reveals
            .as_ref()
            .is_none_or(|r| ok(&r.header, r.verify(relay)))
        && case
            .equivocation
            .as_ref()
            .is_none_or(|(a, b)| a.header.group_id == gid && b.header.group_id == gid);
    if !signed_ok {
        return Err(EvidenceError::Signature("relay message"));
    }
    // Member equivocation needs nothing but the roster and the two commitments.
    if let Some((a, b)) = &case.equivocation {
        let (Sender::Member(i), Sender::Member(j)) = (a.header.sender, b.header.sender) else {
            return Err(EvidenceError::Inconsistent("commitments not from members"));
        };
        let pk = need(group.member_key(i), "member outside the roster")?;
        let same_slot = i == j
            && a.header.round == b.header.round
            && a.header.epoch == b.header.epoch
            && a.header.group_id == *group.id()
            && b.header.group_id == *group.id();
        if !same_slot || a.body == b.body {
            return Err(EvidenceError::Inconsistent(
                "not two different commitments for one round",
            ));
        }
        if !a.verify(pk) || !b.verify(pk) {
            return Err(EvidenceError::Signature("Commit"));
        }
        return done(convict(
            a.header.round,
            Culprit::Member(i),
            Rule::MemberEquivocation,
            vec![],
        ));
    }
    // Relay equivocation: two relay-signed Opens for one round in one Record.
    if let Some(rec) = &case.record {
        if rec.body.opens.len() > group.size() {
            return Err(EvidenceError::Inconsistent("more Opens than members"));
        }
        let distinct: BTreeSet<Hash> = rec.body.opens.iter().map(|o| o.digest()).collect();
        if distinct.len() > 1 {
            let all_signed = rec.verify(relay)
                && rec.body.opens.iter().all(|o| {
                    o.verify(relay)
                        && o.header.round == rec.header.round
                        && o.header.epoch == rec.header.epoch
                        && o.header.group_id == *group.id()
                });
            if !all_signed {
                return Err(EvidenceError::Signature("Open"));
            }
            return done(convict(
                rec.header.round,
                Culprit::Relay,
                Rule::RelayEquivocation,
                vec![],
            ));
        }
    }
    let rv = RoundView::new(case)?;
    let relay = *rv.group.relay_key();
    let start = match (&case.disclosure, &case.start) {
        (Some(set), _) => &set.body.start,
        (None, Some(s)) => s,
        (None, None) => return Err(EvidenceError::Empty),
    };
    if !start.verify(&relay)
        || start.header.round != rv.round
        || start.header.epoch != rv.epoch
        || start.body.record != rv.record_digest
    {
        return Err(EvidenceError::Signature("BlameStart"));
    }
    let present = &rv.open.body.present;
    // The accusation, if any, must hold; a false one convicts its signer.
    let mut accused = None;
    if let Some(a) = &start.body.accusation {
        let Sender::Member(i) = a.header.sender else {
            return Err(EvidenceError::Inconsistent("accusation not from a member"));
        };
        let pk = need(rv.group.member_key(i), "accuser outside the roster")?;
        if !present.contains(&i) {
            return Err(EvidenceError::Inconsistent(
                "accuser outside the present set",
            ));
        }
        if !a.verify(pk) || a.header.epoch != rv.epoch || a.header.group_id != *rv.group.id() {
            return Err(EvidenceError::Signature("Accuse"));
        }
        // An accusation about another round or Record says nothing false about this one: the
        // relay put it here (a replay, or split Records). That convicts the relay, never the
        // accuser.
        if a.header.round != rv.round || a.body.record != rv.record_digest {
            return done(convict(
                rv.round,
                Culprit::Relay,
                Rule::BadBlameStart,
                vec![],
            ));
        }
        match rv.check_accusation(a) {
            Some((slot, x)) => accused = Some((i, slot, x, a.body.gamma, a.body.slot_key)),
            None => {
                return done(convict(
                    rv.round,
                    Culprit::Member(i),
                    Rule::FalseAccusation,
                    vec![],
                ));
            }
        }
    }
    let positions = &start.body.positions;
    if *positions != rv.positions(accused.map(|a| a.2)) {
        return done(convict(
            rv.round,
            Culprit::Relay,
            Rule::BadBlameStart,
            vec![],
        ));
    }
    if positions.is_empty() {
        // Nothing to disclose: no accusation, nothing written where nobody may write.
        return done(Verdict {
            round: rv.round,
            culprit: None,
            rule: Rule::NoFault,
            unresponsive: vec![],
        });
    }
    let start_digest = start.digest();
    let Some(set) = &case.disclosure else {
        if live {
            return Ok(Assessment::Disclose(CheckedStart {
                round: rv.round,
                digest: start_digest,
                positions: positions.clone(),
                accused: accused.map(|a| (a.0, a.1)),
                cell_check: !rv.checked_cells.is_empty(),
            }));
        }
        return Err(EvidenceError::Empty);
    };
    if !set.verify(&relay) || set.header.round != rv.round || set.header.epoch != rv.epoch {
        return Err(EvidenceError::Signature("DisclosureSet"));
    }
    if set.body.disclosures.len() > present.len() {
        return Err(EvidenceError::Inconsistent("more disclosures than members"));
    }
    let layout = rv.layout();
    // Disclosures: signed, well-formed, chunks matching the member's own commitment.
    let mut disclosed: BTreeMap<u32, &Signed<Disclose>> = BTreeMap::new();
    let mut claims: BTreeMap<u32, (u32, [u8; 8])> = BTreeMap::new();
    for d in &set.body.disclosures {
        let Sender::Member(i) = d.header.sender else {
            return Err(EvidenceError::Inconsistent("disclosure not from a member"));
        };
        let pk = need(rv.group.member_key(i), "discloser outside the roster")?;
        // In ascending signer order, each once: the first malformed one decides a verdict, so
        // the order must not be the relay's choice (PROTOCOL.md §11.7).
        if !present.contains(&i) || disclosed.keys().next_back().is_some_and(|&last| last >= i) {
            return Err(EvidenceError::Inconsistent("disclosure out of place"));
        }
        if !d.verify(pk)
            || d.header.round != rv.round
            || d.header.epoch != rv.epoch
            || d.header.group_id != *rv.group.id()
        {
            return Err(EvidenceError::Signature("Disclose"));
        }
        if d.body.start != start_digest {
            return Err(EvidenceError::Inconsistent("disclosure out of place"));
        }
        let commit = need(rv.commits.get(&i), "discloser without commitment")?;
        let others: Vec<u32> = present.iter().copied().filter(|&j| j != i).collect();
        let claim_ok = d.body.claim.as_ref().is_none_or(|c| {
            c.cell < layout.cells && rv.footprint_proven(i, rv.round, &c.gamma, &c.proof)
        });
        let well_formed = claim_ok
            && d.body.bytes.len() == positions.len()
            && d.body.bytes.iter().zip(positions).all(|(b, &x)| {
                b.position == x
                    && b.pads.iter().map(|p| p.0).eq(others.iter().copied())
                    && b.proof.index as u64 == x / merkle::CHUNK as u64
                    && merkle::verify(
                        &commit.body.ciphertext,
                        layout.len() as u64,
                        &b.chunk,
                        &b.proof,
                    )
            });
        if !well_formed {
            return done(convict(
                rv.round,
                Culprit::Member(i),
                Rule::BadDisclosure,
                vec![],
            ));
        }
        if let Some(c) = &d.body.claim {
            claims.insert(i, (c.cell, keys::footprint(&c.gamma)));
        }
        disclosed.insert(i, d);
    }
    let mut unresponsive: Vec<u32> = present
        .iter()
        .copied()
        .filter(|i| !disclosed.contains_key(i))
        .collect();
    if set.body.missing != unresponsive {
        return Err(EvidenceError::Inconsistent(
            "missing list disagrees with disclosures",
        ));
    }
    // Pad disputes first: settled by DLEQ-proven K_ij.
    let pad = |i: u32, j: u32, x: u64| -> Option<u8> {
        let d = disclosed.get(&i)?;
        let k = positions.iter().position(|&p| p == x)?;
        d.body.bytes[k].pads.iter().find(|p| p.0 == j).map(|p| p.1)
    };
    let conflicts = disputes(&set.body);
    if !conflicts.is_empty() {
        let set_digest = set.digest();
        if live && case.reveals.is_none() {
            return Ok(Assessment::RevealKeys(Disputes {
                set_digest,
                pairs: conflicts,
            }));
        }
        let mut shared: BTreeMap<(u32, u32), [u8; 32]> = BTreeMap::new();
        if let Some(rs) = &case.reveals {
            if !rs.verify(&relay) || rs.body.set != set_digest {
                return Err(EvidenceError::Signature("RevealSet"));
            }
            if rs.body.reveals.len() > 2 * conflicts.len() {
                return Err(EvidenceError::Inconsistent(
                    "more key reveals than disputes",
                ));
            }
            for r in &rs.body.reveals {
                let Sender::Member(i) = r.header.sender else {
                    continue;
                };
                let j = r.body.other;
                if !conflicts.contains(&(i.min(j), i.max(j))) {
                    continue;
                }
                let (Some(pk), Some(ei), Some(ej)) =
                    (rv.group.member_key(i), rv.keys.get(&i), rv.keys.get(&j))
                else {
                    continue;
                };
                let Some(ej_point) = ej.point() else { continue };
                if r.verify(pk)
                    && r.header.round == rv.round
                    && r.header.epoch == rv.epoch
                    && r.body.set == set_digest
                    && dleq::verify_vartime(
                        &ei.0,
                        &ej_point,
                        &r.body.shared,
                        &r.body.proof,
                        &reveal_context(rv.group.id(), rv.epoch, i, j),
                    )
                {
                    shared.insert((i.min(j), i.max(j)), r.body.shared);
                }
            }
        }
        let mut liars = BTreeSet::new();
        for &(i, j) in &conflicts {
            match shared.get(&(i, j)) {
                Some(k) => {
                    for &x in positions {
                        let truth = need(rv.pad_byte(i, j, k, x), "pad of unknown pair")?;
                        for (a, b) in [(i, j), (j, i)] {
                            if pad(a, b, x).is_some_and(|p| p != truth) {
                                liars.insert(a);
                            }
                        }
                    }
                }
                None => {
                    unresponsive.extend([i, j]);
                }
            }
        }
        if let Some(&liar) = liars.iter().next() {
            unresponsive.sort();
            unresponsive.dedup();
            return done(convict(
                rv.round,
                Culprit::Member(liar),
                Rule::PadLie,
                unresponsive,
            ));
        }
    }
    // Byte checks: c_i[x] = b_i[x] ⊕ ⨁_j pad_ij[x] ⊕ (what i may write at x): its trap byte in
    // the slot it accused, its footprint byte in the checked cell it claimed, else 0.
    for (&i, d) in &disclosed {
        for (b, &x) in d.body.bytes.iter().zip(positions) {
            let off = (x % merkle::CHUNK as u64) as usize;
            let c = need(b.chunk.get(off).copied(), "position outside its chunk")?;
            let mut acc = need(rv.blind_byte(i, x), "no seed")?;
            for &(_, p) in &b.pads {
                acc ^= p;
            }
            if let Some((a, slot, _, gamma, key)) = accused {
                let r = layout.slot(slot);
                if a == i && (r.start as u64..r.end as u64).contains(&x) {
                    let key = StreamKey::from_bytes(key);
                    acc ^= slots::trap_slot(&layout, rv.round, slot, &gamma, &key)
                        [x as usize - r.start];
                }
            }
            let cell = rv.checked_cell_at(x);
            if let (Some(c), Some((claimed, fp))) = (cell, claims.get(&i)) {
                if c == *claimed {
                    acc ^= fp[(x % 8) as usize];
                }
            }
            if c != acc {
                unresponsive.sort();
                unresponsive.dedup();
                let rule = if cell.is_some() {
                    Rule::GarbageCell
                } else {
                    Rule::CiphertextMismatch
                };
                return done(convict(rv.round, Culprit::Member(i), rule, unresponsive));
            }
        }
    }
    unresponsive.sort();
    unresponsive.dedup();
    if !unresponsive.is_empty() {
        return done(Verdict {
            round: rv.round,
            culprit: None,
            rule: Rule::Unresolved,
            unresponsive,
        });
    }
    // Every member's bytes check out: the Record must be their XOR.
    for (k, &x) in positions.iter().enumerate() {
        let off = (x % merkle::CHUNK as u64) as usize;
        let mut acc = 0u8;
        for d in disclosed.values() {
            acc ^= d.body.bytes[k].chunk[off];
        }
        if acc != rv.xor[x as usize] {
            return done(convict(
                rv.round,
                Culprit::Relay,
                Rule::RecordMismatch,
                vec![],
            ));
        }
    }
    done(Verdict {
        round: rv.round,
        culprit: None,
        rule: Rule::NoFault,
        unresponsive: vec![],
    })
}

/// Encodes a case as an evidence file: magic, bincode case, SHA3-256 of both.
pub fn encode_evidence(case: &Case) -> Vec<u8> {
    let mut out = EVIDENCE_MAGIC.to_vec();
    out.extend_from_slice(&wire::encode(case));
    let h = hash("dcnet/v1/evidence", &[&out]);
    out.extend_from_slice(&h);
    out
}

/// Decodes an evidence file (size-bounded, exact).
pub fn decode_evidence(bytes: &[u8]) -> EResult<Case> {
    if bytes.len() < 8 + 32 || &bytes[..8] != EVIDENCE_MAGIC {
        return Err(EvidenceError::Format("missing dcnetEv1 header".into()));
    }
    let (body, h) = bytes.split_at(bytes.len() - 32);
    if hash("dcnet/v1/evidence", &[body]) != h {
        return Err(EvidenceError::Format("checksum mismatch".into()));
    }
    wire::decode(&body[8..]).map_err(|e| EvidenceError::Format(e.to_string()))
}
