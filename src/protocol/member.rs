//! The member state machine.
//!
//! A member holds its identity key and, per epoch, a Ristretto255 secret; it answers the relay's
//! epoch requests and attempts, composes its ciphertext from its reservation footprint, its
//! owned slot (message fragment or trap) and its pads, and turns each completed round's output
//! into allocations and delivered messages.
//!
//! Invariants:
//! - it signs at most one commitment per round, with the round stored durably first
//!   ([`HighWaterStore`]);
//! - it accepts an Open only if its round increases, it extends the member's own view chain, and
//!   its allocation matches the member's own state;
//! - it reveals its ciphertext only once a CommitSet covers the whole present set and contains
//!   its own commitment unchanged;
//! - it verifies only relay signatures in the common case (a constant number per round);
//!   members' signatures are checked by the relay and, in blame, by everyone.

use super::blame::{self, Assessment, Case, CheckedStart, Culprit, Disputes, Verdict};
use super::slots::{
    self, Allocation, Fragment, Layout, Reassembled, Reassembly, SlotContent, SlotState,
};
use super::{HighWaterStore, MemberId, ProtocolError, invalid};
use crate::adversary::MemberFault;
use crate::crypto::identity::IdentityKey;
use crate::crypto::keys::{self, ContentKey, EpochPublic, EpochSecret, PairSecret};
use crate::crypto::pad::{self, Keystream, StreamKey};
use crate::crypto::{Hash, ct_eq, dleq, merkle};
use crate::params::Group;
use crate::protocol::Time;
use crate::wire::{
    self, Abort, Accuse, BlameStart, Body, CellClaim, Commit, CommitSet, ContentSeal, Disclose,
    DisclosedByte, DisclosureSet, EpochKey, EpochKeys, EpochRequest, Evidence, Hello, KeyReveal,
    Kind, Open, ParsedBody, Record, Reveal, RevealSet, Sender, Signed, Unblind, ZSet,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use zeroize::Zeroizing;

/// Largest forward jump of the round counter a member accepts.
pub const MAX_ROUND_JUMP: u64 = 1 << 20;
/// Rounds reserved in the durable store at a time: the member writes `round + HIGH_WATER_BLOCK
/// − 1` to its [`HighWaterStore`] before it signs in a round beyond the last reservation, so a
/// member writes its state once every `HIGH_WATER_BLOCK` rounds instead of every round. After a
/// restart it refuses every round up to the reservation (the relay moves its counter past a
/// returning member's Hello), so it still never signs two commitments for one round.
pub const HIGH_WATER_BLOCK: u64 = 64;
/// Largest forward jump of the epoch counter a member accepts.
pub const MAX_EPOCH_JUMP: u64 = 1 << 20;

/// What a member reports to its driver.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MemberEvent {
    /// A new epoch started with these members.
    EpochStarted {
        /// Epoch number.
        epoch: u64,
        /// Members of the epoch.
        members: Vec<u32>,
    },
    /// The epoch's keyholder sealed us a content key that does not open to the key its signed
    /// Commit names: this member can neither read nor send until the next epoch.
    ContentKeyRefused {
        /// Epoch.
        epoch: u64,
        /// The keyholder (roster index) whose seal failed.
        holder: u32,
    },
    /// A round completed; its cleartext is public.
    RoundCompleted {
        /// Round.
        round: u64,
        /// The cleartext `⨁ m_i`.
        cleartext: Arc<[u8]>,
        /// Slots allocated in this round.
        allocated: u32,
        /// Allocated slots holding an intact fragment or trap.
        filled: u32,
        /// Damaged slots (non-zero and failing their hash).
        damaged: u32,
        /// The fragments this member read in the round's slots (with its content key; none
        /// without one), in slot order.
        pieces: Vec<PieceSeen>,
    },
    /// A message was delivered (never says who sent it).
    Delivered {
        /// Round of the last fragment.
        round: u64,
        /// Slot of the last fragment.
        slot: u32,
        /// The message.
        message: Vec<u8>,
    },
    /// One of our messages went out completely.
    Sent {
        /// Ticket returned by [`Member::submit`].
        ticket: u64,
        /// Round of the last fragment.
        round: u64,
        /// |A|: members present in every round a piece of it went out in.
        anonymity: usize,
    },
    /// We filled our slot with trap content instead of the next piece of a message, because
    /// sending it would have shrunk its anonymity set (docs/PROTOCOL.md §7.1).
    HeldBack {
        /// Ticket of the message.
        ticket: u64,
        /// Round.
        round: u64,
        /// Why, in words.
        reason: String,
        /// |A| the piece would have had.
        anonymity: usize,
        /// The floor it must not fall below.
        floor: usize,
    },
    /// Our reservation in `round` did not win a slot (its cell did not show our footprint).
    Collided {
        /// Round of the reservation.
        round: u64,
    },
    /// Our slot content did not come out intact; the fragment will be sent again.
    SlotDamaged {
        /// Round.
        round: u64,
    },
    /// The relay aborted an attempt.
    Aborted {
        /// Round.
        round: u64,
        /// Members it says were missing.
        missing: Vec<u32>,
    },
    /// The relay says these members withheld their blinding seed: the round cannot be unblinded.
    Withheld {
        /// Round.
        round: u64,
        /// Members named.
        missing: Vec<u32>,
    },
    /// The relay signed two different Opens for one round (evidence for blame).
    RelayEquivocated {
        /// Round.
        round: u64,
        /// The conflicting signed Opens.
        opens: Vec<Signed<Open>>,
    },
    /// The Record omitted an Open a commitment binds: the attempt failed, nobody is convicted.
    RecordInvalid {
        /// Round.
        round: u64,
    },
    /// We accused: our trap slot was hit.
    Accused {
        /// Round.
        round: u64,
        /// Our slot.
        slot: u32,
    },
    /// Fragments carrying one message id completed, but no combination matches the digest
    /// every fragment carries: someone spliced fragments in. Nothing is delivered.
    Spliced {
        /// Round of the completing fragment.
        round: u64,
        /// The message id.
        msg_id: [u8; 8],
    },
    /// The relay broke a rule that needs no evidence file to see (it dropped our accusation,
    /// signed a blame message that does not check out, or let a blame case lapse). The member
    /// accepts nothing from it any more; the operator must configure another relay.
    RelayFaulty {
        /// What it did, in words.
        reason: String,
    },
    /// A blame case was judged. `case` is the self-contained evidence.
    Verdict {
        /// The verdict.
        verdict: Verdict,
        /// The evidence it was reached from.
        case: Box<Case>,
    },
}

/// Why a message could not be queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The message needs more fragments than `max_fragments` allows.
    #[error("message of {len} bytes needs more than {max} fragments")]
    TooLong {
        /// Message length.
        len: usize,
        /// `max_fragments`.
        max: u16,
    },
    /// [`MAX_QUEUE`] messages are already waiting.
    #[error("{0} messages are already waiting to go out; try again once some are sent")]
    QueueFull(usize),
    /// [`MAX_LINKS`] links are in use already.
    #[error(
        "{0} pseudonyms and conversations are in use already; restart the member to begin afresh"
    )]
    TooManyLinks(usize),
}

/// How a [`MemberEvent::HeldBack`] reason starts when the message cannot go out even with
/// every member back (its set only shrinks and is already too small; only a conviction, which
/// lowers the floor, can change that).
pub const PERMANENT: &str = "it cannot go out even with everyone back";

/// Most messages waiting or in flight at one member.
pub const MAX_QUEUE: usize = 1024;
/// Largest outbox snapshot [`Member::restore_outbox`] decodes (bytes).
pub const MAX_OUTBOX_BYTES: usize = 1 << 28;
/// Version byte of the outbox snapshot format (1: before links; still read).
const OUTBOX_VERSION: u8 = 2;

/// The durable form of the outbox (docs/PROTOCOL.md §8.1): what a restarted member needs to
/// finish sending its messages without ever widening their anonymity sets.
#[derive(bincode::Encode, bincode::Decode)]
struct SavedOutbox {
    version: u8,
    group: Hash,
    /// Members this member had convicted: §7.1's R and floor leave them out, so a restarted
    /// member that forgot them would wait for a removed member forever.
    convicted: Vec<u32>,
    /// The sets of every link (docs/PROTOCOL.md §7.2), so a restarted member keeps a
    /// pseudonym's or a conversation's anonymity set as narrow as the relay saw it.
    links: Vec<SavedLink>,
    messages: Vec<SavedMessage>,
}

#[derive(bincode::Encode, bincode::Decode)]
struct SavedLink {
    link: [u8; 32],
    anonymity: Option<Vec<u32>>,
    unknown_accusers: u32,
}

/// Version 1 of the outbox file (no links).
#[derive(bincode::Encode, bincode::Decode)]
struct SavedOutboxV1 {
    version: u8,
    group: Hash,
    convicted: Vec<u32>,
    messages: Vec<SavedMessageV1>,
}

#[derive(bincode::Encode, bincode::Decode)]
struct SavedMessageV1 {
    msg_id: [u8; 8],
    message: Vec<u8>,
    done: Vec<bool>,
    first_present: Option<Vec<u32>>,
    anonymity: Option<Vec<u32>>,
    unknown_accusers: u32,
}

impl SavedOutboxV1 {
    fn upgrade(self) -> SavedOutbox {
        SavedOutbox {
            version: OUTBOX_VERSION,
            group: self.group,
            convicted: self.convicted,
            links: Vec::new(),
            messages: self
                .messages
                .into_iter()
                .map(|m| SavedMessage {
                    msg_id: m.msg_id,
                    message: m.message,
                    done: m.done,
                    first_present: m.first_present,
                    anonymity: m.anonymity,
                    unknown_accusers: m.unknown_accusers,
                    link: None,
                })
                .collect(),
        }
    }
}

#[derive(bincode::Encode, bincode::Decode)]
struct SavedMessage {
    msg_id: [u8; 8],
    message: Vec<u8>,
    /// Per fragment: delivered intact (never sent again).
    done: Vec<bool>,
    first_present: Option<Vec<u32>>,
    anonymity: Option<Vec<u32>>,
    /// Accusations possibly missed: those recorded, plus one if a piece's round was still
    /// unresolved when the snapshot was written.
    unknown_accusers: u32,
    /// Its link, if it was submitted under one.
    link: Option<[u8; 32]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Fragment {
        ticket: u64,
        index: u16,
    },
    /// A trap reserved for a pending fragment (with probability `p_trap`).
    Trap,
    /// A trap reserved while idle (cover, with probability `p_cover`). A piece that is pending
    /// when the slot is filled may take it instead, with probability `1 − p_trap`
    /// (docs/PROTOCOL.md §7).
    Cover,
}

#[derive(Clone)]
struct Reservation {
    cell: u32,
    footprint: [u8; 8],
    gamma: [u8; 32],
    purpose: Purpose,
}

struct Owned {
    slot: u32,
    cell: u32,
    purpose: Purpose,
    gamma: [u8; 32],
}

struct AllocSource {
    round: u64,
    record: Hash,
    present: Vec<u32>,
    alloc: Allocation,
    mine: Option<Owned>,
}

struct EpochState {
    epoch: u64,
    secret: EpochSecret,
    keys: BTreeMap<u32, EpochPublic>,
    pairs: BTreeMap<u32, PairSecret>,
    /// The epoch's content key, once a completed round fixed it (docs/PROTOCOL.md §8.2).
    content: Content,
    /// Rounds completed in this epoch (a member takes part in at most `epoch_rounds`).
    completed: u64,
}

/// Where the epoch's content key stands for this member.
enum Content {
    /// No completed round of the epoch carried a well-formed seal from its keyholder yet.
    Unset,
    /// Fixed, and our seal opened to it.
    Open(ContentKey),
    /// Fixed, but our seal from `holder` did not open to the key it names: we can neither read
    /// nor write slots until the next epoch (and say so, naming the keyholder).
    Refused,
}

impl Content {
    fn key(&self) -> Option<&ContentKey> {
        match self {
            Content::Open(k) => Some(k),
            _ => None,
        }
    }
}

/// A fragment a member read in a completed round (what it saw, never who wrote it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceSeen {
    /// Slot index.
    pub slot: u32,
    /// The message id.
    pub msg_id: [u8; 8],
    /// Fragment index.
    pub index: u16,
    /// Fragments in the message.
    pub count: u16,
}

/// Whether a seal list is well formed for keyholder `holder` of an attempt with present set
/// `present`: one seal for every other member of P, in ascending order, and nothing else.
pub fn seal_list_ok(cs: &ContentSeal, present: &[u32], holder: u32) -> bool {
    cs.seals.len() == present.len().saturating_sub(1)
        && cs
            .seals
            .iter()
            .map(|(j, _)| *j)
            .eq(present.iter().copied().filter(|&j| j != holder))
}

