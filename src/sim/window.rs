//! Parallel delivery: one window of virtual time worked out on every core, with the outcome
//! [`Network::step`] would give, event for event.
//!
//! Why it is exact. A frame sent at virtual time `t` arrives at `t + base_us` or later
//! ([`Network::push`]: the sender's clock, plus the link's base latency, plus jitter and
//! serialization), so nothing handled in `[t0, t0 + base_us)` can add a frame that arrives
//! inside that window: its frames are all in the queue when it starts. What one node does in
//! the window then depends only on its own frames and its own timers, so each node's events
//! are worked out on their own — the relay's first (a window ends at a completed round, which
//! the drivers watch), then the members' on the rayon pool. Each event is tagged with the
//! place `step` would give it ([`Order`]), and the events are then taken in that order: the
//! trace, the CPU charge, the errors, and the node's outputs pushed exactly as `step` pushes
//! them (so the same sequence numbers and the same jitter draws). The test
//! `tests/sim_parallel.rs` compares the traces and event logs of both ways over seeded runs
//! with jitter, loss, crashes, jammers and a tampering relay.
//!
//! The one place it can differ is a livelock: a node whose timers keep firing in the past
//! makes both ways run out of steps, but after different counts ([`Stuck::steps`]).

use super::{FrameMeta, Msg, Network, SharedFrame, drain_member, drain_relay, timed};
use crate::protocol::{
    Member, MemberEvent, MemberId, ProtocolError, Relay, RelayEvent, Time, Transmit,
};
use rayon::prelude::*;
use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Duration;

/// The place of an event in the order [`Network::step`] takes them: frames by (arrival,
/// sequence number), before any timer due at the same moment; the relay's timer before a
/// member's, and members' by index. A timer a node sets in the past fires at once, right after
/// the event that set it (`sub` counts them).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Order {
    at: Time,
    class: u8,
    tie: u64,
    sub: u32,
}

impl Order {
    fn frame(at: Time, seq: u64) -> Order {
        Order {
            at,
            class: 0,
            tie: seq,
            sub: 0,
        }
    }

    fn timer(at: Time, tie: u64) -> Order {
        Order {
            at,
            class: 1,
            tie,
            sub: 0,
        }
    }

    /// The first place at or after `t`.
    fn from_time(t: Time) -> Order {
        Order {
            at: t,
            class: 0,
            tie: 0,
            sub: 0,
        }
    }

    fn primary(self) -> (Time, u8, u64) {
        (self.at, self.class, self.tie)
    }
}

/// One node's next event, given its last one, its next frame and its timer: `(place, is the
/// frame)`.
fn next_event(
    last: Option<Order>,
    frame: Option<Order>,
    timer: Option<Order>,
) -> Option<(Order, bool)> {
    if let (Some(t), Some(l)) = (timer, last) {
        if t.primary() < l.primary() {
            // Every other node's next event comes after `l`, so this timer is the earliest.
            return Some((
                Order {
                    sub: l.sub + 1,
                    ..l
                },
                false,
            ));
        }
    }
    match (frame, timer) {
        (Some(f), Some(t)) if t < f => Some((t, false)),
        (Some(f), _) => Some((f, true)),
        (None, Some(t)) => Some((t, false)),
        (None, None) => None,
    }
}

/// One event a node handled in a window, and what it did.
struct Happened<O, E> {
    order: Order,
    now: Time,
    /// The frame (`None`: a timer fired) and its sender or receiver.
    frame: Option<(u32, FrameMeta)>,
    /// `None`: a timer, or a frame to a member that is down.
    res: Option<Result<(), ProtocolError>>,
    host: Duration,
    out: Vec<O>,
    events: Vec<E>,
}

/// A node's events of one window, and how many of its frames they took.
struct NodeRun<O, E> {
    done: Vec<Happened<O, E>>,
    taken: usize,
}

/// A handled frame: its peer and meta, the engine's answer, the real time it took.
type Handled = (
    (u32, FrameMeta),
    Option<Result<(), ProtocolError>>,
    Duration,
);

/// A node as the window sees it.
trait Engine {
    type Out;
    type Event;
    fn timeout(&self) -> Option<Time>;
    fn on_timeout(&mut self, now: Time);
    fn drain(&mut self) -> (Vec<Self::Out>, Vec<Self::Event>);
}

