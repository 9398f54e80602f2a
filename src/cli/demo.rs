//! `dcnet demo`: a group on the in-memory transport with a few members posting messages.

use crate::params::RoundParams;
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
    /// Print one JSON summary object as the last line of stdout.
    #[arg(long)]
    pub json: bool,
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
    let mut net = Network::new(&tg, a.seed, LinkModel::default());
    let msgs = script(capacity);
    let n = a.members;
    for (i, m) in msgs.iter().enumerate() {
        if let Some(mem) = net.members[i % n].as_mut() {
            mem.submit(m).map_err(|e| e.to_string())?;
        }
    }
    let sent = msgs.len();
    println!(
        "dcnet demo: {} members, {} cells, {} slots of {} bytes (L = {} bytes), p_trap {}, seed {}",
        n,
        p.cells,
        p.slots,
        p.slot_bytes,
        p.vector_len(),
        p.p_trap,
        a.seed
    );
    println!(
        "{} messages posted by several members; senders are never shown.\n",
        sent
    );
    net.start();
    if !a.json {
        println!(
            "{:>6} {:>8} {:>10} {:>11} {:>10}",
            "round", "present", "slots used", "collisions", "delivered"
        );
    }
    let mut stuck = None;
    if let Err(s) = net.run_rounds(a.rounds) {
        stuck = Some(s);
    }
    // Let the last round's seeds reach every member before reading their events.
    let _ = net.drive_bounded(10_000, |net| {
        let last = net.completed_rounds();
        net.member_events.iter().all(|ev| {
            ev.iter()
                .filter(|e| matches!(e, MemberEvent::RoundCompleted { .. }))
                .count()
                >= last
        })
    });
    // The table is built from public facts (the relay's records, member 0's view of the
    // output) plus the aggregate count of collided reservations; it never names a sender.
    let completed: Vec<(u64, usize)> = net
        .relay_events
        .iter()
        .filter_map(|e| match e {
            RelayEvent::Completed { round, present } => Some((*round, present.len())),
            _ => None,
        })
        .take(a.rounds)
        .collect();
    let mut total_collisions = 0usize;
    let mut delivered_total = 0usize;
    for &(round, present) in &completed {
        let collisions = net
            .member_events
            .iter()
            .flatten()
            .filter(|e| matches!(e, MemberEvent::Collided { round: r } if *r == round))
            .count();
        let (filled, delivered) = net.member_events[0].iter().fold((0, 0), |acc, e| match e {
            MemberEvent::RoundCompleted {
                round: r, filled, ..
            } if *r == round => (*filled, acc.1),
            MemberEvent::Delivered { round: r, .. } if *r == round => (acc.0, acc.1 + 1),
            _ => acc,
        });
        total_collisions += collisions;
        delivered_total += delivered;
        if !a.json {
            println!("{round:>6} {present:>8} {filled:>10} {collisions:>11} {delivered:>10}");
        }
    }
    let printed = completed.len();
    println!();
    for (i, m) in net.delivered(0).iter().enumerate() {
        let text = String::from_utf8_lossy(m);
        let shown: String = text.chars().take(60).collect();
        let more = if text.chars().count() > 60 { "…" } else { "" };
        println!("delivered #{:<2} ({} bytes): {shown}{more}", i + 1, m.len());
    }
    // Every member must have received the same messages.
    let reference = net.delivered(0);
    let agree = (0..n).all(|i| net.delivered(i) == reference);
    let errors = net.errors.len();
    let excluded: BTreeMap<u32, u64> = net
        .relay_events
        .iter()
        .filter_map(|e| match e {
            RelayEvent::Excluded { member, round, .. } => Some((*member, *round)),
            _ => None,
        })
        .collect();
    println!(
        "\nsummary: {} rounds completed in {:.1} ms of virtual time; {} sent, {} delivered to every member{}; {} collisions; {} protocol errors",
        printed,
        net.now().as_micros() as f64 / 1000.0,
        sent,
        delivered_total,
        if agree { "" } else { " (MEMBERS DISAGREE)" },
        total_collisions,
        errors
    );
    if let Some(s) = &stuck {
        println!(
            "note: the group stalled at {:?} after {} steps",
            s.at, s.steps
        );
    }
    if a.json {
        let j = serde_json::json!({
            "members": n,
            "rounds": printed,
            "sent": sent,
            "delivered": delivered_total,
            "collisions": total_collisions,
            "blamed": Vec::<u32>::new(),
            "excluded": excluded.keys().collect::<Vec<_>>(),
            "excluded_at_round": excluded,
            "relay_convicted": false,
            "honest_blamed": 0,
            "transport": "memory",
            "seed": a.seed,
            "members_agree": agree,
            "protocol_errors": errors,
            "virtual_ms": net.now().as_micros() as f64 / 1000.0,
        });
        println!("{j}");
    }
    if !agree {
        return Err("members disagree on the delivered messages".into());
    }
    Ok(())
}