/// The keyholder of an attempt: the member of P at position `round mod |P|` (P is sorted).
pub fn keyholder(round: u64, present: &[u32]) -> Option<u32> {
    let n = present.len() as u64;
    (n > 0).then(|| present[(round % n) as usize])
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FragState {
    Pending,
    Reserved,
    Done,
}

struct Outgoing {
    ticket: u64,
    frags: Vec<Fragment>,
    state: Vec<FragState>,
    /// What the relay has seen of this message.
    exp: Exposure,
    /// The link it shares an anonymity set with (docs/PROTOCOL.md §7.2), if any.
    link: Option<LinkId>,
}

/// A link: messages a reader can tell share an author (one pseudonym, one side of a
/// conversation). Their pieces count as pieces of one message for §7.1's rule.
pub type LinkId = [u8; 32];

/// Most links a member keeps sets for ([`Member::submit_linked`]).
pub const MAX_LINKS: usize = 4096;

/// What the relay has seen of a message, or of every message of a link (docs/PROTOCOL.md
/// §7.1, §7.2).
#[derive(Clone, Default)]
struct Exposure {
    /// R: the present set of the attempt whose piece went out first (less convicted members).
    first_present: Option<BTreeSet<u32>>,
    /// A: the intersection of the present sets of every attempt in which a piece went out.
    anonymity: Option<BTreeSet<u32>>,
    /// The round of the last attempt in which a piece went out, while the member has not yet
    /// seen whether that round brought an accusation (it learns it before it accepts a later
    /// Open). Kept in the outbox file: a member that restarts in between cannot know.
    unresolved: Option<u64>,
    /// Accusations this member may have missed (it restarted while a piece's round was
    /// unresolved): each may have told the relay that one member of A sent nothing then, so the
    /// anonymity check counts A that much smaller, for good.
    unknown_accusers: usize,
    /// For a link: messages that may name their author to a colluder and went out in a round
    /// with one of the link's pieces (sealed messages: an answer to a reply key tells its
    /// writer who answered, and a member writes one slot per round, so that author did not
    /// write ours). Each counts as one member less in A, for good (docs/PROTOCOL.md §7.2;
    /// attack review 7, finding 2). Always empty for a single message's exposure.
    cosealed: BTreeSet<[u8; 8]>,
}

/// Most co-sent sealed messages an exposure records one by one (past it, the message or link
/// counts as having none left to spare).
const MAX_COSEALED: usize = 4096;

impl Exposure {
    /// A piece went out in `round` with present set `present`.
    fn expose(&mut self, present: &BTreeSet<u32>, round: u64) {
        self.first_present.get_or_insert_with(|| present.clone());
        self.anonymity = Some(match &self.anonymity {
            Some(x) => x.intersection(present).copied().collect(),
            None => present.clone(),
        });
        self.unresolved = Some(round);
    }

    /// |A| less the accusations possibly missed and the co-sent sealed messages.
    fn size(&self) -> usize {
        self.anonymity
            .as_ref()
            .map_or(0, |a| a.len().saturating_sub(self.unknown()))
    }

    /// Members of A that a colluder may have told apart from us without our knowing which
    /// (all of them once more co-sent sealed messages came than we record one by one).
    fn unknown(&self) -> usize {
        if self.cosealed.len() >= MAX_COSEALED {
            return usize::MAX;
        }
        self.unknown_accusers.saturating_add(self.cosealed.len())
    }

    /// A sealed message `id` went out in a round with one of our pieces.
    fn add_cosealed(&mut self, id: [u8; 8]) {
        if self.cosealed.len() < MAX_COSEALED {
            self.cosealed.insert(id);
        }
    }

    /// Accusations possibly missed, as the outbox file records them (co-sent sealed messages
    /// included: a restarted member counts them all the same).
    fn saved_unknown(&self) -> u32 {
        self.unknown()
            .saturating_add(usize::from(self.unresolved.is_some()))
            .min(u32::MAX as usize) as u32
    }
}

/// One attempt in flight (or the last completed one, kept for blame).
struct Attempt {
    round: u64,
    open: Signed<Open>,
    open_hash: Hash,
    view: Hash,
    ciphertext: Vec<u8>,
    /// Our contribution `m_i` (kept for blame, and for faults that need to know what they did).
    plain: Zeroizing<Vec<u8>>,
    /// What we wrote into our owned slot, if any.
    slot_written: Option<(u32, Vec<u8>)>,
    /// Our owned slot should have carried a fragment, but it was held back (trap content).
    held_back: bool,
    z: StreamKey,
    commit: Signed<Commit>,
    commit_set: Option<(Arc<Signed<CommitSet>>, Hash)>,
    record: Option<(Arc<Signed<Record>>, Hash)>,
    reservation: Option<Reservation>,
    uses_alloc: bool,
    /// The message (ticket, link) whose piece became readable by the relay in this attempt.
    exposed: Option<(u64, Option<LinkId>)>,
    /// Once our seed is out: when the relay must have sent the seeds (or who withheld) for
    /// the Record we unblinded against. A signed Record is an open case.
    unblind_by: Option<Time>,
    /// The content key we sealed in our Commit as this attempt's keyholder.
    offered: Option<ContentKey>,
}

enum Phase {
    /// No epoch keys yet.
    NoEpoch,
    /// Sent our epoch key; waiting for the epoch's key set.
    AwaitKeys {
        epoch: u64,
        secret: EpochSecret,
        invited: Vec<u32>,
    },
    /// Ready for an Open.
    Ready,
    /// Committed; waiting for the CommitSet.
    Committed(Box<Attempt>),
    /// Revealed; waiting for the Record.
    Revealed(Box<Attempt>),
    /// Unblinded; waiting for the seeds. No new Open is accepted in this phase.
    Unblinding(Box<Attempt>),
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::NoEpoch => "no-epoch",
            Phase::AwaitKeys { .. } => "await-keys",
            Phase::Ready => "ready",
            Phase::Committed(_) => "committed",
            Phase::Revealed(_) => "revealed",
            Phase::Unblinding(_) => "unblinding",
        }
    }
}

/// A group member (sans-IO).
pub struct Member {
    group: Arc<Group>,
    me: u32,
    key: IdentityKey,
    rng: ChaCha20Rng,
    store: Box<dyn HighWaterStore + Send>,
    layout: Layout,
    ks: Keystream,
    hw: u64,
    phase: Phase,
    ep: Option<EpochState>,
    chain_head: Hash,
    last: Option<(u64, Hash)>,
    alloc_src: Option<AllocSource>,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<MemberEvent>,
    queue: VecDeque<Outgoing>,
    /// The sets of every link a message was submitted under (docs/PROTOCOL.md §7.2).
    links: BTreeMap<LinkId, Exposure>,
    /// msg_ids whose first fragment we read and that are not sealed messages (their later
    /// fragments name nobody); oldest first, bounded.
    plain_ids: (VecDeque<[u8; 8]>, BTreeSet<[u8; 8]>),
    /// Bumped whenever `queue` changes in a way the outbox snapshot records.
    outbox_rev: u64,
    next_ticket: u64,
    reasm: Reassembly,
    faults: Vec<MemberFault>,
    epoch_keys: Option<Signed<EpochKeys>>,
    /// The last completed round, kept for blame.
    done: Option<Done>,
    /// Record and ZSet of the round before `done` (its allocation source).
    prev_evidence: Option<(Arc<Signed<Record>>, Signed<ZSet>)>,
    /// The blame case in progress: one we raised or saw (damage, a cell-check trigger, or a
    /// BlameStart). While it is open no Open is accepted and nothing is re-sent.
    case: Option<OpenCase>,
    /// Digest of the message that concluded the case of our last completed round; the next
    /// Open (or EpochRequest) must name it.
    last_case: Option<Hash>,
    /// Round whose case concluded (a second BlameStart for it is a replay).
    concluded: Option<u64>,
    convicted: BTreeSet<u32>,
    relay_convicted: bool,
    /// Why we stopped trusting the relay without a conviction, if we did.
    relay_faulty: Option<String>,
    /// The latest time a driver passed in.
    now: Time,
    /// Simulation only: skip pads and blinding (see [`Member::set_modeled_crypto`]).
    modeled: bool,
    /// The footprint VRF output `Γ` (§2.7) of the round expected next, computed when a round
    /// completes: (epoch, round, Γ). The scalar multiplication is then off the path from an
    /// Open to our Commit; an Open of any other epoch or round computes its own.
    next_gamma: Option<(u64, u64, [u8; 32])>,
}

/// A blame case this member raised or saw, open until a verdict.
struct OpenCase {
    case: Case,
    round: u64,
    deadline: Time,
    /// We accused in this case: a BlameStart without our accusation means the relay dropped it.
    accused: Option<Hash>,
    /// We disclosed in this case: a DisclosureSet without our disclosure means the relay
    /// dropped it.
    disclosed: bool,
    /// We revealed pair keys in this case: a RevealSet without them means the relay dropped
    /// them (to leave a lying colluder unresolved and us excluded).
    revealed: bool,
}

/// Values every receiver of one parsed ZSet computes the same way, kept with the parse
/// ([`wire::ParsedFrame`]) so that receivers sharing one parse (the simulator's members)
/// compute them once. Each is a pure function of what it is keyed by: the seeds' commitments
/// of the frame's own bytes; the cleartext and its checks of the Record (by its digest, which
/// the ZSet names and each member checked against the Record it verified itself), of the
/// seeds, and of the pads' mode and layout. A member whose key differs computes its own.
#[derive(Default, Debug)]
pub(crate) struct ZSetMemo {
    commitments: std::sync::OnceLock<(Vec<Hash>, std::time::Duration)>,
    output: std::sync::OnceLock<RoundOutput>,
}

impl ZSetMemo {
    /// Real time spent computing what is already here, so that a harness timing receivers
    /// that share this parse can charge each of them as if it had computed everything
    /// itself (the simulator's host time).
    pub(crate) fn spent(&self) -> std::time::Duration {
        self.commitments.get().map_or(Default::default(), |c| c.1)
            + self.output.get().map_or(Default::default(), |o| {
                o.took + o.alloc.get().map_or(Default::default(), |a| a.2)
            })
    }
}

/// What a round's cleartext was computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OutputKey {
    record: Hash,
    modeled: bool,
    layout: Layout,
}

/// A round's cleartext and its checks.
#[derive(Debug)]
struct RoundOutput {
    key: OutputKey,
    clear: Arc<[u8]>,
    checks: slots::OutputChecks,
    /// Real time the computation took.
    took: std::time::Duration,
    /// The next allocation, for a present set of the size it holds, and what it took.
    alloc: std::sync::OnceLock<(usize, Allocation, std::time::Duration)>,
}

impl RoundOutput {
    /// The allocation this output makes for a round with `present` members (§6).
    fn allocation(&self, present: usize) -> Allocation {
        let compute =
            || Allocation::from_digest(&self.key.layout, &self.checks.digest, &self.clear, present);
        let shared = self.alloc.get_or_init(|| {
            let t0 = std::time::Instant::now();
            let a = compute();
            (present, a, t0.elapsed())
        });
        if shared.0 == present {
            shared.1.clone()
        } else {
            compute()
        }
    }
}

/// A completed round, kept for blame.
struct Done {
    attempt: Box<Attempt>,
    record: Arc<Signed<Record>>,
    zset: Signed<ZSet>,
}

impl Member {
    /// A member with roster index `me`. `seed` seeds its RNG (drivers draw it from the OS;
    /// simulations derive it from their master seed).
    pub fn new(
        group: Arc<Group>,
        me: MemberId,
        key: IdentityKey,
        seed: [u8; 32],
        store: Box<dyn HighWaterStore + Send>,
    ) -> Result<Member, String> {
        Self::with_faults(group, me, key, seed, store, Vec::new())
    }

    /// A member with injected faults (adversarial experiments only; see [`crate::adversary`]).
    pub fn with_faults(
        group: Arc<Group>,
        me: MemberId,
        key: IdentityKey,
        seed: [u8; 32],
        store: Box<dyn HighWaterStore + Send>,
        faults: Vec<MemberFault>,
    ) -> Result<Member, String> {
        if group.member_key(me.0) != Some(&key.public()) {
            return Err(format!("key is not roster entry {}", me.0));
        }
        let layout = Layout::new(group.params());
        let max_fragments = group.params().max_fragments;
        let hw = store.load();
        Ok(Member {
            me: me.0,
            key,
            rng: ChaCha20Rng::from_seed(seed),
            store,
            layout,
            ks: Keystream::new(),
            hw,
            phase: Phase::NoEpoch,
            ep: None,
            chain_head: [0; 32],
            last: None,
            alloc_src: None,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            queue: VecDeque::new(),
            links: BTreeMap::new(),
            plain_ids: Default::default(),
            outbox_rev: 0,
            next_ticket: 0,
            reasm: Reassembly::new(4096, 1 << 16, max_fragments),
            group,
            faults,
            epoch_keys: None,
            done: None,
            prev_evidence: None,
            case: None,
            last_case: None,
            concluded: None,
            convicted: BTreeSet::new(),
            relay_convicted: false,
            relay_faulty: None,
            now: Time::ZERO,
            modeled: false,
            next_gamma: None,
        })
    }

    /// Simulation only: pads and blinding are not computed (they would cancel anyway), so the
    /// ciphertext is the plaintext contribution. Everything else, randomness included, is
    /// unchanged, so a run's protocol outcomes match the real mode's. A member in this mode
    /// offers **no anonymity at all**; the simulator uses it to reach large N, and refuses
    /// adversaries with it (blame needs real pads).
    #[doc(hidden)]
    pub fn set_modeled_crypto(&mut self, on: bool) {
        self.modeled = on;
    }

    /// Our roster index.
    pub fn id(&self) -> MemberId {
        MemberId(self.me)
    }
    /// Highest round accepted.
    pub fn high_water(&self) -> u64 {
        self.hw
    }
    /// The round reserved in the durable store: after a restart the member accepts only later
    /// rounds (see [`HIGH_WATER_BLOCK`]).
    pub fn stored_high_water(&self) -> u64 {
        self.store.load()
    }
    /// Current epoch (0 before the first).
    pub fn epoch(&self) -> u64 {
        self.ep.as_ref().map_or(0, |e| e.epoch)
    }
    /// Messages queued or in flight.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// The transport (re)connected to the relay. Any attempt in flight is abandoned (its
    /// fragment will be sent again; pads are never reused because rounds only increase), and a
    /// signed Hello telling our high-water round and epoch is queued as the first frame.
    ///
    /// An open blame case survives a reconnect: the relay must still bring it to a verdict.
    pub fn handle_reconnect(&mut self, now: Time) {
        self.now = self.now.max(now);
        self.abandon_attempt();
        self.outbox.clear();
        let hello = Signed::sign(
            &self.key,
            *self.group.id(),
            self.epoch_for_signing(),
            0,
            Sender::Member(self.me),
            Hello {
                protocol: wire::PROTOCOL_VERSION,
                high_water: self.hw,
                epoch: self.epoch_for_signing(),
                last_case: self.last_case,
            },
        );
        self.outbox.push_back(hello.into_frame());
    }