impl Engine for Relay {
    type Out = Transmit;
    type Event = RelayEvent;
    fn timeout(&self) -> Option<Time> {
        self.poll_timeout()
    }
    fn on_timeout(&mut self, now: Time) {
        self.handle_timeout(now)
    }
    fn drain(&mut self) -> (Vec<Transmit>, Vec<RelayEvent>) {
        drain_relay(self)
    }
}

/// A member, or `None` while it is down (frames to it are lost, it has no timer).
impl Engine for Option<Member> {
    type Out = Vec<u8>;
    type Event = MemberEvent;
    fn timeout(&self) -> Option<Time> {
        self.as_ref()?.poll_timeout()
    }
    fn on_timeout(&mut self, now: Time) {
        if let Some(m) = self {
            m.handle_timeout(now)
        }
    }
    fn drain(&mut self) -> (Vec<Vec<u8>>, Vec<MemberEvent>) {
        match self {
            Some(m) => drain_member(m),
            None => (Vec::new(), Vec::new()),
        }
    }
}

/// A frame of the window: arrival, sequence number, and what the receiver needs of it.
struct WindowFrame<F> {
    at: Time,
    seq: u64,
    frame: F,
}

/// A frame to the relay: its sender, bytes and meta (computed on the pool beforehand).
struct ToRelay {
    from: u32,
    bytes: Arc<[u8]>,
    meta: FrameMeta,
}

/// Works out one node's events of the window: frames in order, timers as they fall due,
/// every event before `cutoff` and at most `cap` of them; stops after an event whose report
/// `stop` matches. Returns the events and how many of `frames` were taken.
#[allow(clippy::too_many_arguments)]
fn run_node<N: Engine, F>(
    node: &mut N,
    tie: u64,
    frames: &[WindowFrame<F>],
    mut handle: impl FnMut(&mut N, Time, &F) -> Handled,
    start: Time,
    cutoff: Order,
    cap: u64,
    stop: impl Fn(&N::Event) -> bool,
) -> NodeRun<N::Out, N::Event> {
    let mut done = Vec::new();
    let mut now = start;
    let mut last = None;
    let mut taken = 0;
    while (done.len() as u64) < cap {
        let frame = frames.get(taken).map(|f| Order::frame(f.at, f.seq));
        let timer = node.timeout();
        let Some((order, is_frame)) = next_event(last, frame, timer.map(|t| Order::timer(t, tie)))
        else {
            break;
        };
        if order >= cutoff {
            break;
        }
        let (frame, res, host) = if is_frame {
            let f = &frames[taken];
            taken += 1;
            now = now.max(f.at);
            let (meta, res, host) = handle(node, now, &f.frame);
            (Some(meta), res, host)
        } else {
            now = now.max(timer.unwrap_or(now));
            let host = timed(|| node.on_timeout(now)).1;
            (None, None, host)
        };
        last = Some(order);
        let (out, events) = node.drain();
        let end = events.iter().any(&stop);
        done.push(Happened {
            order,
            now,
            frame,
            res,
            host,
            out,
            events,
        });
        if end {
            break;
        }
    }
    NodeRun { done, taken }
}

