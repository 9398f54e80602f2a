//! The relay state machine.
//!
//! The relay opens attempts, collects and verifies members' signed messages, XORs ciphertexts
//! and broadcasts signed records. It is untrusted for anonymity and integrity (everything it
//! signs is checkable) and trusted only for liveness. It is the only party that keeps deadlines:
//! a member missing at the commit deadline is left out of the next attempt; a missing reveal or
//! blinding seed aborts the round and excludes the silent member until the next epoch.
//!
//! Invariant: no ciphertext `c_i` leaves the relay; only `⨁ c_i` does, and only once every
//! reveal of the present set is in.

use super::blame::{self, Assessment, Case, Culprit, RoundView, Verdict};
use super::member::{MAX_EPOCH_JUMP, MAX_ROUND_JUMP};
use super::slots::{Allocation, Layout, OutputChecks};
use super::{MemberId, ProtocolError, Time, Transmit, invalid};
use crate::adversary::RelayFault;
use crate::crypto::identity::IdentityKey;
use crate::crypto::keys::{self, EpochPublic};
use crate::crypto::pad::{self, Keystream, StreamKey};
use crate::crypto::{Hash, ct_eq, merkle};
use crate::params::Group;
use crate::wire::{
    self, Abort, Accuse, BlameStart, Body, Commit, CommitSet, Disclose, DisclosureSet, EpochKey,
    EpochKeys, EpochRequest, Evidence, Hello, KeyReveal, Open, Record, RevealSet, Sender, Signed,
    Unblind, ZSet,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Completed rounds an epoch runs before the relay starts another to readmit members that
/// came back (a member that reconnects over and over cannot restart the epoch every round).
pub const REJOIN_MIN_ROUNDS: u64 = 8;
/// Completed rounds a member excluded as unresponsive sits out the first time; doubled with
/// every further exclusion (up to `2^12` times), so one member that withholds over and over
/// costs the group one failed attempt per ever longer stretch of completed rounds.
pub const BENCH_ROUNDS: u64 = 8;

/// The value `v` that the most claims `c` accept (`c < v ≤ c + jump`), the largest on a tie:
/// how a restarted relay resumes a counter from its members' word without letting one liar
/// push it beyond every honest member's window.
pub fn resume_value(claims: &[u64], jump: u64) -> Option<u64> {
    let mut best: Option<(usize, u64)> = None;
    for &c in claims {
        let Some(v) = c.checked_add(1) else { continue };
        let n = claims
            .iter()
            .filter(|&&d| d < v && v <= d.saturating_add(jump))
            .count();
        if best.is_none_or(|(bn, bv)| n > bn || (n == bn && v > bv)) {
            best = Some((n, v));
        }
    }
    best.map(|(_, v)| v)
}
/// Why the relay stopped counting a member as present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Absence {
    /// Missed an epoch-key or commit deadline: simply absent, nothing is held against it.
    Absent,
    /// Committed and then withheld its reveal or blinding seed: excluded as unresponsive
    /// until the next epoch.
    Unresponsive,
}

/// What the relay reports to its driver.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// An epoch started.
    EpochStarted {
        /// Epoch.
        epoch: u64,
        /// Its members.
        members: Vec<u32>,
    },
    /// An attempt was opened.
    Opened {
        /// Round.
        round: u64,
        /// Present set.
        present: Vec<u32>,
    },
    /// An attempt failed at a deadline.
    Aborted {
        /// Round.
        round: u64,
        /// Who was missing.
        missing: Vec<u32>,
    },
    /// A member stopped counting as present.
    Excluded {
        /// Member.
        member: u32,
        /// Why.
        reason: Absence,
        /// Round at which it happened.
        round: u64,
    },
    /// A round completed (every seed in).
    Completed {
        /// Round.
        round: u64,
        /// Present set.
        present: Vec<u32>,
    },
    /// Fewer than two members are available: the group waits.
    Stalled {
        /// Members available.
        available: usize,
    },
    /// A blame case was judged; `case` is the evidence.
    Verdict {
        /// The verdict.
        verdict: Verdict,
        /// The evidence.
        case: Box<Case>,
    },
}

struct Attempt {
    round: u64,
    open: Signed<Open>,
    open_hash: Hash,
    /// A second Open shown to a victim (only under [`RelayFault::Equivocate`]).
    alt_open: Option<(Signed<Open>, Hash, u32)>,
    view: Hash,
    present: Vec<u32>,
    commits: BTreeMap<u32, Signed<Commit>>,
    commit_set: Option<Signed<CommitSet>>,
    xor: Vec<u8>,
    revealed: BTreeSet<u32>,
    record_hash: Hash,
    record: Option<Signed<Record>>,
    alt_record_hash: Option<Hash>,
    seeds: BTreeMap<u32, [u8; 32]>,
}

enum Phase {
    Stopped,
    Keys {
        epoch: u64,
        invited: Vec<u32>,
        keys: BTreeMap<u32, Signed<EpochKey>>,
        deadline: Time,
        /// The request, for members that connect while it is open.
        request: Arc<[u8]>,
    },
    Idle {
        at: Time,
    },
    Commit {
        att: Box<Attempt>,
        deadline: Time,
    },
    Reveal {
        att: Box<Attempt>,
        deadline: Time,
    },
    Unblind {
        att: Box<Attempt>,
        deadline: Time,
    },
    /// D's first item is an allocated slot: waiting for its owner to accuse (or not).
    Accusing {
        deadline: Time,
        /// The first accusation that does not hold (kept in case no valid one comes).
        false_one: Option<Signed<Accuse>>,
        /// Members that accused already (one accusation each is checked).
        heard: BTreeSet<u32>,
    },
    Disclosing {
        start: Signed<BlameStart>,
        got: BTreeMap<u32, Signed<Disclose>>,
        deadline: Time,
    },
    Revealing {
        set: Signed<DisclosureSet>,
        expected: BTreeSet<(u32, u32)>,
        got: BTreeMap<(u32, u32), Signed<KeyReveal>>,
        deadline: Time,
    },
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Phase::Stopped => "stopped",
            Phase::Keys { .. } => "keys",
            Phase::Idle { .. } => "idle",
            Phase::Commit { .. } => "commit",
            Phase::Reveal { .. } => "reveal",
            Phase::Unblind { .. } => "unblind",
            Phase::Accusing { .. } => "accusing",
            Phase::Disclosing { .. } => "disclosing",
            Phase::Revealing { .. } => "revealing",
        }
    }
}

