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

use super::slots::{self, Allocation, Fragment, Layout, Reassembly, SlotContent};
use super::{HighWaterStore, MemberId, ProtocolError, invalid};
use crate::crypto::identity::IdentityKey;
use crate::crypto::keys::{self, EpochPublic, EpochSecret, PairSecret};
use crate::crypto::pad::{self, Keystream, StreamKey};
use crate::crypto::{Hash, ct_eq, merkle};
use crate::params::Group;
use crate::protocol::Time;
use crate::wire::{
    self, Abort, Body, Commit, CommitSet, EpochKey, EpochKeys, EpochRequest, Kind, Open, Record,
    Reveal, Sender, Signed, Unblind, ZSet,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Largest forward jump of the round counter a member accepts.
pub const MAX_ROUND_JUMP: u64 = 1 << 20;

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Fragment { ticket: u64, index: u16 },
    Trap,
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
}

/// One attempt in flight (or the last completed one, kept for blame).
#[allow(dead_code)]
struct Attempt {
    round: u64,
    open: Signed<Open>,
    open_hash: Hash,
    view: Hash,
    ciphertext: Vec<u8>,
    /// What we wrote into our owned slot, if any.
    slot_written: Option<(u32, Vec<u8>)>,
    z: StreamKey,
    commit: Signed<Commit>,
    commit_set: Option<(Signed<CommitSet>, Hash)>,
    record: Option<(Signed<Record>, Hash)>,
    reservation: Option<Reservation>,
    uses_alloc: bool,
}

