//! Group configuration: roster, relay key and round parameters, and the `group_id` they define.

use crate::crypto::identity::PublicKey;
use crate::crypto::{Hash, hash, tags};
use std::collections::BTreeSet;

/// Largest round vector accepted (bytes). Keeps every frame well under the wire limit.
pub const MAX_VECTOR_BYTES: u64 = 4 << 20;
/// Largest roster.
pub const MAX_MEMBERS: usize = 1024;
/// Bytes of slot framing: a 1-byte kind, 8-byte message id, 16-byte message digest, u16 fragment index, u16 fragment
/// count, u16 payload length, and the 32-byte slot hash.
pub const SLOT_OVERHEAD: u32 = 1 + 8 + 16 + 2 + 2 + 2 + 32;
/// Longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 256;
/// `tolerance` value that resolves to `N − max(2, ⌈N/2⌉)`.
pub const AUTO_TOLERANCE: u32 = u32::MAX;
/// Fewest completed rounds an epoch may have: one fixes the content key, one uses it.
pub const MIN_EPOCH_ROUNDS: u64 = 2;
/// Default `epoch_rounds` (about 8 minutes at `dcnet group new`'s 500 ms rounds).
pub const DEFAULT_EPOCH_ROUNDS: u64 = 1000;
/// Smallest slot.
pub const MIN_SLOT_BYTES: u32 = 64;
/// Largest slot (the payload length field is a u16).
pub const MAX_SLOT_BYTES: u32 = u16::MAX as u32 + SLOT_OVERHEAD;

/// Round parameters. Validated by [`RoundParams::validate`] before any engine uses them.
#[derive(
    Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, bincode::Encode, bincode::Decode,
)]
#[serde(deny_unknown_fields)]
pub struct RoundParams {
    /// Reservation cells (8 bytes each) at the start of every round vector.
    pub cells: u32,
    /// Slots per round; 0 means "one per member" (the default, so garbage cannot crowd anyone
    /// out).
    pub slots: u32,
    /// Bytes per slot, framing included.
    pub slot_bytes: u32,
    /// Probability that a member with a message pending reserves a trap instead.
    pub p_trap: f64,
    /// Probability that an idle member reserves (a trap) at all.
    pub p_cover: f64,
    /// Relay deadline for epoch keys, from the epoch request (ms).
    pub keys_ms: u64,
    /// Relay deadline for commitments, from the Open (ms).
    pub commit_ms: u64,
    /// Relay deadline for reveals, from the CommitSet (ms).
    pub reveal_ms: u64,
    /// Relay deadline for blinding seeds, from the Record (ms).
    pub unblind_ms: u64,
    /// Relay pause after a round before the next Open (ms): the window for accusations.
    pub post_round_ms: u64,
    /// The round period (ms): the relay opens a round every `round_ms`, whether or not anyone
    /// has something to send, so the timing of rounds tells nothing. 0 = as fast as the group
    /// can go (the library default; `dcnet group new` writes 500, a chat's pace).
    pub round_ms: u64,
    /// Most fragments one message may have.
    pub max_fragments: u16,
    /// Tolerated shrinkage `t` of the anonymity set: floor = |roster| − t. [`AUTO_TOLERANCE`]
    /// resolves to `N − max(2, ⌈N/2⌉)` (a message goes out to at least half the roster).
    pub tolerance: u32,
    /// Completed rounds per epoch: then the relay starts a new epoch and members take part in
    /// no further round of the old one, so epoch keys and the content key are erased on a
    /// schedule (forward secrecy in time). At least [`MIN_EPOCH_ROUNDS`].
    pub epoch_rounds: u64,
}

impl Default for RoundParams {
    fn default() -> Self {
        RoundParams {
            cells: 0,
            slots: 0,
            slot_bytes: 256,
            p_trap: 0.2,
            p_cover: 1.0,
            keys_ms: 5_000,
            commit_ms: 2_000,
            reveal_ms: 2_000,
            unblind_ms: 2_000,
            post_round_ms: 0,
            round_ms: 0,
            max_fragments: 1024,
            tolerance: AUTO_TOLERANCE,
            epoch_rounds: DEFAULT_EPOCH_ROUNDS,
        }
    }
}

