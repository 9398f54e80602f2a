//! Blame: every adversary against honest members, across group sizes, trap rates and seeds
//! (≥ 500 seeded runs in all). Invariants checked on every run:
//! - soundness: no honest member is ever convicted, by anyone;
//! - agreement: every honest member reaches the same verdicts;
//! - completeness: convictable adversaries are convicted within a bound;
//! - liveness after exclusion: every honest message is delivered.

mod common;

use common::params;
use dcnet::adversary::{MemberFault, RelayFault};
use dcnet::params::RoundParams;
use dcnet::protocol::blame::{self, Culprit, Verdict};
use dcnet::protocol::{MemberEvent, RelayEvent};
use dcnet::sim::{LinkModel, Network, TestGroup};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Adv {
    JamSlots,
    JamAll,
    JamCells,
    LiePads,
    FalseAccuse,
    Refuse,
    Withhold,
    Equivocate,
    RelayTamper,
    RelayEquivocate,
    RelayDrop,
}

/// Faults for an adversary kind; the bad members are the last one or two indices.
fn setup(adv: Adv, n: usize) -> (Vec<RelayFault>, BTreeMap<u32, Vec<MemberFault>>) {
    let a = n as u32 - 1;
    let b = n as u32 - 2;
    let mut m = BTreeMap::new();
    let mut r = vec![];
    match adv {
        Adv::JamSlots => drop(m.insert(a, vec![MemberFault::JamSlots { rate: 1.0 }])),
        Adv::JamAll => drop(m.insert(a, vec![MemberFault::JamAll])),
        Adv::JamCells => drop(m.insert(a, vec![MemberFault::JamCells { rate: 0.3 }])),
        // A jammer that lies about its pads to cover itself.
        Adv::LiePads => drop(m.insert(
            a,
            vec![MemberFault::JamSlots { rate: 1.0 }, MemberFault::LiePads],
        )),
        // A false accuser alongside a jammer (there must be damage to lie about).
        Adv::FalseAccuse => {
            m.insert(a, vec![MemberFault::FalseAccuse]);
            m.insert(b, vec![MemberFault::JamSlots { rate: 1.0 }]);
        }
        // A member silent in blame alongside a jammer.
        Adv::Refuse => {
            m.insert(a, vec![MemberFault::Refuse]);
            m.insert(b, vec![MemberFault::JamSlots { rate: 1.0 }]);
        }
        Adv::Withhold => drop(m.insert(a, vec![MemberFault::Withhold])),
        Adv::Equivocate => drop(m.insert(a, vec![MemberFault::Equivocate])),
        Adv::RelayTamper => r.push(RelayFault::Tamper {
            offset: None,
            mask: 0x5a,
        }),
        Adv::RelayEquivocate => r.push(RelayFault::Equivocate { victim: 0 }),
        Adv::RelayDrop => r.push(RelayFault::Drop { victim: 0 }),
    }
    (r, m)
}

struct Outcome {
    convicted: BTreeSet<Culprit>,
    /// Round of the first conviction of each culprit (as the honest members saw it).
    conviction_round: BTreeMap<Culprit, u64>,
    /// Rounds with damage up to and including the first conviction.
    disruptions: usize,
    delivered_all: bool,
    /// n = 3 and an honest member holds a piece back under the anonymity rule.
    held_back_n3: bool,
}

fn verdicts(net: &Network, i: usize) -> Vec<Verdict> {
    net.member_events[i]
        .iter()
        .filter_map(|e| match e {
            MemberEvent::Verdict { verdict, .. } => Some(verdict.clone()),
            _ => None,
        })
        .collect()
}