    /// Queues a message for anonymous broadcast; returns its ticket.
    pub fn submit(&mut self, msg: &[u8]) -> Result<u64, SubmitError> {
        self.enqueue(msg, None)
    }

    /// Queues a message that readers can link to every other message submitted under `link`
    /// (posts of one pseudonym, our side of one conversation): the anonymity rule then counts
    /// all of them as one message, so the set of members who could have written them — the
    /// intersection of the present sets of every round any of their pieces went out in —
    /// never falls below the floor (docs/PROTOCOL.md §7.2).
    pub fn submit_linked(&mut self, msg: &[u8], link: LinkId) -> Result<u64, SubmitError> {
        if !self.links.contains_key(&link) && self.links.len() >= MAX_LINKS {
            return Err(SubmitError::TooManyLinks(MAX_LINKS));
        }
        self.enqueue(msg, Some(link))
    }

    /// |A| of a link: members present in every round a piece of one of its messages went out
    /// in (`None` before any did).
    pub fn link_anonymity(&self, link: &LinkId) -> Option<usize> {
        self.links
            .get(link)
            .filter(|e| e.anonymity.is_some())
            .map(Exposure::size)
    }

    /// Forgets the sets of every link no queued message uses; returns how many. For a driver
    /// that keeps no pseudonym or reply keys across a restart (`dcnet member`): after a
    /// restart such a link can never be used again, and forgetting it keeps [`MAX_LINKS`]
    /// from filling up over many restarts. A driver that does keep those keys must not call
    /// it, or the next message under a forgotten link would start from a wider set.
    pub fn forget_idle_links(&mut self) -> usize {
        let used: BTreeSet<LinkId> = self.queue.iter().filter_map(|o| o.link).collect();
        let before = self.links.len();
        self.links.retain(|l, _| used.contains(l));
        if self.links.len() != before {
            self.outbox_rev += 1;
        }
        before - self.links.len()
    }

    /// Remembers that message `id` is not sealed (bounded: the oldest is forgotten first, and
    /// a later fragment of a forgotten one then counts as possibly sealed).
    fn note_plain(&mut self, id: [u8; 8]) {
        const MAX_PLAIN_IDS: usize = 65536;
        if self.plain_ids.1.insert(id) {
            self.plain_ids.0.push_back(id);
            if self.plain_ids.0.len() > MAX_PLAIN_IDS {
                if let Some(old) = self.plain_ids.0.pop_front() {
                    self.plain_ids.1.remove(&old);
                }
            }
        }
    }

    fn enqueue(&mut self, msg: &[u8], link: Option<LinkId>) -> Result<u64, SubmitError> {
        if self.queue.len() >= MAX_QUEUE {
            return Err(SubmitError::QueueFull(self.queue.len()));
        }
        let cap = self.layout.capacity();
        let max = self.group.params().max_fragments;
        if msg.len().div_ceil(cap).max(1) > max as usize {
            return Err(SubmitError::TooLong {
                len: msg.len(),
                max,
            });
        }
        let mut id = [0u8; 8];
        self.rng.fill_bytes(&mut id);
        let frags = slots::fragment(msg, cap, id);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queue.push_back(Outgoing {
            ticket,
            state: vec![FragState::Pending; frags.len()],
            frags,
            exp: Exposure::default(),
            link,
        });
        if let Some(l) = link {
            self.links.entry(l).or_default();
        }
        self.outbox_rev += 1;
        Ok(ticket)
    }

    /// Changes whenever the outbox changes in a way [`Member::outbox_snapshot`] records: a
    /// submission, a piece exposed to the relay, a fragment delivered, a message sent. A
    /// driver that persists the outbox writes a snapshot when this moved, **before** it sends
    /// the frames queued since (a seed that leaves exposes a piece: the exposure must be on
    /// disk first, or a restarted member could send the rest with a wider anonymity set).
    pub fn outbox_rev(&self) -> u64 {
        self.outbox_rev
    }

    /// The messages not yet completely out, with what the relay has seen of each (which
    /// fragments were delivered, R and A), in the format [`Member::restore_outbox`] reads.
    pub fn outbox_snapshot(&self) -> Vec<u8> {
        let sorted = |s: &Option<BTreeSet<u32>>| s.as_ref().map(|s| s.iter().copied().collect());
        let saved = SavedOutbox {
            version: OUTBOX_VERSION,
            group: *self.group.id(),
            convicted: self.convicted.iter().copied().collect(),
            links: self
                .links
                .iter()
                .map(|(id, e)| SavedLink {
                    link: *id,
                    anonymity: sorted(&e.anonymity),
                    unknown_accusers: e.saved_unknown(),
                })
                .collect(),
            messages: self
                .queue
                .iter()
                .map(|o| SavedMessage {
                    msg_id: o.frags.first().map_or([0; 8], |f| f.msg_id),
                    message: o
                        .frags
                        .iter()
                        .flat_map(|f| f.payload.iter().copied())
                        .collect(),
                    done: o.state.iter().map(|s| *s == FragState::Done).collect(),
                    first_present: sorted(&o.exp.first_present),
                    anonymity: sorted(&o.exp.anonymity),
                    unknown_accusers: o.exp.saved_unknown(),
                    link: o.link,
                })
                .collect(),
        };
        bincode::encode_to_vec(&saved, bincode::config::standard()).unwrap_or_default()
    }

    /// Puts back the messages of a snapshot written by [`Member::outbox_snapshot`] (after a
    /// crash and restart), ahead of anything submitted since; returns their tickets. Refuses a
    /// snapshot of another group, of another format, or one that does not fragment as it says.
    pub fn restore_outbox(&mut self, bytes: &[u8]) -> Result<Vec<u64>, String> {
        if bytes.len() > MAX_OUTBOX_BYTES {
            return Err(format!("outbox of {} bytes is too large", bytes.len()));
        }
        let cfg = bincode::config::standard().with_limit::<MAX_OUTBOX_BYTES>();
        // The canonical encoding only (PROTOCOL.md §4), as for frames and evidence bundles.
        let canonical = |used: usize, again: Option<Vec<u8>>| -> Result<(), String> {
            if used != bytes.len() || again.as_deref() != Some(bytes) {
                return Err("not the canonical encoding of an outbox".into());
            }
            Ok(())
        };
        let saved = match bytes.first() {
            Some(1) => {
                let (old, used): (SavedOutboxV1, usize) = bincode::decode_from_slice(bytes, cfg)
                    .map_err(|e| format!("not an outbox: {e}"))?;
                canonical(
                    used,
                    bincode::encode_to_vec(&old, bincode::config::standard()).ok(),
                )?;
                old.upgrade()
            }
            Some(&OUTBOX_VERSION) => {
                let (saved, used): (SavedOutbox, usize) = bincode::decode_from_slice(bytes, cfg)
                    .map_err(|e| format!("not an outbox: {e}"))?;
                canonical(
                    used,
                    bincode::encode_to_vec(&saved, bincode::config::standard()).ok(),
                )?;
                saved
            }
            _ => return Err("not an outbox of this version".into()),
        };
        if !ct_eq(&saved.group, self.group.id()) {
            if saved.messages.is_empty() {
                // Only another group's convictions: nothing of ours to lose.
                return Ok(Vec::new());
            }
            return Err("the outbox belongs to another group".into());
        }
        if saved.messages.len().saturating_add(self.queue.len()) > MAX_QUEUE {
            return Err(format!("more than {MAX_QUEUE} messages"));
        }
        let cap = self.layout.capacity();
        let max = usize::from(self.group.params().max_fragments);
        let n = self.group.size() as u32;
        if saved.convicted.iter().any(|&i| i >= n) {
            return Err("a recorded conviction names no roster member".into());
        }
        let set = |v: Option<Vec<u32>>| -> Result<Option<BTreeSet<u32>>, String> {
            match v {
                None => Ok(None),
                Some(v) if v.iter().all(|&i| i < n) => Ok(Some(v.into_iter().collect())),
                Some(_) => Err("a recorded set names no roster member".to_string()),
            }
        };
        if saved.links.len().saturating_add(self.links.len()) > MAX_LINKS {
            return Err(format!("more than {MAX_LINKS} links"));
        }
        let mut links = Vec::new();
        for l in saved.links {
            links.push((
                l.link,
                Exposure {
                    anonymity: set(l.anonymity)?,
                    unknown_accusers: l.unknown_accusers as usize,
                    ..Exposure::default()
                },
            ));
        }
        let mut restored = Vec::new();
        let mut queued = Vec::new();
        for m in saved.messages.into_iter().rev() {
            let frags = slots::fragment(&m.message, cap, m.msg_id);
            if frags.len() != m.done.len() || frags.len() > max {
                return Err("a message does not fragment as recorded".into());
            }
            if m.link
                .is_some_and(|l| !links.iter().any(|(id, _)| *id == l))
            {
                return Err("a message names a link the outbox does not record".into());
            }
            let ticket = self.next_ticket;
            self.next_ticket += 1;
            queued.push(Outgoing {
                ticket,
                state: m
                    .done
                    .iter()
                    .map(|&d| {
                        if d {
                            FragState::Done
                        } else {
                            FragState::Pending
                        }
                    })
                    .collect(),
                frags,
                exp: Exposure {
                    first_present: set(m.first_present)?,
                    anonymity: set(m.anonymity)?,
                    unresolved: None,
                    unknown_accusers: m.unknown_accusers as usize,
                    cosealed: BTreeSet::new(),
                },
                link: m.link,
            });
            restored.push(ticket);
        }
        // Validated as a whole before anything is put back.
        for o in queued {
            self.queue.push_front(o);
        }
        restored.reverse();
        // A link this run already uses keeps the narrower of the two (the union of what the
        // relay saw: intersect A, add the unknown accusations).
        for (id, e) in links {
            match self.links.get_mut(&id) {
                None => {
                    self.links.insert(id, e);
                }
                Some(cur) => {
                    if let Some(a) = e.anonymity {
                        cur.anonymity = Some(match cur.anonymity.take() {
                            Some(x) => x.intersection(&a).copied().collect(),
                            None => a,
                        });
                    }
                    cur.unknown_accusers += e.unknown_accusers;
                }
            }
        }
        // Its own earlier verdicts (checked when it reached them).
        self.convicted.extend(saved.convicted);
        self.outbox_rev += 1;
        Ok(restored)
    }