/// Why a configuration was refused. Each variant names the offending value.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// Fewer than two members: a DC-net of one has no anonymity.
    #[error("a group needs at least 2 members, got {0}")]
    TooFewMembers(usize),
    /// More members than [`MAX_MEMBERS`].
    #[error("a group may have at most {MAX_MEMBERS} members, got {0}")]
    TooManyMembers(usize),
    /// No reservation cells.
    #[error("cells must be at least 1 (0 is only allowed before defaults are applied)")]
    NoCells,
    /// Slot size out of range.
    #[error("slot_bytes must be between {MIN_SLOT_BYTES} and {MAX_SLOT_BYTES}, got {0}")]
    SlotBytes(u32),
    /// The round vector would be too large.
    #[error("round vector of {0} bytes exceeds the limit of {MAX_VECTOR_BYTES}")]
    VectorTooLarge(u64),
    /// A probability outside [0, 1].
    #[error("{0} must be a probability in [0, 1], got {1}")]
    Probability(&'static str, f64),
    /// A zero deadline.
    #[error("deadline {0} must be positive")]
    Deadline(&'static str),
    /// Tolerance leaves a floor below 2.
    #[error("tolerance {0} leaves an anonymity floor below 2 for {1} members")]
    Tolerance(u32, usize),
    /// `epoch_rounds` below [`MIN_EPOCH_ROUNDS`].
    #[error("epoch_rounds must be at least {MIN_EPOCH_ROUNDS}, got {0}")]
    EpochRounds(u64),
    /// `max_fragments` is zero.
    #[error("max_fragments must be at least 1")]
    MaxFragments,
    /// Two roster entries share a key or a name.
    #[error("duplicate roster entry: {0}")]
    DuplicateMember(String),
    /// A member name that is empty or too long.
    #[error("member name must be 1..=64 bytes: {0:?}")]
    BadName(String),
    /// The relay key is also a member key.
    #[error("the relay key must differ from every member key")]
    RelayIsMember,
    /// A group name that is empty or longer than [`MAX_GROUP_NAME`] bytes (its length is a
    /// u16 prefix in the `group_id` encoding, which must stay injective).
    #[error("the group name must be 1..={MAX_GROUP_NAME} bytes, got {0}")]
    BadGroupName(usize),
}

impl RoundParams {
    /// Fills the defaults that depend on the group size: `slots = 0` → one per member,
    /// `cells = 0` → twice the members (a reservation then succeeds with probability ≈ e^-0.5),
    /// `tolerance = AUTO_TOLERANCE` → `N − max(2, ⌈N/2⌉)`.
    pub fn resolved(&self, members: usize) -> RoundParams {
        let mut p = self.clone();
        if p.slots == 0 {
            p.slots = members as u32;
        }
        if p.cells == 0 {
            p.cells = 2 * members as u32;
        }
        if p.tolerance == AUTO_TOLERANCE {
            p.tolerance = (members as u32).saturating_sub((members as u32).div_ceil(2).max(2));
        }
        p
    }

    /// Checks every bound; call on resolved parameters.
    pub fn validate(&self, members: usize) -> Result<(), ConfigError> {
        if members < 2 {
            return Err(ConfigError::TooFewMembers(members));
        }
        if members > MAX_MEMBERS {
            return Err(ConfigError::TooManyMembers(members));
        }
        if self.cells == 0 {
            return Err(ConfigError::NoCells);
        }
        if !(MIN_SLOT_BYTES..=MAX_SLOT_BYTES).contains(&self.slot_bytes) {
            return Err(ConfigError::SlotBytes(self.slot_bytes));
        }
        let len = u64::from(self.cells) * 8 + u64::from(self.slots) * u64::from(self.slot_bytes);
        if len > MAX_VECTOR_BYTES {
            return Err(ConfigError::VectorTooLarge(len));
        }
        for (name, p) in [("p_trap", self.p_trap), ("p_cover", self.p_cover)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ConfigError::Probability(name, p));
            }
        }
        for (name, d) in [
            ("keys_ms", self.keys_ms),
            ("commit_ms", self.commit_ms),
            ("reveal_ms", self.reveal_ms),
            ("unblind_ms", self.unblind_ms),
        ] {
            if d == 0 {
                return Err(ConfigError::Deadline(name));
            }
        }
        if self.max_fragments == 0 {
            return Err(ConfigError::MaxFragments);
        }
        if self.epoch_rounds < MIN_EPOCH_ROUNDS {
            return Err(ConfigError::EpochRounds(self.epoch_rounds));
        }
        if (members as u64) < u64::from(self.tolerance) + 2 {
            return Err(ConfigError::Tolerance(self.tolerance, members));
        }
        Ok(())
    }

    /// Round vector length `L = cells·8 + slots·slot_bytes`.
    pub fn vector_len(&self) -> usize {
        self.cells as usize * 8 + self.slots as usize * self.slot_bytes as usize
    }

    /// Canonical bytes for `group_id` (docs/PROTOCOL.md §2.1).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(80);
        b.extend_from_slice(&self.cells.to_le_bytes());
        b.extend_from_slice(&self.slots.to_le_bytes());
        b.extend_from_slice(&self.slot_bytes.to_le_bytes());
        b.extend_from_slice(&self.p_trap.to_bits().to_le_bytes());
        b.extend_from_slice(&self.p_cover.to_bits().to_le_bytes());
        for d in [
            self.keys_ms,
            self.commit_ms,
            self.reveal_ms,
            self.unblind_ms,
            self.post_round_ms,
            self.round_ms,
        ] {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b.extend_from_slice(&self.max_fragments.to_le_bytes());
        b.extend_from_slice(&self.tolerance.to_le_bytes());
        b.extend_from_slice(&self.epoch_rounds.to_le_bytes());
        b
    }
}

