//! `dcnet demo`: a whole group in one process — over real QUIC on 127.0.0.1 (default) or on
//! the deterministic in-memory network — with a few members posting messages.

use super::words;
use crate::adversary::{MemberFault, RelayFault, Spec};
use crate::chat::{Envelope, Mailbox, parse};
use crate::net::member::Submission;
use crate::params::RoundParams;
use crate::protocol::blame::{self, Culprit};
use crate::protocol::relay::Absence;
use crate::protocol::{MemberEvent, RelayEvent};
use crate::sim::{LinkModel, Network, TestGroup};
use clap::Args;
use std::collections::BTreeMap;

/// Options of `dcnet demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Number of members.
    #[arg(long, default_value_t = 8)]
    pub members: usize,
    /// Rounds to run.
    #[arg(long, default_value_t = 40)]
    pub rounds: usize,
    /// Master seed: the same seed gives the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Bytes per slot (framing included).
    #[arg(long, default_value_t = 256)]
    pub slot_bytes: u32,
    /// Reservation cells (0: twice the members).
    #[arg(long, default_value_t = 0)]
    pub cells: u32,
    /// Probability that a member with a message pending reserves a trap instead.
    #[arg(long, default_value_t = 0.2)]
    pub p_trap: f64,
    /// Adversaries, comma-separated: KIND:MEMBER for a member (0-based index) or
    /// relay-KIND[:MEMBER] for the relay. Kinds: jam-slots, jam-all, jam-cells, garble-own, lie-pads,
    /// false-accuse, refuse, withhold, equivocate; relay-tamper[:OFFSET], relay-equivocate:MEMBER,
    /// relay-drop:MEMBER.
    #[arg(long, value_delimiter = ',')]
    pub adversary: Vec<Spec>,
    /// Write one evidence bundle per conviction into this directory, with the demo group's
    /// file group.toml (check them with `dcnet verify-evidence --group DIR/group.toml FILE`).
    #[arg(long)]
    pub evidence_dir: Option<std::path::PathBuf>,
    /// Print one JSON summary object on stdout (its only line); the text for people goes to
    /// stderr.
    #[arg(long)]
    pub json: bool,
    /// quic: relay and members talk over real QUIC on 127.0.0.1 (wall-clock time, not
    /// reproducible byte for byte); memory: the deterministic simulated network (virtual time;
    /// the same seed gives the same run).
    #[arg(long, value_enum, default_value_t = Transport::Quic)]
    pub transport: Transport,
}

/// How the demo's nodes talk.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Real QUIC on 127.0.0.1.
    Quic,
    /// The in-memory network on a virtual clock.
    Memory,
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Quic => "quic",
            Transport::Memory => "memory",
        }
    }
}

const DM_TEXT: &str = "are you coming tonight? only you can read this";
const REPLY_TEXT: &str = "yes, at nine. I cannot tell who you are, and nobody else can read this";

/// The demo's private conversation: one honest member writes a sealed message to another,
/// which answers through the one-time reply key inside it. The demo holds every member's
/// mailbox and tries every delivered message in each, so it can show who opened what; it
/// never prints who wrote to whom.
struct DmDemo {
    boxes: Vec<Mailbox>,
    reader: usize,
    first: Option<(usize, Submission)>,
    /// Members that opened the message, and the answer.
    opened_by: [Vec<usize>; 2],
    texts: [Option<String>; 2],
    answered: bool,
}

impl DmDemo {
    fn new(tg: &TestGroup, honest: &[usize], seed: u64) -> Option<DmDemo> {
        let (&reader, &writer) = (honest.first()?, honest.get(1)?);
        let mut boxes: Vec<Mailbox> = tg
            .member_keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Mailbox::new(
                    &tg.group,
                    i as u32,
                    k,
                    crate::sim::derive_seed(seed, "demo-mailbox", i as u64),
                )
            })
            .collect();
        let dm = boxes[writer].dm(reader as u32, DM_TEXT.as_bytes()).ok()?;
        Some(DmDemo {
            boxes,
            reader,
            first: Some((
                writer,
                Submission {
                    message: dm.message,
                    link: dm.link,
                },
            )),
            opened_by: [Vec::new(), Vec::new()],
            texts: [None, None],
            answered: false,
        })
    }

    /// Member `i` got `message`: try its mailbox. Returns the answer to submit (and who
    /// submits it) when the recipient has just read the message.
    fn on_delivered(&mut self, i: usize, message: &[u8]) -> Option<(usize, Submission)> {
        let o = self.boxes.get_mut(i)?.open(message)?;
        let k = usize::from(o.is_reply);
        self.opened_by[k].push(i);
        self.texts[k] = Some(String::from_utf8_lossy(&o.text).into_owned());
        if o.is_reply || i != self.reader || self.answered {
            return None;
        }
        self.answered = true;
        let r = self.boxes[i].reply(o.number, REPLY_TEXT.as_bytes()).ok()?;
        Some((
            i,
            Submission {
                message: r.message,
                link: r.link,
            },
        ))
    }

    /// Messages of the conversation submitted so far.
    fn submitted(&self) -> usize {
        1 + usize::from(self.answered)
    }

    /// The conversation completed: each message opened by exactly one member.
    fn complete(&self) -> bool {
        self.opened_by.iter().all(|v| v.len() == 1)
    }
}

