//! Deterministic in-memory network on a virtual clock (placeholder; filled below).