/// The relay (sans-IO).
pub struct Relay {
    group: Arc<Group>,
    key: IdentityKey,
    faults: Vec<RelayFault>,
    epoch: u64,
    next_round: u64,
    epoch_keys: BTreeMap<u32, EpochPublic>,
    absent: BTreeMap<u32, Absence>,
    /// Members that connected while absent: a new epoch will invite them.
    rejoin: bool,
    /// This relay convicted itself (its faults were caught): it does nothing more.
    halted: bool,
    /// Simulation only: members skip pads and blinding, so the record is the cleartext.
    modeled: bool,
    chain_head: Hash,
    last: Option<(u64, Hash)>,
    alloc_src: Option<(u64, Hash, Vec<u32>)>,
    /// Allocation of the last completed round (for D of the next).
    alloc_map: Option<Allocation>,
    convicted: BTreeSet<u32>,
    epoch_keys_msg: Option<Signed<EpochKeys>>,
    /// The last completed round: its Open, Record, ZSet, and whether it used an allocation.
    done: Option<(Signed<Record>, Signed<ZSet>)>,
    /// The completed round before it (allocation evidence).
    prev_done: Option<(Signed<Record>, Signed<ZSet>)>,
    /// The blame case in progress.
    case: Option<Case>,
    /// Digest of the message that concluded the case of the last completed round, named by
    /// the next Open or EpochRequest.
    last_case: Option<Hash>,
    /// No Open signed yet by this process: counters may still be resumed from Hellos.
    fresh: bool,
    /// Hellos received while fresh: member → (high-water, epoch, last case).
    claims: BTreeMap<u32, (u64, u64, Option<Hash>)>,
    /// The last round this process opened.
    last_opened: u64,
    /// When this process last opened an attempt: the next one waits for `round_ms` after it.
    last_open_at: Option<Time>,
    /// Rounds completed by this process.
    completed: u64,
    /// `completed` when the current epoch started.
    epoch_started: u64,
    /// Times each member was excluded as unresponsive.
    strikes: BTreeMap<u32, u32>,
    /// Members sitting out until `completed` reaches the value.
    benched: BTreeMap<u32, u64>,
    /// Members of the current epoch that connected again during it (a restarted process
    /// that lost its epoch keys, or a flapping link): if one is then excluded, it is invited
    /// back at the next epoch, although its Hello came before the exclusion.
    reconnected: BTreeSet<u32>,
    /// A member asked (by Hello) for an epoch above this one.
    epoch_floor: u64,
    phase: Phase,
    outbox: VecDeque<Transmit>,
    events: VecDeque<RelayEvent>,
}

impl Relay {
    /// An honest relay. It draws no randomness (Ed25519 signing is deterministic), so unlike
    /// a member it takes no seed.
    pub fn new(group: Arc<Group>, key: IdentityKey) -> Result<Relay, String> {
        Self::with_faults(group, key, Vec::new())
    }