/// One roster entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RosterEntry {
    /// Human-readable name (never shown next to a message).
    pub name: String,
    /// Ed25519 identity key.
    pub key: PublicKey,
}

/// A group as data (for evidence bundles): validated again by [`Group::from_data`].
#[derive(Clone, Debug, PartialEq, bincode::Encode, bincode::Decode)]
pub struct GroupData {
    /// Group name.
    pub name: String,
    /// `(name, Ed25519 key)` by member index.
    pub members: Vec<(String, [u8; 32])>,
    /// Relay key.
    pub relay: [u8; 32],
    /// Resolved parameters.
    pub params: RoundParams,
}

/// A validated group: name, roster (stable indices), relay key and resolved parameters.
#[derive(Clone, Debug)]
pub struct Group {
    name: String,
    members: Vec<RosterEntry>,
    relay: PublicKey,
    params: RoundParams,
    id: Hash,
}

impl Group {
    /// Validates and builds a group. `params` may leave `cells`/`slots` at 0 for defaults.
    pub fn new(
        name: &str,
        members: Vec<RosterEntry>,
        relay: PublicKey,
        params: RoundParams,
    ) -> Result<Group, ConfigError> {
        if name.is_empty() || name.len() > MAX_GROUP_NAME {
            return Err(ConfigError::BadGroupName(name.len()));
        }
        let params = params.resolved(members.len());
        params.validate(members.len())?;
        let mut keys = BTreeSet::new();
        let mut names = BTreeSet::new();
        for m in &members {
            if m.name.is_empty() || m.name.len() > 64 {
                return Err(ConfigError::BadName(m.name.clone()));
            }
            if !keys.insert(m.key) {
                return Err(ConfigError::DuplicateMember(m.key.to_string()));
            }
            if !names.insert(m.name.clone()) {
                return Err(ConfigError::DuplicateMember(m.name.clone()));
            }
        }
        if keys.contains(&relay) {
            return Err(ConfigError::RelayIsMember);
        }
        let mut g = Group {
            name: name.to_string(),
            members,
            relay,
            params,
            id: [0; 32],
        };
        g.id = hash(
            tags::GROUP_ID,
            &[&g.roster_canonical_bytes(), &g.params.canonical_bytes()],
        );
        Ok(g)
    }

    /// The group as data.
    pub fn to_data(&self) -> GroupData {
        GroupData {
            name: self.name.clone(),
            members: self
                .members
                .iter()
                .map(|m| (m.name.clone(), m.key.0))
                .collect(),
            relay: self.relay.0,
            params: self.params.clone(),
        }
    }

    /// Rebuilds (and validates) a group from data.
    pub fn from_data(d: &GroupData) -> Result<Group, ConfigError> {
        let members = d
            .members
            .iter()
            .map(|(name, key)| RosterEntry {
                name: name.clone(),
                key: PublicKey(*key),
            })
            .collect();
        Group::new(&d.name, members, PublicKey(d.relay), d.params.clone())
    }

    /// Canonical roster bytes for `group_id` (docs/PROTOCOL.md §2.1).
    pub fn roster_canonical_bytes(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        b.extend_from_slice(self.name.as_bytes());
        b.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        for m in &self.members {
            b.extend_from_slice(&(m.name.len() as u16).to_le_bytes());
            b.extend_from_slice(m.name.as_bytes());
            b.extend_from_slice(&m.key.0);
        }
        b.extend_from_slice(&self.relay.0);
        b
    }

