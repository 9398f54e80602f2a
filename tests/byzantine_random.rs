//! Issue 8, item 3: a randomized byzantine relay. A real `Relay` engine runs the protocol, but
//! every frame it sends passes through an adversary that holds the relay key and, per frame,
//! forwards, drops, duplicates, delays (reorders), replays an older frame, re-signs a mutated
//! copy (random field changes, valid relay signature; per receiver, so also equivocation), or
//! forges a blame message. After every step:
//! - no honest member is convicted, and members that convict agree on the culprit;
//! - leak monitor: from everything the relay received (ciphertexts, seeds, disclosed pad bytes,
//!   revealed keys) it never learns a pad byte inside a slot that carries a real fragment, and
//!   no message's possible senders (the intersection of the present sets of the rounds in
//!   which the relay could read any of its fragments) fall below the floor;
//! - nothing panics and state stays bounded.

use dcnet::adversary::RelayFault;
use dcnet::crypto::identity::IdentityKey;
use dcnet::crypto::keys::ContentKey;
use dcnet::crypto::pad::{Keystream, StreamKey};
use dcnet::params::RoundParams;
use dcnet::protocol::blame::Culprit;
use dcnet::protocol::slots::{self, Layout, SlotContent};
use dcnet::protocol::{Member, MemberEvent, MemberId, MemoryStore, Relay, Time};
use dcnet::sim::{TestGroup, derive_seed};
use dcnet::wire::{self, BlameStart, Body, Frame, Sender, Signed};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

const N: usize = 5;

struct World {
    tg: TestGroup,
    relay: Relay,
    members: Vec<Member>,
    rng: ChaCha20Rng,
    now: Time,
    /// Frames on their way to members (in order), and frames held back for later.
    to_members: VecDeque<(u32, Vec<u8>)>,
    held: Vec<(u32, Vec<u8>)>,
    to_relay: VecDeque<(u32, Vec<u8>)>,
    /// Every relay frame, for replays.
    history: Vec<Vec<u8>>,
    /// Latest Record digest and round seen (for forged blame).
    last_record: Option<(u64, u64, [u8; 32])>,
    /// What the relay learned, per (epoch, round): ciphertexts, seeds, present (revealers).
    reveals: BTreeMap<(u64, u64), BTreeMap<u32, Vec<u8>>>,
    seeds: BTreeMap<(u64, u64), BTreeMap<u32, [u8; 32]>>,
    disclosed: Vec<(u64, u64, u32, u64)>,
    /// Every content key a member held, per epoch: the monitor reads slots as a relay that a
    /// member gave the key would (the worst case).
    content_keys: BTreeMap<u64, Vec<[u8; 32]>>,
    key_reveals: usize,
    /// Everyone any member convicted.
    culprits: BTreeSet<Culprit>,
    delivered: usize,
    /// Share of frames the adversary tampers with (per seed).
    aggression: f64,
    actions: usize,
    layout: Layout,
}