    /// A relay with injected faults (adversarial experiments only; see [`crate::adversary`]).
    pub fn with_faults(
        group: Arc<Group>,
        key: IdentityKey,
        faults: Vec<RelayFault>,
    ) -> Result<Relay, String> {
        if &key.public() != group.relay_key() {
            return Err("key is not the group's relay key".into());
        }
        Ok(Relay {
            group,
            key,
            faults,
            epoch: 0,
            next_round: 1,
            epoch_keys: BTreeMap::new(),
            absent: BTreeMap::new(),
            rejoin: false,
            halted: false,
            modeled: false,
            chain_head: [0; 32],
            last: None,
            alloc_src: None,
            alloc_map: None,
            convicted: BTreeSet::new(),
            epoch_keys_msg: None,
            done: None,
            prev_done: None,
            case: None,
            last_case: None,
            fresh: true,
            claims: BTreeMap::new(),
            last_opened: 0,
            last_open_at: None,
            completed: 0,
            epoch_started: 0,
            strikes: BTreeMap::new(),
            benched: BTreeMap::new(),
            reconnected: BTreeSet::new(),
            epoch_floor: 0,
            phase: Phase::Stopped,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// Resumes the round counter after a restart: the next round is `round + 1`.
    pub fn resume_after(&mut self, round: u64) {
        self.next_round = self.next_round.max(round.saturating_add(1));
    }

    /// Simulation only: members skip pads and blinding (see `Member::set_modeled_crypto`).
    #[doc(hidden)]
    pub fn set_modeled_crypto(&mut self, on: bool) {
        self.modeled = on;
    }

    /// Current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Next round number the relay will open.
    pub fn next_round(&self) -> u64 {
        self.next_round
    }

    /// Starts the first epoch.
    pub fn start(&mut self, now: Time) {
        if matches!(self.phase, Phase::Stopped) && !self.halted {
            self.begin_epoch(now);
        }
    }

    /// The transport reports that `member` connected (again): it will be invited at the next
    /// epoch if it is not part of the current one.
    pub fn handle_connected(&mut self, _now: Time, member: MemberId) {
        if self.convicted.contains(&member.0) {
            return;
        }
        if let Phase::Keys {
            invited,
            keys,
            request,
            ..
        } = &self.phase
        {
            if invited.contains(&member.0) && !keys.contains_key(&member.0) {
                // It can still answer this epoch's request: send it (again).
                let frame = request.to_vec();
                self.send(&[member.0], frame);
                return;
            }
        }
        if self
            .benched
            .get(&member.0)
            .is_some_and(|&t| t > self.completed)
        {
            return;
        }
        if self.absent.contains_key(&member.0) || !self.epoch_keys.contains_key(&member.0) {
            self.rejoin = true;
        } else {
            self.reconnected.insert(member.0);
        }
    }

    /// A member's Hello. A relay that has opened nothing yet (it just started) resumes its
    /// counters from what most members say ([`resume_value`]); a running relay lets one
    /// member's word move them only within every honest member's window, and never restarts
    /// an epoch for it (a rejoin waits for [`REJOIN_MIN_ROUNDS`]).
    fn handle_hello(&mut self, now: Time, from: MemberId, hello: &Hello) {
        if self.halted || self.convicted.contains(&from.0) {
            return;
        }
        if self.fresh {
            // Each member's word counts once: a member that says Hello again and again
            // cannot restart the epoch again and again.
            if self.claims.contains_key(&from.0) {
                self.handle_connected(now, from);
                return;
            }
            self.claims
                .insert(from.0, (hello.high_water, hello.epoch, hello.last_case));
            let rounds: Vec<u64> = self.claims.values().map(|c| c.0).collect();
            if let Some(v) = resume_value(&rounds, MAX_ROUND_JUMP) {
                self.next_round = v.max(1);
            }
            let epochs: Vec<u64> = self.claims.values().map(|c| c.1).collect();
            let target = resume_value(&epochs, MAX_EPOCH_JUMP).unwrap_or(1);
            let mut cases: BTreeMap<Hash, usize> = BTreeMap::new();
            for h in self.claims.values().filter_map(|c| c.2) {
                *cases.entry(h).or_default() += 1;
            }
            let case = cases
                .iter()
                .max_by_key(|(h, n)| (**n, std::cmp::Reverse(**h)))
                .map(|(h, _)| *h);
            let restart = target != self.epoch || case != self.last_case;
            if restart
                && matches!(
                    self.phase,
                    Phase::Stopped | Phase::Keys { .. } | Phase::Idle { .. }
                )
            {
                self.last_case = case;
                self.epoch = target.saturating_sub(1);
                self.begin_epoch(now);
                return;
            }
            self.handle_connected(now, from);
            return;
        }
        if hello.high_water >= self.next_round
            && hello.high_water < self.last_opened.saturating_add(MAX_ROUND_JUMP / 2)
        {
            self.resume_after(hello.high_water);
        }
        if hello.epoch >= self.epoch {
            self.epoch_floor = self.epoch_floor.max(
                hello
                    .epoch
                    .min(self.epoch.saturating_add(MAX_EPOCH_JUMP / 2)),
            );
            self.rejoin = true;
        }
        self.handle_connected(now, from);
    }

    /// Next frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }
    /// Next event.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }
    /// When [`Relay::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        match &self.phase {
            Phase::Stopped => None,
            Phase::Keys { deadline, .. }
            | Phase::Commit { deadline, .. }
            | Phase::Reveal { deadline, .. }
            | Phase::Unblind { deadline, .. }
            | Phase::Accusing { deadline, .. }
            | Phase::Disclosing { deadline, .. }
            | Phase::Revealing { deadline, .. } => Some(*deadline),
            Phase::Idle { at } => Some(*at),
        }
    }

    /// Acts on deadlines that have passed. Harmless if called early.
    pub fn handle_timeout(&mut self, now: Time) {
        let Some(t) = self.poll_timeout() else { return };
        if now < t {
            return;
        }
        match std::mem::replace(&mut self.phase, Phase::Stopped) {
            Phase::Keys {
                epoch,
                invited,
                keys,
                ..
            } => self.finish_keys(now, epoch, invited, keys),
            Phase::Idle { .. } => {
                let available = self
                    .epoch_keys
                    .keys()
                    .filter(|i| !self.absent.contains_key(i))
                    .count();
                let ran = self.completed.saturating_sub(self.epoch_started);
                let due = ran >= self.group.params().epoch_rounds;
                if due || (self.rejoin && (ran >= REJOIN_MIN_ROUNDS || available < 2)) {
                    self.begin_epoch(now);
                } else {
                    self.open_attempt(now);
                }
            }
            Phase::Commit { att, .. } => {
                let missing: Vec<u32> = att
                    .present
                    .iter()
                    .filter(|i| !att.commits.contains_key(i))
                    .copied()
                    .collect();
                self.abort(now, &att, missing, 0, Absence::Absent);
            }
            Phase::Reveal { att, .. } => {
                let missing: Vec<u32> = att
                    .present
                    .iter()
                    .filter(|i| !att.revealed.contains(i))
                    .copied()
                    .collect();
                self.abort(now, &att, missing, 1, Absence::Unresponsive);
            }
            Phase::Unblind { att, .. } => {
                let missing: Vec<u32> = att
                    .present
                    .iter()
                    .filter(|i| !att.seeds.contains_key(i))
                    .copied()
                    .collect();
                for &m in &missing {
                    self.exclude(m, Absence::Unresponsive, att.round);
                }
                self.send_zset(&att, missing);
                self.phase = Phase::Idle { at: now };
            }
            Phase::Accusing { false_one, .. } => self.start_blame(now, false_one),
            Phase::Disclosing { start, got, .. } => self.send_disclosure_set(now, start, got),
            Phase::Revealing { set, got, .. } => self.send_reveal_set(now, set, got),
            Phase::Stopped => {}
        }
    }

    fn sign<T: wire::Payload>(&self, round: u64, body: T) -> Signed<T> {
        Signed::sign(
            &self.key,
            *self.group.id(),
            self.epoch,
            round,
            Sender::Relay,
            body,
        )
    }

    fn send(&mut self, to: &[u32], frame: Vec<u8>) {
        let frame: Arc<[u8]> = frame.into();
        for &m in to {
            if self
                .faults
                .iter()
                .any(|f| matches!(f, RelayFault::Drop { victim } if *victim == m))
            {
                continue;
            }
            self.outbox.push_back(Transmit {
                to: MemberId(m),
                frame: frame.clone(),
            });
        }
    }

    fn exclude(&mut self, m: u32, reason: Absence, round: u64) {
        if reason == Absence::Unresponsive && self.absent.get(&m) != Some(&Absence::Unresponsive) {
            let k = self.strikes.entry(m).or_default();
            let shift = (*k).min(12);
            *k = k.saturating_add(1);
            self.benched
                .insert(m, self.completed.saturating_add(BENCH_ROUNDS << shift));
        }
        if self.reconnected.remove(&m) {
            // It came back before the relay noticed it was gone (restarted at once).
            self.rejoin = true;
        }
        if self.absent.insert(m, reason).is_none() {
            self.events.push_back(RelayEvent::Excluded {
                member: m,
                reason,
                round,
            });
        }
    }

    fn begin_epoch(&mut self, now: Time) {
        let Some(epoch) = self.epoch.max(self.epoch_floor).checked_add(1) else {
            // The epoch counter is exhausted: nothing more can be signed safely.
            self.halted = true;
            self.phase = Phase::Stopped;
            return;
        };
        self.epoch = epoch;
        self.rejoin = false;
        self.reconnected.clear();
        let eligible: Vec<u32> = (0..self.group.size() as u32)
            .filter(|i| !self.convicted.contains(i))
            .collect();
        let rested: Vec<u32> = eligible
            .iter()
            .copied()
            .filter(|i| self.benched.get(i).is_none_or(|&t| t <= self.completed))
            .collect();
        // Members excluded as unresponsive sit out a while, unless too few would be left.
        let invited = if rested.len() >= 2 { rested } else { eligible };
        self.absent.clear();
        let req = self.sign(
            0,
            EpochRequest {
                members: invited.clone(),
                last_case: self.last_case,
            },
        );
        let frame: Arc<[u8]> = req.into_frame().into();
        self.send(&invited, frame.to_vec());
        self.phase = Phase::Keys {
            epoch: self.epoch,
            invited,
            keys: BTreeMap::new(),
            deadline: now.plus_millis(self.group.params().keys_ms),
            request: frame,
        };
    }

    fn finish_keys(
        &mut self,
        now: Time,
        epoch: u64,
        invited: Vec<u32>,
        keys: BTreeMap<u32, Signed<EpochKey>>,
    ) {
        // Two members with the same epoch key: drop both (members refuse duplicate keys).
        let mut count: BTreeMap<EpochPublic, usize> = BTreeMap::new();
        for k in keys.values() {
            *count.entry(k.body.key).or_default() += 1;
        }
        let keys: BTreeMap<u32, Signed<EpochKey>> = keys
            .into_iter()
            .filter(|(_, k)| count[&k.body.key] == 1)
            .collect();
        for &i in &invited {
            if !keys.contains_key(&i) {
                self.exclude(i, Absence::Absent, self.next_round);
            }
        }
        if keys.len() < 2 {
            self.events.push_back(RelayEvent::Stalled {
                available: keys.len(),
            });
            // Try again with a fresh epoch after another key deadline.
            self.rejoin = true;
            self.phase = Phase::Idle {
                at: now.plus_millis(self.group.params().keys_ms),
            };
            return;
        }
        self.epoch_keys = keys.iter().map(|(i, k)| (*i, k.body.key)).collect();
        let list: Vec<(u32, EpochPublic)> = self.epoch_keys.iter().map(|(i, k)| (*i, *k)).collect();
        self.chain_head = keys::view_genesis(self.group.id(), epoch, &list);
        self.last = None;
        self.alloc_src = None;
        self.alloc_map = None;
        self.done = None;
        self.prev_done = None;
        self.case = None;
        self.last_case = None;
        self.epoch_started = self.completed;
        let members: Vec<u32> = keys.keys().copied().collect();
        let msg = self.sign(
            0,
            EpochKeys {
                keys: keys.into_values().collect(),
            },
        );
        self.epoch_keys_msg = Some(msg.clone());
        self.send(&members, msg.into_frame());
        self.events
            .push_back(RelayEvent::EpochStarted { epoch, members });
        self.phase = Phase::Idle { at: now };
    }

    fn open_attempt(&mut self, now: Time) {
        let present: Vec<u32> = self
            .epoch_keys
            .keys()
            .filter(|i| !self.absent.contains_key(i))
            .copied()
            .collect();
        if present.len() < 2 {
            self.events.push_back(RelayEvent::Stalled {
                available: present.len(),
            });
            self.rejoin = true;
            self.phase = Phase::Idle {
                at: now.plus_millis(self.group.params().keys_ms),
            };
            return;
        }
        // Fixed pace: attempts open every `round_ms`, whatever the members have to send.
        let period = self.group.params().round_ms;
        if let Some(due) = self.last_open_at.map(|t| t.plus_millis(period)) {
            if period > 0 && now < due {
                self.phase = Phase::Idle { at: due };
                return;
            }
        }
        let round = self.next_round;
        let Some(next) = round.checked_add(1) else {
            self.halted = true;
            self.phase = Phase::Stopped;
            return;
        };
        self.next_round = next;
        self.last_open_at = Some(now);
        self.fresh = false;
        self.claims.clear();
        self.last_opened = round;
        let alloc = self
            .alloc_src
            .as_ref()
            .filter(|(_, _, p)| p.iter().all(|i| present.contains(i)))
            .map(|(r, h, _)| (*r, *h));
        let commit_ms = self.group.params().commit_ms;
        let body = Open {
            view_prev: self.chain_head,
            present: present.clone(),
            last: self.last,
            alloc,
            voids: Vec::new(),
            commit_ms,
            last_case: self.last_case,
        };
        let open = self.sign(round, body.clone());
        let open_hash = open.digest();
        let view = keys::view_step(&self.chain_head, round, &open_hash);
        let mut alt_open = None;
        let victim = self.faults.iter().find_map(|f| match f {
            RelayFault::Equivocate { victim } => Some(*victim),
            _ => None,
        });
        match victim.filter(|v| present.contains(v)) {
            Some(v) => {
                let others: Vec<u32> = present.iter().copied().filter(|&i| i != v).collect();
                self.send(&others, open.clone().into_frame());
                let alt = self.sign(
                    round,
                    Open {
                        commit_ms: commit_ms + 1,
                        ..body
                    },
                );
                let h = alt.digest();
                self.send(&[v], alt.clone().into_frame());
                alt_open = Some((alt, h, v));
            }
            None => self.send(&present, open.clone().into_frame()),
        }
        self.events.push_back(RelayEvent::Opened {
            round,
            present: present.clone(),
        });
        let len = self.group.params().vector_len();
        self.phase = Phase::Commit {
            att: Box::new(Attempt {
                round,
                open,
                open_hash,
                alt_open,
                view,
                present,
                commits: BTreeMap::new(),
                commit_set: None,
                xor: vec![0; len],
                revealed: BTreeSet::new(),
                record_hash: [0; 32],
                record: None,
                alt_record_hash: None,
                seeds: BTreeMap::new(),
            }),
            deadline: now.plus_millis(commit_ms),
        };
    }

    fn abort(&mut self, now: Time, att: &Attempt, missing: Vec<u32>, phase: u8, why: Absence) {
        for &m in &missing {
            self.exclude(m, why, att.round);
        }
        let msg = self.sign(
            att.round,
            Abort {
                missing: missing.clone(),
                phase,
            },
        );
        self.send(&att.present, msg.into_frame());
        self.events.push_back(RelayEvent::Aborted {
            round: att.round,
            missing,
        });
        self.phase = Phase::Idle { at: now };
    }

    /// Handles a frame that the transport authenticated as coming from `from`.
    /// On error the state is unchanged.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: MemberId,
        bytes: &[u8],
    ) -> Result<(), ProtocolError> {
        let f = wire::decode_frame(bytes)?;
        let kind = f.header.kind;
        if f.header.sender != Sender::Member(from.0) {
            return Err(ProtocolError::WrongSender(kind));
        }
        if &f.header.group_id != self.group.id() {
            return Err(ProtocolError::WrongGroup);
        }
        let Some(pk) = self.group.member_key(from.0).copied() else {
            return Err(ProtocolError::WrongSender(kind));
        };
        let unexpected = ProtocolError::Unexpected {
            kind,
            phase: self.phase.name(),
        };
        match f.body {
            Body::EpochKey(b) => {
                let m = wire::typed(f.header, b, f.sig);
                let Phase::Keys {
                    epoch,
                    invited,
                    keys,
                    ..
                } = &mut self.phase
                else {
                    return Err(unexpected);
                };
                if m.header.epoch != *epoch || m.header.round != 0 {
                    return Err(ProtocolError::WrongEpoch {
                        expected: *epoch,
                        got: m.header.epoch,
                    });
                }
                if !invited.contains(&from.0) || keys.contains_key(&from.0) {
                    return Err(unexpected);
                }
                if !m.verify(&pk) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                if m.body.key.point().is_none() {
                    return Err(invalid(kind, "identity or invalid point"));
                }
                keys.insert(from.0, m);
                if keys.len() == invited.len() {
                    self.handle_timeout_now(now);
                }
                Ok(())
            }
            Body::Commit(b) => {
                let m = wire::typed(f.header, b, f.sig);
                let epoch = self.epoch;
                let Phase::Commit { att, .. } = &mut self.phase else {
                    return Err(unexpected);
                };
                check_attempt(&m.header, epoch, att, from.0)?;
                if !m.verify(&pk) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                if let Some(first) = att.commits.get(&from.0) {
                    if first.body == m.body {
                        return Err(unexpected);
                    }
                    // Two different signed commitments for one round: equivocation.
                    let pair = (first.clone(), m);
                    self.member_equivocated(now, pair);
                    return Ok(());
                }
                let binds_ok = m.body.open == att.open_hash
                    || att
                        .alt_open
                        .as_ref()
                        .is_some_and(|(_, h, v)| *v == from.0 && m.body.open == *h);
                if !binds_ok {
                    return Err(invalid(kind, "binds another Open"));
                }
                // A content seal only from the attempt's keyholder, one per other member of P
                // (members check the same; this bounds what the CommitSet carries to everyone).
                if let Some(cs) = &m.body.content {
                    let holder = super::member::keyholder(att.round, &att.present);
                    if holder != Some(from.0)
                        || !super::member::seal_list_ok(cs, &att.present, from.0)
                    {
                        return Err(invalid(
                            kind,
                            "a content seal from a non-keyholder, or malformed",
                        ));
                    }
                }
                att.commits.insert(from.0, m);
                if att.commits.len() == att.present.len() {
                    self.send_commit_set(now);
                }
                Ok(())
            }
            // Unsigned kinds carry an all-zero signature (one canonical form).
            _ if wire::UNSIGNED_KINDS.contains(&kind) && f.sig != [0; 64] => {
                Err(invalid(kind, "an unsigned kind with a signature"))
            }
            Body::Reveal(b) => {
                let Phase::Reveal { att, .. } = &mut self.phase else {
                    return Err(unexpected);
                };
                let epoch = self.epoch;
                check_attempt(&f.header, epoch, att, from.0)?;
                if att.revealed.contains(&from.0) {
                    return Err(unexpected);
                }
                // Authenticated by the signed commitment: the ciphertext must match its root.
                let Some(c) = att.commits.get(&from.0) else {
                    return Err(unexpected);
                };
                if b.ciphertext.len() != att.xor.len()
                    || !ct_eq(&merkle::commit(&b.ciphertext), &c.body.ciphertext)
                {
                    return Err(invalid(kind, "does not match its commitment"));
                }
                for (x, c) in att.xor.iter_mut().zip(&b.ciphertext) {
                    *x ^= c;
                }
                att.revealed.insert(from.0);
                if att.revealed.len() == att.present.len() {
                    self.send_record(now);
                }
                Ok(())
            }
            Body::Unblind(Unblind { z }) => {
                let Phase::Unblind { att, .. } = &mut self.phase else {
                    return Err(unexpected);
                };
                let epoch = self.epoch;
                check_attempt(&f.header, epoch, att, from.0)?;
                if att.seeds.contains_key(&from.0) {
                    return Err(unexpected);
                }
                let Some(c) = att.commits.get(&from.0) else {
                    return Err(unexpected);
                };
                if !ct_eq(
                    &keys::blind_commitment(&StreamKey::from_bytes(z)),
                    &c.body.blinding,
                ) {
                    return Err(invalid(kind, "does not match its commitment"));
                }
                att.seeds.insert(from.0, z);
                if att.seeds.len() == att.present.len() {
                    self.finish_round(now);
                }
                Ok(())
            }
            Body::Hello(b) => {
                let m = wire::typed(f.header, b, f.sig);
                if !m.verify(&pk) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                if m.body.protocol != wire::PROTOCOL_VERSION {
                    return Err(invalid(kind, "speaks another protocol version"));
                }
                self.handle_hello(now, from, &m.body);
                Ok(())
            }
            Body::Accuse(b) => {
                let m = wire::typed(f.header, b, f.sig);
                match &mut self.phase {
                    Phase::Accusing { heard, .. } => {
                        if !heard.insert(from.0) {
                            return Err(unexpected);
                        }
                    }
                    _ => return Err(unexpected),
                }
                let Some((rec, _)) = &self.done else {
                    return Err(unexpected);
                };
                if m.header.epoch != self.epoch
                    || m.header.round != rec.header.round
                    || m.body.record != rec.digest()
                {
                    return Err(invalid(kind, "not about the last completed round"));
                }
                if !m.verify(&pk) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                // Only D's first slot's owner holds a valid accusation, and an honest owner
                // must see it carried: a false one (which would convict its signer) waits
                // until the deadline in case the valid one comes.
                let valid = self
                    .base_case()
                    .and_then(|c| RoundView::new(&c).ok())
                    .is_some_and(|rv| rv.check_accusation(&m).is_some());
                if valid {
                    self.start_blame(now, Some(m));
                } else if let Phase::Accusing { false_one, .. } = &mut self.phase {
                    false_one.get_or_insert(m);
                }
                Ok(())
            }
            Body::Disclose(b) => {
                let m = wire::typed(f.header, b, f.sig);
                let epoch = self.epoch;
                let Phase::Disclosing { start, got, .. } = &mut self.phase else {
                    return Err(unexpected);
                };
                if m.header.epoch != epoch
                    || m.header.round != start.header.round
                    || m.body.start != start.digest()
                {
                    return Err(invalid(kind, "answers another BlameStart"));
                }
                let present = self
                    .case
                    .as_ref()
                    .and_then(|c| c.record.as_ref())
                    .and_then(|r| r.body.opens.first())
                    .map(|o| o.body.present.clone())
                    .unwrap_or_default();
                if !present.contains(&from.0) || got.contains_key(&from.0) {
                    return Err(unexpected);
                }
                if !m.verify(&pk) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                got.insert(from.0, m);
                if got.len() == present.len() {
                    self.handle_timeout_now(now);
                }
                Ok(())
            }
            Body::KeyReveal(b) => {
                let m = wire::typed(f.header, b, f.sig);
                let epoch = self.epoch;
                let Phase::Revealing {
                    set, expected, got, ..
                } = &mut self.phase
                else {
                    return Err(unexpected);
                };
                let key = (from.0, m.body.other);
                if m.header.epoch != epoch
                    || m.header.round != set.header.round
                    || m.body.set != set.digest()
                    || !expected.contains(&key)
                    || got.contains_key(&key)
                {
                    return Err(invalid(kind, "not an expected key reveal"));
                }
                if !m.verify(&pk) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                got.insert(key, m);
                if got.len() == expected.len() {
                    self.handle_timeout_now(now);
                }
                Ok(())
            }
            _ => Err(unexpected),
        }
    }

