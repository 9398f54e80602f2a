//! A deterministic in-memory network: N members and a relay on a virtual clock.
//!
//! This is the harness the tests, the in-memory demo and the simulator drive (after quinn's
//! `Pair`): every node is the real sans-IO engine; frames travel through a priority queue
//! ordered by (delivery time, sequence number); per-link latency is a base plus seeded jitter.
//! One master seed derives every node's RNG, so a run is reproducible byte for byte, and
//! [`Network::trace_hash`] summarises the run for replay checks.

pub mod scenario;
mod window;

use crate::adversary::{MemberFault, RelayFault};
use crate::crypto::identity::IdentityKey;
use crate::crypto::{Hash, hash};
use crate::params::{Group, RosterEntry, RoundParams};
use crate::protocol::{
    Member, MemberEvent, MemberId, MemoryStore, ProtocolError, Relay, RelayEvent, Time,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha3::{Digest, Sha3_256};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

/// Derives a 32-byte seed for `label`/`index` from a master seed.
pub fn derive_seed(master: u64, label: &str, index: u64) -> [u8; 32] {
    hash(
        "dcnet/sim/seed",
        &[
            &master.to_le_bytes(),
            label.as_bytes(),
            &index.to_le_bytes(),
        ],
    )
}

/// Keys and group for `n` members, all derived from `seed`.
pub struct TestGroup {
    /// The group.
    pub group: Arc<Group>,
    /// Member identity keys by index.
    pub member_keys: Vec<IdentityKey>,
    /// Relay identity key.
    pub relay_key: IdentityKey,
}

impl TestGroup {
    /// Builds a group of `n` members named `m0…` with keys derived from `seed`.
    pub fn new(
        n: usize,
        params: RoundParams,
        seed: u64,
    ) -> Result<TestGroup, crate::params::ConfigError> {
        let member_keys: Vec<IdentityKey> = (0..n)
            .map(|i| IdentityKey::from_secret_bytes(&derive_seed(seed, "member-key", i as u64)))
            .collect();
        let relay_key = IdentityKey::from_secret_bytes(&derive_seed(seed, "relay-key", 0));
        let roster = member_keys
            .iter()
            .enumerate()
            .map(|(i, k)| RosterEntry {
                name: format!("m{i}"),
                key: k.public(),
            })
            .collect();
        let group = Arc::new(Group::new("sim", roster, relay_key.public(), params)?);
        Ok(TestGroup {
            group,
            member_keys,
            relay_key,
        })
    }
}

/// Link model, per direction of every member–relay link: one-way latency = `base_us` +
/// uniform jitter in `[0, jitter_us]`; serialization delay `bytes / bandwidth` (0 = unlimited);
/// each frame is lost with probability `loss` and then arrives one `rto_us` later per loss (the
/// transport retransmits). Frames on one link stay in order.
#[derive(Clone, Copy, Debug)]
pub struct LinkModel {
    /// Base one-way latency (µs).
    pub base_us: u64,
    /// Jitter bound (µs).
    pub jitter_us: u64,
    /// Bandwidth in bytes per second (0: unlimited).
    pub bandwidth_bps: u64,
    /// Loss probability per frame transmission.
    pub loss: f64,
    /// Retransmission delay after a loss (µs).
    pub rto_us: u64,
}

impl Default for LinkModel {
    fn default() -> Self {
        LinkModel {
            base_us: 500,
            jitter_us: 200,
            bandwidth_bps: 0,
            loss: 0.0,
            rto_us: 0,
        }
    }
}

/// CPU cost model: simulated time a node spends on what it receives. Rates are parameters;
/// [`CostModel::calibrated`] holds the rates measured on the reference machine (DESIGN.md,
/// "Physical limits"). Time never comes from the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostModel {
    /// ChaCha20 keystream bytes per µs.
    pub chacha_bytes_per_us: f64,
    /// SHA3-256 bytes per µs.
    pub sha3_bytes_per_us: f64,
    /// One Ed25519 verification (µs).
    pub verify_us: f64,
    /// One Ed25519 signature (µs).
    pub sign_us: f64,
    /// One Ristretto255 scalar multiplication (µs).
    pub mul_us: f64,
    /// Fixed cost of any frame at a member (µs).
    pub member_frame_us: f64,
    /// Fixed cost of any frame at the relay (µs).
    pub relay_frame_us: f64,
}