    /// `group_id = H("dcnet/v1/group-id"; roster bytes, parameter bytes)`.
    pub fn id(&self) -> &Hash {
        &self.id
    }
    /// Group name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Roster, indexed by member index.
    pub fn members(&self) -> &[RosterEntry] {
        &self.members
    }
    /// Number of members in the roster.
    pub fn size(&self) -> usize {
        self.members.len()
    }
    /// The relay's key.
    pub fn relay_key(&self) -> &PublicKey {
        &self.relay
    }
    /// Resolved round parameters.
    pub fn params(&self) -> &RoundParams {
        &self.params
    }
    /// Key of member `index`, if it exists.
    pub fn member_key(&self, index: u32) -> Option<&PublicKey> {
        self.members.get(index as usize).map(|m| &m.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::identity::IdentityKey;

    fn roster(n: usize) -> Vec<RosterEntry> {
        (0..n)
            .map(|i| RosterEntry {
                name: format!("m{i}"),
                key: IdentityKey::from_secret_bytes(&[i as u8 + 1; 32]).public(),
            })
            .collect()
    }

    #[test]
    fn bad_values_give_clear_errors() {
        let relay = IdentityKey::from_secret_bytes(&[200; 32]).public();
        let p = RoundParams::default();
        assert_eq!(
            Group::new("g", roster(1), relay, p.clone()).unwrap_err(),
            ConfigError::TooFewMembers(1)
        );
        let bad = RoundParams {
            slot_bytes: 10,
            ..p.clone()
        };
        assert_eq!(
            Group::new("g", roster(3), relay, bad).unwrap_err(),
            ConfigError::SlotBytes(10)
        );
        let bad = RoundParams {
            p_trap: 1.5,
            ..p.clone()
        };
        assert!(matches!(
            Group::new("g", roster(3), relay, bad).unwrap_err(),
            ConfigError::Probability("p_trap", _)
        ));
        let bad = RoundParams {
            commit_ms: 0,
            ..p.clone()
        };
        assert_eq!(
            Group::new("g", roster(3), relay, bad).unwrap_err(),
            ConfigError::Deadline("commit_ms")
        );
        let mut dup = roster(3);
        dup[2].key = dup[0].key;
        assert!(matches!(
            Group::new("g", dup, relay, p.clone()).unwrap_err(),
            ConfigError::DuplicateMember(_)
        ));
        let g = Group::new("g", roster(3), relay, p).unwrap();
        assert_eq!(g.params().slots, 3);
        assert_eq!(g.params().cells, 6);
    }

    #[test]
    fn group_id_binds_roster_and_params() {
        let relay = IdentityKey::from_secret_bytes(&[200; 32]).public();
        let a = Group::new("g", roster(3), relay, RoundParams::default()).unwrap();
        let b = Group::new("h", roster(3), relay, RoundParams::default()).unwrap();
        let p = RoundParams {
            slot_bytes: 512,
            ..RoundParams::default()
        };
        let c = Group::new("g", roster(3), relay, p).unwrap();
        assert_ne!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
    }

    #[test]
    fn group_name_is_1_to_256_bytes() {
        let relay = IdentityKey::from_secret_bytes(&[200; 32]).public();
        let p = RoundParams::default();
        assert_eq!(
            Group::new("", roster(3), relay, p.clone()).unwrap_err(),
            ConfigError::BadGroupName(0)
        );
        let long = "n".repeat(MAX_GROUP_NAME + 1);
        assert_eq!(
            Group::new(&long, roster(3), relay, p.clone()).unwrap_err(),
            ConfigError::BadGroupName(MAX_GROUP_NAME + 1)
        );
        // Past 65,535 bytes the u16 length prefix would wrap: refused long before that.
        let huge = "n".repeat(65_536 + 1);
        assert!(Group::new(&huge, roster(3), relay, p.clone()).is_err());
        let max = "n".repeat(MAX_GROUP_NAME);
        assert!(Group::new(&max, roster(3), relay, p.clone()).is_ok());
        // from_data (evidence bundles) goes through the same check.
        let mut d = Group::new("g", roster(3), relay, p).unwrap().to_data();
        d.name = long;
        assert!(Group::from_data(&d).is_err());
    }
}
