//! Issue 8, item 4: one byzantine member against a real `Relay` and honest members (issue 8,
//! finding 6 (a)–(f)). The member signs whatever it likes with its own key. Bound checked on
//! every run: the group keeps completing rounds, and between two completed rounds at most
//! `MAX_FAILED` attempts fail and at most `MAX_EPOCHS` epochs start, whatever the member does;
//! failed attempts stay a small share once the member has been benched.

mod common;

use common::params;
use dcnet::adversary::MemberFault;
use dcnet::protocol::{MemberEvent, MemberId, RelayEvent};
use dcnet::sim::{LinkModel, Network, TestGroup};
use dcnet::wire::{Hello, Sender, Signed};
use std::collections::BTreeMap;

const N: usize = 5;
const BAD: u32 = 4;
/// Failed attempts between two completed rounds, at most.
const MAX_FAILED: usize = 3;
/// Epochs started between two completed rounds, at most.
const MAX_EPOCHS: usize = 2;

struct Outcome {
    completed: usize,
    worst_failed_gap: usize,
    worst_epoch_gap: usize,
    failed: usize,
    convicted: bool,
}

fn hello(tg: &TestGroup, epoch: u64, high_water: u64, hello_epoch: u64) -> Vec<u8> {
    Signed::sign(
        &tg.member_keys[BAD as usize],
        *tg.group.id(),
        epoch,
        0,
        Sender::Member(BAD),
        Hello {
            protocol: dcnet::wire::PROTOCOL_VERSION,
            high_water,
            epoch: hello_epoch,
            last_case: Some([0xee; 32]),
        },
    )
    .into_frame()
}

/// Runs until `target` rounds complete; `attack` is called after every step with the network
/// and the number of relay events seen so far, and may inject frames as the bad member.
fn run(
    seed: u64,
    faults: Vec<MemberFault>,
    target: usize,
    mut attack: impl FnMut(&mut Network, &TestGroup, usize),
) -> Outcome {
    let tg = TestGroup::new(N, params(96), seed).unwrap();
    let mf: BTreeMap<u32, Vec<MemberFault>> = [(BAD, faults)].into_iter().collect();
    let mut net = Network::with_faults(&tg, seed, LinkModel::default(), vec![], &mf);
    for i in 0..N - 1 {
        net.members[i]
            .as_mut()
            .unwrap()
            .submit(format!("note {i}").as_bytes())
            .unwrap();
    }
    net.start();
    let mut seen = 0;
    let mut steps = 0u64;
    while net.completed_rounds() < target && steps < 2_000_000 {
        if !net.step() {
            break;
        }
        steps += 1;
        attack(&mut net, &tg, seen);
        seen = net.relay_events.len();
    }
    let (mut failed_gap, mut epoch_gap, mut worst_f, mut worst_e, mut failed) = (0, 0, 0, 0, 0);
    let mut convicted = false;
    for e in &net.relay_events {
        match e {
            RelayEvent::Completed { .. } => {
                failed_gap = 0;
                epoch_gap = 0;
            }
            RelayEvent::Aborted { .. } => {
                failed += 1;
                failed_gap += 1;
                worst_f = worst_f.max(failed_gap);
            }
            RelayEvent::EpochStarted { .. } => {
                epoch_gap += 1;
                worst_e = worst_e.max(epoch_gap);
            }
            RelayEvent::Verdict { verdict, .. } => {
                convicted |= verdict.culprit == Some(dcnet::protocol::blame::Culprit::Member(BAD));
            }
            _ => {}
        }
    }
    // Honest members never stop trusting an honest relay, and nobody honest is convicted.
    for i in 0..N - 1 {
        let m = net.members[i].as_ref().unwrap();
        assert!(
            m.relay_faulty().is_none(),
            "seed {seed}: member {i}: {:?}",
            m.relay_faulty()
        );
        for e in &net.member_events[i] {
            if let MemberEvent::Verdict { verdict, .. } = e {
                if let Some(dcnet::protocol::blame::Culprit::Member(c)) = verdict.culprit {
                    assert_eq!(c, BAD, "seed {seed}: honest member {c} convicted");
                }
            }
        }
    }
    Outcome {
        completed: net.completed_rounds(),
        worst_failed_gap: worst_f,
        worst_epoch_gap: worst_e,
        failed,
        convicted,
    }
}

