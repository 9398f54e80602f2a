//! The sans-IO protocol core.
//!
//! [`Member`] and [`Relay`] are deterministic state machines: inputs arrive through
//! `handle_*(now, …)`, outputs leave through `poll_transmit`, `poll_event` and (for the relay,
//! which keeps the round deadlines, and for a member, which times the relay's closing of a blame
//! case or Record) `poll_timeout`. They never touch a socket, a clock or the
//! OS RNG: time is passed in as [`Time`], a member's randomness comes from a seed given at construction (the relay needs none).
//!
//! # Poll contract
//!
//! After every `handle_*` call a driver drains `poll_transmit` until `None` and `poll_event`
//! until `None` (in either order: they are independent queues), then asks `poll_timeout` and
//! calls `handle_timeout` once that time is reached. Calling `handle_timeout` early or twice is
//! harmless. A `handle_*` that returns an error has left the state exactly as it was.

pub mod blame;
pub mod member;
pub mod relay;
pub mod slots;

pub use member::{LinkId, MAX_LINKS, Member, MemberEvent, PieceSeen};
pub use relay::{Relay, RelayEvent};

use crate::wire::{Kind, WireError};
use std::fmt;
use std::sync::Arc;

/// A point on the protocol clock, in microseconds from an origin the driver chooses.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Time(u64);

impl Time {
    /// The origin.
    pub const ZERO: Time = Time(0);
    /// From microseconds.
    pub const fn from_micros(us: u64) -> Time {
        Time(us)
    }
    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Time {
        Time(ms.saturating_mul(1000))
    }
    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    /// `self + ms` milliseconds (saturating).
    pub const fn plus_millis(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms.saturating_mul(1000)))
    }
    /// `self + us` microseconds (saturating).
    pub const fn plus_micros(self, us: u64) -> Time {
        Time(self.0.saturating_add(us))
    }
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// A member's stable index in the roster.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MemberId(pub u32);

/// A frame for the transport to carry from the relay to one member.
#[derive(Clone, Debug)]
pub struct Transmit {
    /// Destination.
    pub to: MemberId,
    /// Encoded frame (shared between the copies of a broadcast).
    pub frame: Arc<[u8]>,
}

/// Durable storage for a member's highest accepted round.
///
/// # Security
/// A member must never sign two commitments for the same (epoch, round): two ciphertexts under
/// the same pads let a coalition read `m ⊕ m′`. [`Member`] therefore stores the round here
/// *before* it signs, and refuses to commit if storing fails. Implementations must make the
/// value durable (fsync) before returning `Ok`.
pub trait HighWaterStore {
    /// The stored round (0 for a store created new).
    fn load(&self) -> u64;
    /// Stores `round`; must be durable on `Ok`.
    fn store(&mut self, round: u64) -> Result<(), String>;
    /// The stored epoch: the highest epoch whose keys the member accepted (0 if none).
    fn load_epoch(&self) -> u64 {
        0
    }
    /// Stores `epoch` before the member acts in it; must be durable on `Ok`.
    fn store_epoch(&mut self, _epoch: u64) -> Result<(), String> {
        Ok(())
    }
}

/// An in-memory [`HighWaterStore`] for tests and simulations: (round, epoch).
#[derive(Default, Clone, Debug)]
pub struct MemoryStore(pub u64, pub u64);

impl HighWaterStore for MemoryStore {
    fn load(&self) -> u64 {
        self.0
    }
    fn store(&mut self, round: u64) -> Result<(), String> {
        self.0 = round;
        Ok(())
    }
    fn load_epoch(&self) -> u64 {
        self.1
    }
    fn store_epoch(&mut self, epoch: u64) -> Result<(), String> {
        self.1 = epoch;
        Ok(())
    }
}

/// Why an input was refused. The state is unchanged after any of these.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The bytes are not a well-formed frame.
    #[error("wire: {0}")]
    Wire(#[from] WireError),
    /// The signature does not verify under the expected key.
    #[error("bad signature on {0:?}")]
    BadSignature(Kind),
    /// The message is for another group.
    #[error("message for another group")]
    WrongGroup,
    /// The message is for another epoch.
    #[error("message for epoch {got}, expected {expected}")]
    WrongEpoch {
        /// Our epoch.
        expected: u64,
        /// The message's epoch.
        got: u64,
    },
    /// The signer is not who the transport says, or not allowed to send this.
    #[error("wrong sender for {0:?}")]
    WrongSender(Kind),
    /// Not expected in the current phase (late, early, duplicate or replayed).
    #[error("unexpected {kind:?} in phase {phase}")]
    Unexpected {
        /// The message type.
        kind: Kind,
        /// Our phase.
        phase: &'static str,
    },
    /// An Open whose round does not increase, or jumps too far.
    #[error("round {round} refused (highest accepted {high_water})")]
    BadRound {
        /// Proposed round.
        round: u64,
        /// Highest round accepted so far.
        high_water: u64,
    },
    /// A message whose content contradicts our state; the string names the check.
    #[error("invalid {kind:?}: {reason}")]
    Invalid {
        /// The message type.
        kind: Kind,
        /// Which check failed.
        reason: &'static str,
    },
    /// We convicted the relay: nothing it sends is accepted any more.
    #[error("the relay was convicted; waiting for another relay")]
    RelayConvicted,
    /// The high-water mark could not be stored, so nothing was signed.
    #[error("cannot persist high-water mark: {0}")]
    Persist(String),
}

pub(crate) fn invalid(kind: Kind, reason: &'static str) -> ProtocolError {
    ProtocolError::Invalid { kind, reason }
}
