//! The simulator's parallel windows (src/sim/window.rs) give the very run that stepping one
//! event at a time gives: the same trace hash (every frame, its time and receiver, every
//! timer), the same event logs with the same virtual times, the same errors, the same clock.
//! Seeded runs with jitter, loss, busy nodes (the cost model), submissions at arbitrary
//! moments, crashes and restarts, jammers, a tampering relay, and blame.

use dcnet::adversary::{MemberFault, RelayFault};
use dcnet::params::RoundParams;
use dcnet::sim::{CostModel, LinkModel, Network, TestGroup};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::collections::BTreeMap;

struct Setup {
    n: usize,
    seed: u64,
    link: LinkModel,
    cost: bool,
    member_faults: BTreeMap<u32, Vec<MemberFault>>,
    relay_faults: Vec<RelayFault>,
    crash: bool,
}

/// Everything a run shows, as text (the events are `Debug`), and how many windows it took.
fn run(s: &Setup, parallel: bool) -> (Vec<String>, u64) {
    let p = RoundParams {
        slot_bytes: 96,
        ..RoundParams::default()
    };
    let tg = TestGroup::new(s.n, p, s.seed).expect("group");
    let mut net = Network::with_faults(
        &tg,
        s.seed,
        s.link,
        s.relay_faults.clone(),
        &s.member_faults,
    );
    net.set_parallel(parallel);
    net.record_event_times = true;
    if s.cost {
        net.cost = CostModel::calibrated();
    }
    net.start();
    let mut rng = ChaCha20Rng::seed_from_u64(s.seed ^ 0xa11);
    let mut log = Vec::new();
    let mut hw = 0;
    for r in 0..14u64 {
        // A submission at an arbitrary moment of the coming round, as the scenario runner
        // makes them (advance_to), and whole rounds (run_rounds, run_until_round).
        let at = net.now().plus_micros(rng.next_u64() % 20_000);
        log.push(format!("advance {:?}", net.advance_to(at, 200_000)));
        let who = (rng.next_u32() as usize) % s.n;
        if let Some(m) = net.members[who].as_mut() {
            let len = 1 + (rng.next_u32() % 200) as usize;
            log.push(format!(
                "submit {who} {:?}",
                m.submit(&vec![r as u8; len]).is_ok()
            ));
        }
        if s.crash && r == 4 {
            hw = net.members[1].as_ref().map_or(0, |m| m.stored_high_water());
            net.crash(1);
        }
        if s.crash && r == 6 {
            net.restart(1, hw);
        }
        if r % 3 == 0 {
            let k = net.completed_rounds();
            log.push(format!(
                "until {:?}",
                net.run_until_round(2, |n| n.completed_rounds() > k)
            ));
        } else {
            log.push(format!("rounds {:?}", net.run_rounds(1)));
        }
        log.push(format!(
            "at {:?} completed {}",
            net.now(),
            net.completed_rounds()
        ));
    }
    log.push(format!("trace {:?}", net.trace_hash()));
    log.push(format!("errors {:?}", net.errors));
    log.push(format!("relay {:?}", net.relay_events));
    for i in 0..s.n {
        for (e, t) in net.member_events[i].iter().zip(&net.member_event_times[i]) {
            log.push(format!("member {i} at {:?}: {e:?}", t));
        }
    }
    (log, net.windows())
}

fn same(s: &Setup) {
    let (a, wa) = run(s, false);
    let (b, wb) = run(s, true);
    assert_eq!(wa, 0, "stepping alone takes no window");
    assert!(
        wb > 10,
        "seed {}: only {wb} windows: the parallel path was not exercised",
        s.seed
    );
    assert_eq!(
        a.len(),
        b.len(),
        "seed {}: logs of different lengths",
        s.seed
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "seed {}: the parallel run differs", s.seed);
    }
    // The run did something worth comparing: rounds, or verdicts.
    assert!(
        a.iter()
            .any(|l| l.contains("RoundCompleted") || l.contains("Verdict")),
        "seed {}: no round and no verdict",
        s.seed
    );
}

fn link(base_us: u64, jitter_us: u64, loss: f64) -> LinkModel {
    LinkModel {
        base_us,
        jitter_us,
        loss,
        ..LinkModel::default()
    }
}

#[test]
fn honest_runs_with_jitter_are_the_same_event_for_event() {
    for seed in 0..6 {
        same(&Setup {
            n: 3 + seed as usize * 3,
            seed,
            link: link(1_000, 900, 0.0),
            cost: seed % 2 == 0,
            member_faults: BTreeMap::new(),
            relay_faults: vec![],
            crash: false,
        });
    }
}

#[test]
fn jitter_wider_than_the_window_loss_and_crashes_are_the_same() {
    for seed in 10..14 {
        same(&Setup {
            n: 8,
            seed,
            // Jitter five times the base latency: a round's frames spread over many windows.
            link: link(200, 1_000, 0.05),
            cost: true,
            member_faults: BTreeMap::new(),
            relay_faults: vec![],
            crash: true,
        });
    }
}

#[test]
fn jammers_blame_and_a_tampering_relay_are_the_same() {
    for seed in 20..23 {
        let mut member_faults = BTreeMap::new();
        member_faults.insert(2, vec![MemberFault::JamAll]);
        member_faults.insert(4, vec![MemberFault::FalseAccuse]);
        same(&Setup {
            n: 7,
            seed,
            link: link(500, 200, 0.0),
            cost: true,
            member_faults,
            relay_faults: vec![],
            crash: false,
        });
    }
    same(&Setup {
        n: 6,
        seed: 30,
        link: link(500, 200, 0.0),
        cost: false,
        member_faults: BTreeMap::new(),
        relay_faults: vec![RelayFault::Tamper {
            offset: None,
            mask: 0x5a,
        }],
        crash: false,
    });
}

#[test]
fn a_one_microsecond_window_is_the_same() {
    // Windows hold a frame or two: the merge of relay and member events at its finest.
    same(&Setup {
        n: 5,
        seed: 40,
        link: link(1, 300, 0.0),
        cost: true,
        member_faults: BTreeMap::new(),
        relay_faults: vec![],
        crash: false,
    });
}
