//! A byzantine-relay harness: the test holds the relay key and drives real [`Member`] engines
//! with hand-made, relay-signed messages. `ByzRelay` can run honest rounds (so attacks start
//! from a real state), and every frame members send is kept in `seen`: what a relay learns.
#![allow(dead_code)]

use dcnet::crypto::Hash;
use dcnet::crypto::identity::IdentityKey;
use dcnet::crypto::keys::ContentKey;
use dcnet::crypto::pad::{Keystream, StreamKey};
use dcnet::params::RoundParams;
use dcnet::protocol::blame::{Case, RoundView};
use dcnet::protocol::slots::{self, Allocation, Layout, SlotContent};
use dcnet::protocol::{Member, MemberEvent, MemberId, MemoryStore, ProtocolError, Time};
use dcnet::sim::{TestGroup, derive_seed};
use dcnet::wire::{
    self, Accuse, Body, Commit, CommitSet, Disclose, DisclosureSet, EpochKey, EpochKeys,
    EpochRequest, Frame, Kind, Open, Payload, Record, Sender, Signed, ZSet,
};
use std::collections::{BTreeMap, BTreeSet};

/// The outcome of one scripted round.
#[derive(Clone)]
pub struct RoundOut {
    pub round: u64,
    pub present: Vec<u32>,
    pub record: Signed<Record>,
    pub zset: Option<Signed<ZSet>>,
    /// The true cleartext, computed by the relay from every seed it received (None if some
    /// seed never came).
    pub clear: Option<Vec<u8>>,
    /// Whether members completed the round (the ZSet carried every seed).
    pub completed: bool,
    /// The epoch's content key as a member held it then: these scripts model the worst case,
    /// a relay that a colluding member gave the key (docs/SECURITY.md). Without it the relay
    /// reads no slot at all.
    pub key: Option<ContentKey>,
}

pub struct ByzRelay {
    pub tg: TestGroup,
    pub members: Vec<Member>,
    pub events: Vec<Vec<MemberEvent>>,
    pub errors: Vec<(u32, ProtocolError)>,
    /// Every frame each member sent, in order (what the relay saw).
    pub seen: Vec<(u32, Frame)>,
    /// Frames not yet consumed by the script.
    pub inbox: Vec<(u32, Frame)>,
    pub now: Time,
    pub epoch: u64,
    pub round: u64,
    pub chain: Hash,
    pub last: Option<(u64, Hash)>,
    pub last_case: Option<Hash>,
    /// Allocation source: (round, record digest, present, cleartext).
    pub alloc_src: Option<(u64, Hash, Vec<u32>, Vec<u8>)>,
    pub epoch_keys: Option<Signed<EpochKeys>>,
    /// Completed rounds (Record, ZSet) in order.
    pub history: Vec<RoundOut>,
    /// Every round that reached its Record, completed or not.
    pub all_rounds: Vec<RoundOut>,
    pub layout: Layout,
}

pub fn relay_key(tg: &TestGroup) -> IdentityKey {
    IdentityKey::from_secret_bytes(&tg.relay_key.secret_bytes())
}

impl ByzRelay {
    pub fn new(n: usize, params: RoundParams, seed: u64) -> ByzRelay {
        let tg = TestGroup::new(n, params, seed).unwrap();
        let members = (0..n)
            .map(|i| {
                Member::new(
                    tg.group.clone(),
                    MemberId(i as u32),
                    IdentityKey::from_secret_bytes(&tg.member_keys[i].secret_bytes()),
                    derive_seed(seed, "byz-member", i as u64),
                    Box::new(MemoryStore::default()),
                )
                .unwrap()
            })
            .collect();
        let layout = Layout::new(tg.group.params());
        ByzRelay {
            tg,
            members,
            events: vec![Vec::new(); n],
            errors: Vec::new(),
            seen: Vec::new(),
            inbox: Vec::new(),
            now: Time::ZERO,
            epoch: 0,
            round: 0,
            chain: [0; 32],
            last: None,
            last_case: None,
            alloc_src: None,
            epoch_keys: None,
            history: Vec::new(),
            all_rounds: Vec::new(),
            layout,
        }
    }

    pub fn n(&self) -> usize {
        self.members.len()
    }

    pub fn sign<T: Payload>(&self, round: u64, body: T) -> Signed<T> {
        Signed::sign(
            &self.tg.relay_key,
            *self.tg.group.id(),
            self.epoch,
            round,
            Sender::Relay,
            body,
        )
    }

    /// Signs `body` as member `i` would (a colluding member's key).
    pub fn sign_as<T: Payload>(&self, i: u32, round: u64, body: T) -> Signed<T> {
        Signed::sign(
            &self.tg.member_keys[i as usize],
            *self.tg.group.id(),
            self.epoch,
            round,
            Sender::Member(i),
            body,
        )
    }

