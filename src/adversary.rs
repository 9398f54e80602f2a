//! Adversarial behaviours, in one place, for tests, the simulator and the demo.
//!
//! Nothing here is reachable from the default path: an honest [`crate::protocol::Relay`] is
//! built with `Relay::new`; faults exist only through `Relay::with_faults`.

/// A relay fault.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayFault {
    /// Show `victim` a different (validly signed) Open for every round: different histories.
    Equivocate {
        /// Member shown the other Open.
        victim: u32,
    },
    /// XOR `mask` into byte `offset` (mod L) of every Record's output.
    Tamper {
        /// Byte offset.
        offset: usize,
        /// XOR mask.
        mask: u8,
    },
    /// Drop every frame to `victim`.
    Drop {
        /// Member cut off.
        victim: u32,
    },
}