fn run(adv: Adv, n: usize, p_trap: f64, seed: u64, msgs: usize) -> Outcome {
    let p = RoundParams {
        p_trap,
        ..params(96)
    };
    let tg = TestGroup::new(n, p, seed).unwrap();
    let (rf, mf) = setup(adv, n);
    let mut net = Network::with_faults(&tg, seed, LinkModel::default(), rf.clone(), &mf);
    let cut_off: BTreeSet<usize> = rf
        .iter()
        .filter_map(|f| match f {
            RelayFault::Drop { victim } | RelayFault::Equivocate { victim } => {
                Some(*victim as usize)
            }
            _ => None,
        })
        .collect();
    let honest: Vec<usize> = (0..n).filter(|i| !mf.contains_key(&(*i as u32))).collect();
    let watchers: Vec<usize> = honest
        .iter()
        .copied()
        .filter(|i| !cut_off.contains(i))
        .collect();
    for &i in &honest {
        for k in 0..msgs {
            net.members[i]
                .as_mut()
                .unwrap()
                .submit(format!("m{i}-{k}").as_bytes())
                .unwrap();
        }
    }
    net.start();
    let expect: Vec<Vec<u8>> = watchers
        .iter()
        .flat_map(|&s| (0..msgs).map(move |k| format!("m{s}-{k}").into_bytes()))
        .collect();
    let relay_bad = !rf.is_empty() && !matches!(adv, Adv::RelayDrop);
    let held_stop = std::cell::Cell::new(false);
    let r = net.drive_bounded(400_000, |net| {
        let stopped = relay_bad
            && watchers.iter().all(|&i| {
                verdicts(net, i)
                    .iter()
                    .any(|v| v.culprit == Some(Culprit::Relay))
            });
        // Fewer than two members left (both adversaries of a 3-member group removed).
        let too_small = matches!(
            net.relay_events.last(),
            Some(RelayEvent::Stalled { available }) if *available < 2
        );
        // In a group of three the anonymity rule may hold the rest back for good (see
        // `live`): stop after 200 rounds of that instead of running to the step limit.
        let held = n == 3
            && net.completed_rounds() > 200
            && honest.iter().any(|&i| {
                net.member_events[i]
                    .iter()
                    .any(|e| matches!(e, MemberEvent::HeldBack { .. }))
            });
        if held {
            held_stop.set(true);
        }
        stopped
            || too_small
            || held
            || watchers.iter().all(|&i| {
                let d = net.delivered(i);
                expect.iter().all(|m| d.contains(m))
            })
    });
    let tag = format!("{adv:?} n={n} p_trap={p_trap} seed={seed}");
    // A verdict may still be in flight to some members when the run stops: let it land.
    let _ = net.drive_bounded(20 * n as u64 + 50, |net| {
        let r = verdicts(net, watchers[0]);
        watchers.iter().all(|&i| verdicts(net, i) == r)
    });
    // Soundness and agreement.
    let reference = verdicts(&net, watchers[0]);
    for &i in &watchers {
        let v = verdicts(&net, i);
        assert_eq!(v, reference, "{tag}: member {i} disagrees");
        for verdict in &v {
            if let Some(Culprit::Member(c)) = verdict.culprit {
                assert!(
                    mf.contains_key(&c),
                    "{tag}: honest member {c} convicted: {verdict:?}"
                );
            }
            if verdict.culprit == Some(Culprit::Relay) {
                assert!(relay_bad, "{tag}: honest relay convicted: {verdict:?}");
            }
        }
    }
    for e in &net.relay_events {
        if let RelayEvent::Verdict { verdict, .. } = e {
            if let Some(Culprit::Member(c)) = verdict.culprit {
                assert!(mf.contains_key(&c), "{tag}: relay convicted honest {c}");
            }
        }
    }
    let mut convicted = BTreeSet::new();
    let mut conviction_round = BTreeMap::new();
    for v in &reference {
        if let Some(c) = v.culprit {
            convicted.insert(c);
            conviction_round.entry(c).or_insert(v.round);
        }
    }
    let first = conviction_round.values().min().copied().unwrap_or(u64::MAX);
    let w = watchers[0];
    let disruptions = net.member_events[w]
        .iter()
        .filter(|e| matches!(e, MemberEvent::RoundCompleted { round, damaged, .. } if *damaged > 0 && *round <= first))
        .count();
    let held_back_n3 = n == 3
        && honest.iter().any(|&i| {
            net.member_events[i]
                .iter()
                .any(|e| matches!(e, MemberEvent::HeldBack { .. }))
        });
    Outcome {
        convicted,
        conviction_round,
        disruptions,
        delivered_all: r.is_ok() && !relay_bad && !held_stop.get(),
        held_back_n3,
    }
}