    /// A member signed two different commitments for one round: forward the evidence, convict,
    /// abort the attempt and start an epoch without it.
    fn member_equivocated(&mut self, now: Time, commits: (Signed<Commit>, Signed<Commit>)) {
        let Some(epoch_keys) = self.epoch_keys_msg.clone() else {
            return;
        };
        let case = Case::of_equivocation(self.group.to_data(), epoch_keys, commits.clone());
        let Ok(verdict) = blame::judge(&case) else {
            return;
        };
        let Phase::Commit { att, .. } = std::mem::replace(&mut self.phase, Phase::Stopped) else {
            return;
        };
        let msg = self.sign(att.round, Evidence { commits });
        self.send(&att.present, msg.into_frame());
        let culprit = match verdict.culprit {
            Some(Culprit::Member(i)) => i,
            _ => return self.idle(now),
        };
        let abort = self.sign(
            att.round,
            Abort {
                missing: vec![culprit],
                phase: 0,
            },
        );
        self.send(&att.present, abort.into_frame());
        self.events.push_back(RelayEvent::Aborted {
            round: att.round,
            missing: vec![culprit],
        });
        self.events.push_back(RelayEvent::Verdict {
            verdict,
            case: Box::new(case),
        });
        self.convicted.insert(culprit);
        self.begin_epoch(now);
    }