    /// Next frame for the relay.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }
    /// Next event.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        self.events.pop_front()
    }

    /// When [`Member::handle_timeout`] should next be called: the deadline by which the relay
    /// must bring an open blame case to a verdict.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.relay_convicted || self.relay_faulty.is_some() {
            return None;
        }
        let unblind = match &self.phase {
            Phase::Unblinding(a) => a.unblind_by,
            _ => None,
        };
        self.case
            .as_ref()
            .map(|c| c.deadline)
            .into_iter()
            .chain(unblind)
            .min()
    }

    /// Acts on a passed deadline: a relay that let a blame case lapse is treated as faulty.
    /// Harmless if called early.
    pub fn handle_timeout(&mut self, now: Time) {
        self.now = self.now.max(now);
        if let Phase::Unblinding(a) = &self.phase {
            if a.unblind_by.is_some_and(|t| now >= t) {
                let round = a.round;
                return self.fail_relay(format!(
                    "the relay did not close round {round}: no seed set matched the Record it signed"
                ));
            }
        }
        if let Some(c) = self.case.as_ref().filter(|c| now >= c.deadline) {
            let round = c.round;
            self.fail_relay(format!(
                "the relay did not bring the blame case of round {round} to a verdict in time"
            ));
        }
    }

    /// The epoch's content key, if this member holds one (docs/PROTOCOL.md §8.2).
    ///
    /// # Security
    /// Secret: whoever holds it reads every slot of the epoch. It is here for coalition analysis
    /// (tests and simulations model a relay that a member gave it) and for tools that read a
    /// member's own output; never log it, and never hand it to the relay.
    pub fn content_key(&self) -> Option<&ContentKey> {
        self.ep.as_ref().and_then(|e| e.content.key())
    }

    /// Why the relay is no longer trusted, if it is not.
    pub fn relay_faulty(&self) -> Option<&str> {
        self.relay_faulty.as_deref()
    }

    /// Whether a blame case is open (no Open is accepted meanwhile).
    pub fn case_open(&self) -> bool {
        self.case.is_some()
    }

    /// Members this member convicted itself.
    pub fn convicted(&self) -> &BTreeSet<u32> {
        &self.convicted
    }

    fn fail_relay(&mut self, reason: String) {
        if self.relay_faulty.is_some() || self.relay_convicted {
            return;
        }
        self.abandon_attempt();
        self.case = None;
        self.relay_faulty = Some(reason.clone());
        self.events.push_back(MemberEvent::RelayFaulty { reason });
    }

    /// Handles a frame from the relay. On error the state is unchanged, except that a relay
    /// caught breaking a rule is distrusted from then on.
    pub fn handle_message(&mut self, now: Time, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.now = self.now.max(now);
        self.handle_parsed(now, wire::ParsedFrame::parse(bytes)?)
    }

    /// [`Member::handle_message`] for a frame already decoded and hashed by
    /// [`wire::ParsedFrame::parse`] (one parse can serve every receiver of a broadcast). The
    /// member still checks the relay's signature and every rule itself.
    pub fn handle_parsed(
        &mut self,
        now: Time,
        parsed: wire::ParsedFrame,
    ) -> Result<(), ProtocolError> {
        self.now = self.now.max(now);
        let memo = parsed.zset_memo();
        let (header, body, sig, hashes) = parsed.into_shared();
        let kind = header.kind;
        if self.relay_convicted || self.relay_faulty.is_some() {
            return Err(ProtocolError::RelayConvicted);
        }
        if header.sender != Sender::Relay {
            return Err(ProtocolError::WrongSender(kind));
        }
        if &header.group_id != self.group.id() {
            return Err(ProtocolError::WrongGroup);
        }
        // Signature before anything acts on the message. Both hashes come from the bytes
        // received (the decoded frame is canonical, so they are the message's own).
        let relay = *self.group.relay_key();
        let Some(fh) = hashes else {
            return Err(invalid(kind, "not a canonical frame"));
        };
        if !relay.verify(&fh.signed_bytes, &sig) {
            return Err(ProtocolError::BadSignature(kind));
        }
        let body = match body {
            ParsedBody::CommitSet(m) => return self.on_commit_set(m, fh.digest),
            ParsedBody::Record(m) => return self.on_record(m, fh.digest),
            ParsedBody::Other(b) => b,
        };
        macro_rules! checked {
            ($v:expr) => {
                wire::typed(header, $v, sig)
            };
        }
        match body {
            Body::EpochRequest(b) => self.on_epoch_request(checked!(b)),
            Body::EpochKeys(b) => self.on_epoch_keys(checked!(b)),
            Body::Open(b) => self.on_open(checked!(b), fh.digest),
            Body::CommitSet(b) => self.on_commit_set(Arc::new(checked!(b)), fh.digest),
            Body::Record(b) => self.on_record(Arc::new(checked!(b)), fh.digest),
            Body::ZSet(b) => self.on_zset(checked!(b), &memo),
            Body::Abort(b) => self.on_abort(checked!(b)),
            Body::BlameStart(b) => self.on_blame_start(checked!(b)),
            Body::DisclosureSet(b) => self.on_disclosure_set(checked!(b)),
            Body::RevealSet(b) => self.on_reveal_set(checked!(b)),
            Body::Evidence(b) => self.on_evidence(checked!(b)),
            _ => Err(ProtocolError::Unexpected {
                kind,
                phase: self.phase.name(),
            }),
        }
    }

    fn check_epoch(&self, got: u64) -> Result<(), ProtocolError> {
        let expected = self.epoch();
        if got != expected {
            return Err(ProtocolError::WrongEpoch { expected, got });
        }
        Ok(())
    }

    fn sign<T: wire::Payload>(&self, round: u64, body: T) -> Signed<T> {
        Signed::sign(
            &self.key,
            *self.group.id(),
            self.epoch_for_signing(),
            round,
            Sender::Member(self.me),
            body,
        )
    }

    /// Reveal and Unblind: nobody verifies them, so nothing is signed (one signature per
    /// member per round instead of three).
    fn unsigned<T: wire::Payload>(&self, round: u64, body: T) -> Signed<T> {
        Signed::unsigned(
            *self.group.id(),
            self.epoch_for_signing(),
            round,
            Sender::Member(self.me),
            body,
        )
    }

    fn epoch_for_signing(&self) -> u64 {
        match &self.phase {
            Phase::AwaitKeys { epoch, .. } => *epoch,
            _ => self.epoch(),
        }
    }

    fn blame_open(&self, kind: Kind) -> Result<(), ProtocolError> {
        if self.case.is_some() {
            return Err(ProtocolError::Unexpected {
                kind,
                phase: "blame case open",
            });
        }
        Ok(())
    }

    fn on_epoch_request(&mut self, m: Signed<EpochRequest>) -> Result<(), ProtocolError> {
        let epoch = m.header.epoch;
        let unexpected = ProtocolError::Unexpected {
            kind: Kind::EpochRequest,
            phase: self.phase.name(),
        };
        if matches!(self.phase, Phase::Unblinding(_)) {
            // An open Record must be resolved first.
            return Err(unexpected);
        }
        self.blame_open(Kind::EpochRequest)?;
        // The same request again (the relay re-sends it to a member that reconnected while it
        // was open): send the same key again, never a second one for one epoch.
        if let Phase::AwaitKeys {
            epoch: e, secret, ..
        } = &self.phase
        {
            if epoch == *e {
                let again = self.sign(
                    0,
                    EpochKey {
                        key: secret.public(),
                    },
                );
                self.outbox.push_back(again.into_frame());
                return Ok(());
            }
        }
        // Epochs only increase, restarts included, and never jump far. The stored epoch is the
        // highest one this member ever signed a key for (stored before it signs one): a
        // restarted member, which lost that key's secret, never signs a second key for it
        // (attack review 4, finding B). A request above one we answered but whose keys never
        // came is fine: nothing was signed in that epoch but our epoch key.
        let floor = self.epoch().max(self.store.load_epoch());
        if epoch <= floor || epoch > floor.saturating_add(MAX_EPOCH_JUMP) {
            return Err(ProtocolError::WrongEpoch {
                expected: floor.saturating_add(1),
                got: epoch,
            });
        }
        let bad = |r| invalid(Kind::EpochRequest, r);
        if !m.body.members.windows(2).all(|w| w[0] < w[1])
            || m.body.members.len() > self.group.size()
            || m.body
                .members
                .iter()
                .any(|&i| self.group.member_key(i).is_none())
        {
            return Err(bad(
                "member list not sorted, too long or outside the roster",
            ));
        }
        if !m.body.members.contains(&self.me) {
            return Err(bad("we are not invited"));
        }
        if m.body.members.iter().any(|i| self.convicted.contains(i)) {
            return Err(bad("invites a convicted member"));
        }
        // Any request that takes us out of our epoch must name how our last case ended,
        // whatever epoch number it jumps to (a relay that split members over a case could
        // otherwise merge them again by skipping an epoch number).
        if self.last_case.is_some() && m.body.last_case != self.last_case {
            return Err(bad("names another conclusion of our last blame case"));
        }
        let secret = loop {
            let mut wide = [0u8; 64];
            self.rng.fill_bytes(&mut wide);
            if let Some(s) = EpochSecret::from_uniform_bytes(&wide) {
                break s;
            }
        };
        let public = secret.public();
        // Durably before the key is signed: one key per epoch, whatever happens next.
        self.store
            .store_epoch(epoch)
            .map_err(ProtocolError::Persist)?;
        self.abandon_attempt();
        self.phase = Phase::AwaitKeys {
            epoch,
            secret,
            invited: m.body.members.clone(),
        };
        let msg = self.sign(0, EpochKey { key: public });
        self.outbox.push_back(msg.into_frame());
        Ok(())
    }

    fn on_epoch_keys(&mut self, m: Signed<EpochKeys>) -> Result<(), ProtocolError> {
        let Phase::AwaitKeys {
            epoch,
            secret,
            invited,
        } = &self.phase
        else {
            return Err(ProtocolError::Unexpected {
                kind: Kind::EpochKeys,
                phase: self.phase.name(),
            });
        };
        let epoch = *epoch;
        if m.header.epoch != epoch {
            return Err(ProtocolError::WrongEpoch {
                expected: epoch,
                got: m.header.epoch,
            });
        }
        let bad = |r| invalid(Kind::EpochKeys, r);
        if m.body.keys.len() > invited.len() {
            return Err(bad("more keys than invited members"));
        }
        let mut keys = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for k in &m.body.keys {
            let Sender::Member(i) = k.header.sender else {
                return Err(bad("key not from a member"));
            };
            // Only members we saw invited, and none we convicted (a kept colluder would lower
            // the anonymity floor of everyone else).
            if !invited.contains(&i) || self.convicted.contains(&i) {
                return Err(bad("key from a member not invited, or convicted"));
            }
            let Some(pk) = self.group.member_key(i) else {
                return Err(bad("key from outside the roster"));
            };
            if k.header.group_id != *self.group.id()
                || k.header.epoch != epoch
                || k.header.round != 0
            {
                return Err(bad("key for another group or epoch"));
            }
            // (Modeled crypto, simulation only: the relay verified these; skipping the N
            // verifications per member keeps N = 1000 epochs tractable.)
            if !self.modeled && !k.verify(pk) {
                return Err(ProtocolError::BadSignature(Kind::EpochKey));
            }
            if k.body.key.point().is_none() {
                return Err(bad("identity or invalid point"));
            }
            if !seen.insert(k.body.key) {
                return Err(bad("duplicate epoch key"));
            }
            if keys.insert(i, k.body.key).is_some() {
                return Err(bad("two keys for one member"));
            }
        }
        if keys.get(&self.me) != Some(&secret.public()) {
            return Err(bad("our own key is missing or altered"));
        }
        if keys.len() < 2 {
            return Err(bad("fewer than two members"));
        }
        // Durable before we act in the epoch: a restart never re-enters it.
        if epoch > self.store.load_epoch() {
            self.store
                .store_epoch(epoch)
                .map_err(ProtocolError::Persist)?;
        }
        let Phase::AwaitKeys { secret, .. } = std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            unreachable!("checked above")
        };
        self.epoch_keys = Some(m.clone());
        self.done = None;
        self.prev_evidence = None;
        self.case = None;
        self.last_case = None;
        self.concluded = None;
        let gid = *self.group.id();
        let mine = secret.public();
        let mut pairs = BTreeMap::new();
        for (&j, ek) in &keys {
            // Modeled crypto computes no pads, so it needs no pair secrets.
            if j == self.me || self.modeled {
                continue;
            }
            // Points were validated above, so `shared` cannot fail.
            if let Some(k) = secret.shared(ek).map(Zeroizing::new) {
                pairs.insert(
                    j,
                    keys::pair_secret(&gid, epoch, (self.me, &mine), (j, ek), &k),
                );
            }
        }
        let list: Vec<(u32, EpochPublic)> = keys.iter().map(|(i, k)| (*i, *k)).collect();
        self.chain_head = keys::view_genesis(&gid, epoch, &list);
        self.last = None;
        self.release_owned();
        self.alloc_src = None;
        let members: Vec<u32> = keys.keys().copied().collect();
        self.ep = Some(EpochState {
            epoch,
            secret,
            keys,
            pairs,
            content: Content::Unset,
            completed: 0,
        });
        self.events
            .push_back(MemberEvent::EpochStarted { epoch, members });
        Ok(())
    }

    /// `digest`: the Open's digest, from the frame received (see `handle_message`).
    fn on_open(&mut self, m: Signed<Open>, digest: Hash) -> Result<(), ProtocolError> {
        if !matches!(
            self.phase,
            Phase::Ready | Phase::Committed(_) | Phase::Revealed(_)
        ) {
            return Err(ProtocolError::Unexpected {
                kind: Kind::Open,
                phase: self.phase.name(),
            });
        }
        self.check_epoch(m.header.epoch)?;
        self.blame_open(Kind::Open)?;
        let round = m.header.round;
        if round <= self.hw || round > self.hw.saturating_add(MAX_ROUND_JUMP) {
            return Err(ProtocolError::BadRound {
                round,
                high_water: self.hw,
            });
        }
        let bad = |r| invalid(Kind::Open, r);
        let o = &m.body;
        let ep = self.ep.as_ref().ok_or(bad("no epoch"))?;
        if matches!(ep.content, Content::Refused) {
            // Our seal did not open: we could neither read nor write. Sitting the epoch out
            // makes that visible as an absence, so every sender's anonymity rule (§7.1) stops
            // counting us; staying present would let the keyholder's coalition know one
            // "present" member cannot be the sender (attack review).
            return Err(bad(
                "our content key seal did not open: sitting this epoch out (we rejoin at the next)",
            ));
        }
        if ep.completed >= self.group.params().epoch_rounds {
            // Forward secrecy on a schedule: the content key and the epoch keys of this epoch
            // must be erased; a relay that does not start a new epoch gets no more rounds.
            return Err(bad(
                "the epoch has run its epoch_rounds rounds; a new epoch is due",
            ));
        }
        if !o.present.windows(2).all(|w| w[0] < w[1]) {
            return Err(bad("present set not sorted"));
        }
        if !o.present.iter().all(|i| ep.keys.contains_key(i)) {
            return Err(bad("present member outside the epoch"));
        }
        if o.present.iter().any(|i| self.convicted.contains(i)) {
            return Err(bad("present set holds a convicted member"));
        }
        if !o.present.contains(&self.me) {
            return Err(bad("we are not in the present set"));
        }
        if o.present.len() < 2 {
            return Err(bad("present set smaller than 2"));
        }
        if !ct_eq(&o.view_prev, &self.chain_head) {
            return Err(bad("does not extend our view chain"));
        }
        if o.last != self.last {
            return Err(bad("last completed round disagrees"));
        }
        if o.last_case != self.last_case {
            return Err(bad("names another conclusion of the last blame case"));
        }
        let expected_alloc = self
            .alloc_src
            .as_ref()
            .filter(|s| !s.alloc.overflow && s.present.iter().all(|i| o.present.contains(i)))
            .map(|s| (s.round, s.record));
        if o.alloc != expected_alloc {
            return Err(bad("allocation disagrees with ours"));
        }
        if !o.voids.is_empty() {
            // Cell checks are the only source of voids; none are open.
            return Err(bad("voids cells we know no check for"));
        }
        // Persist the high-water mark before signing anything for this round: a block of rounds
        // at a time, never signing past the stored reservation.
        if round > self.store.load() {
            let reserve = round.saturating_add(HIGH_WATER_BLOCK - 1);
            self.store.store(reserve).map_err(ProtocolError::Persist)?;
        }
        self.hw = round;
        // Accepting a later Open means every accusation about earlier rounds was seen (a case
        // the member saw open must conclude first).
        for e in self
            .queue
            .iter_mut()
            .map(|o| &mut o.exp)
            .chain(self.links.values_mut())
        {
            if e.unresolved.is_some_and(|r| r < round) {
                e.unresolved = None;
                self.outbox_rev += 1;
            }
        }
        // A new Open replaces an attempt the relay gave up on without telling us.
        self.abandon_attempt();
        let attempt = self.compose(m, digest);
        self.outbox.push_back(attempt.commit.clone().into_frame());
        if self.faults.contains(&MemberFault::Equivocate) {
            // A second, different commitment for the same round.
            let mut other = attempt.commit.body.clone();
            other.blinding[0] ^= 1;
            self.outbox
                .push_back(self.sign(attempt.round, other).into_frame());
        }
        self.phase = Phase::Committed(Box::new(attempt));
        Ok(())
    }

    /// Builds our contribution `m_i`, ciphertext and commitment for an accepted Open.
    fn compose(&mut self, open: Signed<Open>, open_hash: Hash) -> Attempt {
        let round = open.header.round;
        let view = keys::view_step(&self.chain_head, round, &open_hash);
        let gid = *self.group.id();
        let layout = self.layout;
        let mut m = vec![0u8; layout.len()];
        // Our owned slot, if this attempt uses the allocation we won in.
        let mut slot_written = None;
        let mut held_back = false;
        let uses_alloc = open.body.alloc.is_some();
        let content_key = self.ep.as_ref().and_then(|e| e.content.key().cloned());
        if uses_alloc && content_key.is_some() {
            self.take_cover_slot(&open.body.present);
        }
        if uses_alloc {
            if let (Some(src), Some(ck)) = (&self.alloc_src, &content_key) {
                if let Some(own) = &src.mine {
                    let key = ck.slot_key(round, own.slot);
                    let trap = || slots::trap_slot(&layout, round, own.slot, &own.gamma, &key);
                    let content = match own.purpose {
                        Purpose::Trap | Purpose::Cover => trap(),
                        Purpose::Fragment { ticket, index } => {
                            let present: BTreeSet<u32> =
                                open.body.present.iter().copied().collect();
                            match self.queue.iter().find(|o| o.ticket == ticket) {
                                Some(o) => match self.anonymity_check(o, &present) {
                                    Ok(()) => slots::frame_fragment(
                                        &layout,
                                        round,
                                        own.slot,
                                        &o.frags[index as usize],
                                        &key,
                                    ),
                                    Err((reason, anonymity, floor)) => {
                                        held_back = true;
                                        self.events.push_back(MemberEvent::HeldBack {
                                            ticket,
                                            round,
                                            reason,
                                            anonymity,
                                            floor,
                                        });
                                        trap()
                                    }
                                },
                                None => trap(),
                            }
                        }
                    };
                    m[layout.slot(own.slot)].copy_from_slice(&content);
                    slot_written = Some((own.slot, content));
                }
            }
            // Without the content key our slot stays empty (nothing anyone could read).
        }
        // Reserve: one cell, every round (a trap when idle, with probability p_cover).
        let ahead = self.next_gamma.take();
        let ep = self.ep.as_ref().expect("on_open checked the epoch");
        let gamma = match ahead {
            Some((e, r, g)) if e == ep.epoch && r == round => g,
            _ => ep.secret.gamma(&gid, ep.epoch, round),
        };
        let footprint = keys::footprint(&gamma);
        let present: BTreeSet<u32> = open.body.present.iter().copied().collect();
        let purpose = self.choose_purpose(&present);
        let reservation = purpose.map(|purpose| {
            let cell = (self.rng.next_u64() % u64::from(layout.cells)) as u32;
            Reservation {
                cell,
                footprint,
                gamma,
                purpose,
            }
        });
        if let Some(r) = &reservation {
            if r.footprint != [0; 8] {
                m[layout.cell(r.cell)].copy_from_slice(&r.footprint);
            }
        }
        // c_i = m_i ⊕ b_i ⊕ ⨁_{j≠i} pad_ij
        let mut z = [0u8; 32];
        self.rng.fill_bytes(&mut z);
        let z = StreamKey::from_bytes(z);
        self.jam(&mut m, &open.body);
        let plain = Zeroizing::new(m.clone());
        let mut c = m;
        let ep = self.ep.as_ref().expect("checked");
        let pairs = open.body.present.iter().filter_map(|j| ep.pairs.get(j));
        if !self.modeled {
            pad::encrypt_in_place(&mut self.ks, &mut c, round, &view, pairs, &z);
        }
        let (content, offered) = self.offer_content(round, &open.body.present);
        let commit = self.sign(
            round,
            Commit {
                open: open_hash,
                ciphertext: merkle::commit(&c),
                blinding: keys::blind_commitment(&z),
                content,
            },
        );
        Attempt {
            round,
            open,
            open_hash,
            view,
            ciphertext: c,
            plain,
            slot_written,
            held_back,
            z,
            commit,
            commit_set: None,
            record: None,
            reservation,
            uses_alloc,
            exposed: None,
            unblind_by: None,
            offered,
        }
    }

    /// As the attempt's keyholder while the epoch has no content key: a fresh `K_c`, sealed to
    /// every other member of P (docs/PROTOCOL.md §8.2).
    fn offer_content(
        &mut self,
        round: u64,
        present: &[u32],
    ) -> (Option<ContentSeal>, Option<ContentKey>) {
        let Some(ep) = self.ep.as_ref() else {
            return (None, None);
        };
        if !matches!(ep.content, Content::Unset)
            || keyholder(round, present) != Some(self.me)
            || self.faults.contains(&MemberFault::NoSeal)
        {
            return (None, None);
        }
        let gid = *self.group.id();
        let mut k = [0u8; 32];
        self.rng.fill_bytes(&mut k);
        let key = ContentKey::from_bytes(k);
        k.fill(0);
        let mut seals = Vec::with_capacity(present.len().saturating_sub(1));
        for &j in present.iter().filter(|&&j| j != self.me) {
            // Modeled crypto (simulation only) derives no pair secrets: the seal is then the
            // key itself, to keep frame sizes honest.
            let mask = match (ep.pairs.get(&j), self.modeled) {
                (Some(pair), _) => keys::seal_mask(pair, &gid, ep.epoch, round, self.me, j),
                (None, true) => [0u8; 32],
                // No pair secret with j (cannot happen for validated keys): seal nothing
                // rather than send the key in the clear.
                (None, false) => return (None, None),
            };
            let mut seal = key.seal(&mask);
            if self.faults.contains(&MemberFault::BadSeal { victim: j }) {
                seal[0] ^= 1;
            }
            seals.push((j, seal));
        }
        let seal = ContentSeal {
            id: key.id(&gid, ep.epoch),
            seals,
        };
        (Some(seal), Some(key))
    }

    /// After a completed round, while the epoch has no content key: take the one the round's
    /// keyholder sealed, if its Commit carries a well-formed seal list.
    fn learn_content(&mut self, a: &Attempt) {
        let gid = *self.group.id();
        let me = self.me;
        let modeled = self.modeled;
        let Some(ep) = self.ep.as_mut() else { return };
        if !matches!(ep.content, Content::Unset) {
            return;
        }
        let present = &a.open.body.present;
        let Some(holder) = keyholder(a.round, present) else {
            return;
        };
        let Some((set, _)) = &a.commit_set else {
            return;
        };
        let Some(commit) = set
            .body
            .commits
            .iter()
            .find(|c| c.header.sender == Sender::Member(holder))
        else {
            return;
        };
        let Some(cs) = &commit.body.content else {
            return;
        };
        // Act only on the keyholder's own signed word: a relay that put a seal list of its own
        // in the CommitSet must not make us sit out, nor name an innocent keyholder.
        let signed = modeled
            || self
                .group
                .member_key(holder)
                .is_some_and(|pk| commit.verify(pk));
        if !signed || !seal_list_ok(cs, present, holder) {
            return;
        }
        if holder == me {
            if let Some(k) = &a.offered {
                ep.content = Content::Open(k.clone());
            }
            return;
        }
        let Some(&(_, sealed)) = cs.seals.iter().find(|(j, _)| *j == me) else {
            return;
        };
        let mask = match (ep.pairs.get(&holder), modeled) {
            (Some(pair), _) => keys::seal_mask(pair, &gid, ep.epoch, a.round, holder, me),
            (None, true) => [0u8; 32],
            (None, false) => {
                ep.content = Content::Refused;
                return;
            }
        };
        match ContentKey::open(&sealed, &mask, &gid, ep.epoch, &cs.id) {
            Some(k) => ep.content = Content::Open(k),
            None => {
                ep.content = Content::Refused;
                let epoch = ep.epoch;
                self.events
                    .push_back(MemberEvent::ContentKeyRefused { epoch, holder });
            }
        }
    }

    /// The sender-side anonymity rule: a piece goes out only if every member present when the
    /// first piece went out (less convicted ones) is present now, and the set of members present
    /// in every round a piece went out in stays at or above the floor `N − t − convicted`.
    fn anonymity_check(
        &self,
        o: &Outgoing,
        present: &BTreeSet<u32>,
    ) -> Result<(), (String, usize, usize)> {
        self.exposure_check(&o.exp, present, true)?;
        // A linked message: the link's A holds every round any of its messages went out in
        // (docs/PROTOCOL.md §7.2). Only the floor applies to it, not R: a member present at a
        // pseudonym's first post that never returns would otherwise silence it for good
        // (attack review 6, finding 4).
        match o.link.map(|l| self.links.get(&l)) {
            None => Ok(()),
            Some(Some(e)) => self.exposure_check(e, present, false).map_err(|(r, a, f)| {
                (
                    format!("{r} (counting every message of its pseudonym or conversation)"),
                    a,
                    f,
                )
            }),
            Some(None) => Err(("its link's sets are missing".into(), 0, 0)),
        }
    }

    fn exposure_check(
        &self,
        o: &Exposure,
        present: &BTreeSet<u32>,
        require_r: bool,
    ) -> Result<(), (String, usize, usize)> {
        let t = self.group.params().tolerance as usize;
        let floor = self
            .group
            .size()
            .saturating_sub(t + self.convicted.len())
            .max(2);
        let a: BTreeSet<u32> = match &o.anonymity {
            Some(a) => a.intersection(present).copied().collect(),
            None => present.clone(),
        };
        // Accusations it may have missed across a restart, and sealed messages sent in a round
        // with one of its pieces, each count as one member less.
        let a_len = a.len().saturating_sub(o.unknown());
        if let Some(r) = o.first_present.as_ref().filter(|_| require_r) {
            let missing: Vec<u32> = r
                .iter()
                .filter(|i| !self.convicted.contains(i) && !present.contains(i))
                .copied()
                .collect();
            if !missing.is_empty() {
                return Err((
                    format!(
                        "{} member(s) present when its first piece went out are absent now",
                        missing.len()
                    ),
                    a_len,
                    floor,
                ));
            }
        }
        // One valid accusation may come after the round (from D's first slot's owner) and tell
        // the relay that its signer sent nothing then: keep one member to spare, where the
        // roster allows it, so the set stays at or above the floor afterwards too.
        let left = self.group.size().saturating_sub(self.convicted.len());
        let need = if floor < left { floor + 1 } else { floor };
        // A only shrinks: once it is below what a piece needs even with everyone back, the
        // message (or pseudonym) can never go on, and the user should hear it.
        let whole = o
            .anonymity
            .as_ref()
            .map_or(usize::MAX, |x| x.len().saturating_sub(o.unknown()));
        if whole < need {
            return Err((
                format!(
                    "{PERMANENT}: the members who could have sent its earlier pieces are down to \
                     {whole} for good (accusations, or private answers beside them), and a piece \
                     needs {need} (until a conviction lowers the floor); for a pseudonym, start a \
                     new one"
                ),
                a_len,
                floor,
            ));
        }
        if a_len < need {
            return Err((
                format!(
                    "its anonymity set would be {a_len} members, and one accusation could take \
                     it below the floor of {floor}"
                ),
                a_len,
                floor,
            ));
        }
        Ok(())
    }

    /// A slot we won with a cover reservation goes to the next pending piece instead of
    /// trap content, with probability `1 − p_trap` (the trap share a disruptor faces stays
    /// `p_trap` whenever a piece is pending, as if the piece had reserved it), and only if the
    /// piece may go out in this present set. Saves the reservation round of a message that
    /// arrives while its member is idle (issue 12; docs/PROTOCOL.md §7).
    fn take_cover_slot(&mut self, present: &[u32]) {
        let cover = self
            .alloc_src
            .as_ref()
            .and_then(|s| s.mine.as_ref())
            .is_some_and(|o| o.purpose == Purpose::Cover);
        if !cover {
            return;
        }
        let present: BTreeSet<u32> = present.iter().copied().collect();
        let Some((ticket, index)) = self.next_piece(&present) else {
            return;
        };
        let ok = self
            .queue
            .iter()
            .find(|o| o.ticket == ticket)
            .is_some_and(|o| self.anonymity_check(o, &present).is_ok());
        if !ok {
            return;
        }
        let coin = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        if coin < self.group.params().p_trap {
            // One draw per won slot: a retried attempt (a fresh Open, same allocation) must
            // not draw again (attack review 8: k re-Opens made it a trap with p_trap^(k+1)).
            if let Some(own) = self.alloc_src.as_mut().and_then(|s| s.mine.as_mut()) {
                own.purpose = Purpose::Trap;
            }
            return;
        }
        if let Some(o) = self.queue.iter_mut().find(|o| o.ticket == ticket) {
            o.state[index as usize] = FragState::Reserved;
        }
        if let Some(own) = self.alloc_src.as_mut().and_then(|s| s.mine.as_mut()) {
            own.purpose = Purpose::Fragment { ticket, index };
        }
    }

    fn choose_purpose(&mut self, present: &BTreeSet<u32>) -> Option<Purpose> {
        if self
            .ep
            .as_ref()
            .is_some_and(|e| matches!(e.content, Content::Refused))
        {
            // Our seal did not open: we could write nothing into a slot we won.
            return None;
        }
        let p = self.group.params().clone();
        let next = self.next_piece(present);
        let coin = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        match next {
            Some((ticket, index)) => {
                if coin < p.p_trap {
                    Some(Purpose::Trap)
                } else {
                    if let Some(o) = self.queue.iter_mut().find(|o| o.ticket == ticket) {
                        o.state[index as usize] = FragState::Reserved;
                    }
                    Some(Purpose::Fragment { ticket, index })
                }
            }
            None => (coin < p.p_cover).then_some(Purpose::Cover),
        }
    }

    /// The piece to send next: the first pending fragment of the oldest unfinished message, or
    /// of a later one when the front one may not go out in this present set.
    fn next_piece(&self, present: &BTreeSet<u32>) -> Option<(u64, u16)> {
        let pending = |o: &Outgoing| {
            o.state
                .iter()
                .position(|s| *s == FragState::Pending)
                .map(|i| (o.ticket, i as u16))
        };
        let mut next = self.queue.front().and_then(pending);
        // A front message that the present set would hold back (its R is not all here, or a
        // pseudonym's set would shrink) does not hold back a later one that could go out now,
        // even one already partly out (otherwise a front message stuck for good would stall
        // every later long message after its first piece: attack review 7, finding 1)
        // (docs/PROTOCOL.md §7.2). Otherwise messages go in order.
        // Messages of one link keep their order (a pseudonym's posts carry increasing
        // counters, and readers refuse a lower one after a higher: attack review 6, finding 2).
        if let Some(front) = self.queue.front() {
            if next.is_some() && self.anonymity_check(front, present).is_err() {
                let mut links_before: BTreeSet<LinkId> = front.link.into_iter().collect();
                let mut alt = None;
                for o in self.queue.iter().skip(1) {
                    let overtakes_its_link = o.link.is_some_and(|l| links_before.contains(&l));
                    if !overtakes_its_link
                        && pending(o).is_some()
                        && self.anonymity_check(o, present).is_ok()
                    {
                        alt = Some(o);
                        break;
                    }
                    links_before.extend(o.link);
                }
                if let Some(alt) = alt {
                    next = pending(alt);
                }
            }
        }
        next
    }

    fn set_frag(&mut self, purpose: Purpose, state: FragState) {
        if let Purpose::Fragment { ticket, index } = purpose {
            if let Some(o) = self.queue.iter_mut().find(|o| o.ticket == ticket) {
                if o.state[index as usize] != FragState::Done {
                    o.state[index as usize] = state;
                    if state == FragState::Done {
                        self.outbox_rev += 1;
                    }
                }
            }
        }
    }

    /// Drops the attempt in flight; its reservation is lost, its fragment goes back to pending.
    fn abandon_attempt(&mut self) {
        let phase = std::mem::replace(&mut self.phase, Phase::Ready);
        match phase {
            Phase::Committed(a) | Phase::Revealed(a) | Phase::Unblinding(a) => {
                if let Some(r) = a.reservation {
                    self.set_frag(r.purpose, FragState::Pending);
                }
            }
            p @ Phase::AwaitKeys { .. } => self.phase = p,
            Phase::NoEpoch => self.phase = Phase::NoEpoch,
            Phase::Ready => {}
        }
    }

    /// Our won slot will not be used: its fragment goes back to pending.
    fn release_owned(&mut self) {
        if let Some(own) = self.alloc_src.as_mut().and_then(|s| s.mine.take()) {
            self.set_frag(own.purpose, FragState::Pending);
        }
    }

    fn current_attempt(&self, kind: Kind, round: u64) -> Result<(), ProtocolError> {
        let a = match &self.phase {
            Phase::Committed(a) | Phase::Revealed(a) | Phase::Unblinding(a) => a,
            _ => {
                return Err(ProtocolError::Unexpected {
                    kind,
                    phase: self.phase.name(),
                });
            }
        };
        if a.round != round {
            return Err(invalid(kind, "not the round in flight"));
        }
        Ok(())
    }

    fn on_commit_set(
        &mut self,
        m: Arc<Signed<CommitSet>>,
        digest: Hash,
    ) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        self.current_attempt(Kind::CommitSet, m.header.round)?;
        let Phase::Committed(a) = &self.phase else {
            return Err(ProtocolError::Unexpected {
                kind: Kind::CommitSet,
                phase: self.phase.name(),
            });
        };
        let bad = |r| invalid(Kind::CommitSet, r);
        if m.body.open != a.open_hash {
            return Err(bad("binds another Open"));
        }
        let present = &a.open.body.present;
        if m.body.commits.len() != present.len() {
            return Err(bad("does not cover the present set"));
        }
        for (c, &i) in m.body.commits.iter().zip(present) {
            let h = &c.header;
            if h.sender != Sender::Member(i)
                || h.round != a.round
                || h.epoch != m.header.epoch
                || h.group_id != m.header.group_id
                || h.kind != Kind::Commit
            {
                return Err(bad("commitment out of place"));
            }
            if i == self.me && c != &a.commit {
                return Err(bad("our commitment was altered"));
            }
        }
        let Phase::Committed(mut a) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            unreachable!("checked above")
        };
        a.commit_set = Some((m, digest));
        if self.faults.contains(&MemberFault::Withhold) {
            self.phase = Phase::Revealed(a);
            return Ok(());
        }
        let reveal = self.unsigned(
            a.round,
            Reveal {
                ciphertext: a.ciphertext.clone(),
            },
        );
        self.outbox.push_back(reveal.into_frame());
        self.phase = Phase::Revealed(a);
        Ok(())
    }

    fn on_record(&mut self, m: Arc<Signed<Record>>, digest: Hash) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        self.current_attempt(Kind::Record, m.header.round)?;
        let Phase::Revealed(a) = &self.phase else {
            return Err(ProtocolError::Unexpected {
                kind: Kind::Record,
                phase: self.phase.name(),
            });
        };
        let bad = |r| invalid(Kind::Record, r);
        let Some((cs, _)) = &a.commit_set else {
            return Err(bad("no CommitSet"));
        };
        // The very CommitSet we verified and revealed against. Comparing the decoded messages
        // is comparing their canonical encodings (§4), hence their digests, without hashing
        // the set again.
        if m.body.commit_set != **cs {
            return Err(bad("CommitSet differs from the one we revealed against"));
        }
        if m.body.xor.len() != self.layout.len() {
            return Err(bad("wrong length"));
        }
        let relay = *self.group.relay_key();
        // Only Opens some commitment binds, each once: at most |P| signature checks.
        let bound: BTreeSet<Hash> = m
            .body
            .commit_set
            .body
            .commits
            .iter()
            .map(|c| c.body.open)
            .collect();
        if m.body.opens.len() > bound.len() {
            return Err(bad("more Opens than the commitments bind"));
        }
        let mut open_hashes = BTreeSet::new();
        for o in &m.body.opens {
            let h = o.digest();
            if !bound.contains(&h) || open_hashes.contains(&h) {
                return Err(bad("an Open no commitment binds, or twice"));
            }
            if o.header.round != a.round
                || o.header.epoch != m.header.epoch
                || o.header.group_id != m.header.group_id
            {
                return Err(bad("Open of another round"));
            }
            if h != a.open_hash && !o.verify(&relay) {
                return Err(ProtocolError::BadSignature(Kind::Open));
            }
            open_hashes.insert(h);
        }
        let equivocated = open_hashes.len() > 1;
        let complete = open_hashes.contains(&a.open_hash)
            && m.body
                .commit_set
                .body
                .commits
                .iter()
                .all(|c| open_hashes.contains(&c.body.open));
        let round = a.round;
        let opens = m.body.opens.clone();
        let Phase::Revealed(mut a) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            unreachable!("checked above")
        };
        if equivocated {
            // Two relay-signed Opens for one round: the relay showed members different
            // histories. Convict it from this Record alone; never unblind.
            self.events.push_back(MemberEvent::RelayEquivocated {
                round,
                opens: opens.clone(),
            });
            if let Some(r) = a.reservation.take() {
                self.set_frag(r.purpose, FragState::Pending);
            }
            if let Some(epoch_keys) = self.epoch_keys.clone() {
                let case = Case {
                    record: Some(Arc::unwrap_or_clone(m)),
                    ..Case::empty(self.group.to_data(), epoch_keys)
                };
                if let Ok(v) = blame::judge(&case) {
                    self.apply_verdict(case, v);
                }
            }
            return Ok(());
        }
        if !complete {
            self.events.push_back(MemberEvent::RecordInvalid { round });
            if let Some(r) = a.reservation.take() {
                self.set_frag(r.purpose, FragState::Pending);
            }
            return Ok(());
        }
        a.record = Some((m, digest));
        // From here on the relay can read our slot: the piece counts as sent in this round's
        // present set, whatever happens next (withheld seeds, damage, a reconnect).
        self.note_exposure(&mut a);
        let unblind = self.unsigned(round, Unblind { z: *a.z.expose() });
        self.outbox.push_back(unblind.into_frame());
        let p = self.group.params();
        a.unblind_by = Some(
            self.now.plus_millis(
                p.unblind_ms
                    .saturating_mul(2)
                    .saturating_add(p.commit_ms)
                    .saturating_add(p.post_round_ms),
            ),
        );
        self.phase = Phase::Unblinding(a);
        Ok(())
    }

    fn on_abort(&mut self, m: Signed<Abort>) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        self.current_attempt(Kind::Abort, m.header.round)?;
        if matches!(self.phase, Phase::Unblinding(_)) {
            // After a Record only a ZSet (or its withholding claim) closes the case.
            return Err(ProtocolError::Unexpected {
                kind: Kind::Abort,
                phase: self.phase.name(),
            });
        }
        self.abandon_attempt();
        self.events.push_back(MemberEvent::Aborted {
            round: m.header.round,
            missing: m.body.missing,
        });
        Ok(())
    }

    fn on_zset(&mut self, m: Signed<ZSet>, memo: &ZSetMemo) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        self.current_attempt(Kind::ZSet, m.header.round)?;
        let Phase::Unblinding(a) = &self.phase else {
            return Err(ProtocolError::Unexpected {
                kind: Kind::ZSet,
                phase: self.phase.name(),
            });
        };
        let bad = |r| invalid(Kind::ZSet, r);
        let Some((record, rec_hash)) = &a.record else {
            return Err(bad("no Record"));
        };
        if m.body.record != *rec_hash {
            return Err(bad("names another Record"));
        }
        let commits = &record.body.commit_set.body.commits;
        let present = &a.open.body.present;
        // Member → its place in the ZSet's seed list.
        let seeds: BTreeMap<u32, usize> = m
            .body
            .seeds
            .iter()
            .enumerate()
            .map(|(k, (i, _))| (*i, k))
            .collect();
        if seeds.len() != m.body.seeds.len() {
            return Err(bad("duplicate seed"));
        }
        for i in seeds.keys().chain(&m.body.missing) {
            if !present.contains(i) {
                return Err(bad("member outside the present set"));
            }
        }
        // The seeds' commitments are a function of this frame's bytes alone: computed once for
        // every holder of this parse.
        let (blindings, _) = memo.commitments.get_or_init(|| {
            let t0 = std::time::Instant::now();
            let b = m
                .body
                .seeds
                .iter()
                .map(|(_, z)| keys::blind_commitment(&StreamKey::from_bytes(*z)))
                .collect();
            (b, t0.elapsed())
        });
        for (c, i) in commits.iter().zip(present) {
            match seeds.get(i) {
                Some(&k) => {
                    if !blindings.get(k).is_some_and(|b| ct_eq(b, &c.body.blinding)) {
                        return Err(bad("seed does not match its commitment"));
                    }
                }
                None if m.body.missing.contains(i) => {}
                None => return Err(bad("seed neither given nor claimed missing")),
            }
        }
        let Phase::Unblinding(a) = std::mem::replace(&mut self.phase, Phase::Ready) else {
            unreachable!("checked above")
        };
        if !m.body.missing.is_empty() {
            if let Some(r) = &a.reservation {
                self.set_frag(r.purpose, FragState::Pending);
            }
            self.events.push_back(MemberEvent::Withheld {
                round: a.round,
                missing: m.body.missing,
            });
            return Ok(());
        }
        let Some((record, rec_hash)) = a.record.clone() else {
            unreachable!("checked above")
        };
        let round = a.round;
        let key = OutputKey {
            record: rec_hash,
            modeled: self.modeled,
            layout: self.layout,
        };
        let mut compute = || {
            let t0 = std::time::Instant::now();
            let mut clear = record.body.xor.clone();
            if !self.modeled {
                let seeds: Vec<StreamKey> = seeds
                    .values()
                    .map(|&k| StreamKey::from_bytes(m.body.seeds[k].1))
                    .collect();
                pad::unblind_in_place(&mut self.ks, &mut clear, round, &seeds);
            }
            let checks = slots::OutputChecks::new(&self.layout, round, &clear);
            RoundOutput {
                key,
                clear: clear.into(),
                checks,
                took: t0.elapsed(),
                alloc: std::sync::OnceLock::new(),
            }
        };
        // The cleartext and its checks: a function of the Record (named by the digest we
        // checked it against), of the seeds and of the pads' mode, shared by every holder of
        // this parse whose key is ours; any other computes its own.
        match memo.output.get_or_init(&mut compute) {
            o if o.key == key => self.complete(a, rec_hash, o, m),
            _ => {
                let o = compute();
                self.complete(a, rec_hash, &o, m)
            }
        }
        // While the next Open travels here: its footprint.
        self.prepare_footprint(round.saturating_add(1));
        Ok(())
    }

    /// Computes `Γ` for `round` of the current epoch ahead of its Open (`next_gamma`).
    fn prepare_footprint(&mut self, round: u64) {
        self.next_gamma = self.ep.as_ref().map(|ep| {
            (
                ep.epoch,
                round,
                ep.secret.gamma(self.group.id(), ep.epoch, round),
            )
        });
    }

    /// A round completed: extend the chain, settle our slot and reservation, deliver.
    fn complete(
        &mut self,
        mut a: Box<Attempt>,
        rec_hash: Hash,
        out: &RoundOutput,
        zset: Signed<ZSet>,
    ) {
        let clear = out.clear.clone();
        let checks = &out.checks;
        let layout = self.layout;
        let round = a.round;
        self.chain_head = a.view;
        self.last = Some((round, rec_hash));
        // 1. The slots of this attempt (if it used an allocation).
        let (mut allocated, mut filled, mut damaged) = (0, 0, 0);
        let mut pieces = Vec::new();
        // `checks`: the output digest and every slot's keyless state, computed once for all
        // that follows.
        // Sealed messages (or fragments we cannot tell are not) in slots other than ours.
        let mut cosealed: Vec<[u8; 8]> = Vec::new();
        let old = self.alloc_src.take();
        let own_slot = old.as_ref().and_then(|s| s.mine.as_ref()).map(|m| m.slot);
        let content_key = self.ep.as_ref().and_then(|e| e.content.key().cloned());
        if a.uses_alloc {
            if let Some(src) = &old {
                for &slot in src.alloc.by_cell.values() {
                    allocated += 1;
                    let bytes = &clear[layout.slot(slot)];
                    let state = checks.state(slot);
                    let Some(ck) = &content_key else {
                        // No key (none yet, or our seal failed): intact or not is all we see.
                        match state {
                            SlotState::Intact => filled += 1,
                            SlotState::Damaged => damaged += 1,
                            SlotState::Empty => {}
                        }
                        continue;
                    };
                    let content = match state {
                        SlotState::Empty => SlotContent::Empty,
                        SlotState::Damaged => SlotContent::Damaged,
                        SlotState::Intact => {
                            slots::read_intact(&layout, round, bytes, &ck.slot_key(round, slot))
                        }
                    };
                    match content {
                        SlotContent::Fragment(f) => {
                            filled += 1;
                            let sealed = if f.index == 0 {
                                let sealed = f
                                    .payload
                                    .starts_with(&[crate::chat::MARKER, crate::chat::KIND_SEALED]);
                                if !sealed {
                                    self.note_plain(f.msg_id);
                                }
                                sealed
                            } else {
                                !self.plain_ids.1.contains(&f.msg_id)
                            };
                            if sealed && Some(slot) != own_slot {
                                cosealed.push(f.msg_id);
                            }
                            pieces.push(PieceSeen {
                                slot,
                                msg_id: f.msg_id,
                                index: f.index,
                                count: f.count,
                            });
                            match self.reasm.add(f) {
                                Reassembled::Message(msg) => {
                                    self.events.push_back(MemberEvent::Delivered {
                                        round,
                                        slot,
                                        message: msg,
                                    })
                                }
                                Reassembled::Spliced { msg_id } => self
                                    .events
                                    .push_back(MemberEvent::Spliced { round, msg_id }),
                                Reassembled::Pending => {}
                            }
                        }
                        SlotContent::Trap => filled += 1,
                        SlotContent::Damaged => damaged += 1,
                        SlotContent::Empty => {}
                    }
                }
            }
        }
        // Unallocated slots must be all zero.
        let alloc_slots = match (&old, a.uses_alloc) {
            (Some(src), true) => src.alloc.slots(),
            _ => BTreeSet::new(),
        };
        for s in 0..layout.slots {
            if !alloc_slots.contains(&s) && clear[layout.slot(s)].iter().any(|&b| b != 0) {
                damaged += 1;
            }
        }
        // 2. Our owned slot's outcome (and, if it was a trap and is D's first item, accuse).
        let damage = blame::damaged_checked(&layout, checks, &clear, &alloc_slots);
        let accusation = old.as_ref().and_then(|src| {
            let own = src.mine.as_ref()?;
            let d0 = damage.first()?;
            // (A decoy garbling its own slot never accuses: it would convict itself.)
            // (Only a trap we wrote: in the round that fixes the content key nobody had one
            // at compose time, so our slot stayed empty and there is no trap to accuse with.
            // Attack review: accusing then convicted the honest owner of ciphertext-mismatch.)
            let honest = d0.slot == own.slot
                && a.slot_written.as_ref().is_some_and(|(s, _)| *s == own.slot)
                && matches!(own.purpose, Purpose::Trap | Purpose::Cover)
                && !self.faults.contains(&MemberFault::GarbleOwn);
            let false_accuser = self.faults.contains(&MemberFault::FalseAccuse);
            (a.uses_alloc && (honest || false_accuser))
                .then_some((src.round, d0.slot, own.cell, own.gamma))
        });
        if let Some(own) = old.and_then(|s| s.mine) {
            if a.uses_alloc && a.slot_written.is_none() {
                // We had no content key: nothing went out, nothing was hit.
                self.set_frag(own.purpose, FragState::Pending);
            } else if a.uses_alloc {
                let intact = a
                    .slot_written
                    .as_ref()
                    .is_some_and(|(s, w)| clear[layout.slot(*s)] == w[..]);
                if intact && a.held_back {
                    self.set_frag(own.purpose, FragState::Pending);
                } else if intact {
                    // (Its exposure entered R and A when our seed went out.)
                    self.set_frag(own.purpose, FragState::Done);
                } else {
                    self.set_frag(own.purpose, FragState::Pending);
                    self.events.push_back(MemberEvent::SlotDamaged { round });
                }
            } else {
                self.set_frag(own.purpose, FragState::Pending);
            }
        }
        // A sealed message beside a piece of a linked message may be an answer that tells a
        // colluder who wrote it, so not ours: each leaves the link's A for good (§7.2). (Only
        // links: there the narrowing would compound over a pseudonym's life; counting them
        // against every message would let any two concurrent answers stall each other.)
        if let Some((_, link)) = a.exposed {
            if let Some(e) = link.and_then(|l| self.links.get_mut(&l)) {
                for id in &cosealed {
                    e.add_cosealed(*id);
                }
            }
            if !cosealed.is_empty() {
                self.outbox_rev += 1;
            }
        }
        self.finish_sent(round);
        // The epoch's content key, if this round fixed it; and one more round of the epoch.
        self.learn_content(&a);
        if let Some(ep) = self.ep.as_mut() {
            ep.completed = ep.completed.saturating_add(1);
        }
        // 3. This round's cells allocate the next attempt.
        let present = a.open.body.present.len();
        let alloc = out.allocation(present);
        let mut mine = None;
        if let Some(r) = a.reservation.clone() {
            let won = !alloc.overflow && clear[layout.cell(r.cell)] == r.footprint;
            match alloc.by_cell.get(&r.cell).filter(|_| won) {
                Some(&slot) => {
                    mine = Some(Owned {
                        slot,
                        cell: r.cell,
                        purpose: r.purpose,
                        gamma: r.gamma,
                    })
                }
                None => {
                    self.set_frag(r.purpose, FragState::Pending);
                    self.events.push_back(MemberEvent::Collided { round });
                }
            }
        }
        self.alloc_src = Some(AllocSource {
            round,
            record: rec_hash,
            present: a.open.body.present.clone(),
            alloc,
            mine,
        });
        self.events.push_back(MemberEvent::RoundCompleted {
            round,
            cleartext: clear,
            allocated,
            filled,
            damaged,
            pieces: {
                pieces.sort_by_key(|p| p.slot);
                pieces
            },
        });
        // Keep this round for blame; the previous one becomes allocation evidence.
        let record = a
            .record
            .take()
            .map(|(r, _)| r)
            .expect("a completed attempt has its Record");
        if let Some(prev) = self.done.take() {
            self.prev_evidence = Some((prev.record, prev.zset));
        }
        let cell_check = self.alloc_src.as_ref().is_some_and(|s| s.alloc.cell_check);
        self.done = Some(Done {
            attempt: a,
            record,
            zset,
        });
        self.case = None;
        self.last_case = None;
        // Damage, or more non-zero cells than members: a case we saw. We accept no Open until
        // the relay brings it to a verdict.
        if !damage.is_empty() || cell_check {
            if let Some(case) = self.base_case() {
                self.case = Some(OpenCase {
                    case,
                    round,
                    deadline: self.case_deadline(),
                    accused: None,
                    disclosed: false,
                    revealed: false,
                });
            }
        }
        if let Some((alloc_round, slot, cell, gamma)) = accusation {
            self.accuse(round, rec_hash, alloc_round, slot, cell, gamma);
        }
    }

    /// When the relay must have concluded a case opened now: its accusation, disclosure and
    /// key-reveal windows, plus one commit window of slack.
    fn case_deadline(&self) -> Time {
        let p = self.group.params();
        self.now.plus_millis(
            p.reveal_ms
                .saturating_mul(4)
                .saturating_add(p.commit_ms)
                .saturating_add(p.post_round_ms),
        )
    }

    /// Our piece in this attempt becomes readable by the relay once our seed goes out: it
    /// enters R (if first) and A, across epochs (docs/PROTOCOL.md §10).
    fn note_exposure(&mut self, a: &mut Attempt) {
        if a.held_back || a.slot_written.is_none() || !a.uses_alloc {
            return;
        }
        let Some(own) = self.alloc_src.as_ref().and_then(|s| s.mine.as_ref()) else {
            return;
        };
        let Purpose::Fragment { ticket, .. } = own.purpose else {
            return;
        };
        let present: BTreeSet<u32> = a.open.body.present.iter().copied().collect();
        if let Some(o) = self.queue.iter_mut().find(|o| o.ticket == ticket) {
            o.exp.expose(&present, a.round);
            a.exposed = Some((ticket, o.link));
            if let Some(e) = o.link.and_then(|l| self.links.get_mut(&l)) {
                e.expose(&present, a.round);
            }
            self.outbox_rev += 1;
        }
    }

    fn accuse(
        &mut self,
        round: u64,
        record: Hash,
        alloc_round: u64,
        slot: u32,
        cell: u32,
        gamma: [u8; 32],
    ) {
        let Some(proof) = self.footprint_proof(alloc_round) else {
            return;
        };
        // The slot key of the accused slot alone: the trap's bytes as the output should hold
        // them. (Without a content key we wrote no trap, so there is nothing to accuse.)
        let Some(slot_key) = self
            .ep
            .as_ref()
            .and_then(|e| e.content.key())
            .map(|k| *k.slot_key(round, slot).expose())
        else {
            return;
        };
        let msg = self.sign(
            round,
            Accuse {
                record,
                slot,
                alloc_round,
                cell,
                gamma,
                proof,
                slot_key,
            },
        );
        let digest = msg.digest();
        self.outbox.push_back(msg.into_frame());
        if let Some(c) = self.case.as_mut() {
            c.accused = Some(digest);
        }
        self.events.push_back(MemberEvent::Accused { round, slot });
    }

    /// DLEQ proof that our `Γ` for `round` is our VRF output (an accusation, a cell claim:
    /// context [`blame::accuse_context`]). None before an epoch.
    fn footprint_proof(&mut self, round: u64) -> Option<dleq::DleqProof> {
        let ep = self.ep.as_ref()?;
        let gid = *self.group.id();
        let mut fresh = [0u8; 32];
        self.rng.fill_bytes(&mut fresh);
        let base = keys::footprint_base(&gid, ep.epoch, round);
        let ctx = blame::accuse_context(&gid, ep.epoch, round, self.me);
        Some(dleq::prove(&ep.secret, &base, &ctx, &fresh).1)
    }

    /// The case skeleton for the last completed round.
    fn base_case(&self) -> Option<Case> {
        let done = self.done.as_ref()?;
        let alloc = done
            .attempt
            .open
            .body
            .alloc
            .and(self.prev_evidence.as_ref())
            .map(|(r, z)| (Signed::clone(r), z.clone()));
        Some(Case::of_round(
            self.group.to_data(),
            self.epoch_keys.clone()?,
            Signed::clone(&done.record),
            done.zset.clone(),
            alloc,
        ))
    }

    /// Closes the open case with a verdict this member computed itself. `last` is the digest
    /// of the message that concluded it, which the next Open (or EpochRequest) must name.
    fn conclude(&mut self, case: Case, verdict: Verdict, last: Hash) {
        if let Some(c) = self.case.take() {
            self.concluded = Some(c.round);
        }
        // A verdict that excludes us as unresponsive takes us out of the rounds that follow:
        // we will be invited to a later epoch whose request cannot know this conclusion.
        self.last_case = (!verdict.unresponsive.contains(&self.me)).then_some(last);
        self.apply_verdict(case, verdict);
    }

    /// Acts on a verdict this member computed itself from `case` (a round's case, or evidence
    /// found outside one, which closes no case).
    fn apply_verdict(&mut self, case: Case, verdict: Verdict) {
        match verdict.culprit {
            // The outbox file carries convictions: a new one must reach the disk.
            Some(Culprit::Member(i)) if self.convicted.insert(i) => self.outbox_rev += 1,
            Some(Culprit::Member(_)) => {}
            Some(Culprit::Relay) => {
                self.abandon_attempt();
                self.relay_convicted = true;
            }
            None => {}
        }
        if blame::notable(&verdict, &case) {
            self.events.push_back(MemberEvent::Verdict {
                verdict,
                case: Box::new(case),
            });
        }
    }

    fn on_blame_start(&mut self, m: Signed<BlameStart>) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        let bad = |r| invalid(Kind::BlameStart, r);
        let done = self.done.as_ref().ok_or(bad("no completed round"))?;
        let round = done.attempt.round;
        if m.header.round != round || m.body.record != done.record.digest() {
            return Err(bad("not our last completed round"));
        }
        if self.concluded == Some(round) {
            return Err(bad("the case of this round is closed"));
        }
        if self.case.as_ref().is_some_and(|c| c.case.start.is_some()) {
            return Err(bad("a BlameStart for this case was already received"));
        }
        if self.case.is_none() {
            // A case we did not see coming (no damage here): open it now.
            let case = self.base_case().ok_or(bad("no epoch keys"))?;
            self.case = Some(OpenCase {
                case,
                round,
                deadline: self.case_deadline(),
                accused: None,
                disclosed: false,
                revealed: false,
            });
        }
        let Some(open) = self.case.as_mut() else {
            return Err(bad("no case"));
        };
        open.case.start = Some(m.clone());
        let accused = open.accused;
        // The accusation we sent must be the one the relay names.
        // (A false accuser knows why its accusation was passed over and stays.)
        let liar = self.faults.contains(&MemberFault::FalseAccuse);
        if let Some(ours) = accused.filter(|_| !liar) {
            if m.body.accusation.as_ref().map(|a| a.digest()) != Some(ours) {
                self.fail_relay(format!("the relay dropped our accusation in round {round}"));
                return Err(bad("our accusation was dropped"));
            }
        }
        let case = open.case.clone();
        // Every check we cannot pass means "refuse": we disclose nothing.
        match blame::assess(&case) {
            Ok(Assessment::Verdict(v)) => {
                let d = m.digest();
                self.conclude(case, v, d);
                Ok(())
            }
            Ok(Assessment::Disclose(checked)) => {
                self.note_accuser(&checked);
                if !self.faults.contains(&MemberFault::Refuse) {
                    self.disclose(&checked)?;
                    if let Some(o) = self.case.as_mut() {
                        o.disclosed = true;
                    }
                }
                Ok(())
            }
            Ok(Assessment::RevealKeys(_)) | Err(_) => {
                self.fail_relay(format!(
                    "the relay signed a blame start for round {round} that does not check out"
                ));
                Err(bad("does not check out"))
            }
        }
    }

    /// A valid accusation tells the relay its signer held a trap, so sent nothing in that
    /// round: if our piece went out in that round, the accuser leaves its message's A.
    fn note_accuser(&mut self, checked: &CheckedStart) {
        let Some((accuser, _)) = checked.accused() else {
            return;
        };
        let Some((ticket, link)) = self.done.as_ref().and_then(|d| d.attempt.exposed) else {
            return;
        };
        let message = self
            .queue
            .iter_mut()
            .find(|o| o.ticket == ticket)
            .map(|o| &mut o.exp);
        // The link too, even once the message itself is out.
        let linked = link.and_then(|l| self.links.get_mut(&l));
        for e in message.into_iter().chain(linked) {
            if let Some(a) = e.anonymity.as_mut() {
                a.remove(&accuser);
                self.outbox_rev += 1;
            }
        }
    }

    /// Discloses at positions this member recomputed itself (the token proves it).
    fn disclose(&mut self, checked: &CheckedStart) -> Result<(), ProtocolError> {
        let bad = |r| invalid(Kind::BlameStart, r);
        let done = self.done.as_ref().ok_or(bad("no completed round"))?;
        let a = &done.attempt;
        if checked.round() != a.round {
            return Err(bad("not our last completed round"));
        }
        let ep = self.ep.as_ref().ok_or(bad("no epoch"))?;
        let nonce = keys::pad_nonce(a.round, &a.view);
        let accused_slot = checked
            .accused()
            .filter(|(i, _)| *i == self.me)
            .map(|(_, s)| s);
        let mut bytes = Vec::new();
        for &x in checked.positions() {
            let xi = usize::try_from(x).map_err(|_| bad("position outside the vector"))?;
            if xi >= a.ciphertext.len() {
                return Err(bad("position outside the vector"));
            }
            let mut pads: Vec<(u32, u8)> = Vec::new();
            for &j in &a.open.body.present {
                if j == self.me {
                    continue;
                }
                let s = ep.pairs.get(&j).ok_or(bad("unknown pair"))?;
                let k = keys::pad_key(s, &nonce);
                pads.push((j, pad::keystream(&k, a.round, x, 1)[0]));
            }
            if self.faults.contains(&MemberFault::LiePads) {
                // Shift the first pad so that our own equation balances with what we were
                // allowed to write: 0 here, or our trap byte if we are the accuser.
                let allowed = match (accused_slot, &a.slot_written) {
                    (Some(s), Some((ws, w))) if s == *ws => {
                        let r = self.layout.slot(s);
                        if (r.start..r.end).contains(&xi) {
                            w[xi - r.start]
                        } else {
                            0
                        }
                    }
                    _ => match &a.reservation {
                        Some(r)
                            if checked.cell_check() && self.layout.cell(r.cell).contains(&xi) =>
                        {
                            r.footprint[xi % 8]
                        }
                        _ => 0,
                    },
                };
                let delta = a.plain[xi] ^ allowed;
                if let Some(p) = pads.first_mut() {
                    p.1 ^= if delta == 0 { 0x01 } else { delta };
                }
            }
            let index = u32::try_from(x / merkle::CHUNK as u64).map_err(|_| bad("no chunk"))?;
            let proof = merkle::prove(&a.ciphertext, index).ok_or(bad("no chunk"))?;
            let range =
                merkle::chunk_range(a.ciphertext.len() as u64, index).ok_or(bad("no chunk"))?;
            bytes.push(DisclosedByte {
                position: x,
                pads,
                chunk: a.ciphertext[range.start as usize..range.end as usize].to_vec(),
                proof,
            });
        }
        // In a cell check (the allocation is void) we name the cell we wrote, with Γ proven.
        let round = a.round;
        let wrote = a
            .reservation
            .as_ref()
            .filter(|r| checked.cell_check() && r.footprint != [0; 8])
            .map(|r| (r.cell, r.gamma));
        let claim = match wrote {
            Some((cell, gamma)) => {
                self.footprint_proof(round)
                    .map(|proof| CellClaim { cell, gamma, proof })
            }
            None => None,
        };
        let msg = self.sign(
            round,
            Disclose {
                start: checked.digest(),
                bytes,
                claim,
            },
        );
        self.outbox.push_back(msg.into_frame());
        Ok(())
    }

    fn on_disclosure_set(&mut self, m: Signed<DisclosureSet>) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        let bad = |r| invalid(Kind::DisclosureSet, r);
        let Some(open) = self.case.as_mut() else {
            return Err(bad("no case open"));
        };
        if open.case.start.as_ref() != Some(&m.body.start) || open.case.disclosure.is_some() {
            return Err(bad("answers another BlameStart"));
        }
        let round = open.round;
        let disclosed = open.disclosed;
        let mine = m
            .body
            .disclosures
            .iter()
            .any(|d| d.header.sender == Sender::Member(self.me));
        if disclosed && !mine {
            self.fail_relay(format!(
                "the relay left our disclosure out of the blame case of round {round}"
            ));
            return Err(bad("our disclosure was dropped"));
        }
        let mut case = open.case.clone();
        let digest = m.digest();
        case.disclosure = Some(m);
        // Every disclosure's signature, case and sender is checked before anything acts on it.
        match blame::assess(&case) {
            Ok(Assessment::Verdict(v)) => {
                self.conclude(case, v, digest);
                Ok(())
            }
            Ok(Assessment::RevealKeys(disputes)) => {
                if let Some(o) = self.case.as_mut() {
                    o.case = case;
                }
                let reveal = !self.faults.contains(&MemberFault::Refuse)
                    && !self.faults.contains(&MemberFault::LiePads);
                if reveal {
                    self.reveal_keys(&disputes);
                }
                Ok(())
            }
            Ok(Assessment::Disclose(_)) | Err(_) => {
                self.fail_relay(format!(
                    "the relay signed a disclosure set for round {round} that does not check out"
                ));
                Err(bad("does not check out"))
            }
        }
    }

    /// Reveals `K_ij` for every pair in which the other member's own signed disclosure
    /// contradicts ours (the token proves it was checked). That member knows `K_ij` already,
    /// so a coalition learns nothing it did not have.
    fn reveal_keys(&mut self, disputes: &Disputes) {
        let (Some(ep), Some(done)) = (&self.ep, &self.done) else {
            return;
        };
        let gid = *self.group.id();
        let round = done.attempt.round;
        let mut out = Vec::new();
        for other in disputes.against(self.me) {
            let Some(eo) = ep.keys.get(&other).copied() else {
                continue;
            };
            let (Some(point), Some(shared)) = (eo.point(), ep.secret.shared(&eo)) else {
                continue;
            };
            let shared = Zeroizing::new(shared);
            let mut fresh = [0u8; 32];
            self.rng.fill_bytes(&mut fresh);
            let ctx = blame::reveal_context(&gid, ep.epoch, self.me, other);
            let (y, proof) = dleq::prove(&ep.secret, &point, &ctx, &fresh);
            debug_assert_eq!(y, *shared);
            out.push(KeyReveal {
                set: disputes.set_digest(),
                other,
                shared: *shared,
                proof,
            });
        }
        if let (false, Some(c)) = (out.is_empty(), self.case.as_mut()) {
            c.revealed = true;
        }
        for r in out {
            let msg = self.sign(round, r);
            self.outbox.push_back(msg.into_frame());
        }
    }

    fn on_reveal_set(&mut self, m: Signed<RevealSet>) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        let Some(open) = self.case.as_ref() else {
            return Err(invalid(Kind::RevealSet, "no case open"));
        };
        if open.case.disclosure.as_ref().map(|d| d.digest()) != Some(m.body.set)
            || open.case.reveals.is_some()
        {
            return Err(invalid(Kind::RevealSet, "answers another DisclosureSet"));
        }
        let round = open.round;
        let mine = m
            .body
            .reveals
            .iter()
            .any(|r| r.header.sender == Sender::Member(self.me));
        if open.revealed && !mine {
            self.fail_relay(format!(
                "the relay left our key reveal out of the blame case of round {round}"
            ));
            return Err(invalid(Kind::RevealSet, "our key reveal was dropped"));
        }
        let mut case = open.case.clone();
        let digest = m.digest();
        case.reveals = Some(m);
        match blame::judge(&case) {
            Ok(v) => {
                self.conclude(case, v, digest);
                Ok(())
            }
            Err(_) => {
                self.fail_relay(format!(
                    "the relay signed a key-reveal set for round {round} that does not check out"
                ));
                Err(invalid(Kind::RevealSet, "does not check out"))
            }
        }
    }

    fn on_evidence(&mut self, m: Signed<Evidence>) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        let epoch_keys = self
            .epoch_keys
            .clone()
            .ok_or(invalid(Kind::Evidence, "no epoch"))?;
        let case = Case::of_equivocation(self.group.to_data(), epoch_keys, m.body.commits);
        match blame::judge(&case) {
            Ok(v) => {
                // Not a round's case: it closes none, and the Open chain does not name it.
                self.apply_verdict(case, v);
                Ok(())
            }
            Err(_) => Err(invalid(Kind::Evidence, "does not prove anything")),
        }
    }

    /// Faults that write where they may not (adversarial experiments only).
    fn jam(&mut self, m: &mut [u8], open: &Open) {
        if self.faults.is_empty() {
            return;
        }
        let layout = self.layout;
        let own = self
            .alloc_src
            .as_ref()
            .and_then(|s| s.mine.as_ref())
            .map(|o| o.slot);
        let targets: Vec<u32> = match (&self.alloc_src, open.alloc) {
            (Some(src), Some(_)) => src
                .alloc
                .slots()
                .into_iter()
                .filter(|s| Some(*s) != own)
                .collect(),
            // Nothing is allocated: a jammer writing here would be blamed against zero at once,
            // so the jammers modelled here aim only at allocated slots.
            _ => Vec::new(),
        };
        for f in self.faults.clone() {
            let coin = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            match f {
                MemberFault::JamSlots { rate } if coin < rate && !targets.is_empty() => {
                    let s = targets[(self.rng.next_u64() % targets.len() as u64) as usize];
                    let r = layout.slot(s);
                    let at = r.start + (self.rng.next_u64() % (r.end - r.start) as u64) as usize;
                    m[at] ^= 1 + (self.rng.next_u64() % 255) as u8;
                }
                MemberFault::JamAll => {
                    for &s in &targets {
                        let r = layout.slot(s);
                        let at =
                            r.start + (self.rng.next_u64() % (r.end - r.start) as u64) as usize;
                        m[at] ^= 1 + (self.rng.next_u64() % 255) as u8;
                    }
                }
                MemberFault::GarbleOwn => {
                    if let (Some(s), Some(_)) = (own, open.alloc) {
                        let r = layout.slot(s);
                        let at =
                            r.start + (self.rng.next_u64() % (r.end - r.start) as u64) as usize;
                        m[at] ^= 1 + (self.rng.next_u64() % 255) as u8;
                    }
                }
                MemberFault::JamEmptyCells => {
                    for c in 0..layout.cells {
                        let r = layout.cell(c);
                        if m[r.clone()].iter().all(|&b| b == 0) {
                            let mut g = [0u8; 8];
                            self.rng.fill_bytes(&mut g);
                            g[0] |= 1;
                            m[r].copy_from_slice(&g);
                        }
                    }
                }
                MemberFault::JamCells { rate } if coin < rate => {
                    let c = (self.rng.next_u64() % u64::from(layout.cells)) as u32;
                    let mut g = [0u8; 8];
                    self.rng.fill_bytes(&mut g);
                    for (b, x) in m[layout.cell(c)].iter_mut().zip(g) {
                        *b ^= x;
                    }
                }
                _ => {}
            }
        }
    }

    fn finish_sent(&mut self, round: u64) {
        // Usually the front; a later message that went out while the front was held back
        // (`choose_purpose`) completes first.
        while let Some(at) = self
            .queue
            .iter()
            .position(|o| o.state.iter().all(|s| *s == FragState::Done))
        {
            let o = &self.queue[at];
            let ticket = o.ticket;
            // A linked message reports its link's set: what a reader who links it to the
            // others can narrow its author to.
            let anonymity = match o.link.and_then(|l| self.links.get(&l)) {
                Some(e) => e.size(),
                None => o.exp.size(),
            };
            self.queue.remove(at);
            self.outbox_rev += 1;
            self.events.push_back(MemberEvent::Sent {
                ticket,
                round,
                anonymity,
            });
        }
    }
}