fn coin(rng: &mut ChaCha20Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

impl World {
    fn new(seed: u64) -> World {
        let p = RoundParams {
            slot_bytes: 80,
            commit_ms: 50,
            reveal_ms: 50,
            unblind_ms: 50,
            keys_ms: 100,
            ..RoundParams::default()
        };
        let tg = TestGroup::new(N, p, seed).unwrap();
        // Every seventh seed the relay engine itself tampers with every Record, so blame runs
        // (disclosures, verdicts) under the adversary too.
        let faults = if seed % 7 == 3 {
            vec![RelayFault::Tamper {
                offset: None,
                mask: 0x5a,
            }]
        } else {
            Vec::new()
        };
        let relay = Relay::with_faults(
            tg.group.clone(),
            IdentityKey::from_secret_bytes(&tg.relay_key.secret_bytes()),
            faults,
        )
        .unwrap();
        let mut members: Vec<Member> = (0..N)
            .map(|i| {
                Member::new(
                    tg.group.clone(),
                    MemberId(i as u32),
                    IdentityKey::from_secret_bytes(&tg.member_keys[i].secret_bytes()),
                    derive_seed(seed, "rand-member", i as u64),
                    Box::new(MemoryStore::default()),
                )
                .unwrap()
            })
            .collect();
        let layout = Layout::new(tg.group.params());
        let cap = layout.capacity();
        for (i, m) in members.iter_mut().enumerate() {
            m.submit(format!("short note from somebody {i}").as_bytes())
                .unwrap();
            m.submit(&vec![b'a' + i as u8; cap * 2 + 3]).unwrap();
        }
        World {
            tg,
            relay,
            members,
            rng: ChaCha20Rng::from_seed(derive_seed(seed, "rand-adversary", 0)),
            now: Time::ZERO,
            to_members: VecDeque::new(),
            held: Vec::new(),
            to_relay: VecDeque::new(),
            history: Vec::new(),
            last_record: None,
            reveals: BTreeMap::new(),
            seeds: BTreeMap::new(),
            disclosed: Vec::new(),
            content_keys: BTreeMap::new(),
            key_reveals: 0,
            culprits: BTreeSet::new(),
            delivered: 0,
            aggression: 0.0,
            actions: 0,
            layout,
        }
    }

    fn resign(&self, f: &Frame, body: Body) -> Vec<u8> {
        // A mutated body under the original header, validly signed by the relay.
        macro_rules! s {
            ($t:ident, $b:expr) => {
                Signed::sign(
                    &self.tg.relay_key,
                    f.header.group_id,
                    f.header.epoch,
                    f.header.round,
                    Sender::Relay,
                    $b,
                )
                .into_frame()
            };
        }
        match body {
            Body::EpochRequest(b) => s!(EpochRequest, b),
            Body::EpochKeys(b) => s!(EpochKeys, b),
            Body::Open(b) => s!(Open, b),
            Body::CommitSet(b) => s!(CommitSet, b),
            Body::Record(b) => s!(Record, b),
            Body::ZSet(b) => s!(ZSet, b),
            Body::Abort(b) => s!(Abort, b),
            Body::BlameStart(b) => s!(BlameStart, b),
            Body::DisclosureSet(b) => s!(DisclosureSet, b),
            Body::RevealSet(b) => s!(RevealSet, b),
            Body::Evidence(b) => s!(Evidence, b),
            _ => wire::encode(f),
        }
    }

    /// A random field change of a relay message.
    fn mutate(&mut self, bytes: &[u8]) -> Vec<u8> {
        let Ok(f) = wire::decode_frame(bytes) else {
            return bytes.to_vec();
        };
        let r = self.rng.next_u64();
        let pick = |v: usize| (r as usize >> 8) % v.max(1);
        let mut body = f.body.clone();
        match &mut body {
            Body::EpochRequest(b) if !b.members.is_empty() => {
                let k = pick(b.members.len());
                b.members.remove(k);
            }
            Body::EpochKeys(b) if !b.keys.is_empty() => {
                let k = pick(b.keys.len());
                b.keys.remove(k);
            }
            Body::Open(b) => match r % 5 {
                0 if b.present.len() > 2 => {
                    let k = pick(b.present.len());
                    b.present.remove(k);
                }
                1 => b.last = None,
                2 => b.alloc = None,
                3 => b.view_prev[0] ^= 1,
                _ => b.last_case = Some([r as u8; 32]),
            },
            Body::CommitSet(b) if !b.commits.is_empty() => {
                let k = pick(b.commits.len());
                b.commits.remove(k);
            }
            Body::Record(b) => {
                let k = pick(b.xor.len());
                if !b.xor.is_empty() {
                    b.xor[k] ^= 1 + (r >> 40) as u8 % 255;
                }
            }
            Body::ZSet(b) => match r % 3 {
                0 if !b.seeds.is_empty() => {
                    let (i, _) = b.seeds.remove(pick(b.seeds.len()));
                    b.missing.push(i);
                    b.missing.sort();
                }
                1 if !b.seeds.is_empty() => {
                    let k = pick(b.seeds.len());
                    b.seeds[k].1[0] ^= 1;
                }
                _ => b.missing.clear(),
            },
            Body::Abort(b) => b.missing.clear(),
            Body::BlameStart(b) => match r % 3 {
                0 => b.positions = vec![(r >> 20) % self.layout.len() as u64],
                1 => b.accusation = None,
                _ => b.positions.clear(),
            },
            Body::DisclosureSet(b) => match r % 3 {
                0 if !b.disclosures.is_empty() => {
                    let k = pick(b.disclosures.len());
                    let d = b.disclosures.remove(k);
                    if let Sender::Member(i) = d.header.sender {
                        b.missing.push(i);
                        b.missing.sort();
                    }
                }
                1 if !b.disclosures.is_empty() => {
                    // An unsigned copy with flipped pad bytes.
                    let k = pick(b.disclosures.len());
                    let mut d = b.disclosures[k].clone();
                    for x in &mut d.body.bytes {
                        for p in &mut x.pads {
                            p.1 ^= 0x80;
                        }
                    }
                    b.disclosures.push(d);
                }
                _ => b.missing.clear(),
            },
            Body::RevealSet(b) => b.reveals.clear(),
            _ => {}
        }
        self.resign(&f, body)
    }

    /// A forged BlameStart for the latest Record: random positions (possibly inside slots).
    fn forged_blame(&mut self) -> Option<Vec<u8>> {
        let (epoch, round, record) = self.last_record?;
        let k = 1 + self.rng.next_u64() % 3;
        let positions: BTreeSet<u64> = (0..k)
            .map(|_| self.rng.next_u64() % self.layout.len() as u64)
            .collect();
        Some(
            Signed::sign(
                &self.tg.relay_key,
                *self.tg.group.id(),
                epoch,
                round,
                Sender::Relay,
                BlameStart {
                    record,
                    accusation: None,
                    positions: positions.into_iter().collect(),
                },
            )
            .into_frame(),
        )
    }

    fn pump_relay(&mut self) {
        while let Some(t) = self.relay.poll_transmit() {
            let f = t.frame.to_vec();
            if let Ok(fr) = wire::decode_frame(&f) {
                if let Body::Record(b) = fr.body {
                    let d = wire::typed(fr.header, b, fr.sig).digest();
                    self.last_record = Some((fr.header.epoch, fr.header.round, d));
                }
            }
            self.to_members.push_back((t.to.0, f));
        }
        while self.relay.poll_event().is_some() {}
    }

    fn pump_member(&mut self, i: usize) {
        while let Some(f) = self.members[i].poll_transmit() {
            if let Ok(fr) = wire::decode_frame(&f) {
                let key = (fr.header.epoch, fr.header.round);
                match &fr.body {
                    Body::Reveal(r) => {
                        self.reveals
                            .entry(key)
                            .or_default()
                            .insert(i as u32, r.ciphertext.clone());
                    }
                    Body::Unblind(u) => {
                        self.seeds.entry(key).or_default().insert(i as u32, u.z);
                    }
                    Body::Disclose(d) => {
                        for b in &d.bytes {
                            self.disclosed.push((key.0, key.1, i as u32, b.position));
                        }
                    }
                    Body::KeyReveal(_) => self.key_reveals += 1,
                    _ => {}
                }
            }
            self.to_relay.push_back((i as u32, f));
        }
        if let Some(k) = self.members[i].content_key() {
            let ks = self
                .content_keys
                .entry(self.members[i].epoch())
                .or_default();
            if !ks.contains(k.expose()) {
                ks.push(*k.expose());
            }
        }
        while let Some(e) = self.members[i].poll_event() {
            match e {
                MemberEvent::Verdict { verdict, .. } => {
                    if let Some(c) = verdict.culprit {
                        self.culprits.insert(c);
                    }
                }
                MemberEvent::Delivered { .. } => self.delivered += 1,
                _ => {}
            }
        }
    }

    /// One adversary action on the next relay frame (or a timer when nothing is in flight).
    fn step(&mut self) -> bool {
        self.pump_relay();
        while let Some((from, f)) = self.to_relay.pop_front() {
            let _ = self.relay.handle_message(self.now, MemberId(from), &f);
            self.pump_relay();
        }
        let Some((to, f)) = self.to_members.pop_front() else {
            if let Some((to, f)) = self.held.pop() {
                self.deliver(to, &f);
                return true;
            }
            // Timers: the relay's and members' deadlines.
            let mut next = self.relay.poll_timeout();
            for m in &self.members {
                next = match (next, m.poll_timeout()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let Some(t) = next else { return false };
            self.now = self.now.max(t);
            self.relay.handle_timeout(self.now);
            for i in 0..N {
                self.members[i].handle_timeout(self.now);
                self.pump_member(i);
            }
            return true;
        };
        self.actions += 1;
        self.history.push(f.clone());
        // Per seed, the adversary acts on a share `aggression` of frames.
        let c = if coin(&mut self.rng) < 1.0 - self.aggression {
            0.0
        } else {
            0.55 + 0.45 * coin(&mut self.rng)
        };
        if c < 0.55 {
            self.deliver(to, &f);
        } else if c < 0.62 {
            // drop
        } else if c < 0.68 {
            self.deliver(to, &f);
            self.deliver(to, &f);
        } else if c < 0.74 {
            self.held.push((to, f));
        } else if c < 0.80 {
            let k = (self.rng.next_u64() as usize) % self.history.len();
            let old = self.history[k].clone();
            self.deliver(to, &old);
            self.deliver(to, &f);
        } else if c < 0.93 {
            let m = self.mutate(&f);
            self.deliver(to, &m);
        } else {
            if let Some(b) = self.forged_blame() {
                self.deliver(to, &b);
            }
            self.deliver(to, &f);
        }
        true
    }

    fn deliver(&mut self, to: u32, f: &[u8]) {
        let i = to as usize;
        let _ = self.members[i].handle_message(self.now, f);
        self.pump_member(i);
    }

    fn check(&self, seed: u64) {
        let tag = format!("seed {seed}, action {}", self.actions);
        // Soundness: every member is honest, so only the relay may ever be convicted.
        for (i, m) in self.members.iter().enumerate() {
            assert!(
                m.convicted().is_empty(),
                "{tag}: member {i} convicted {:?}",
                m.convicted()
            );
            assert!(m.pending() <= 2, "{tag}: member {i} queue grew");
        }
        assert!(
            self.culprits.iter().all(|c| *c == Culprit::Relay),
            "{tag}: convicted {:?}",
            self.culprits
        );
        assert_eq!(
            self.key_reveals, 0,
            "{tag}: an honest member revealed a pair key"
        );
        // Leak monitor.
        let floor = N - self.tg.group.params().tolerance as usize;
        let mut senders: BTreeMap<[u8; 8], BTreeSet<u32>> = BTreeMap::new();
        for (&(epoch, round), revs) in &self.reveals {
            let Some(zs) = self.seeds.get(&(epoch, round)) else {
                continue;
            };
            if zs.len() != revs.len() || !zs.keys().eq(revs.keys()) {
                continue;
            }
            let mut clear = vec![0u8; self.layout.len()];
            for c in revs.values() {
                if c.len() == clear.len() {
                    for (x, y) in clear.iter_mut().zip(c) {
                        *x ^= y;
                    }
                }
            }
            let mut ks = Keystream::new();
            for z in zs.values() {
                ks.xor_into(&StreamKey::from_bytes(*z), round, 0, &mut clear);
            }
            let present: BTreeSet<u32> = revs.keys().copied().collect();
            let keys = self.content_keys.get(&epoch).cloned().unwrap_or_default();
            for s in 0..self.layout.slots {
                let range = self.layout.slot(s);
                let read = keys.iter().find_map(|k| {
                    let sk = ContentKey::from_bytes(*k).slot_key(round, s);
                    match slots::parse_slot(&self.layout, round, s, &clear[range.clone()], &sk) {
                        SlotContent::Fragment(f) => Some(f),
                        _ => None,
                    }
                });
                if let Some(f) = read {
                    let e = senders.entry(f.msg_id).or_insert_with(|| present.clone());
                    *e = e.intersection(&present).copied().collect();
                    for &(de, dr, who, x) in &self.disclosed {
                        assert!(
                            !(de == epoch
                                && dr == round
                                && (range.start as u64..range.end as u64).contains(&x)),
                            "{tag}: member {who} disclosed a pad byte at {x}, inside a real \
                             fragment's slot {s} of round {round}"
                        );
                    }
                }
            }
        }
        for (id, set) in &senders {
            assert!(
                set.len() >= floor,
                "{tag}: message {id:02x?} narrowed to {set:?} (floor {floor})"
            );
        }
    }
}

#[derive(Default, Debug)]
struct Stats {
    actions: usize,
    readable_rounds: usize,
    disclosures: usize,
    delivered: usize,
    distrusting: usize,
    relay_convicted: usize,
}

fn run(seed: u64, actions: usize) -> Stats {
    let mut w = World::new(seed);
    // From a relay that misbehaves rarely (the protocol gets far) to one that always does.
    w.aggression = [0.01, 0.03, 0.1, 0.3, 1.0][(seed % 5) as usize];
    w.relay.start(w.now);
    let mut steps = 0;
    while w.actions < actions && steps < actions * 20 {
        if !w.step() {
            break;
        }
        steps += 1;
        w.check(seed);
    }
    let readable_rounds = w
        .reveals
        .iter()
        .filter(|(k, r)| w.seeds.get(*k).is_some_and(|z| z.len() == r.len()))
        .count();
    Stats {
        actions: w.actions,
        readable_rounds,
        disclosures: w.disclosed.len(),
        delivered: w.delivered,
        distrusting: w
            .members
            .iter()
            .filter(|m| m.relay_faulty().is_some())
            .count(),
        relay_convicted: usize::from(w.culprits.contains(&Culprit::Relay)),
    }
}

#[test]
fn randomized_byzantine_relay() {
    let mut t = Stats::default();
    for seed in 0..220 {
        let s = run(seed, 200);
        t.actions += s.actions;
        t.readable_rounds += s.readable_rounds;
        t.disclosures += s.disclosures;
        t.delivered += s.delivered;
        t.distrusting += s.distrusting;
        t.relay_convicted += s.relay_convicted;
    }
    eprintln!("byzantine relay, 220 seeds: {t:?}");
    assert!(t.actions >= 10_000, "only {} actions", t.actions);
    // The adversary must have had something to attack.
    assert!(t.readable_rounds > 200 && t.delivered > 0, "{t:?}");
}

#[test]
#[ignore = "long randomized run: cargo test --release --test byzantine_random -- --ignored"]
fn randomized_byzantine_relay_long() {
    let mut total = 0;
    for seed in 1000..3000 {
        total += run(seed, 400).actions;
    }
    eprintln!("byzantine relay (long): {total} relay actions over 2000 seeds");
}
