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

use super::{MemberId, ProtocolError, Time, Transmit, invalid};
use crate::adversary::RelayFault;
use crate::crypto::identity::IdentityKey;
use crate::crypto::keys::{self, EpochPublic};
use crate::crypto::pad::{self, Keystream, StreamKey};
use crate::crypto::{Hash, ct_eq, merkle};
use crate::params::Group;
use crate::wire::{
    self, Abort, Body, Commit, CommitSet, EpochKey, EpochKeys, EpochRequest, Open, Record, Sender,
    Signed, Unblind, ZSet,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

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
        }
    }
}

/// The relay (sans-IO).
pub struct Relay {
    group: Arc<Group>,
    key: IdentityKey,
    #[allow(dead_code)]
    rng: ChaCha20Rng,
    faults: Vec<RelayFault>,
    epoch: u64,
    next_round: u64,
    epoch_keys: BTreeMap<u32, EpochPublic>,
    absent: BTreeMap<u32, Absence>,
    /// Members that connected while absent: a new epoch will invite them.
    rejoin: bool,
    chain_head: Hash,
    last: Option<(u64, Hash)>,
    alloc_src: Option<(u64, Hash, Vec<u32>)>,
    phase: Phase,
    outbox: VecDeque<Transmit>,
    events: VecDeque<RelayEvent>,
}

impl Relay {
    /// An honest relay.
    pub fn new(group: Arc<Group>, key: IdentityKey, seed: [u8; 32]) -> Result<Relay, String> {
        Self::with_faults(group, key, seed, Vec::new())
    }

    /// A relay with injected faults (adversarial experiments only; see [`crate::adversary`]).
    pub fn with_faults(
        group: Arc<Group>,
        key: IdentityKey,
        seed: [u8; 32],
        faults: Vec<RelayFault>,
    ) -> Result<Relay, String> {
        if &key.public() != group.relay_key() {
            return Err("key is not the group's relay key".into());
        }
        Ok(Relay {
            group,
            key,
            rng: ChaCha20Rng::from_seed(seed),
            faults,
            epoch: 0,
            next_round: 1,
            epoch_keys: BTreeMap::new(),
            absent: BTreeMap::new(),
            rejoin: false,
            chain_head: [0; 32],
            last: None,
            alloc_src: None,
            phase: Phase::Stopped,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// Resumes the round counter after a restart: the next round is `round + 1`.
    pub fn resume_after(&mut self, round: u64) {
        self.next_round = self.next_round.max(round + 1);
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
        if matches!(self.phase, Phase::Stopped) {
            self.begin_epoch(now);
        }
    }

    /// The transport reports that `member` connected (again): it will be invited at the next
    /// epoch if it is not part of the current one.
    pub fn handle_connected(&mut self, _now: Time, member: MemberId) {
        if self.absent.contains_key(&member.0) || !self.epoch_keys.contains_key(&member.0) {
            self.rejoin = true;
        }
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
            | Phase::Unblind { deadline, .. } => Some(*deadline),
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
                if self.rejoin {
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
        if self.absent.insert(m, reason).is_none() {
            self.events.push_back(RelayEvent::Excluded {
                member: m,
                reason,
                round,
            });
        }
    }

    fn begin_epoch(&mut self, now: Time) {
        self.epoch += 1;
        self.rejoin = false;
        let invited: Vec<u32> = (0..self.group.size() as u32).collect();
        self.absent.clear();
        let req = self.sign(
            0,
            EpochRequest {
                members: invited.clone(),
            },
        );
        self.send(&invited, req.into_frame());
        self.phase = Phase::Keys {
            epoch: self.epoch,
            invited,
            keys: BTreeMap::new(),
            deadline: now.plus_millis(self.group.params().keys_ms),
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
        let members: Vec<u32> = keys.keys().copied().collect();
        let msg = self.sign(
            0,
            EpochKeys {
                keys: keys.into_values().collect(),
            },
        );
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
        let round = self.next_round;
        self.next_round += 1;
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
                if att.commits.contains_key(&from.0) {
                    return Err(unexpected);
                }
                if !m.verify(&pk) {
                    return Err(ProtocolError::BadSignature(kind));
                }
                let binds_ok = m.body.open == att.open_hash
                    || att
                        .alt_open
                        .as_ref()
                        .is_some_and(|(_, h, v)| *v == from.0 && m.body.open == *h);
                if !binds_ok {
                    return Err(invalid(kind, "binds another Open"));
                }
                att.commits.insert(from.0, m);
                if att.commits.len() == att.present.len() {
                    self.send_commit_set(now);
                }
                Ok(())
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
            _ => Err(unexpected),
        }
    }

    fn handle_timeout_now(&mut self, now: Time) {
        if let Phase::Keys { deadline, .. } = &mut self.phase {
            *deadline = now;
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

    fn send_zset(&mut self, att: &Attempt, missing: Vec<u32>) {
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
                self.send(&others, msg.into_frame());
                let m = self.sign(att.round, zset(alt));
                self.send(&[v], m.into_frame());
            }
            _ => self.send(&att.present, msg.into_frame()),
        }
    }

    fn finish_round(&mut self, now: Time) {
        let Phase::Unblind { att, .. } = std::mem::replace(&mut self.phase, Phase::Stopped) else {
            return;
        };
        self.send_zset(&att, Vec::new());
        self.chain_head = att.view;
        self.last = Some((att.round, att.record_hash));
        // The allocation is void if more cells are non-zero than there are slots (the public
        // full-check trigger). Members decide that from the cleartext; the relay needs only the
        // cell region of it, which costs `cells·8` keystream bytes per member.
        let p = self.group.params();
        let cell_bytes = p.cells as usize * 8;
        let mut cells = att.xor[..cell_bytes].to_vec();
        let seeds: Vec<StreamKey> = att
            .seeds
            .values()
            .map(|z| StreamKey::from_bytes(*z))
            .collect();
        pad::unblind_in_place(&mut Keystream::new(), &mut cells, att.round, &seeds);
        let nonzero = cells
            .chunks(8)
            .filter(|c| c.iter().any(|&b| b != 0))
            .count();
        self.alloc_src = (nonzero <= p.slots as usize)
            .then(|| (att.round, att.record_hash, att.present.clone()));
        self.events.push_back(RelayEvent::Completed {
            round: att.round,
            present: att.present.clone(),
        });
        self.phase = Phase::Idle {
            at: now.plus_millis(self.group.params().post_round_ms),
        };
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