/// Every honest message was delivered — or, in a group of three, the anonymity rule holds the
/// rest back: there a piece needs all three present (the floor of 2 plus one member to spare
/// for an accusation, docs/PROTOCOL.md §7.1), so an absent, benched or accusing member stalls
/// long messages instead of letting them go out in a set the relay can narrow to one.
fn live(o: &Outcome) -> bool {
    o.delivered_all || o.held_back_n3
}

fn matrix(adv: Adv, seeds: std::ops::Range<u64>) -> Vec<(f64, Outcome)> {
    let mut out = Vec::new();
    for n in [3usize, 5, 16] {
        for p_trap in [0.1, 0.5] {
            for seed in seeds.clone() {
                let o = run(adv, n, p_trap, seed * 7 + n as u64, 15);
                let tag = format!("{adv:?} n={n} p_trap={p_trap} seed={seed}");
                let last = Culprit::Member(n as u32 - 1);
                let second = Culprit::Member(n as u32 - 2);
                match adv {
                    Adv::JamSlots | Adv::JamAll | Adv::LiePads | Adv::Equivocate => {
                        assert!(o.convicted.contains(&last), "{tag}: not convicted");
                        assert!(live(&o), "{tag}: honest messages not all delivered");
                    }
                    Adv::FalseAccuse | Adv::Refuse => {
                        assert!(o.convicted.contains(&second), "{tag}: jammer not convicted");
                        // With n = 3 both adversaries gone leaves one member: no group.
                        let left = n - o.convicted.len();
                        assert!(
                            live(&o) || left < 2,
                            "{tag}: honest messages not all delivered"
                        );
                    }
                    Adv::RelayTamper | Adv::RelayEquivocate => {
                        assert!(
                            o.convicted.contains(&Culprit::Relay),
                            "{tag}: relay not convicted"
                        );
                    }
                    Adv::JamCells => {
                        // A cell check convicts the jammer when its garbage makes more cells
                        // non-zero than members are present; otherwise it only costs
                        // reservations. Never anyone else.
                        assert!(
                            o.convicted.iter().all(|c| *c == last),
                            "{tag}: only the jammer may be convicted"
                        );
                        assert!(live(&o), "{tag}: honest messages not all delivered");
                    }
                    Adv::Withhold | Adv::RelayDrop => {
                        assert!(o.convicted.is_empty(), "{tag}: nobody to convict");
                        assert!(live(&o), "{tag}: honest messages not all delivered");
                    }
                }
                out.push((p_trap, o));
            }
        }
    }
    out
}

fn report(adv: Adv, results: &[(f64, Outcome)]) {
    for p in [0.1, 0.5] {
        let rs: Vec<&Outcome> = results
            .iter()
            .filter(|(q, o)| *q == p && !o.conviction_round.is_empty())
            .map(|(_, o)| o)
            .collect();
        if rs.is_empty() {
            continue;
        }
        let d = rs.iter().map(|o| o.disruptions as f64).sum::<f64>() / rs.len() as f64;
        let r = rs
            .iter()
            .map(|o| *o.conviction_round.values().min().unwrap() as f64)
            .sum::<f64>()
            / rs.len() as f64;
        println!(
            "{adv:?} p_trap={p}: {} runs, mean disruptions to conviction {d:.2} (1/p_trap = {:.1}), mean conviction round {r:.1}",
            rs.len(),
            1.0 / p
        );
    }
}

#[test]
fn jam_slots() {
    let r = matrix(Adv::JamSlots, 0..12);
    report(Adv::JamSlots, &r);
    // Disruptions before conviction average ≈ 1/p_trap or better.
    for p in [0.1, 0.5] {
        let v: Vec<f64> = r
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| o.disruptions as f64)
            .collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean <= 1.5 / p, "p_trap {p}: mean disruptions {mean}");
    }
}