/// The table's figures per round, tallied as events arrive and printed once final, so that
/// the demo keeps only the events it reads later and its memory stays flat however many rounds
/// it runs (a long demo kept every event, then every row, and grew without bound).
#[derive(Default)]
struct Tally {
    /// The honest member whose view the table shows.
    watch: usize,
    /// Rows to print (the first `limit` completed rounds).
    limit: usize,
    /// Slots per round.
    slots: u32,
    /// Text to stderr (with --json) rather than stdout.
    json: bool,
    /// Rounds with figures not yet printed.
    rows: BTreeMap<u64, Row>,
    /// Completed rounds not yet printed, in completion order.
    pending: std::collections::VecDeque<u64>,
    /// Rows printed so far; the last round printed.
    printed: usize,
    last_printed: Option<u64>,
    /// Totals over the printed rows (plus collisions reported after their row was printed).
    collisions: usize,
    delivered: usize,
    slots_offered: u64,
    slots_used: u64,
}

#[derive(Default, Clone, Copy)]
struct Row {
    present: usize,
    allocated: u32,
    filled: u32,
    collisions: usize,
    delivered: usize,
}

/// A row is printed once the relay completed this many later rounds (every member that was
/// present has reported the round by then) or at the end of the run.
const ROW_LAG: usize = 4;

impl Tally {
    fn new(watch: usize, a: &DemoArgs, p: &crate::params::RoundParams) -> Tally {
        Tally {
            watch,
            limit: a.rounds,
            slots: p.slots,
            json: a.json,
            ..Tally::default()
        }
    }

    fn printed_already(&self, round: u64) -> bool {
        self.last_printed.is_some_and(|r| round <= r)
    }

    /// Tallies member `i`'s event; returns it if the rest of the demo still reads it.
    fn keep(&mut self, i: usize, e: MemberEvent) -> Option<MemberEvent> {
        match e {
            MemberEvent::RoundCompleted {
                round,
                allocated,
                filled,
                ..
            } => {
                if i == self.watch && !self.printed_already(round) {
                    let r = self.rows.entry(round).or_default();
                    (r.allocated, r.filled) = (allocated, filled);
                }
                None
            }
            MemberEvent::Collided { round } => {
                if self.printed_already(round) {
                    self.collisions += 1;
                } else {
                    self.rows.entry(round).or_default().collisions += 1;
                }
                None
            }
            MemberEvent::Delivered { round, .. } if i == self.watch => {
                if self.printed_already(round) {
                    self.delivered += 1;
                } else {
                    self.rows.entry(round).or_default().delivered += 1;
                }
                Some(e)
            }
            e => Some(e),
        }
    }

    /// Tallies a relay event (a completed round becomes a row) and prints the rows that are
    /// final; returns the event if the rest of the demo still reads it.
    fn relay(&mut self, e: RelayEvent) -> Option<RelayEvent> {
        match e {
            RelayEvent::Opened { .. } => None,
            RelayEvent::Completed { round, ref present } => {
                if self.printed + self.pending.len() < self.limit {
                    self.rows.entry(round).or_default().present = present.len();
                    self.pending.push_back(round);
                }
                self.flush(ROW_LAG);
                Some(e)
            }
            e => Some(e),
        }
    }

    /// Prints every pending row but the last `lag`.
    fn flush(&mut self, lag: usize) {
        while self.pending.len() > lag {
            let Some(round) = self.pending.pop_front() else {
                break;
            };
            let row = self.rows.remove(&round).unwrap_or_default();
            // Figures for earlier rounds that never completed are dropped with them.
            while self.rows.first_key_value().is_some_and(|(r, _)| *r < round) {
                self.rows.pop_first();
            }
            let Row {
                present,
                allocated,
                filled,
                collisions,
                delivered,
            } = row;
            self.collisions += collisions;
            self.delivered += delivered;
            self.slots_offered += u64::from(self.slots);
            self.slots_used += u64::from(filled);
            self.printed += 1;
            self.last_printed = Some(round);
            say(
                self.json,
                format!(
                    "{round:>6} {present:>8} {allocated:>9} {filled:>5} {collisions:>11} {delivered:>10}"
                ),
            );
        }
    }
}