    /// Ends the current phase now (everyone answered before the deadline).
    fn handle_timeout_now(&mut self, now: Time) {
        match &mut self.phase {
            Phase::Keys { deadline, .. }
            | Phase::Disclosing { deadline, .. }
            | Phase::Revealing { deadline, .. } => *deadline = now,
            _ => {}
        }
        self.handle_timeout(now);
    }

    fn send_commit_set(&mut self, now: Time) {
        let Phase::Commit { mut att, .. } = std::mem::replace(&mut self.phase, Phase::Stopped)
        else {
            return;
        };
        let cs = self.sign(
            att.round,
            CommitSet {
                open: att.open_hash,
                commits: att.commits.values().cloned().collect(),
            },
        );
        let mut frame_for_victim = None;
        if let Some((_, h, v)) = &att.alt_open {
            // The victim is shown a CommitSet naming its own Open.
            let alt = self.sign(
                att.round,
                CommitSet {
                    open: *h,
                    commits: att.commits.values().cloned().collect(),
                },
            );
            frame_for_victim = Some((*v, alt));
        }
        match frame_for_victim {
            Some((v, alt)) => {
                let others: Vec<u32> = att.present.iter().copied().filter(|&i| i != v).collect();
                self.send(&others, cs.clone().into_frame());
                self.send(&[v], alt.into_frame());
            }
            None => self.send(&att.present, cs.clone().into_frame()),
        }
        att.commit_set = Some(cs);
        self.phase = Phase::Reveal {
            att,
            deadline: now.plus_millis(self.group.params().reveal_ms),
        };
    }