enum Phase {
    /// No epoch keys yet.
    NoEpoch,
    /// Sent our epoch key; waiting for the epoch's key set.
    AwaitKeys { epoch: u64, secret: EpochSecret },
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
    next_ticket: u64,
    reasm: Reassembly,
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
            next_ticket: 0,
            reasm: Reassembly::new(4096, 1 << 16, max_fragments),
            group,
        })
    }

    /// Our roster index.
    pub fn id(&self) -> MemberId {
        MemberId(self.me)
    }
    /// Highest round accepted.
    pub fn high_water(&self) -> u64 {
        self.hw
    }
    /// Current epoch (0 before the first).
    pub fn epoch(&self) -> u64 {
        self.ep.as_ref().map_or(0, |e| e.epoch)
    }
    /// Messages queued or in flight.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Queues a message for anonymous broadcast; returns its ticket.
    pub fn submit(&mut self, msg: &[u8]) -> Result<u64, SubmitError> {
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
        });
        Ok(ticket)
    }

    /// Next frame for the relay.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }
    /// Next event.
    pub fn poll_event(&mut self) -> Option<MemberEvent> {
        self.events.pop_front()
    }

    /// Handles a frame from the relay. On error the state is unchanged.
    pub fn handle_message(&mut self, _now: Time, bytes: &[u8]) -> Result<(), ProtocolError> {
        let f = wire::decode_frame(bytes)?;
        let kind = f.header.kind;
        if f.header.sender != Sender::Relay {
            return Err(ProtocolError::WrongSender(kind));
        }
        if &f.header.group_id != self.group.id() {
            return Err(ProtocolError::WrongGroup);
        }
        // Signature before anything acts on the message.
        let relay = *self.group.relay_key();
        macro_rules! checked {
            ($v:expr) => {{
                let s = wire::typed(f.header, $v, f.sig);
                if !s.verify(&relay) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                s
            }};
        }
        match f.body {
            Body::EpochRequest(b) => self.on_epoch_request(checked!(b)),
            Body::EpochKeys(b) => self.on_epoch_keys(checked!(b)),
            Body::Open(b) => self.on_open(checked!(b)),
            Body::CommitSet(b) => self.on_commit_set(checked!(b)),
            Body::Record(b) => self.on_record(checked!(b)),
            Body::ZSet(b) => self.on_zset(checked!(b)),
            Body::Abort(b) => self.on_abort(checked!(b)),
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

    fn epoch_for_signing(&self) -> u64 {
        match &self.phase {
            Phase::AwaitKeys { epoch, .. } => *epoch,
            _ => self.epoch(),
        }
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
        let pending = match &self.phase {
            Phase::AwaitKeys { epoch: e, .. } => *e,
            _ => 0,
        };
        if epoch <= self.epoch() || epoch <= pending {
            return Err(ProtocolError::WrongEpoch {
                expected: self.epoch().max(pending) + 1,
                got: epoch,
            });
        }
        if !m.body.members.contains(&self.me) {
            return Err(invalid(Kind::EpochRequest, "we are not invited"));
        }
        let secret = loop {
            let mut wide = [0u8; 64];
            self.rng.fill_bytes(&mut wide);
            if let Some(s) = EpochSecret::from_uniform_bytes(&wide) {
                break s;
            }
        };
        let public = secret.public();
        self.abandon_attempt();
        self.phase = Phase::AwaitKeys { epoch, secret };
        let msg = self.sign(0, EpochKey { key: public });
        self.outbox.push_back(msg.into_frame());
        Ok(())
    }

    fn on_epoch_keys(&mut self, m: Signed<EpochKeys>) -> Result<(), ProtocolError> {
        let Phase::AwaitKeys { epoch, secret } = &self.phase else {
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
        let mut keys = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for k in &m.body.keys {
            let Sender::Member(i) = k.header.sender else {
                return Err(bad("key not from a member"));
            };
            let Some(pk) = self.group.member_key(i) else {
                return Err(bad("key from outside the roster"));
            };
            if k.header.group_id != *self.group.id()
                || k.header.epoch != epoch
                || k.header.round != 0
            {
                return Err(bad("key for another group or epoch"));
            }
            if !k.verify(pk) {
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
        let Phase::AwaitKeys { secret, .. } = std::mem::replace(&mut self.phase, Phase::Ready)
        else {
            unreachable!("checked above")
        };
        let gid = *self.group.id();
        let mine = secret.public();
        let mut pairs = BTreeMap::new();
        for (&j, ek) in &keys {
            if j == self.me {
                continue;
            }
            // Points were validated above, so `shared` cannot fail.
            if let Some(k) = secret.shared(ek) {
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
        });
        self.events
            .push_back(MemberEvent::EpochStarted { epoch, members });
        Ok(())
    }

    fn on_open(&mut self, m: Signed<Open>) -> Result<(), ProtocolError> {
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
        if !o.present.windows(2).all(|w| w[0] < w[1]) {
            return Err(bad("present set not sorted"));
        }
        if !o.present.iter().all(|i| ep.keys.contains_key(i)) {
            return Err(bad("present member outside the epoch"));
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
        // Persist the high-water mark before signing anything for this round.
        self.store.store(round).map_err(ProtocolError::Persist)?;
        self.hw = round;
        // A new Open replaces an attempt the relay gave up on without telling us.
        self.abandon_attempt();
        let attempt = self.compose(m);
        self.outbox.push_back(attempt.commit.clone().into_frame());
        self.phase = Phase::Committed(Box::new(attempt));
        Ok(())
    }

    /// Builds our contribution `m_i`, ciphertext and commitment for an accepted Open.
    fn compose(&mut self, open: Signed<Open>) -> Attempt {
        let round = open.header.round;
        let open_hash = open.digest();
        let view = keys::view_step(&self.chain_head, round, &open_hash);
        let gid = *self.group.id();
        let layout = self.layout;
        let mut m = vec![0u8; layout.len()];
        let ep = self.ep.as_ref().expect("on_open checked the epoch");
        // Our owned slot, if this attempt uses the allocation we won in.
        let mut slot_written = None;
        let uses_alloc = open.body.alloc.is_some();
        if uses_alloc {
            if let Some(src) = &self.alloc_src {
                if let Some(own) = &src.mine {
                    let content = match own.purpose {
                        Purpose::Trap => slots::trap_slot(&layout, round, own.slot, &own.gamma),
                        Purpose::Fragment { ticket, index } => {
                            match self.queue.iter().find(|o| o.ticket == ticket) {
                                Some(o) => slots::frame_fragment(
                                    &layout,
                                    round,
                                    own.slot,
                                    &o.frags[index as usize],
                                ),
                                None => slots::trap_slot(&layout, round, own.slot, &own.gamma),
                            }
                        }
                    };
                    m[layout.slot(own.slot)].copy_from_slice(&content);
                    slot_written = Some((own.slot, content));
                }
            }
        }
        // Reserve: one cell, every round (a trap when idle, with probability p_cover).
        let gamma = ep.secret.gamma(&gid, ep.epoch, round);
        let footprint = keys::footprint(&gamma);
        let purpose = self.choose_purpose();
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
        let mut c = m;
        let ep = self.ep.as_ref().expect("checked");
        let pairs = open.body.present.iter().filter_map(|j| ep.pairs.get(j));
        pad::encrypt_in_place(&mut self.ks, &mut c, round, &view, pairs, &z);
        let commit = self.sign(
            round,
            Commit {
                open: open_hash,
                ciphertext: merkle::commit(&c),
                blinding: keys::blind_commitment(&z),
            },
        );
        Attempt {
            round,
            open,
            open_hash,
            view,
            ciphertext: c,
            slot_written,
            z,
            commit,
            commit_set: None,
            record: None,
            reservation,
            uses_alloc,
        }
    }

    fn choose_purpose(&mut self) -> Option<Purpose> {
        let p = self.group.params().clone();
        let next = self.queue.front().and_then(|o| {
            o.state
                .iter()
                .position(|s| *s == FragState::Pending)
                .map(|i| (o.ticket, i as u16))
        });
        let coin = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        match next {
            Some((ticket, index)) => {
                if coin < p.p_trap {
                    Some(Purpose::Trap)
                } else {
                    if let Some(o) = self.queue.front_mut() {
                        o.state[index as usize] = FragState::Reserved;
                    }
                    Some(Purpose::Fragment { ticket, index })
                }
            }
            None => (coin < p.p_cover).then_some(Purpose::Trap),
        }
    }

    fn set_frag(&mut self, purpose: Purpose, state: FragState) {
        if let Purpose::Fragment { ticket, index } = purpose {
            if let Some(o) = self.queue.iter_mut().find(|o| o.ticket == ticket) {
                if o.state[index as usize] != FragState::Done {
                    o.state[index as usize] = state;
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
            Phase::AwaitKeys { epoch, secret } => {
                self.phase = Phase::AwaitKeys { epoch, secret };
            }
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

    fn on_commit_set(&mut self, m: Signed<CommitSet>) -> Result<(), ProtocolError> {
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
        let digest = m.digest();
        a.commit_set = Some((m, digest));
        let reveal = self.sign(
            a.round,
            Reveal {
                ciphertext: a.ciphertext.clone(),
            },
        );
        self.outbox.push_back(reveal.into_frame());
        self.phase = Phase::Revealed(a);
        Ok(())
    }

    fn on_record(&mut self, m: Signed<Record>) -> Result<(), ProtocolError> {
        self.check_epoch(m.header.epoch)?;
        self.current_attempt(Kind::Record, m.header.round)?;
        let Phase::Revealed(a) = &self.phase else {
            return Err(ProtocolError::Unexpected {
                kind: Kind::Record,
                phase: self.phase.name(),
            });
        };
        let bad = |r| invalid(Kind::Record, r);
        let Some((_, cs_hash)) = &a.commit_set else {
            return Err(bad("no CommitSet"));
        };
        if m.body.commit_set.digest() != *cs_hash {
            return Err(bad("CommitSet differs from the one we revealed against"));
        }
        if m.body.xor.len() != self.layout.len() {
            return Err(bad("wrong length"));
        }
        let relay = *self.group.relay_key();
        let mut open_hashes = BTreeSet::new();
        for o in &m.body.opens {
            let h = o.digest();
            if h != a.open_hash && !o.verify(&relay) {
                return Err(ProtocolError::BadSignature(Kind::Open));
            }
            if o.header.round != a.round || o.header.epoch != m.header.epoch {
                return Err(bad("Open of another round"));
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
            self.events
                .push_back(MemberEvent::RelayEquivocated { round, opens });
        }
        if !complete {
            self.events.push_back(MemberEvent::RecordInvalid { round });
            if let Some(r) = a.reservation.take() {
                self.set_frag(r.purpose, FragState::Pending);
            }
            return Ok(());
        }
        let digest = m.digest();
        a.record = Some((m, digest));
        let unblind = self.sign(round, Unblind { z: *a.z.expose() });
        self.outbox.push_back(unblind.into_frame());
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

    fn on_zset(&mut self, m: Signed<ZSet>) -> Result<(), ProtocolError> {
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
        let seeds: BTreeMap<u32, [u8; 32]> = m.body.seeds.iter().copied().collect();
        if seeds.len() != m.body.seeds.len() {
            return Err(bad("duplicate seed"));
        }
        for i in seeds.keys().chain(&m.body.missing) {
            if !present.contains(i) {
                return Err(bad("member outside the present set"));
            }
        }
        for (c, i) in commits.iter().zip(present) {
            match seeds.get(i) {
                Some(z) => {
                    let z = StreamKey::from_bytes(*z);
                    if !ct_eq(&keys::blind_commitment(&z), &c.body.blinding) {
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
        let Some((record, rec_hash)) = &a.record else {
            unreachable!("checked above")
        };
        let mut clear = record.body.xor.clone();
        let seeds: Vec<StreamKey> = seeds.values().map(|z| StreamKey::from_bytes(*z)).collect();
        pad::unblind_in_place(&mut self.ks, &mut clear, a.round, &seeds);
        let rec_hash = *rec_hash;
        self.complete(a, rec_hash, clear);
        Ok(())
    }

    /// A round completed: extend the chain, settle our slot and reservation, deliver.
    fn complete(&mut self, a: Box<Attempt>, rec_hash: Hash, clear: Vec<u8>) {
        let layout = self.layout;
        let round = a.round;
        self.chain_head = a.view;
        self.last = Some((round, rec_hash));
        // 1. The slots of this attempt (if it used an allocation).
        let (mut allocated, mut filled, mut damaged) = (0, 0, 0);
        let old = self.alloc_src.take();
        if a.uses_alloc {
            if let Some(src) = &old {
                for &slot in src.alloc.by_cell.values() {
                    allocated += 1;
                    let bytes = &clear[layout.slot(slot)];
                    match slots::parse_slot(&layout, round, slot, bytes) {
                        SlotContent::Fragment(f) => {
                            filled += 1;
                            if let Some(msg) = self.reasm.add(f) {
                                self.events.push_back(MemberEvent::Delivered {
                                    round,
                                    slot,
                                    message: msg,
                                });
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
        // 2. Our owned slot's outcome.
        if let Some(own) = old.and_then(|s| s.mine) {
            if a.uses_alloc {
                let intact = a
                    .slot_written
                    .as_ref()
                    .is_some_and(|(s, w)| clear[layout.slot(*s)] == w[..]);
                if intact {
                    self.set_frag(own.purpose, FragState::Done);
                } else {
                    self.set_frag(own.purpose, FragState::Pending);
                    self.events.push_back(MemberEvent::SlotDamaged { round });
                }
            } else {
                self.set_frag(own.purpose, FragState::Pending);
            }
        }
        self.finish_sent(round);
        // 3. This round's cells allocate the next attempt.
        let alloc = Allocation::from_output(&layout, round, &clear);
        let mut mine = None;
        if let Some(r) = a.reservation {
            let won = !alloc.overflow && clear[layout.cell(r.cell)] == r.footprint;
            match alloc.by_cell.get(&r.cell).filter(|_| won) {
                Some(&slot) => {
                    mine = Some(Owned {
                        slot,
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
            cleartext: clear.into(),
            allocated,
            filled,
            damaged,
        });
    }

    fn finish_sent(&mut self, round: u64) {
        while let Some(o) = self.queue.front() {
            if o.state.iter().all(|s| *s == FragState::Done) {
                let ticket = o.ticket;
                self.queue.pop_front();
                self.events.push_back(MemberEvent::Sent { ticket, round });
            } else {
                break;
            }
        }
    }
}