fn check(tag: &str, o: &Outcome, target: usize) {
    eprintln!(
        "{tag}: {} rounds, worst run of failed attempts {}, worst run of epochs {}, {} failed in all",
        o.completed, o.worst_failed_gap, o.worst_epoch_gap, o.failed
    );
    assert!(
        o.completed >= target,
        "{tag}: the group stalled at {} rounds",
        o.completed
    );
    assert!(
        o.worst_failed_gap <= MAX_FAILED,
        "{tag}: {} failed attempts in a row",
        o.worst_failed_gap
    );
    assert!(
        o.worst_epoch_gap <= MAX_EPOCHS,
        "{tag}: {} epochs in a row",
        o.worst_epoch_gap
    );
}

/// 6(a): a Hello for the current epoch in answer to every EpochRequest.
#[test]
fn f6a_hello_at_every_epoch_request_does_not_restart_epochs() {
    for seed in 0..4 {
        let o = run(seed, vec![], 40, |net, tg, seen| {
            for e in &net.relay_events[seen..] {
                if let RelayEvent::EpochStarted { epoch, .. } = e {
                    let epoch = *epoch;
                    let f = hello(tg, epoch, net.relay.next_round(), epoch);
                    let now = net.now();
                    let _ = net.relay.handle_message(now, MemberId(BAD), &f);
                    break;
                }
            }
            // And on every Open.
            if let Some(RelayEvent::Opened { .. }) = net.relay_events.last() {
                let epoch = net.relay.epoch();
                let f = hello(tg, epoch, 0, epoch);
                let now = net.now();
                let _ = net.relay.handle_message(now, MemberId(BAD), &f);
            }
        });
        check("6(a)", &o, 40);
    }
}

/// 6(b), 6(c): a Hello with a high-water mark 2^21 above everyone's, and one with u64::MAX
/// counters: no jump past the honest members' window, no overflow, the group goes on.
#[test]
fn f6bc_hello_counters_cannot_push_the_relay_away() {
    for (k, hw) in [(0u64, 1u64 << 21), (1, u64::MAX), (2, u64::MAX - 1)] {
        let mut sent = 0;
        let o = run(10 + k, vec![], 30, |net, tg, _| {
            if net.completed_rounds() >= 5 && sent < 3 {
                sent += 1;
                let epoch = net.relay.epoch();
                let f = hello(
                    tg,
                    epoch,
                    hw.saturating_add(net.relay.next_round()),
                    u64::MAX - 1,
                );
                let now = net.now();
                let _ = net.relay.handle_message(now, MemberId(BAD), &f);
            }
        });
        check("6(b)(c)", &o, 30);
    }
}

/// 6(d): withhold the reveal every time, then reconnect at once: benched for longer and longer.
#[test]
fn f6d_withhold_and_reconnect_is_benched() {
    for seed in 20..23 {
        let o = run(seed, vec![MemberFault::Withhold], 80, |net, _, seen| {
            for e in &net.relay_events[seen..] {
                if let RelayEvent::Excluded { member, .. } = e {
                    if *member == BAD {
                        let now = net.now();
                        if let Some(m) = net.members[BAD as usize].as_mut() {
                            m.handle_reconnect(now);
                        }
                        net.relay.handle_connected(now, MemberId(BAD));
                        break;
                    }
                }
            }
        });
        check("6(d)", &o, 80);
        assert!(
            o.failed <= 8,
            "6(d): {} failed attempts for 80 rounds",
            o.failed
        );
    }
}

/// 6(e): a member whose connection flaps (a second process with its key knocking the first
/// off): every few steps it reconnects. The group goes on.
#[test]
fn f6e_flapping_connection_is_bounded() {
    for seed in 30..33 {
        let mut k = 0u64;
        let o = run(seed, vec![], 60, |net, _, _| {
            k += 1;
            if k % 97 == 0 {
                let now = net.now();
                if let Some(m) = net.members[BAD as usize].as_mut() {
                    m.handle_reconnect(now);
                }
                net.relay.handle_connected(now, MemberId(BAD));
            }
        });
        check("6(e)", &o, 60);
    }
}

/// 6(f): garbage in every empty reservation cell: the cell check convicts the member.
#[test]
fn f6f_jamming_every_empty_cell_is_convicted() {
    for seed in 40..44 {
        let o = run(seed, vec![MemberFault::JamEmptyCells], 20, |_, _, _| {});
        check("6(f)", &o, 20);
        assert!(
            o.convicted,
            "seed {seed}: the cell jammer was not convicted"
        );
    }
}