    fn send_record(&mut self, now: Time) {
        let Phase::Reveal { mut att, .. } = std::mem::replace(&mut self.phase, Phase::Stopped)
        else {
            return;
        };
        let Some(cs) = att.commit_set.clone() else {
            return;
        };
        let mut opens = vec![att.open.clone()];
        if let Some((o, _, _)) = &att.alt_open {
            opens.push(o.clone());
        }
        let mut xor = att.xor.clone();
        for f in &self.faults {
            if let RelayFault::Tamper { offset, mask } = f {
                let n = xor.len();
                let at = offset.unwrap_or(self.group.params().cells as usize * 8 + 5);
                xor[at % n] ^= *mask;
            }
        }
        let body = Record {
            commit_set: cs,
            opens,
            xor,
        };
        let record = self.sign(att.round, body.clone());
        att.record_hash = record.digest();
        att.record = Some(record.clone());
        match att.alt_open.as_ref().map(|(_, h, v)| (*h, *v)) {
            Some((alt_hash, v)) => {
                // The victim's Record carries the CommitSet it was shown; both name both Opens.
                let others: Vec<u32> = att.present.iter().copied().filter(|&i| i != v).collect();
                self.send(&others, record.into_frame());
                let alt_cs = self.sign(
                    att.round,
                    CommitSet {
                        open: alt_hash,
                        commits: att.commits.values().cloned().collect(),
                    },
                );
                let alt = self.sign(
                    att.round,
                    Record {
                        commit_set: alt_cs,
                        ..body
                    },
                );
                att.alt_record_hash = Some(alt.digest());
                self.send(&[v], alt.into_frame());
            }
            None => self.send(&att.present, record.into_frame()),
        }
        self.phase = Phase::Unblind {
            att,
            deadline: now.plus_millis(self.group.params().unblind_ms),
        };
    }