impl CostModel {
    /// No CPU cost at all (the default of the test harness).
    pub fn free() -> CostModel {
        CostModel {
            chacha_bytes_per_us: f64::INFINITY,
            sha3_bytes_per_us: f64::INFINITY,
            verify_us: 0.0,
            sign_us: 0.0,
            mul_us: 0.0,
            member_frame_us: 0.0,
            relay_frame_us: 0.0,
        }
    }
    /// Rates measured on the reference machine (2 vCPU): ChaCha20 1.6 GB/s, SHA3-256
    /// 0.34 GB/s, Ed25519 verify ≈ 40 µs, sign ≈ 20 µs, Ristretto multiply 31 µs.
    pub fn calibrated() -> CostModel {
        CostModel {
            chacha_bytes_per_us: 1600.0,
            sha3_bytes_per_us: 340.0,
            verify_us: 40.0,
            sign_us: 20.0,
            mul_us: 31.0,
            member_frame_us: 5.0,
            relay_frame_us: 5.0,
        }
    }
}

impl CostModel {
    /// The rates of [`CostModel::calibrated`] measured on this machine, now, one thread: 4 MiB
    /// of keystream, 4 MiB of SHA3-256, 200 Ed25519 signatures and verifications, 100
    /// footprints (hash to a point, scalar multiplication, compression); each the best of
    /// three passes. The per-frame costs keep their reference values (they are scenario
    /// parameters). Results that use these rates depend on the machine and its load.
    pub fn measure() -> CostModel {
        use crate::crypto::identity::IdentityKey;
        use crate::crypto::keys::EpochSecret;
        use crate::crypto::pad::{Keystream, StreamKey};
        use std::hint::black_box;
        use std::time::Instant;
        fn best_us(reps: usize, mut f: impl FnMut()) -> f64 {
            (0..3)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    t.elapsed().as_secs_f64() * 1e6 / reps as f64
                })
                .fold(f64::INFINITY, f64::min)
                .max(1e-3)
        }
        let mut buf = vec![0u8; 1 << 20];
        let mut ks = Keystream::new();
        let key = StreamKey::from_bytes([3; 32]);
        let chacha = best_us(4, || ks.xor_into(&key, 1, 0, &mut buf));
        let sha3 = best_us(4, || {
            black_box(crate::crypto::hash("dcnet/bench", &[&buf]));
        });
        let id = IdentityKey::from_secret_bytes(&[5; 32]);
        let pk = id.public();
        let sig = id.sign(b"calibration");
        let sign_us = best_us(200, || {
            black_box(id.sign(b"calibration"));
        });
        let verify_us = best_us(200, || {
            black_box(pk.verify(b"calibration", &sig));
        });
        let mul_us = match EpochSecret::from_uniform_bytes(&[9; 64]) {
            Some(e) => {
                let mut r = 0u64;
                best_us(100, || {
                    r += 1;
                    black_box(e.gamma(&[1; 32], 1, r));
                })
            }
            None => CostModel::calibrated().mul_us,
        };
        CostModel {
            chacha_bytes_per_us: buf.len() as f64 / chacha,
            sha3_bytes_per_us: buf.len() as f64 / sha3,
            verify_us,
            sign_us,
            mul_us,
            ..CostModel::calibrated()
        }
    }
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel::free()
    }
}

/// A relay broadcast parsed once for all its receivers ([`crate::wire::ParsedFrame`]).
struct SharedFrame {
    /// The buffer every receiver's copy points to; holding it keeps its address unique.
    bytes: Arc<[u8]>,
    digest: Hash,
    /// `None`: the bytes do not decode (each receiver then reports its own error).
    parsed: Option<crate::wire::ParsedFrame>,
    /// Real time of the parse, charged to every receiver's [`Network::host_time`] as if each
    /// had parsed the frame itself (as a real member does).
    parse_time: std::time::Duration,
}

impl SharedFrame {
    fn parse(frame: &Arc<[u8]>) -> SharedFrame {
        let digest: Hash = Sha3_256::digest(frame).into();
        let (parsed, parse_time) = timed(|| crate::wire::ParsedFrame::parse(frame).ok());
        SharedFrame {
            bytes: frame.clone(),
            digest,
            parsed,
            parse_time,
        }
    }

    fn meta(&self) -> FrameMeta {
        FrameMeta {
            digest: self.digest,
            len: self.bytes.len(),
            kind: self.parsed.as_ref().map(|p| p.header().kind),
        }
    }