impl Network {
    /// Handles the next window of events ([module docs](self)), none after `limit`, at most
    /// about `budget` steps. `None`: a window does not apply here (a hook that must see every
    /// frame in order, links without latency, too little budget left); the caller then takes
    /// one [`Network::step`].
    pub(super) fn step_window(&mut self, limit: Option<Time>, budget: u64) -> Option<bool> {
        let n = self.members.len();
        if self.hook.is_some() || self.link.base_us == 0 || n < 2 {
            return None;
        }
        let t0 = self.next_event_at()?;
        let mut end = t0.plus_micros(self.link.base_us);
        if let Some(l) = limit {
            end = end.min(l.plus_micros(1));
        }
        let cutoff = Order::from_time(end);
        // The window's frames, all in the queue already.
        let mut frames = Vec::new();
        while self
            .queue
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at < end)
        {
            let Some(Reverse(f)) = self.queue.pop() else {
                break;
            };
            frames.push(f);
        }
        // Room for every frame and a timer per node, so that the window never takes more
        // steps than the caller allows (past-set timers aside: see the module docs).
        if budget < (frames.len() + n + 1) as u64 {
            for f in frames {
                self.queue.push(Reverse(f));
            }
            return None;
        }
        let mut to_relay = Vec::new();
        let mut to_member: Vec<Vec<WindowFrame<Arc<SharedFrame>>>> = Vec::new();
        to_member.resize_with(n, Vec::new);
        for (at, seq, msg) in frames {
            match msg {
                Msg::ToRelay { from, frame } => to_relay.push(WindowFrame {
                    at,
                    seq,
                    frame: (from, frame),
                }),
                Msg::ToMember { to, frame } => {
                    let shared = self.shared_frame(&frame);
                    if let Some(v) = to_member.get_mut(to as usize) {
                        v.push(WindowFrame {
                            at,
                            seq,
                            frame: shared,
                        });
                    }
                }
            }
        }
        let to_relay: Vec<WindowFrame<ToRelay>> = to_relay
            .into_par_iter()
            .map(|f| {
                let (from, bytes) = f.frame;
                let meta = Network::compute_meta(&bytes);
                WindowFrame {
                    at: f.at,
                    seq: f.seq,
                    frame: ToRelay { from, bytes, meta },
                }
            })
            .collect();
        // The relay first: its completing a round ends the window for everyone.
        let start = self.now;
        let relay = run_node(
            &mut self.relay,
            0,
            &to_relay,
            |r, now, f| {
                let (res, host) = timed(|| r.handle_message(now, MemberId(f.from), &f.bytes));
                ((f.from, f.meta), Some(res), host)
            },
            start,
            cutoff,
            budget,
            |e| matches!(e, RelayEvent::Completed { .. }),
        );
        let member_cutoff = match relay.done.last() {
            Some(h)
                if h.events
                    .iter()
                    .any(|e| matches!(e, RelayEvent::Completed { .. })) =>
            {
                h.order
            }
            _ => cutoff,
        };
        // Then every member with something due, on the pool.
        let member_done: Vec<(usize, NodeRun<Vec<u8>, MemberEvent>)> = self
            .members
            .par_iter_mut()
            .zip(to_member.par_iter())
            .enumerate()
            .filter(|(i, (m, f))| {
                !f.is_empty()
                    || m.timeout()
                        .is_some_and(|t| Order::timer(t, *i as u64 + 1) < member_cutoff)
            })
            .map(|(i, (m, f))| {
                let run = run_node(
                    m,
                    i as u64 + 1,
                    f,
                    |m, now, sf| {
                        let (res, host) = sf.deliver(m.as_mut(), now);
                        ((i as u32, sf.meta()), res, host)
                    },
                    start,
                    member_cutoff,
                    budget,
                    |_| false,
                );
                (i, run)
            })
            .collect();
        // What the window did not reach goes back, with its place unchanged.
        for f in to_relay.into_iter().skip(relay.taken) {
            let msg = Msg::ToRelay {
                from: f.frame.from,
                frame: f.frame.bytes,
            };
            self.queue.push(Reverse((f.at, f.seq, msg)));
        }
        let mut taken = vec![0; n];
        for (i, run) in &member_done {
            taken[*i] = run.taken;
        }
        for (i, v) in to_member.into_iter().enumerate() {
            for f in v.into_iter().skip(taken[i]) {
                let msg = Msg::ToMember {
                    to: i as u32,
                    frame: f.frame.bytes.clone(),
                };
                self.queue.push(Reverse((f.at, f.seq, msg)));
            }
        }
        // Every event in the place `step` would give it.
        enum Ev {
            Relay(Happened<Transmit, RelayEvent>),
            Member(usize, Happened<Vec<u8>, MemberEvent>),
        }
        let mut all: Vec<(Order, Ev)> = relay
            .done
            .into_iter()
            .map(|h| (h.order, Ev::Relay(h)))
            .collect();
        for (i, run) in member_done {
            all.extend(run.done.into_iter().map(|h| (h.order, Ev::Member(i, h))));
        }
        if all.is_empty() {
            return None;
        }
        all.sort_by_key(|(o, _)| *o);
        self.windows += 1;
        for (_, ev) in all {
            self.steps += 1;
            match ev {
                Ev::Relay(h) => {
                    self.now = self.now.max(h.now);
                    match h.frame {
                        Some((from, meta)) => {
                            let res = h.res.unwrap_or(Ok(()));
                            self.account_to_relay(from, meta, h.host, res)
                        }
                        None => self.account_timer(n, h.host),
                    }
                    self.push_relay_outputs(h.out, h.events);
                }
                Ev::Member(i, h) => {
                    self.now = self.now.max(h.now);
                    match h.frame {
                        Some((to, meta)) => self.account_to_member(to, meta, h.host, h.res),
                        None => self.account_timer(i, h.host),
                    }
                    self.push_member_outputs(i, h.out, h.events);
                }
            }
        }
        Some(true)
    }
}
