//! dcnet: a DC-net (dining cryptographers network) anonymous broadcast group.
//!
//! - [`crypto`]: keys, pair secrets, views, pads, VRF footprints, DLEQ proofs, Merkle
//!   commitments — pure functions with known-answer vectors.
//! - [`params`]: roster, round parameters and `group_id`.
//! - [`wire`]: signed, typed, size-bounded messages.
//! - [`protocol`]: the sans-IO [`protocol::Member`] and [`protocol::Relay`] state machines.
//! - [`chat`]: sealed private messages, anonymous replies and pseudonyms, carried as message
//!   bytes.
//! - [`sim`]: a deterministic in-memory network on a virtual clock that drives them.
//!
//! The byte-level specification is `docs/PROTOCOL.md`; the architecture is
//! `docs/ARCHITECTURE.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adversary;
pub mod chat;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod net;
pub mod params;
pub mod protocol;
pub mod sim;
pub mod wire;