/// Text for people: stdout, or stderr when stdout carries JSON.
fn say(json: bool, line: String) {
    if json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Relay events the demo reads after the run: a run of Completed events is kept as its last
/// one (the stall report reads only the last), the per-attempt Opened not at all.
fn keep_relay(events: &mut Vec<RelayEvent>, e: RelayEvent) {
    if matches!(e, RelayEvent::Completed { .. })
        && matches!(events.last(), Some(RelayEvent::Completed { .. }))
    {
        events.pop();
    }
    events.push(e);
}

/// What a run produced, whatever the transport.
struct Run {
    relay_events: Vec<RelayEvent>,
    member_events: Vec<Vec<MemberEvent>>,
    tally: Tally,
    /// Protocol errors the engines returned (not collected over QUIC, where they are logged).
    errors: Option<usize>,
    elapsed_ms: f64,
    stuck: Option<String>,
}

fn run_memory(
    a: &DemoArgs,
    tg: &TestGroup,
    relay_faults: Vec<RelayFault>,
    member_faults: &BTreeMap<u32, Vec<MemberFault>>,
    honest: &[usize],
    posts: &[(usize, Vec<u8>)],
    dm: &mut Option<DmDemo>,
) -> Result<Run, String> {
    let mut net = Network::with_faults(
        tg,
        a.seed,
        LinkModel::default(),
        relay_faults,
        member_faults,
    );
    let submit = |net: &mut Network, (who, sub): (usize, Submission)| -> Result<(), String> {
        if let Some(mem) = net.members[who].as_mut() {
            match sub.link {
                Some(l) => mem.submit_linked(&sub.message, l),
                None => mem.submit(&sub.message),
            }
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    // The private message first: its answer can only start once it is read.
    if let Some(first) = dm.as_mut().and_then(|d| d.first.take()) {
        submit(&mut net, first)?;
    }
    for (who, m) in posts {
        if let Some(mem) = net.members[*who].as_mut() {
            mem.submit(m).map_err(|e| e.to_string())?;
        }
    }
    net.start();
    // Round by round, so that the recipient of the private message answers once it read it;
    // each round's events are tallied and only those read later are kept.
    let mut tally = Tally::new(honest[0], a, tg.group.params());
    let mut kept: Vec<Vec<MemberEvent>> = vec![Vec::new(); net.members.len()];
    let mut kept_relay: Vec<RelayEvent> = Vec::new();
    let mut rounds_seen = vec![0usize; net.members.len()];
    let mut stuck = None;
    for _ in 0..a.rounds {
        if let Err(s) = net.run_rounds(1) {
            stuck = Some(format!(
                "the group stopped making progress after {:.1} ms of virtual time ({} steps)",
                s.at.as_micros() as f64 / 1000.0,
                s.steps
            ));
            break;
        }
        let mut answers = Vec::new();
        for (i, evs) in net.member_events.iter_mut().enumerate() {
            for e in evs.drain(..) {
                match &e {
                    MemberEvent::Delivered { message, .. } => {
                        if let Some(d) = dm.as_mut() {
                            answers.extend(d.on_delivered(i, message));
                        }
                    }
                    MemberEvent::RoundCompleted { .. } => rounds_seen[i] += 1,
                    _ => {}
                }
                kept[i].extend(tally.keep(i, e));
            }
        }
        for e in std::mem::take(&mut net.relay_events) {
            if let Some(e) = tally.relay(e) {
                keep_relay(&mut kept_relay, e);
            }
        }
        for ans in answers {
            submit(&mut net, ans)?;
        }
    }
    // Let the last round's seeds reach the honest members before reading their events.
    let _ = net.drive_bounded(10_000, |net| {
        let last = net.completed_rounds();
        honest.iter().all(|&i| {
            rounds_seen[i]
                + net.member_events[i]
                    .iter()
                    .filter(|e| matches!(e, MemberEvent::RoundCompleted { .. }))
                    .count()
                >= last
        })
    });
    for (i, evs) in net.member_events.iter_mut().enumerate() {
        for e in evs.drain(..) {
            kept[i].extend(tally.keep(i, e));
        }
    }
    for e in std::mem::take(&mut net.relay_events) {
        if let Some(e) = tally.relay(e) {
            keep_relay(&mut kept_relay, e);
        }
    }
    tally.flush(0);
    Ok(Run {
        elapsed_ms: net.now().as_micros() as f64 / 1000.0,
        errors: Some(net.errors.len()),
        relay_events: kept_relay,
        member_events: kept,
        tally,
        stuck,
    })
}

fn run_quic(
    a: &DemoArgs,
    tg: &TestGroup,
    relay_faults: Vec<RelayFault>,
    member_faults: &BTreeMap<u32, Vec<MemberFault>>,
    honest: &[usize],
    posts: &[(usize, Vec<u8>)],
    dm: &mut Option<DmDemo>,
) -> Result<Run, String> {
    use crate::net::member::MemberNote;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let n = tg.member_keys.len();
    rt.block_on(async {
        let started = std::time::Instant::now();
        let (mut relay, mut members) =
            crate::net::spawn_local_group(tg, a.seed, relay_faults, member_faults).await?;
        // The private message first: its answer can only start once it is read.
        if let Some((who, sub)) = dm.as_mut().and_then(|d| d.first.take()) {
            members[who]
                .submit
                .send(sub)
                .await
                .map_err(|_| "member stopped".to_string())?;
        }
        for (who, m) in posts {
            members[*who]
                .submit
                .send(m.clone().into())
                .await
                .map_err(|_| "member stopped".to_string())?;
        }
        let mut to_submit: Vec<(usize, Submission)> = Vec::new();
        let mut relay_events = Vec::new();
        let mut member_events = vec![Vec::new(); n];
        let mut tally = Tally::new(honest[0], a, tg.group.params());
        // Kept as counters, not rescanned: the loop runs once per note, so scanning every
        // event each time made long demos quadratic.
        let mut rounds_seen = vec![0usize; n];
        let mut has_verdict = vec![false; n];
        let mut completed = 0usize;
        let limit = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut stuck = None;
        // Run until the relay completed the rounds asked for and every honest member has
        // seen them, or the relay stopped (convicted), or two minutes passed.
        loop {
            let caught_up = honest
                .iter()
                .all(|&i| rounds_seen[i] >= completed.min(a.rounds));
            let relay_stopped = relay_events.iter().any(|e| {
                matches!(e, RelayEvent::Verdict { verdict, .. }
                    if verdict.culprit == Some(crate::protocol::blame::Culprit::Relay))
            });
            let verdicts_in = honest.iter().all(|&i| has_verdict[i]);
            if (completed >= a.rounds && caught_up) || (relay_stopped && verdicts_in) {
                break;
            }
            let mut progressed = false;
            for (who, sub) in to_submit.drain(..) {
                members[who]
                    .submit
                    .send(sub)
                    .await
                    .map_err(|_| "member stopped".to_string())?;
            }
            while let Ok(e) = relay.events.try_recv() {
                if matches!(e, RelayEvent::Completed { .. }) {
                    completed += 1;
                }
                if let Some(e) = tally.relay(e) {
                    keep_relay(&mut relay_events, e);
                }
                progressed = true;
            }
            for (i, m) in members.iter_mut().enumerate() {
                while let Ok(note) = m.notes.try_recv() {
                    if let MemberNote::Event(e) = note {
                        match &e {
                            MemberEvent::RoundCompleted { .. } => rounds_seen[i] += 1,
                            MemberEvent::Verdict { .. } => has_verdict[i] = true,
                            MemberEvent::Delivered { message, .. } => {
                                if let Some(d) = dm.as_mut() {
                                    to_submit.extend(d.on_delivered(i, message));
                                }
                            }
                            _ => {}
                        }
                        member_events[i].extend(tally.keep(i, e));
                    }
                    progressed = true;
                }
            }
            if progressed {
                continue;
            }
            tokio::select! {
                e = relay.events.recv() => if let Some(e) = e {
                    if matches!(e, RelayEvent::Completed { .. }) { completed += 1; }
                    if let Some(e) = tally.relay(e) {
                        keep_relay(&mut relay_events, e);
                    }
                },
                _ = tokio::time::sleep_until(limit) => {
                    stuck = Some(format!(
                        "stopped waiting after 120 s with {completed} of {} rounds completed",
                        a.rounds
                    ));
                    break;
                }
                // Member notes are drained at the top of the loop; wake up for them too.
                _ = tokio::time::sleep(std::time::Duration::from_millis(5)) => {}
            }
        }
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        for m in members {
            m.shutdown().await;
        }
        relay.shutdown().await;
        tally.flush(0);
        Ok(Run {
            relay_events,
            member_events,
            tally,
            errors: None,
            elapsed_ms,
            stuck,
        })
    })
}

/// Messages the demo's members post: short ones, one exactly filling a slot, one of several
/// slots. Member `i % n` posts message `i`.
fn script(capacity: usize) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "hello, group",
        "the meeting moved to thursday",
        "who else has seen the new draft?",
        "x",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(vec![b'='; capacity]);
    let long: Vec<u8> = "a longer message that spans several slots. "
        .bytes()
        .cycle()
        .take(capacity * 3 + 17)
        .collect();
    v.push(long);
    v
}

/// Runs the demo; returns the exit code.
pub fn run(a: &DemoArgs) -> i32 {
    match run_inner(a) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dcnet demo: {e}");
            1
        }
    }
}