#[test]
fn jam_all_makes_at_most_one_owner_step_forward() {
    let r = matrix(Adv::JamAll, 0..8);
    report(Adv::JamAll, &r);
    // Per round, at most one accusation: count Accused events per round in a fresh run.
    for seed in 0..8 {
        let p = RoundParams {
            p_trap: 0.5,
            ..params(96)
        };
        let tg = TestGroup::new(16, p, seed).unwrap();
        let (rf, mf) = setup(Adv::JamAll, 16);
        let mut net = Network::with_faults(&tg, seed, LinkModel::default(), rf, &mf);
        for i in 0..15 {
            net.members[i].as_mut().unwrap().submit(b"x").unwrap();
        }
        net.start();
        let _ = net.run_rounds(6);
        let mut per_round: BTreeMap<u64, usize> = BTreeMap::new();
        for ev in &net.member_events {
            for e in ev {
                if let MemberEvent::Accused { round, .. } = e {
                    *per_round.entry(*round).or_default() += 1;
                }
            }
        }
        assert!(
            per_round.values().all(|&c| c <= 1),
            "seed {seed}: {per_round:?}"
        );
    }
}

#[test]
fn lie_pads() {
    let r = matrix(Adv::LiePads, 0..8);
    report(Adv::LiePads, &r);
}

#[test]
fn false_accuse() {
    report(Adv::FalseAccuse, &matrix(Adv::FalseAccuse, 0..8));
}

#[test]
fn refuse() {
    report(Adv::Refuse, &matrix(Adv::Refuse, 0..8));
}

#[test]
fn withhold() {
    matrix(Adv::Withhold, 0..8);
}

#[test]
fn equivocate() {
    report(Adv::Equivocate, &matrix(Adv::Equivocate, 0..8));
}

#[test]
fn jam_cells_convicts_only_the_jammer_and_delivers() {
    matrix(Adv::JamCells, 0..8);
}

#[test]
fn relay_tamper() {
    report(Adv::RelayTamper, &matrix(Adv::RelayTamper, 0..8));
}

#[test]
fn relay_equivocate() {
    matrix(Adv::RelayEquivocate, 0..8);
}

#[test]
fn relay_drop() {
    matrix(Adv::RelayDrop, 0..8);
}

/// The owner of a disrupted *real* slot never steps forward: no accusation, no disclosure
/// that names its slot, from a member whose own slot carried a message.
#[test]
fn real_owner_never_reveals_itself() {
    let mut real_hit = 0;
    for seed in 0..20 {
        let p = RoundParams {
            p_trap: 0.0, // every reservation with a message pending is real
            p_cover: 0.0,
            ..params(96)
        };
        let tg = TestGroup::new(5, p, seed).unwrap();
        let (rf, mf) = setup(Adv::JamSlots, 5);
        let mut net = Network::with_faults(&tg, seed, LinkModel::default(), rf, &mf);
        for i in 0..4 {
            for k in 0..5 {
                net.members[i]
                    .as_mut()
                    .unwrap()
                    .submit(format!("{i}{k}").as_bytes())
                    .unwrap();
            }
        }
        net.start();
        let _ = net.run_rounds(15);
        for i in 0..4 {
            let damaged_own = net.member_events[i]
                .iter()
                .filter(|e| matches!(e, MemberEvent::SlotDamaged { .. }))
                .count();
            real_hit += damaged_own;
            assert!(
                !net.member_events[i]
                    .iter()
                    .any(|e| matches!(e, MemberEvent::Accused { .. })),
                "seed {seed}: member {i} with only real slots accused"
            );
        }
        // Nobody is convicted: with no traps there is nothing to accuse with.
        assert!(net.member_events[0].iter().all(
            |e| !matches!(e, MemberEvent::Verdict { verdict, .. } if verdict.culprit.is_some())
        ));
    }
    // The scenario happened: real slots were hit.
    assert!(real_hit > 0, "no real slot was ever disrupted");
}