    /// Hands the frame to `member` (`None`: it is down) at `now`: its result and the real time
    /// it took, the shared parse included.
    fn deliver(
        &self,
        member: Option<&mut Member>,
        now: Time,
    ) -> (Option<Result<(), ProtocolError>>, std::time::Duration) {
        let Some(m) = member else {
            return (None, std::time::Duration::ZERO);
        };
        let (res, host) = match &self.parsed {
            Some(p) => {
                // Charged as if this member had parsed the frame and derived what other
                // receivers already derived from it (the values it computes are in `host`).
                let shared = p.shared_time();
                let (res, host) = timed(|| m.handle_parsed(now, p.clone()));
                (res, host + self.parse_time + shared)
            }
            None => timed(|| m.handle_message(now, &self.bytes)),
        };
        (Some(res), host)
    }
}

/// What the trace and the cost model need of a delivered frame.
#[derive(Clone, Copy)]
struct FrameMeta {
    digest: Hash,
    len: usize,
    kind: Option<crate::wire::Kind>,
}

/// `f()` and the real time it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, std::time::Duration) {
    let t0 = std::time::Instant::now();
    let v = f();
    (v, t0.elapsed())
}

/// How a driver takes events: each one as [`Network::step`], or a window at a time
/// ([`window`]), none after `limit`.
#[derive(Clone, Copy)]
enum Pace {
    OneByOne,
    Windows { limit: Option<Time> },
}

/// Everything the relay has to send and to report.
fn drain_relay(r: &mut Relay) -> (Vec<crate::protocol::Transmit>, Vec<RelayEvent>) {
    let out = std::iter::from_fn(|| r.poll_transmit()).collect();
    (out, std::iter::from_fn(|| r.poll_event()).collect())
}

/// Everything `m` has to send and to report.
fn drain_member(m: &mut Member) -> (Vec<Vec<u8>>, Vec<MemberEvent>) {
    let out = std::iter::from_fn(|| m.poll_transmit()).collect();
    (out, std::iter::from_fn(|| m.poll_event()).collect())
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Msg {
    ToRelay { from: u32, frame: Arc<[u8]> },
    ToMember { to: u32, frame: Arc<[u8]> },
}

/// A frame the network is about to deliver; a hook may alter or drop it.
pub enum Delivery<'a> {
    /// Member → relay.
    ToRelay {
        /// Sender.
        from: u32,
        /// Frame.
        frame: &'a mut Vec<u8>,
    },
    /// Relay → member.
    ToMember {
        /// Receiver.
        to: u32,
        /// Frame.
        frame: &'a mut Vec<u8>,
    },
}