fn run_inner(a: &DemoArgs) -> Result<(), String> {
    let params = RoundParams {
        slot_bytes: a.slot_bytes,
        cells: a.cells,
        p_trap: a.p_trap,
        ..RoundParams::default()
    };
    let tg = TestGroup::new(a.members, params, a.seed).map_err(|e| e.to_string())?;
    let p = tg.group.params().clone();
    let capacity = (p.slot_bytes - crate::params::SLOT_OVERHEAD) as usize;
    let n = a.members;
    let mut relay_faults: Vec<RelayFault> = Vec::new();
    let mut member_faults: BTreeMap<u32, Vec<MemberFault>> = BTreeMap::new();
    for s in &a.adversary {
        match s {
            Spec::Member(i, f) => {
                if *i as usize >= n {
                    return Err(format!("adversary member {i} is not in a group of {n}"));
                }
                member_faults.entry(*i).or_default().push(f.clone());
            }
            Spec::Relay(f) => {
                if let RelayFault::Equivocate { victim } | RelayFault::Drop { victim } = f {
                    if *victim as usize >= n {
                        return Err(format!("relay victim {victim} is not in a group of {n}"));
                    }
                }
                relay_faults.push(f.clone())
            }
        }
    }
    let bad: std::collections::BTreeSet<u32> = member_faults.keys().copied().collect();
    // Honest members the relay does not cut off (a dropped or equivocation victim is honest
    // but hears nothing; it is excluded as absent, which the summary shows).
    let victims: std::collections::BTreeSet<usize> = relay_faults
        .iter()
        .filter_map(|f| match f {
            RelayFault::Equivocate { victim } | RelayFault::Drop { victim } => {
                Some(*victim as usize)
            }
            _ => None,
        })
        .collect();
    let honest: Vec<usize> = (0..n)
        .filter(|i| !bad.contains(&(*i as u32)) && !victims.contains(i))
        .collect();
    if honest.is_empty() {
        return Err("at least one member must be honest and not cut off by the relay".into());
    }
    let msgs = script(capacity);
    let g = tg.group.clone();
    let json = a.json;
    // With --json, stdout carries JSON lines only; the text for people goes to stderr.
    let say = |line: String| {
        if json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    if !a.adversary.is_empty() {
        let list: Vec<String> = a.adversary.iter().map(|s| describe(s, &g)).collect();
        say(format!("adversaries: {}", list.join("; ")));
    }
    let sent = msgs.len();
    say(format!(
        "dcnet demo ({}): {} members ({}), {} cells, {} slots of {} bytes (L = {} bytes), p_trap {}, seed {}",
        a.transport.name(),
        n,
        roster_range(&g),
        p.cells,
        p.slots,
        p.slot_bytes,
        p.vector_len(),
        p.p_trap,
        a.seed
    ));
    say(format!(
        "{sent} messages posted by several members, and one private conversation; senders are \
         never shown.\n"
    ));
    // Honest members post the script (adversaries post nothing).
    let posts: Vec<(usize, Vec<u8>)> = msgs
        .iter()
        .enumerate()
        .map(|(k, m)| (honest[k % honest.len()], m.clone()))
        .collect();
    let mut dm = DmDemo::new(&tg, &honest, a.seed);
    // The table is built from public facts (the relay's records, one honest member's view of
    // the output) plus the aggregate count of collided reservations; it never names a sender.
    // Its rows are printed as the rounds complete (Tally).
    say(format!(
        "{:>6} {:>8} {:>9} {:>5} {:>11} {:>10}",
        "round", "present", "reserved", "used", "collisions", "delivered"
    ));
    let run = match a.transport {
        Transport::Memory => run_memory(
            a,
            &tg,
            relay_faults,
            &member_faults,
            &honest,
            &posts,
            &mut dm,
        )?,
        Transport::Quic => run_quic(
            a,
            &tg,
            relay_faults,
            &member_faults,
            &honest,
            &posts,
            &mut dm,
        )?,
    };
    let sent = sent + dm.as_ref().map_or(0, DmDemo::submitted);
    let Run {
        relay_events,
        member_events,
        tally,
        errors,
        elapsed_ms,
        stuck,
    } = run;
    let delivered_to = |i: usize| -> Vec<Vec<u8>> {
        member_events[i]
            .iter()
            .filter_map(|e| match e {
                MemberEvent::Delivered { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    };
    let watch = honest[0];
    let Tally {
        printed,
        collisions: total_collisions,
        delivered: delivered_total,
        slots_offered,
        slots_used,
        ..
    } = tally;

    say(format!(
        "\nEach round has {} slots. \"reserved\": slots won in the previous round's {} \
         reservation cells; the others stay idle (all zero).\n\"used\": reserved slots that \
         came out intact, message pieces and traps alike (they look the same to everyone but \
         their writer;\nidle members reserve cover traps with p_cover {}, so busy and quiet \
         rounds look alike). \"collisions\": reservations that lost their cell\n(retried \
         later). In all, {} of {} slot-rounds were used.",
        p.slots, p.cells, p.p_cover, slots_used, slots_offered
    ));
    say(String::new());
    for (i, m) in delivered_to(watch).iter().enumerate() {
        if let Envelope::Sealed { .. } = parse(m) {
            say(format!(
                "delivered #{:<2} ({} bytes): (a sealed private message: only its recipient can open it)",
                i + 1,
                m.len()
            ));
            continue;
        }
        let text = String::from_utf8_lossy(m);
        let shown: String = text.chars().take(60).collect();
        let more = if text.chars().count() > 60 { "…" } else { "" };
        say(format!(
            "delivered #{:<2} ({} bytes): {shown}{more}",
            i + 1,
            m.len()
        ));
    }
    if let Some(d) = &dm {
        let of = |v: &[usize]| format!("{} of {n} members", v.len());
        say(format!(
            "\nprivate conversation: one member sealed a message to another (no recipient \
             field; every member tried to open it and {} could: its recipient). The recipient \
             answered through the one-time reply key inside it, without learning who wrote; \
             {} opened the answer: its writer. Neither the relay nor any other member can \
             tell who wrote to whom, and this demo does not say.",
            of(&d.opened_by[0]),
            of(&d.opened_by[1])
        ));
        for (what, t) in ["the message", "the answer "].iter().zip(&d.texts) {
            if let Some(t) = t {
                say(format!("  {what}: {t}"));
            }
        }
    }
    // Every honest member must have received the same messages.
    let reference = delivered_to(watch);
    let agree = honest.iter().all(|&i| delivered_to(i) == reference);
    // Verdicts as the honest members reached them (they agree; the first one speaks).
    let mut blamed: Vec<u32> = Vec::new();
    let mut relay_convicted = false;
    let mut excluded_at: BTreeMap<u32, u64> = BTreeMap::new();
    let mut bundles = Vec::new();
    for e in &member_events[watch] {
        if let MemberEvent::Verdict { verdict, case } = e {
            match verdict.culprit {
                Some(Culprit::Member(i)) => {
                    if !blamed.contains(&i) {
                        blamed.push(i);
                    }
                    excluded_at.entry(i).or_insert(verdict.round);
                }
                Some(Culprit::Relay) => relay_convicted = true,
                None => {}
            }
            if verdict.culprit.is_some() {
                bundles.push((verdict.clone(), case.clone()));
            }
            say(format!(
                "verdict (round {}): {} — rule {}{}",
                verdict.round,
                match &verdict.culprit {
                    Some(c) => format!("{} convicted", words::culprit(&g, c)),
                    None => "nobody convicted".into(),
                },
                verdict.rule.name(),
                if verdict.unresponsive.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; excluded as unresponsive: {}",
                        words::names(&g, &verdict.unresponsive)
                    )
                }
            ));
        }
    }
    let honest_blamed: Vec<u32> = blamed
        .iter()
        .filter(|i| !bad.contains(i))
        .copied()
        .collect();
    let mut evidence_files = Vec::new();
    if let Some(dir) = &a.evidence_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // The demo group's file, so that `verify-evidence --group` can check each bundle
        // against the group it claims (the relay address is a placeholder: the demo's relay
        // listened on a port chosen at run time; the address is not part of the group id).
        let group_path = dir.join("group.toml");
        let gf = crate::config::GroupFile {
            group: (*tg.group).clone(),
            relay_addr: "127.0.0.1:0".to_string(),
        };
        std::fs::write(&group_path, gf.to_toml())
            .map_err(|e| format!("cannot write {}: {e}", group_path.display()))?;
        for (k, (v, case)) in bundles.iter().enumerate() {
            let who = match v.culprit {
                Some(Culprit::Member(i)) => format!("member{i}-{}", words::name(&g, i)),
                _ => "relay".into(),
            };
            let path = dir.join(format!(
                "conviction-{}-round{}-{who}.evidence",
                k + 1,
                v.round
            ));
            std::fs::write(&path, blame::encode_evidence(case))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            say(format!("evidence written: {}", path.display()));
            evidence_files.push(path.display().to_string());
        }
        if !bundles.is_empty() {
            say(format!(
                "check the bundles with: dcnet verify-evidence --group {} FILE...",
                group_path.display()
            ));
        }
    }

    // Members the relay excluded as unresponsive (withheld a reveal or seed, or party to an
    // unresolved case) and members simply absent (missed a deadline; nothing held against
    // them). A convicted member is excluded too: `excluded` lists both kinds.
    let mut unresponsive: Vec<u32> = Vec::new();
    let mut absent: Vec<u32> = Vec::new();
    for e in &relay_events {
        if let RelayEvent::Excluded {
            member,
            round,
            reason,
        } = e
        {
            match reason {
                Absence::Unresponsive => {
                    if !unresponsive.contains(member) && !blamed.contains(member) {
                        unresponsive.push(*member);
                    }
                    excluded_at.entry(*member).or_insert(*round);
                }
                Absence::Absent => {
                    if !absent.contains(member) {
                        absent.push(*member);
                    }
                }
            }
        }
    }
    let mut excluded: Vec<u32> = blamed.iter().chain(&unresponsive).copied().collect();
    excluded.sort_unstable();
    excluded.dedup();
    absent.retain(|m| !excluded.contains(m));
    // What went wrong, if anything: the demo exits non-zero when it did not do what it says.
    let mut failures: Vec<String> = Vec::new();
    if !agree {
        failures.push("the honest members disagree on the delivered messages".into());
    }
    if !honest_blamed.is_empty() {
        failures.push(format!(
            "an honest member was convicted: {}",
            words::names(&g, &honest_blamed)
        ));
    }
    for s in &a.adversary {
        let caught = match s {
            Spec::Member(i, f) if must_convict(f) => {
                Some((blamed.contains(i), words::name(&g, *i)))
            }
            Spec::Relay(RelayFault::Tamper { .. } | RelayFault::Equivocate { .. }) => {
                Some((relay_convicted, "the relay".to_string()))
            }
            _ => None,
        };
        if let Some((false, who)) = caught {
            failures.push(format!(
                "{who} ({}) was not convicted in {printed} rounds",
                describe(s, &g)
            ));
        }
    }
    // A convicted relay stops the group (the members no longer follow it): the rest of the
    // script cannot go out, and that is the expected end.
    if !relay_convicted {
        if delivered_total < sent {
            failures.push(format!(
                "only {delivered_total} of the {sent} messages were delivered in {printed} rounds \
                 (try more --rounds)"
            ));
        }
        if let Some(s) = &stuck {
            failures.push(s.clone());
        }
        if let Some(d) = &dm {
            if !d.complete() {
                failures.push(format!(
                    "the private message and its answer were opened by {} and {} members, \
                     not by one each, in {printed} rounds (try more --rounds)",
                    d.opened_by[0].len(),
                    d.opened_by[1].len()
                ));
            }
        }
    }
    let why_stalled = stall_reason(&relay_events, &g, relay_convicted);
    let errors_text = match errors {
        Some(e) => format!("; {e} protocol errors"),
        None => String::new(),
    };
    say(format!(
        "\nsummary: {printed} rounds completed in {elapsed_ms:.1} ms of {} time; {sent} sent, {delivered_total} delivered to every member{}; {total_collisions} collisions{errors_text}",
        if a.transport == Transport::Memory {
            "virtual"
        } else {
            "wall-clock"
        },
        if agree { "" } else { " (MEMBERS DISAGREE)" },
    ));
    say(format!(
        "convicted: {}; excluded as unresponsive: {}; absent at some point: {}{}",
        words::names(&g, &blamed),
        words::names(&g, &unresponsive),
        words::names(&g, &absent),
        if relay_convicted {
            "; the relay was convicted"
        } else {
            ""
        }
    ));
    if let Some(s) = &stuck {
        say(format!("note: {s}; {why_stalled}"));
    }
    if a.json {
        let names = |v: &[u32]| words::names_json(&g, v);
        let j = serde_json::json!({
            "members": n,
            "roster": g.members().iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
            "rounds": printed,
            "rounds_asked": a.rounds,
            "sent": sent,
            "delivered": delivered_total,
            "collisions": total_collisions,
            "slots_offered": slots_offered,
            "slots_used": slots_used,
            "blamed": blamed,
            "blamed_names": names(&blamed),
            "unresponsive": unresponsive,
            "unresponsive_names": names(&unresponsive),
            "excluded": excluded,
            "excluded_names": names(&excluded),
            "absent": absent,
            "absent_names": names(&absent),
            "excluded_at_round": excluded_at,
            "relay_convicted": relay_convicted,
            "honest_blamed": honest_blamed.len(),
            "transport": a.transport.name(),
            "seed": a.seed,
            "members_agree": agree,
            "protocol_errors": errors,
            "elapsed_ms": elapsed_ms,
            "stalled": stuck.as_ref().map(|s| format!("{s}; {why_stalled}")),
            "evidence": evidence_files,
            "private_conversation": dm.as_ref().map(|d| serde_json::json!({
                "message_opened_by": d.opened_by[0].len(),
                "answer_opened_by": d.opened_by[1].len(),
                "answered": d.answered,
            })),
            "ok": failures.is_empty(),
            "failures": failures,
        });
        println!("{j}");
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the demo did not do what it says: {}",
            failures.join("; ")
        ))
    }
}