    fn drain(&mut self, i: usize) {
        while let Some(f) = self.members[i].poll_transmit() {
            let fr = wire::decode_frame(&f).expect("members send well-formed frames");
            self.seen.push((i as u32, fr.clone()));
            self.inbox.push((i as u32, fr));
        }
        while let Some(e) = self.members[i].poll_event() {
            self.events[i].push(e);
        }
    }

    /// Delivers `frame` to each member of `to`; returns their results.
    pub fn send(&mut self, to: &[u32], frame: &[u8]) -> Vec<Result<(), ProtocolError>> {
        let mut out = Vec::new();
        for &i in to {
            let r = self.members[i as usize].handle_message(self.now, frame);
            if let Err(e) = &r {
                self.errors.push((i, e.clone()));
            }
            out.push(r);
            self.drain(i as usize);
        }
        out
    }

    pub fn advance(&mut self, ms: u64) {
        self.now = self.now.plus_millis(ms);
        for i in 0..self.n() {
            self.members[i].handle_timeout(self.now);
            self.drain(i);
        }
    }

    /// Removes and returns the frames of `kind` in the inbox, by sender.
    /// The Commits in the inbox, typed, in `present`'s order; every present member must have
    /// sent one.
    pub fn take_commits(&mut self, present: &[u32]) -> Vec<Signed<Commit>> {
        let commits = self.take(Kind::Commit);
        let commits: Vec<Signed<Commit>> = present
            .iter()
            .filter_map(|i| commits.get(i))
            .map(|f| match &f.body {
                Body::Commit(b) => wire::typed(f.header, b.clone(), f.sig),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(commits.len(), present.len(), "every present member commits");
        commits
    }

    /// The XOR of the Reveals in the inbox: what an honest Record carries.
    pub fn take_xor(&mut self) -> Vec<u8> {
        let reveals = self.take(Kind::Reveal);
        xor_of_reveals(&reveals, self.layout.len())
    }

    pub fn take(&mut self, kind: Kind) -> BTreeMap<u32, Frame> {
        let mut out = BTreeMap::new();
        let mut rest = Vec::new();
        for (i, f) in std::mem::take(&mut self.inbox) {
            if f.header.kind == kind {
                out.insert(i, f);
            } else {
                rest.push((i, f));
            }
        }
        self.inbox = rest;
        out
    }

    /// Frames of `kind` any member sent so far (in `seen`).
    pub fn sent_kind(&self, kind: Kind) -> usize {
        self.seen
            .iter()
            .filter(|(_, f)| f.header.kind == kind)
            .count()
    }

    /// Starts epoch `epoch` with `members`: request, keys, key set.
    pub fn start_epoch(&mut self, members: &[u32]) {
        self.epoch += 1;
        let req = self.sign(
            0,
            EpochRequest {
                members: members.to_vec(),
                last_case: self.last_case,
            },
        );
        self.send(members, &req.into_frame());
        let keys = self.take(Kind::EpochKey);
        let keys: Vec<Signed<EpochKey>> = keys
            .into_values()
            .map(|f| match f.body {
                Body::EpochKey(b) => wire::typed(f.header, b, f.sig),
                _ => unreachable!(),
            })
            .collect();
        let list: Vec<(u32, dcnet::crypto::keys::EpochPublic)> = keys
            .iter()
            .map(|k| match k.header.sender {
                Sender::Member(i) => (i, k.body.key),
                Sender::Relay => unreachable!(),
            })
            .collect();
        let ek = self.sign(0, EpochKeys { keys });
        self.epoch_keys = Some(ek.clone());
        self.send(members, &ek.into_frame());
        self.chain = dcnet::crypto::keys::view_genesis(self.tg.group.id(), self.epoch, &list);
        self.last = None;
        self.last_case = None;
        self.alloc_src = None;
    }

    /// The Open an honest relay would send next for `present`.
    pub fn next_open(&mut self, present: &[u32]) -> Signed<Open> {
        self.round += 1;
        let alloc = self
            .alloc_src
            .as_ref()
            .filter(|(_, _, p, clear)| {
                p.iter().all(|i| present.contains(i))
                    && !Allocation::from_output(&self.layout, self.round, clear, p.len()).overflow
            })
            .map(|(r, h, _, _)| (*r, *h));
        self.sign(
            self.round,
            Open {
                view_prev: self.chain,
                present: present.to_vec(),
                last: self.last,
                alloc,
                voids: vec![],
                commit_ms: 2000,
                last_case: self.last_case,
            },
        )
    }

    /// One round with honest relay behaviour, except: `tamper` may change the Record's XOR,
    /// `missing` are claimed (falsely) to have withheld their seed.
    pub fn round_with(
        &mut self,
        present: &[u32],
        tamper: impl FnOnce(&mut Vec<u8>),
        missing: &[u32],
    ) -> RoundOut {
        let open = self.next_open(present);
        let round = self.round;
        let open_hash = open.digest();
        self.send(present, &open.clone().into_frame());
        let commits = self.take_commits(present);
        let cs = self.sign(
            round,
            CommitSet {
                open: open_hash,
                commits,
            },
        );
        self.send(present, &cs.clone().into_frame());
        let mut xor = self.take_xor();
        let true_xor = xor.clone();
        tamper(&mut xor);
        let record = self.sign(
            round,
            Record {
                commit_set: cs,
                opens: vec![open],
                xor,
            },
        );
        self.send(present, &record.clone().into_frame());
        let seeds = self.take(Kind::Unblind);
        let seeds: BTreeMap<u32, [u8; 32]> = seeds
            .iter()
            .filter_map(|(i, f)| match &f.body {
                Body::Unblind(u) => Some((*i, u.z)),
                _ => None,
            })
            .collect();
        let clear = (seeds.len() == present.len()).then(|| {
            let mut c = true_xor.clone();
            let mut ks = Keystream::new();
            for z in seeds.values() {
                ks.xor_into(&StreamKey::from_bytes(*z), round, 0, &mut c);
            }
            c
        });
        if seeds.len() < present.len() {
            let out = RoundOut {
                round,
                present: present.to_vec(),
                record,
                zset: None,
                clear,
                completed: false,
                key: self.content_key(),
            };
            self.all_rounds.push(out.clone());
            return out;
        }
        let zset = self.sign(
            round,
            ZSet {
                record: record.digest(),
                seeds: seeds
                    .iter()
                    .filter(|(i, _)| !missing.contains(i))
                    .map(|(i, z)| (*i, *z))
                    .collect(),
                missing: missing.to_vec(),
            },
        );
        self.send(present, &zset.clone().into_frame());
        let completed = missing.is_empty();
        if completed {
            self.chain =
                dcnet::crypto::keys::view_step(&self.chain, round, &record.body.opens[0].digest());
            self.last = Some((round, record.digest()));
            self.last_case = None;
            // Members' cleartext is from the Record they got (tampered or not).
            let mut mc = record.body.xor.clone();
            let mut ks = Keystream::new();
            for z in seeds.values() {
                ks.xor_into(&StreamKey::from_bytes(*z), round, 0, &mut mc);
            }
            self.alloc_src = Some((round, record.digest(), present.to_vec(), mc));
        }
        let out = RoundOut {
            round,
            present: present.to_vec(),
            record,
            zset: Some(zset),
            clear,
            completed,
            key: self.content_key(),
        };
        if completed {
            self.history.push(out.clone());
        }
        self.all_rounds.push(out.clone());
        out
    }

    /// The content key the first member that holds one holds now.
    pub fn content_key(&self) -> Option<ContentKey> {
        self.members.iter().find_map(|m| m.content_key().cloned())
    }

    pub fn round(&mut self, present: &[u32]) -> RoundOut {
        self.round_with(present, |_| {}, &[])
    }

    /// The blame case of the last completed round, as members hold it.
    pub fn case(&self) -> Case {
        let last = self.history.last().expect("a completed round");
        let uses_alloc = last.record.body.opens[0].body.alloc.is_some();
        let alloc = if uses_alloc && self.history.len() >= 2 {
            let p = &self.history[self.history.len() - 2];
            Some((p.record.clone(), p.zset.clone().unwrap()))
        } else {
            None
        };
        Case::of_round(
            self.tg.group.to_data(),
            self.epoch_keys.clone().unwrap(),
            last.record.clone(),
            last.zset.clone().unwrap(),
            alloc,
        )
    }

    pub fn round_view(&self) -> RoundView {
        RoundView::new(&self.case()).unwrap()
    }

    /// Takes the members' disclosures as signed messages.
    pub fn disclosures(&mut self) -> Vec<Signed<Disclose>> {
        self.take(Kind::Disclose)
            .into_values()
            .map(|f| match f.body {
                Body::Disclose(b) => wire::typed(f.header, b, f.sig),
                _ => unreachable!(),
            })
            .collect()
    }

    pub fn disclosure_set(
        &self,
        start: Signed<dcnet::wire::BlameStart>,
        disclosures: Vec<Signed<Disclose>>,
        present: &[u32],
    ) -> Signed<DisclosureSet> {
        let have: BTreeSet<u32> = disclosures
            .iter()
            .filter_map(|d| match d.header.sender {
                Sender::Member(i) => Some(i),
                Sender::Relay => None,
            })
            .collect();
        let round = start.header.round;
        self.sign(
            round,
            DisclosureSet {
                start,
                disclosures,
                missing: present
                    .iter()
                    .copied()
                    .filter(|i| !have.contains(i))
                    .collect(),
            },
        )
    }

    pub fn faulty(&self, i: usize) -> bool {
        self.members[i].relay_faulty().is_some()
    }
}

/// Leak monitor: for every round whose true cleartext the relay holds, the fragments of
/// messages with id `msg_id` it could read there; the possible senders of that message are
/// the intersection of those rounds' present sets.
pub fn sender_set(history: &[RoundOut], layout: &Layout, msg_id: [u8; 8]) -> Option<BTreeSet<u32>> {
    sender_set_less(history, layout, msg_id, &BTreeMap::new())
}

/// [`sender_set`], each round's present set less that round's valid accuser (`round →
/// accuser`): the relay knows an accuser held a trap, so sent nothing then.
pub fn sender_set_less(
    history: &[RoundOut],
    layout: &Layout,
    msg_id: [u8; 8],
    accusers: &BTreeMap<u64, u32>,
) -> Option<BTreeSet<u32>> {
    let mut set: Option<BTreeSet<u32>> = None;
    for r in history {
        let readable = fragment_ids(layout, r).contains(&msg_id);
        if readable {
            let mut p: BTreeSet<u32> = r.present.iter().copied().collect();
            if let Some(a) = accusers.get(&r.round) {
                p.remove(a);
            }
            set = Some(match set {
                Some(s) => s.intersection(&p).copied().collect(),
                None => p,
            });
        }
    }
    set
}

/// The smallest [`sender_set_less`] over every message the relay read in `history`.
pub fn worst_sender_set(
    history: &[RoundOut],
    layout: &Layout,
    accusers: &BTreeMap<u64, u32>,
) -> Option<BTreeSet<u32>> {
    let mut ids = BTreeSet::new();
    for r in history {
        ids.extend(fragment_ids(layout, r));
    }
    ids.into_iter()
        .filter_map(|id| sender_set_less(history, layout, id, accusers))
        .min_by_key(|s| s.len())
}

/// Parameters for blame scripts: small slots, no traps chosen over a pending message.
pub fn blame_params() -> RoundParams {
    RoundParams {
        slot_bytes: 96,
        p_trap: 0.0,
        ..RoundParams::default()
    }
}

/// The signer's member index (`u32::MAX` for the relay).
pub fn sender_of<T>(s: &Signed<T>) -> u32 {
    match s.header.sender {
        Sender::Member(i) => i,
        Sender::Relay => u32::MAX,
    }
}

impl ByzRelay {
    /// Slots the next Open's allocation gives out (empty if the next round uses none).
    pub fn next_alloc_slots(&self, present: &[u32]) -> Vec<u32> {
        let Some((r, _, p, clear)) = &self.alloc_src else {
            return vec![];
        };
        if !p.iter().all(|i| present.contains(i)) {
            return vec![];
        }
        let a = Allocation::from_output(&self.layout, *r, clear, p.len());
        if a.overflow {
            return vec![];
        }
        a.slots().into_iter().collect()
    }

    /// Takes the members' accusations as signed messages.
    pub fn accusations(&mut self) -> Vec<Signed<Accuse>> {
        self.take(Kind::Accuse)
            .into_values()
            .map(|f| match f.body {
                Body::Accuse(a) => wire::typed(f.header, a, f.sig),
                _ => unreachable!(),
            })
            .collect()
    }
}

/// The message ids of every intact fragment in a round's true cleartext, read with the
/// content key a member held (none without the cleartext or the key).
pub fn fragment_ids(layout: &Layout, r: &RoundOut) -> Vec<[u8; 8]> {
    let (Some(clear), Some(key)) = (&r.clear, &r.key) else {
        return Vec::new();
    };
    (0..layout.slots)
        .filter_map(|s| {
            let sk = key.slot_key(r.round, s);
            match slots::parse_slot(layout, r.round, s, &clear[layout.slot(s)], &sk) {
                SlotContent::Fragment(f) => Some(f.msg_id),
                _ => None,
            }
        })
        .collect()
}

/// Positions a BlameStart must name for the case (as an honest relay computes them).
pub fn honest_positions(rv: &RoundView) -> Vec<u64> {
    rv.positions(None)
}

/// The XOR of `reveals`' ciphertexts over a vector of `len` bytes.
pub fn xor_of_reveals(reveals: &BTreeMap<u32, Frame>, len: usize) -> Vec<u8> {
    let mut xor = vec![0u8; len];
    for f in reveals.values() {
        if let Body::Reveal(r) = &f.body {
            for (x, c) in xor.iter_mut().zip(&r.ciphertext) {
                *x ^= c;
            }
        }
    }
    xor
}