/// Two colluding jammers are both dealt with.
#[test]
fn two_colluding_jammers_are_both_convicted() {
    for seed in 0..10 {
        for p_trap in [0.2, 0.5] {
            let p = RoundParams {
                p_trap,
                ..params(96)
            };
            let n = 6;
            let tg = TestGroup::new(n, p, seed).unwrap();
            let mut mf = BTreeMap::new();
            mf.insert(4u32, vec![MemberFault::JamSlots { rate: 1.0 }]);
            mf.insert(
                5u32,
                vec![MemberFault::JamSlots { rate: 1.0 }, MemberFault::LiePads],
            );
            let mut net = Network::with_faults(&tg, seed, LinkModel::default(), vec![], &mf);
            for i in 0..4 {
                for k in 0..30 {
                    net.members[i]
                        .as_mut()
                        .unwrap()
                        .submit(format!("{i}-{k}").as_bytes())
                        .unwrap();
                }
            }
            net.start();
            let r = net.drive_bounded(400_000, |net| (0..4).all(|i| net.delivered(i).len() == 120));
            assert!(r.is_ok(), "seed {seed}: not all delivered");
            let v = verdicts(&net, 0);
            let culprits: BTreeSet<_> = v.iter().filter_map(|v| v.culprit).collect();
            assert_eq!(
                culprits,
                [Culprit::Member(4), Culprit::Member(5)]
                    .into_iter()
                    .collect(),
                "seed {seed} p_trap {p_trap}: {v:?}"
            );
        }
    }
}

/// Evidence bundles re-verify offline, and any changed byte makes them fail.
#[test]
fn evidence_verifies_and_is_tamper_evident() {
    for adv in [
        Adv::JamSlots,
        Adv::LiePads,
        Adv::Equivocate,
        Adv::RelayTamper,
    ] {
        let p = RoundParams {
            p_trap: 0.5,
            ..params(96)
        };
        let tg = TestGroup::new(4, p, 3).unwrap();
        let (rf, mf) = setup(adv, 4);
        let mut net = Network::with_faults(&tg, 3, LinkModel::default(), rf, &mf);
        for i in 0..3 {
            for k in 0..10 {
                net.members[i]
                    .as_mut()
                    .unwrap()
                    .submit(format!("{k}").as_bytes())
                    .unwrap();
            }
        }
        net.start();
        let _ = net.drive_bounded(200_000, |net| {
            net.member_events[0].iter().any(
                |e| matches!(e, MemberEvent::Verdict { verdict, .. } if verdict.culprit.is_some()),
            )
        });
        let (verdict, case) = net.member_events[0]
            .iter()
            .find_map(|e| match e {
                MemberEvent::Verdict { verdict, case } if verdict.culprit.is_some() => {
                    Some((verdict.clone(), case.clone()))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{adv:?}: no conviction"));
        let bytes = blame::encode_evidence(&case);
        let back = blame::decode_evidence(&bytes).unwrap();
        assert_eq!(blame::judge(&back).unwrap(), verdict, "{adv:?}");
        // Every single-byte change is refused (checksum, decode, signature or verdict).
        for i in (0..bytes.len()).step_by(1 + bytes.len() / 3000) {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let ok = blame::decode_evidence(&b)
                .ok()
                .and_then(|c| blame::judge(&c).ok())
                .is_some_and(|v| v == verdict);
            assert!(
                !ok,
                "{adv:?}: byte {i} changed and the bundle still verifies"
            );
        }
        // Without the checksum, changes to signed content are still caught by signatures.
        let body = &bytes[8..bytes.len() - 32];
        let mut caught = 0;
        let mut tried = 0;
        for i in (0..body.len()).step_by(1 + body.len() / 400) {
            let mut b = body.to_vec();
            b[i] ^= 0x01;
            tried += 1;
            let still = dcnet::wire::decode::<blame::Case>(&b)
                .ok()
                .and_then(|c| blame::judge(&c).ok())
                .is_some_and(|v| v == verdict);
            if !still {
                caught += 1;
            }
        }
        assert!(
            caught * 100 >= tried * 95,
            "{adv:?}: only {caught}/{tried} caught without checksum"
        );
    }
}
