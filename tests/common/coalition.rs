//! What a coalition of the relay and colluding readers sees, for the private-message and
//! pseudonym tests: the relay's present set per round, and which slot of which round held
//! which msg_id (a colluding reader holds the content key). Plus the drivers those tests share.

use dcnet::chat::Mailbox;
use dcnet::params::RoundParams;
use dcnet::protocol::{MemberEvent, RelayEvent};
use dcnet::sim::{LinkModel, Network, TestGroup};
use std::collections::{BTreeMap, BTreeSet};

/// Every member's mailbox, seeded from `seed`.
pub fn mailboxes(tg: &TestGroup, seed: u64) -> Vec<Mailbox> {
    tg.member_keys
        .iter()
        .enumerate()
        .map(|(i, k)| Mailbox::new(&tg.group, i as u32, k, [seed as u8 ^ (i as u8 + 1); 32]))
        .collect()
}

/// Drives until every member in `readers` got `count` messages.
pub fn deliver(net: &mut Network, readers: &[usize], count: usize) {
    let ok = net
        .run_until_round(400, |net| {
            readers.iter().all(|&i| net.delivered(i).len() >= count)
        })
        .expect("the network stalled");
    assert!(ok, "not delivered within 400 rounds");
}

/// Seven members with floor 5 (6 with the spare for an accusation).
pub fn floor5_of_7(seed: u64) -> (TestGroup, Network) {
    let p = RoundParams {
        tolerance: 2,
        ..super::params(200)
    };
    let tg = TestGroup::new(7, p, seed).unwrap();
    let net = Network::new(&tg, seed, LinkModel::default());
    (tg, net)
}

/// The relay's present set of every completed round.
pub fn present_of(net: &Network) -> BTreeMap<u64, Vec<u32>> {
    net.relay_events
        .iter()
        .filter_map(|e| match e {
            RelayEvent::Completed { round, present } => Some((*round, present.clone())),
            _ => None,
        })
        .collect()
}

/// For every message delivered to `reader`: the rounds that carried a piece of it.
pub fn rounds_per_message(net: &Network, reader: usize) -> Vec<(Vec<u8>, BTreeSet<u64>)> {
    let mut piece_at: BTreeMap<(u64, u32), [u8; 8]> = BTreeMap::new();
    let mut rounds_of_id: BTreeMap<[u8; 8], BTreeSet<u64>> = BTreeMap::new();
    for e in &net.member_events[reader] {
        if let MemberEvent::RoundCompleted { round, pieces, .. } = e {
            for p in pieces {
                piece_at.insert((*round, p.slot), p.msg_id);
                rounds_of_id.entry(p.msg_id).or_default().insert(*round);
            }
        }
    }
    let mut out = Vec::new();
    for e in &net.member_events[reader] {
        if let MemberEvent::Delivered {
            round,
            slot,
            message,
        } = e
        {
            let id = piece_at[&(*round, *slot)];
            out.push((message.clone(), rounds_of_id[&id].clone()));
        }
    }
    out
}

/// The present sets of every round that carried a piece of any message delivered to `reader`
/// for which `pick` holds (each round once).
pub fn rounds_of(net: &Network, reader: usize, pick: impl Fn(&[u8]) -> bool) -> Vec<Vec<u32>> {
    let present = present_of(net);
    let rounds: BTreeSet<u64> = rounds_per_message(net, reader)
        .into_iter()
        .filter(|(m, _)| pick(m))
        .flat_map(|(_, r)| r)
        .collect();
    rounds.iter().map(|r| present[r].clone()).collect()
}

/// The members in every one of `sets`.
pub fn intersection<'a>(sets: impl IntoIterator<Item = &'a Vec<u32>>) -> BTreeSet<u32> {
    let mut it = sets.into_iter();
    let mut out: BTreeSet<u32> = it.next().map(|s| s.iter().copied().collect()).unwrap();
    for s in it {
        out.retain(|m| s.contains(m));
    }
    out
}

/// Pieces `reader` has read so far.
pub fn pieces_seen(net: &Network, reader: usize) -> usize {
    net.member_events[reader]
        .iter()
        .map(|e| match e {
            MemberEvent::RoundCompleted { pieces, .. } => pieces.len(),
            _ => 0,
        })
        .sum()
}

/// The relay's present set of its last completed round.
pub fn last_present(net: &Network) -> Vec<u32> {
    net.relay_events
        .iter()
        .rev()
        .find_map(|e| match e {
            RelayEvent::Completed { present, .. } => Some(present.clone()),
            _ => None,
        })
        .unwrap()
}

/// Runs until the relay's latest present set is exactly `want`.
pub fn until_present(net: &mut Network, want: &[u32]) {
    let ok = net
        .run_until_round(200, |net| last_present(net) == want)
        .expect("stalled");
    assert!(ok, "present set never became {want:?}");
}

/// Member `who` posts `text` under pseudonym `nym` (a fresh signed post, submitted linked).
pub fn post_as(net: &mut Network, who: usize, nym: &mut dcnet::chat::Nym, text: &[u8]) -> Vec<u8> {
    let post = nym.post(net.group.id(), text);
    net.members[who]
        .as_mut()
        .unwrap()
        .submit_linked(&post, nym.link())
        .unwrap();
    post
}

/// Crashes member `who`; returns the high-water mark to restart it with.
pub fn take_down(net: &mut Network, who: usize) -> u64 {
    let hw = net.members[who].as_ref().unwrap().high_water();
    net.crash(who);
    hw
}