/// Member faults the demo promises to convict (the others hurt no one else, act only inside
/// a blame case, or end as unresponsive rather than convicted).
fn must_convict(f: &MemberFault) -> bool {
    matches!(
        f,
        MemberFault::JamSlots { .. }
            | MemberFault::JamAll
            | MemberFault::JamEmptyCells
            | MemberFault::Equivocate
    )
}

/// "m0 … m7".
fn roster_range(g: &crate::params::Group) -> String {
    match (g.members().first(), g.members().last()) {
        (Some(a), Some(b)) => format!("{} … {}", a.name, b.name),
        _ => String::new(),
    }
}

/// An `--adversary` spec in words, with roster names.
fn describe(s: &Spec, g: &crate::params::Group) -> String {
    match s {
        Spec::Member(i, f) => {
            let who = words::name(g, *i);
            let what = match f {
                MemberFault::JamSlots { rate } if *rate >= 1.0 => {
                    "jams another member's slot every round".to_string()
                }
                MemberFault::JamSlots { rate } => {
                    format!("jams another member's slot with probability {rate} per round")
                }
                MemberFault::JamAll => "jams every other member's slot every round".into(),
                MemberFault::GarbleOwn => "garbles its own slot (a decoy)".into(),
                MemberFault::JamCells { rate } => {
                    format!(
                        "writes garbage into a reservation cell with probability {rate} per round"
                    )
                }
                MemberFault::JamEmptyCells => {
                    "writes garbage into every reservation cell but its own".into()
                }
                MemberFault::LiePads => "lies about its pads when it discloses them".into(),
                MemberFault::FalseAccuse => "accuses without cause".into(),
                MemberFault::Refuse => "stays silent in every blame step".into(),
                MemberFault::Withhold => "commits, then never reveals".into(),
                MemberFault::Equivocate => "signs two different commitments every round".into(),
                MemberFault::NoSeal => "as keyholder, sends no content key".into(),
                MemberFault::BadSeal { victim } => format!(
                    "as keyholder, seals a wrong content key to {}",
                    words::name(g, *victim)
                ),
            };
            format!("{who} {what}")
        }
        Spec::Relay(f) => match f {
            RelayFault::Tamper { offset, .. } => match offset {
                Some(o) => format!("the relay tampers with byte {o} of every round's output"),
                None => "the relay tampers with every round's output".into(),
            },
            RelayFault::Equivocate { victim } => format!(
                "the relay shows {} a different round opening each round",
                words::name(g, *victim)
            ),
            RelayFault::Drop { victim } => format!(
                "the relay drops every message to {}",
                words::name(g, *victim)
            ),
        },
    }
}

/// Why a run stopped making progress, from the relay's events.
fn stall_reason(
    relay_events: &[RelayEvent],
    g: &crate::params::Group,
    relay_convicted: bool,
) -> String {
    if relay_convicted {
        return "the relay was convicted, so the members stopped following it (as they must)"
            .into();
    }
    match relay_events.iter().rev().find(|e| {
        matches!(
            e,
            RelayEvent::Stalled { .. } | RelayEvent::Aborted { .. } | RelayEvent::Completed { .. }
        )
    }) {
        Some(RelayEvent::Stalled { available }) => format!(
            "the relay was waiting: {} available, and a round needs at least 2",
            words::members(*available)
        ),
        Some(RelayEvent::Aborted { round, missing }) => format!(
            "the last attempt (round {round}) was aborted: {} missing",
            words::names(g, missing)
        ),
        _ => "no round completed in the time allowed".into(),
    }
}