/// A hook that sees every frame before delivery; returning `false` drops it.
pub type Hook = Box<dyn FnMut(Delivery<'_>) -> bool>;

/// The network stalled: no frame in flight and no timer, before the condition held.
#[derive(Debug, PartialEq, Eq)]
pub struct Stuck {
    /// Virtual time when it stalled.
    pub at: Time,
    /// Steps taken.
    pub steps: u64,
}

/// N members and a relay on a virtual clock.
pub struct Network {
    /// The group.
    pub group: Arc<Group>,
    /// The relay.
    pub relay: Relay,
    /// Members by index (`None`: crashed).
    pub members: Vec<Option<Member>>,
    /// Every member's events, in order.
    pub member_events: Vec<Vec<MemberEvent>>,
    /// When each of `member_events` happened (virtual time; same shape), kept only while
    /// `record_event_times` is set. A reader that drains `member_events` drains these with them.
    pub member_event_times: Vec<Vec<Time>>,
    /// Whether to fill `member_event_times` (off by default: a reader that drains
    /// `member_events` alone would otherwise let the times grow without bound).
    pub record_event_times: bool,
    /// The relay's events, in order.
    pub relay_events: Vec<RelayEvent>,
    /// Completed rounds so far (counted as the relay reports them: `relay_events` may be
    /// trimmed by its reader, and rescanning it at every step made long runs quadratic).
    completed: usize,
    /// Protocol errors returned by nodes: (receiver, error). Honest runs have none.
    pub errors: Vec<(String, ProtocolError)>,
    /// Optional delivery hook (tests and adversaries).
    pub hook: Option<Hook>,
    /// CPU cost model (free by default).
    pub cost: CostModel,
    /// Busy-until time of each member (index) and of the relay (last entry).
    busy: Vec<Time>,
    /// Real (host) time each member (index) and the relay (last entry) spent handling frames
    /// and timeouts: what the protocol engines cost on this machine, for benchmarks and cost
    /// calibration. Never read by protocol logic, so runs stay deterministic.
    host_time: Vec<std::time::Duration>,
    now: Time,
    queue: BinaryHeap<Reverse<(Time, u64, Msg)>>,
    seq: u64,
    rng: ChaCha20Rng,
    link: LinkModel,
    trace: Sha3_256,
    steps: u64,
    link_clear: Vec<Time>,
    /// Member identity secrets, to restart a crashed member (simulation only).
    member_secrets: Vec<[u8; 32]>,
    master_seed: u64,
    restarts: u64,
    modeled: bool,
    /// Recently delivered relay frames: digest, the one parse every receiver shares, and what
    /// that parse cost in real time.
    meta_cache: Vec<Arc<SharedFrame>>,
    /// Whether the drivers that allow it hand a window of virtual time to every core
    /// ([`Network::set_parallel`]).
    parallel: bool,
    /// Windows taken so far ([`Network::windows`]).
    windows: u64,
}

impl Network {
    /// A network for `tg`, seeded by `seed`, with an honest relay.
    pub fn new(tg: &TestGroup, seed: u64, link: LinkModel) -> Network {
        Self::with_relay_faults(tg, seed, link, Vec::new())
    }

    /// A network whose relay has `faults`.
    pub fn with_relay_faults(
        tg: &TestGroup,
        seed: u64,
        link: LinkModel,
        faults: Vec<RelayFault>,
    ) -> Network {
        Self::with_faults(tg, seed, link, faults, &BTreeMap::new())
    }

    /// A network with faulty relay and/or members (`member_faults`: index → faults).
    pub fn with_faults(
        tg: &TestGroup,
        seed: u64,
        link: LinkModel,
        faults: Vec<RelayFault>,
        member_faults: &BTreeMap<u32, Vec<MemberFault>>,
    ) -> Network {
        let relay_key = IdentityKey::from_secret_bytes(&tg.relay_key.secret_bytes());
        let relay = Relay::with_faults(tg.group.clone(), relay_key, faults)
            .expect("TestGroup keys match its group");
        let members = tg
            .member_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Some(
                    Member::with_faults(
                        tg.group.clone(),
                        MemberId(i as u32),
                        IdentityKey::from_secret_bytes(&k.secret_bytes()),
                        derive_seed(seed, "member-rng", i as u64),
                        Box::new(MemoryStore::default()),
                        member_faults.get(&(i as u32)).cloned().unwrap_or_default(),
                    )
                    .expect("TestGroup keys match its group"),
                )
            })
            .collect::<Vec<_>>();
        let n = members.len();
        Network {
            group: tg.group.clone(),
            relay,
            members,
            member_events: vec![Vec::new(); n],
            member_event_times: vec![Vec::new(); n],
            record_event_times: false,
            relay_events: Vec::new(),
            completed: 0,
            errors: Vec::new(),
            hook: None,
            cost: CostModel::free(),
            busy: vec![Time::ZERO; n + 1],
            host_time: vec![std::time::Duration::ZERO; n + 1],
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            seq: 0,
            rng: ChaCha20Rng::from_seed(derive_seed(seed, "network", 0)),
            link,
            trace: Sha3_256::new(),
            steps: 0,
            link_clear: Vec::new(),
            member_secrets: tg.member_keys.iter().map(|k| k.secret_bytes()).collect(),
            master_seed: seed,
            restarts: 0,
            modeled: false,
            meta_cache: Vec::new(),
            parallel: true,
            windows: 0,
        }
    }

    /// Current virtual time.
    pub fn now(&self) -> Time {
        self.now
    }

    /// Starts the relay.
    pub fn start(&mut self) {
        self.relay.start(self.now);
        self.flush();
    }

    /// Simulation only: every engine skips pads and blinding (no anonymity; for scale).
    pub fn set_modeled_crypto(&mut self, on: bool) {
        self.modeled = on;
        self.relay.set_modeled_crypto(on);
        for m in self.members.iter_mut().flatten() {
            m.set_modeled_crypto(on);
        }
    }

    /// Crashes member `i`: frames to it are lost from now on.
    pub fn crash(&mut self, i: usize) {
        self.members[i] = None;
    }

    /// Restarts member `i` as a new process would: fresh engine (fresh RNG stream, the given
    /// high-water mark as its durable store held it), reconnecting to the relay.
    pub fn restart(&mut self, i: usize, high_water: u64) {
        self.restarts += 1;
        let mut m = Member::new(
            self.group.clone(),
            MemberId(i as u32),
            IdentityKey::from_secret_bytes(&self.member_secrets[i]),
            derive_seed(self.master_seed, "member-restart", self.restarts),
            Box::new(MemoryStore(high_water, 0)),
        )
        .expect("same key as before");
        m.set_modeled_crypto(self.modeled);
        m.handle_reconnect(self.now);
        self.members[i] = Some(m);
        self.relay.handle_connected(self.now, MemberId(i as u32));
        self.flush();
    }

    /// Hash of everything delivered so far (frames and times): equal for equal runs.
    pub fn trace_hash(&self) -> Hash {
        self.trace.clone().finalize().into()
    }

    fn delay(&mut self) -> u64 {
        let j = if self.link.jitter_us > 0 {
            self.rng.next_u64() % (self.link.jitter_us + 1)
        } else {
            0
        };
        self.link.base_us + j
    }

    fn push(&mut self, msg: Msg) {
        // Links are ordered streams (as QUIC streams are): a frame never overtakes an earlier
        // frame on the same link.
        let (link, sender, len) = match &msg {
            Msg::ToRelay { from, frame } => (2 * *from as usize, *from as usize, frame.len()),
            Msg::ToMember { to, frame } => (2 * *to as usize + 1, self.members.len(), frame.len()),
        };
        // Sent when the sender has finished computing it.
        let sent = self.now.max(self.busy[sender]);
        let mut extra = 0u64;
        // Serialization delay (none when bandwidth is 0, meaning unlimited).
        extra += (len as u64)
            .saturating_mul(1_000_000)
            .checked_div(self.link.bandwidth_bps)
            .unwrap_or(0);
        if self.link.loss > 0.0 {
            let mut tries = 0;
            while tries < 16
                && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < self.link.loss
            {
                extra += self.link.rto_us;
                tries += 1;
            }
        }
        let mut at = sent.plus_micros(self.delay() + extra);
        if self.link_clear.len() <= link {
            self.link_clear.resize(link + 1, Time::ZERO);
        }
        at = at.max(self.link_clear[link]);
        self.link_clear[link] = at;
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, msg)));
    }

    fn flush(&mut self) {
        let (out, events) = drain_relay(&mut self.relay);
        self.push_relay_outputs(out, events);
        for i in 0..self.members.len() {
            if let Some(m) = self.members[i].as_mut() {
                let (out, events) = drain_member(m);
                self.push_member_outputs(i, out, events);
            }
        }
    }

    /// What the relay sent and reported after one event, queued and logged as `flush` does.
    fn push_relay_outputs(&mut self, out: Vec<crate::protocol::Transmit>, events: Vec<RelayEvent>) {
        for t in out {
            self.push(Msg::ToMember {
                to: t.to.0,
                frame: t.frame,
            });
        }
        for e in events {
            if matches!(e, RelayEvent::Completed { .. }) {
                self.completed += 1;
            }
            self.relay_events.push(e);
        }
    }

    /// What member `i` sent and reported after one event, queued and logged as `flush` does.
    fn push_member_outputs(&mut self, i: usize, out: Vec<Vec<u8>>, events: Vec<MemberEvent>) {
        for e in events {
            self.member_events[i].push(e);
            if self.record_event_times {
                self.member_event_times[i].push(self.now);
            }
        }
        for f in out {
            self.push(Msg::ToRelay {
                from: i as u32,
                frame: f.into(),
            });
        }
    }

    /// When the next frame arrives or the next timer fires (`None`: nothing is pending).
    pub fn next_event_at(&self) -> Option<Time> {
        let next_frame = self.queue.peek().map(|Reverse((t, _, _))| *t);
        let member_timer = self
            .members
            .iter()
            .filter_map(|m| m.as_ref()?.poll_timeout())
            .min();
        [next_frame, member_timer, self.relay.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles every event due at or before `t` (at most `max_steps` of them), then moves the
    /// clock to `t`: whatever the caller does next (a submission, a crash) happens at `t`
    /// exactly, after everything earlier and before anything later.
    pub fn advance_to(&mut self, t: Time, max_steps: u64) -> Result<(), Stuck> {
        self.drive(max_steps, Pace::Windows { limit: Some(t) }, |net| {
            net.next_event_at().is_none_or(|e| e > t)
        })?;
        self.now = self.now.max(t);
        Ok(())
    }

    /// Whether the drivers below may work a window of virtual time on every core (on by
    /// default). Off, every event is one [`Network::step`]; on, the run is the same event for
    /// event (same trace, same events, same errors), only faster on a machine with more than
    /// one core. Drivers that take a caller's condition ([`Network::drive_bounded`]) always
    /// step one event at a time, since the condition may hold in the middle of a window.
    pub fn set_parallel(&mut self, on: bool) {
        self.parallel = on;
    }

    /// How many windows of events the drivers have handled in parallel so far (0 with
    /// [`Network::set_parallel`] off).
    pub fn windows(&self) -> u64 {
        self.windows
    }

    /// One [`Network::step`], or one window of events up to `limit` ([`window`]) when that
    /// is allowed and worth it. The first step of every driver call is a plain step: it
    /// flushes whatever the caller made the engines send between calls exactly as `step`
    /// would.
    fn step_or_window(&mut self, first: bool, limit: Option<Time>, budget: u64) -> bool {
        if !first && self.parallel {
            if let Some(progress) = self.step_window(limit, budget) {
                return progress;
            }
        }
        self.step()
    }

    /// [`Network::drive_bounded`] for a condition on completed rounds only, evaluated after
    /// every round the relay completes: windows end at a completion, so the condition sees
    /// the state `step` by `step` would show it.
    fn drive_rounds(
        &mut self,
        max_steps: u64,
        done: impl FnMut(&Network) -> bool,
    ) -> Result<(), Stuck> {
        self.drive(max_steps, Pace::Windows { limit: None }, done)
    }

    /// Delivers the next frame or fires the next timer. Returns `false` when nothing is left.
    pub fn step(&mut self) -> bool {
        let next_frame = self.queue.peek().map(|Reverse((t, _, _))| *t);
        // The relay's deadlines, and members' (a blame case the relay must conclude).
        let member_timer = self
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((m.as_ref()?.poll_timeout()?, i)))
            .min();
        let relay_timer = self.relay.poll_timeout();
        let next_timer = match (relay_timer, member_timer) {
            (Some(r), Some((m, _))) => Some(r.min(m)),
            (r, m) => r.or(m.map(|x| x.0)),
        };
        let frame_first = match (next_frame, next_timer) {
            (None, None) => return false,
            (Some(f), Some(t)) => f <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        self.steps += 1;
        if frame_first {
            let Some(Reverse((at, _, msg))) = self.queue.pop() else {
                return false;
            };
            self.now = self.now.max(at);
            self.deliver(msg);
        } else if let Some(t) = next_timer {
            self.now = self.now.max(t);
            match member_timer {
                Some((mt, i)) if relay_timer.is_none_or(|r| mt < r) => {
                    let host = match self.members[i].as_mut() {
                        Some(m) => {
                            let now = self.now;
                            timed(|| m.handle_timeout(now)).1
                        }
                        None => std::time::Duration::ZERO,
                    };
                    self.account_timer(i, host);
                }
                _ => {
                    let now = self.now;
                    let host = timed(|| self.relay.handle_timeout(now)).1;
                    self.account_timer(self.members.len(), host);
                }
            }
        }
        self.flush();
        true
    }

    /// The trace and host time of a timer that fired at `node` (a member's index, or
    /// `members.len()` for the relay).
    fn account_timer(&mut self, node: usize, host: std::time::Duration) {
        self.trace.update(b"T");
        self.trace.update(self.now.as_micros().to_le_bytes());
        self.host_time[node] += host;
    }

    /// The CPU charge, trace, host time and error of a frame delivered to the relay at `now`.
    fn account_to_relay(
        &mut self,
        from: u32,
        meta: FrameMeta,
        host: std::time::Duration,
        res: Result<(), ProtocolError>,
    ) {
        let us = self.cost_us(true, meta.len, meta.kind);
        let relay = self.members.len();
        self.charge(relay, us);
        self.trace.update(b"R");
        self.trace.update(self.now.as_micros().to_le_bytes());
        self.trace.update(from.to_le_bytes());
        self.trace.update(meta.digest);
        self.host_time[relay] += host;
        if let Err(e) = res {
            self.errors.push(("relay".into(), e));
        }
    }

    /// The same for a frame delivered to member `to` (`res` is `None` when it is down).
    fn account_to_member(
        &mut self,
        to: u32,
        meta: FrameMeta,
        host: std::time::Duration,
        res: Option<Result<(), ProtocolError>>,
    ) {
        let us = self.cost_us(false, meta.len, meta.kind);
        self.charge(to as usize, us);
        self.trace.update(b"M");
        self.trace.update(self.now.as_micros().to_le_bytes());
        self.trace.update(to.to_le_bytes());
        self.trace.update(meta.digest);
        if let Some(h) = self.host_time.get_mut(to as usize) {
            *h += host;
        }
        if let Some(Err(e)) = res {
            self.errors.push((format!("member {to}"), e));
        }
    }

    /// Digest and parse of a relay frame, computed once per shared broadcast buffer (a relay
    /// frame is one `Arc` for all its receivers), so large groups do not decode and hash it
    /// once per receiver.
    fn shared_frame(&mut self, frame: &Arc<[u8]>) -> Arc<SharedFrame> {
        if let Some(c) = self
            .meta_cache
            .iter()
            .find(|c| Arc::ptr_eq(&c.bytes, frame))
        {
            return c.clone();
        }
        let c = Arc::new(SharedFrame::parse(frame));
        if self.meta_cache.len() >= 16 {
            self.meta_cache.remove(0);
        }
        self.meta_cache.push(c.clone());
        c
    }

    fn compute_meta(frame: &[u8]) -> FrameMeta {
        FrameMeta {
            digest: Sha3_256::digest(frame).into(),
            len: frame.len(),
            kind: crate::wire::decode_frame(frame).map(|f| f.header.kind).ok(),
        }
    }

    /// Simulated CPU time to handle `frame` at a member (`to_relay = false`) or the relay.
    fn cost_us(&self, to_relay: bool, frame_len: usize, kind: Option<crate::wire::Kind>) -> u64 {
        let c = &self.cost;
        if c == &CostModel::free() {
            return 0;
        }
        let p = self.group.params();
        let l = p.vector_len() as f64;
        let n = self.members.len() as f64;
        let hash = frame_len as f64 / c.sha3_bytes_per_us;
        use crate::wire::Kind;
        let us = if to_relay {
            c.relay_frame_us
                + hash
                + match kind {
                    Some(Kind::Commit) | Some(Kind::EpochKey) | Some(Kind::Disclose) => c.verify_us,
                    // Merkle root of the ciphertext, and its XOR into the record.
                    Some(Kind::Reveal) => {
                        l / c.sha3_bytes_per_us + l / (c.chacha_bytes_per_us * 10.0)
                    }
                    // The relay unblinds the cleartext once per round: one keystream per seed.
                    Some(Kind::Unblind) => l / c.chacha_bytes_per_us + c.sign_us / n,
                    _ => 0.0,
                }
        } else {
            c.member_frame_us
                + hash
                + c.verify_us
                + match kind {
                    // Pads (N − 1) and blinding (1) over L, Merkle root, signature.
                    Some(Kind::Open) => {
                        n * l / c.chacha_bytes_per_us + l / c.sha3_bytes_per_us + c.sign_us
                    }
                    Some(Kind::CommitSet) | Some(Kind::Record) => c.sign_us,
                    // Unblinding: one keystream per member; then the next round's footprint,
                    // computed ahead of its Open.
                    Some(Kind::ZSet) => n * l / c.chacha_bytes_per_us + c.mul_us,
                    Some(Kind::EpochKeys) => n * (c.verify_us + c.mul_us),
                    _ => 0.0,
                }
        };
        us.max(0.0) as u64
    }

    fn charge(&mut self, node: usize, us: u64) {
        let start = self.now.max(self.busy[node]);
        self.busy[node] = start.plus_micros(us);
    }

    fn deliver(&mut self, msg: Msg) {
        let now = self.now;
        match msg {
            Msg::ToRelay { from, frame } => {
                // A hook may alter the frame; then it is copied and its digest recomputed.
                let altered = match self.hook.as_mut() {
                    Some(h) => {
                        let mut f = frame.to_vec();
                        if !h(Delivery::ToRelay {
                            from,
                            frame: &mut f,
                        }) {
                            return;
                        }
                        Some(f)
                    }
                    None => None,
                };
                let f: &[u8] = altered.as_deref().unwrap_or(&frame);
                let meta = Self::compute_meta(f);
                let (res, host) = timed(|| self.relay.handle_message(now, MemberId(from), f));
                self.account_to_relay(from, meta, host, res);
            }
            Msg::ToMember { to, frame } => {
                let altered = match self.hook.as_mut() {
                    Some(h) => {
                        let mut f = frame.to_vec();
                        if !h(Delivery::ToMember { to, frame: &mut f }) {
                            return;
                        }
                        Some(f)
                    }
                    None => None,
                };
                // An unaltered broadcast is parsed once for all receivers; an altered copy is
                // the receiver's own.
                let (meta, res, host) = match altered {
                    Some(f) => {
                        let meta = Self::compute_meta(&f);
                        match self.members.get_mut(to as usize).and_then(|m| m.as_mut()) {
                            Some(m) => {
                                let (res, host) = timed(|| m.handle_message(now, &f));
                                (meta, Some(res), host)
                            }
                            None => (meta, None, std::time::Duration::ZERO),
                        }
                    }
                    None => {
                        let shared = self.shared_frame(&frame);
                        let member = self.members.get_mut(to as usize).and_then(|m| m.as_mut());
                        let (res, host) = shared.deliver(member, now);
                        (shared.meta(), res, host)
                    }
                };
                self.account_to_member(to, meta, host, res);
            }
        }
    }

    /// Real time member `i` (or the relay, for `i == members.len()`) has spent in its engine
    /// so far: handling frames and timeouts, not the simulator's own work. `None` out of range.
    pub fn host_time(&self, i: usize) -> Option<std::time::Duration> {
        self.host_time.get(i).copied()
    }

    /// Steps until `done` holds, at most `max_steps` steps (catches livelock).
    pub fn drive_bounded(
        &mut self,
        max_steps: u64,
        done: impl FnMut(&Network) -> bool,
    ) -> Result<(), Stuck> {
        self.drive(max_steps, Pace::OneByOne, done)
    }

    /// Steps until `done` holds, at most `max_steps` steps, at `pace`.
    fn drive(
        &mut self,
        max_steps: u64,
        pace: Pace,
        mut done: impl FnMut(&Network) -> bool,
    ) -> Result<(), Stuck> {
        let start = self.steps;
        let mut first = true;
        while !done(self) {
            let used = self.steps - start;
            let progress = used < max_steps
                && match pace {
                    Pace::Windows { limit } => self.step_or_window(first, limit, max_steps - used),
                    Pace::OneByOne => self.step(),
                };
            if !progress {
                return Err(Stuck {
                    at: self.now,
                    steps: self.steps - start,
                });
            }
            first = false;
        }
        Ok(())
    }

    /// Drives until `done` holds, evaluated once per completed round (not per step: `done` may
    /// scan every event), or until `max` more rounds completed. `Ok(true)`: `done` held;
    /// `Ok(false)`: the rounds passed without it; `Err`: the network stalled first (no event
    /// left, or 4,000,000 steps without reaching either).
    pub fn run_until_round(
        &mut self,
        max: usize,
        mut done: impl FnMut(&Network) -> bool,
    ) -> Result<bool, Stuck> {
        let start = self.completed_rounds();
        let mut seen = usize::MAX;
        let mut hit = false;
        let r = self.drive_rounds(4_000_000, |net| {
            let c = net.completed_rounds();
            if c == seen {
                return false;
            }
            seen = c;
            hit = done(net);
            hit || c >= start + max
        });
        match r {
            Ok(()) => Ok(hit),
            Err(_) if hit => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Rounds the relay has completed so far.
    pub fn completed_rounds(&self) -> usize {
        self.completed
    }

    /// Drives until `k` more rounds have completed.
    pub fn run_rounds(&mut self, k: usize) -> Result<(), Stuck> {
        let target = self.completed_rounds() + k;
        let n = self.members.len() as u64;
        self.drive_rounds((k as u64 + 2) * (20 * n + 50), |net| {
            net.completed_rounds() >= target
        })
    }

    /// Messages delivered to member `i`, in order.
    pub fn delivered(&self, i: usize) -> Vec<Vec<u8>> {
        self.member_events[i]
            .iter()
            .filter_map(|e| match e {
                MemberEvent::Delivered { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }

    /// Members that are running.
    pub fn alive(&self) -> BTreeSet<usize> {
        (0..self.members.len())
            .filter(|&i| self.members[i].is_some())
            .collect()
    }
}
