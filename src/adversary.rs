//! Adversarial behaviours, in one place, for tests, the simulator and the demo.
//!
//! Nothing here is reachable from the default path: honest engines are built with
//! `Member::new` / `Relay::new`; faults exist only through `Member::with_faults` and
//! `Relay::with_faults`, which the demo reaches only through `--adversary`.

use std::fmt;
use std::str::FromStr;

/// A member fault.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MemberFault {
    /// Flip bits in a random allocated slot (not its own) with probability `rate` per round.
    JamSlots {
        /// Probability per round.
        rate: f64,
    },
    /// Flip bits in every allocated slot but its own, every round.
    JamAll,
    /// Garble its own slot every round (a decoy: it adds an item to D that it never accuses,
    /// diluting the chance that a colluding jammer's hit is D's first item).
    GarbleOwn,
    /// Write a garbage value into a random cell with probability `rate` per round.
    JamCells {
        /// Probability per round.
        rate: f64,
    },
    /// Write garbage into every cell but its own reservation, every round (`jam-cells`): the
    /// allocation overflows and a cell check convicts it.
    JamEmptyCells,
    /// Misreport pad bytes in disclosures (to cover its own jamming, or just to lie).
    LiePads,
    /// Accuse when it has no valid accusation to make.
    FalseAccuse,
    /// Stay silent in every blame step.
    Refuse,
    /// Commit, then never reveal.
    Withhold,
    /// Sign two different commitments for each round.
    Equivocate,
    /// As a keyholder, seal a wrong content key to member `victim` (an equivocating keyholder):
    /// the victim can neither read nor send for the rest of the epoch.
    BadSeal {
        /// The member whose seal is wrong.
        victim: u32,
    },
    /// As a keyholder, send no seal at all (the content key is fixed a round later).
    NoSeal,
}

/// A relay fault.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayFault {
    /// Show `victim` a different (validly signed) Open for every round: different histories.
    Equivocate {
        /// Member shown the other Open.
        victim: u32,
    },
    /// XOR `mask` into byte `offset` (mod L; default: byte 5 of slot 0) of every Record's output.
    Tamper {
        /// Byte offset.
        offset: Option<usize>,
        /// XOR mask.
        mask: u8,
    },
    /// Drop every frame to `victim`.
    Drop {
        /// Member cut off.
        victim: u32,
    },
}

/// One `--adversary` spec: `KIND:MEMBER` or `relay-KIND[:MEMBER]`.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    /// A faulty member.
    Member(u32, MemberFault),
    /// A faulty relay.
    Relay(RelayFault),
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// The kinds `--adversary` accepts, for help texts and errors.
pub const KINDS: &str = "jam-slots, jam-all, jam-cells, garble-own, lie-pads, false-accuse, refuse, \
withhold, equivocate (KIND:MEMBER); relay-tamper, relay-equivocate:MEMBER, relay-drop:MEMBER";

impl FromStr for Spec {
    type Err = String;
    fn from_str(s: &str) -> Result<Spec, String> {
        let (kind, who) = match s.split_once(':') {
            Some((k, w)) => (k, Some(w)),
            None => (s, None),
        };
        let member = |w: Option<&str>| -> Result<u32, String> {
            w.ok_or_else(|| format!("{kind} needs a member index: {kind}:MEMBER"))?
                .parse::<u32>()
                .map_err(|_| format!("bad member index in {s:?}"))
        };
        Ok(match kind {
            "jam-slots" => Spec::Member(member(who)?, MemberFault::JamSlots { rate: 1.0 }),
            "jam-all" => Spec::Member(member(who)?, MemberFault::JamAll),
            "jam-cells" => Spec::Member(member(who)?, MemberFault::JamEmptyCells),
            "garble-own" => Spec::Member(member(who)?, MemberFault::GarbleOwn),
            "lie-pads" => Spec::Member(member(who)?, MemberFault::LiePads),
            "false-accuse" => Spec::Member(member(who)?, MemberFault::FalseAccuse),
            "refuse" => Spec::Member(member(who)?, MemberFault::Refuse),
            "withhold" => Spec::Member(member(who)?, MemberFault::Withhold),
            "equivocate" => Spec::Member(member(who)?, MemberFault::Equivocate),
            "relay-tamper" => Spec::Relay(RelayFault::Tamper {
                offset: match who {
                    Some(w) => Some(w.parse().map_err(|_| format!("bad offset in {s:?}"))?),
                    None => None,
                },
                mask: 0x5a,
            }),
            "relay-equivocate" => Spec::Relay(RelayFault::Equivocate {
                victim: member(who)?,
            }),
            "relay-drop" => Spec::Relay(RelayFault::Drop {
                victim: member(who)?,
            }),
            _ => return Err(format!("unknown adversary {kind:?}; known: {KINDS}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!(
            "jam-slots:2".parse::<Spec>().unwrap(),
            Spec::Member(2, MemberFault::JamSlots { rate: 1.0 })
        );
        assert_eq!(
            "relay-drop:1".parse::<Spec>().unwrap(),
            Spec::Relay(RelayFault::Drop { victim: 1 })
        );
        assert!("relay-tamper".parse::<Spec>().is_ok());
        assert!("jam-slots".parse::<Spec>().is_err());
        assert!("nope:1".parse::<Spec>().is_err());
        assert!("refuse:x".parse::<Spec>().is_err());
    }
}