    fn send_zset(&mut self, att: &Attempt, missing: Vec<u32>) -> Signed<ZSet> {
        let seeds: Vec<(u32, [u8; 32])> = att.seeds.iter().map(|(i, z)| (*i, *z)).collect();
        let zset = |record| ZSet {
            record,
            seeds: seeds.clone(),
            missing: missing.clone(),
        };
        let msg = self.sign(att.round, zset(att.record_hash));
        match (&att.alt_open, att.alt_record_hash) {
            (Some((_, _, v)), Some(alt)) => {
                // Under equivocation each side gets a ZSet naming the Record it holds.
                let v = *v;
                let others: Vec<u32> = att.present.iter().copied().filter(|&i| i != v).collect();
                self.send(&others, msg.clone().into_frame());
                let m = self.sign(att.round, zset(alt));
                self.send(&[v], m.into_frame());
            }
            _ => self.send(&att.present, msg.clone().into_frame()),
        }
        msg
    }

    fn finish_round(&mut self, now: Time) {
        let Phase::Unblind { att, .. } = std::mem::replace(&mut self.phase, Phase::Stopped) else {
            return;
        };
        let zset = self.send_zset(&att, Vec::new());
        self.chain_head = att.view;
        self.last = Some((att.round, att.record_hash));
        // The cleartext, as members compute it: for the allocation of the next attempt (void if
        // more cells are non-zero than there are slots) and for D.
        let layout = Layout::new(self.group.params());
        let mut clear = att.xor.clone();
        if let Some(rec) = &att.record {
            clear.copy_from_slice(&rec.body.xor);
        }
        let seeds: Vec<StreamKey> = att
            .seeds
            .values()
            .map(|z| StreamKey::from_bytes(*z))
            .collect();
        if !self.modeled {
            pad::unblind_in_place(&mut Keystream::new(), &mut clear, att.round, &seeds);
        }
        let used = match (&att.open.body.alloc, &self.alloc_map) {
            (Some(_), Some(a)) => a.slots(),
            _ => BTreeSet::new(),
        };
        let checks = OutputChecks::new(&layout, att.round, &clear);
        let damage = blame::damaged_checked(&layout, &checks, &clear, &used);
        let alloc = Allocation::from_digest(&layout, &checks.digest, &clear, att.present.len());
        let cell_check = alloc.cell_check;
        self.alloc_src =
            (!alloc.overflow).then(|| (att.round, att.record_hash, att.present.clone()));
        self.alloc_map = Some(alloc);
        if let Some(rec) = att.record.clone() {
            self.prev_done = self.done.take();
            self.done = Some((rec, zset));
        }
        self.case = None;
        self.last_case = None;
        self.completed = self.completed.saturating_add(1);
        // A member whose time out as unresponsive ends now is invited back at the next epoch.
        let back = self.benched.iter().any(|(m, &t)| {
            t == self.completed && !self.epoch_keys.contains_key(m) && !self.convicted.contains(m)
        });
        if back {
            self.rejoin = true;
        }
        self.events.push_back(RelayEvent::Completed {
            round: att.round,
            present: att.present.clone(),
        });
        // Members that see damage or a cell-check trigger accept no Open until a BlameStart
        // (and what follows) concludes the case, so one is always sent.
        match damage.first() {
            Some(d) if d.allocated => {
                self.phase = Phase::Accusing {
                    deadline: now.plus_millis(self.group.params().reveal_ms),
                    false_one: None,
                    heard: BTreeSet::new(),
                }
            }
            Some(_) => self.start_blame(now, None),
            None if cell_check => self.start_blame(now, None),
            None => {
                self.phase = Phase::Idle {
                    at: now.plus_millis(self.group.params().post_round_ms),
                }
            }
        }
    }

    fn base_case(&self) -> Option<Case> {
        let (record, zset) = self.done.clone()?;
        let uses_alloc = record.body.opens.first()?.body.alloc.is_some();
        Some(Case::of_round(
            self.group.to_data(),
            self.epoch_keys_msg.clone()?,
            record,
            zset,
            if uses_alloc {
                self.prev_done.clone()
            } else {
                None
            },
        ))
    }

    fn idle(&mut self, now: Time) {
        self.phase = Phase::Idle {
            at: now.plus_millis(self.group.params().post_round_ms),
        };
    }

    /// Opens a disclosure for the last completed round (with an accusation, or against zero).
    fn start_blame(&mut self, now: Time, accusation: Option<Signed<Accuse>>) {
        let Some(mut case) = self.base_case() else {
            return self.idle(now);
        };
        let Ok(rv) = RoundView::new(&case) else {
            return self.idle(now);
        };
        let accused = accusation.as_ref().and_then(|a| rv.check_accusation(a));
        let positions = rv.positions(accused.map(|a| a.1));
        let present = rv.open.body.present.clone();
        let start = self.sign(
            rv.round,
            BlameStart {
                record: rv.record_digest,
                accusation,
                positions,
            },
        );
        self.send(&present, start.clone().into_frame());
        case.start = Some(start.clone());
        match blame::assess(&case) {
            Ok(Assessment::Disclose(_)) => {}
            Ok(Assessment::Verdict(v)) => {
                // Judged without disclosure (nothing to check, or a false accusation).
                return self.apply(now, case, v, start.digest());
            }
            _ => return self.idle(now),
        }
        self.case = Some(case);
        self.phase = Phase::Disclosing {
            start,
            got: BTreeMap::new(),
            deadline: now.plus_millis(self.group.params().reveal_ms),
        };
    }

    fn send_disclosure_set(
        &mut self,
        now: Time,
        start: Signed<BlameStart>,
        got: BTreeMap<u32, Signed<Disclose>>,
    ) {
        let Some(mut case) = self.case.take() else {
            return self.idle(now);
        };
        let present = case
            .record
            .as_ref()
            .and_then(|r| r.body.opens.first())
            .map(|o| o.body.present.clone())
            .unwrap_or_default();
        let missing: Vec<u32> = present
            .iter()
            .copied()
            .filter(|i| !got.contains_key(i))
            .collect();
        let set = self.sign(
            start.header.round,
            DisclosureSet {
                start,
                disclosures: got.into_values().collect(),
                missing,
            },
        );
        self.send(&present, set.clone().into_frame());
        case.disclosure = Some(set.clone());
        let disputes = match blame::assess(&case) {
            Ok(Assessment::Verdict(v)) => return self.apply(now, case, v, set.digest()),
            Ok(Assessment::RevealKeys(d)) => d,
            _ => return self.idle(now),
        };
        let expected = disputes
            .pairs()
            .iter()
            .flat_map(|&(i, j)| [(i, j), (j, i)])
            .collect();
        self.case = Some(case);
        self.phase = Phase::Revealing {
            set,
            expected,
            got: BTreeMap::new(),
            deadline: now.plus_millis(self.group.params().reveal_ms),
        };
    }

    fn send_reveal_set(
        &mut self,
        now: Time,
        set: Signed<DisclosureSet>,
        got: BTreeMap<(u32, u32), Signed<KeyReveal>>,
    ) {
        let Some(mut case) = self.case.take() else {
            return self.idle(now);
        };
        let msg = self.sign(
            set.header.round,
            RevealSet {
                set: set.digest(),
                reveals: got.into_values().collect(),
            },
        );
        let present: Vec<u32> = set
            .body
            .disclosures
            .iter()
            .filter_map(|d| match d.header.sender {
                Sender::Member(i) => Some(i),
                Sender::Relay => None,
            })
            .chain(set.body.missing.iter().copied())
            .collect::<BTreeSet<u32>>()
            .into_iter()
            .collect();
        self.send(&present, msg.clone().into_frame());
        let digest = msg.digest();
        case.reveals = Some(msg);
        match blame::judge(&case) {
            Ok(v) => self.apply(now, case, v, digest),
            Err(_) => self.idle(now),
        }
    }

    /// Acts on a case's verdict: a convicted member is removed by a new epoch; silent members
    /// are excluded as unresponsive; a convicted relay (this very relay, if it misbehaved)
    /// stops.
    fn apply(&mut self, now: Time, case: Case, verdict: Verdict, last: Hash) {
        self.last_case = Some(last);
        let round = verdict.round;
        for &m in &verdict.unresponsive {
            self.exclude(m, Absence::Unresponsive, round);
        }
        let culprit = verdict.culprit;
        if blame::notable(&verdict, &case) {
            self.events.push_back(RelayEvent::Verdict {
                verdict,
                case: Box::new(case),
            });
        }
        match culprit {
            Some(Culprit::Member(i)) => {
                self.convicted.insert(i);
                self.begin_epoch(now);
            }
            Some(Culprit::Relay) => {
                self.halted = true;
                self.phase = Phase::Stopped;
            }
            None => self.idle(now),
        }
    }
}

fn check_attempt(
    h: &wire::Header,
    epoch: u64,
    att: &Attempt,
    from: u32,
) -> Result<(), ProtocolError> {
    if h.epoch != epoch {
        return Err(ProtocolError::WrongEpoch {
            expected: epoch,
            got: h.epoch,
        });
    }
    if h.round != att.round {
        return Err(ProtocolError::BadRound {
            round: h.round,
            high_water: att.round,
        });
    }
    if !att.present.contains(&from) {
        return Err(invalid(h.kind, "sender not in the present set"));
    }
    Ok(())
}
